#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tickwire::config {

// Parses "15s", "500ms", "2m", "1h", "250us" (a whole number and a unit) into milliseconds,
// rounding microseconds up. Returns nullopt on anything else.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Formats a duration the way ParseDuration reads it, with the largest exact unit ("15s").
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace tickwire::config
