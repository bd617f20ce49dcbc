#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace tickwire::testing {

// `ms` since the Unix epoch as UTC text in strftime `format`, e.g. "%Y-%m-%d %H:%M:%S" for the
// CLI table's time column of a SECOND bar: what a test expects the CLI to print, worked out
// independently of the CLI's own formatting code.
inline std::string UtcTime(std::int64_t ms, const char* format) {
  const auto t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

}  // namespace tickwire::testing
