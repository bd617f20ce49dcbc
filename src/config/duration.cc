#include "config/duration.h"

#include <charconv>
#include <cstdint>

namespace tickwire::config {

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  std::uint64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) return std::nullopt;
  const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  constexpr std::uint64_t kMaxMs = 365ULL * 24 * 3600 * 1000;  // sanity bound: one year
  std::uint64_t ms = 0;
  if (unit == "ms") {
    ms = value;
  } else if (unit == "us") {
    ms = (value + 999) / 1000;
  } else if (unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60'000;
  } else if (unit == "h") {
    ms = value * 3'600'000;
  } else {
    return std::nullopt;
  }
  if (value > kMaxMs || ms > kMaxMs) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace tickwire::config
