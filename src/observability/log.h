#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace tickwire::obs {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One key/value of a log line. String values are escaped; client-supplied text is safe here.
struct Field {
  std::string_view key;
  std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool> value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <typename T>
  requires std::is_integral_v<T> && std::is_signed_v<T> Field(std::string_view k, T v)
      : key(k), value(static_cast<std::int64_t>(v)) {}
  template <typename T>
  requires std::is_integral_v<T> && std::is_unsigned_v<T> &&
      (!std::is_same_v<T, bool>)Field(std::string_view k, T v)
      : key(k), value(static_cast<std::uint64_t>(v)) {}
};

void SetLogLevel(Level level);
bool LogEnabled(Level level);

// Writes one JSON object per line to stdout: {"ts":..., "level":..., "event":..., "msg":...,
// fields...}. Each line is written with a single write(2), so lines from threads never mix.
void Log(Level level, std::string_view event, std::string_view msg,
         std::initializer_list<Field> fields = {});

// Appends `s` as a JSON string literal (quotes included). Control characters are escaped and
// invalid UTF-8 bytes become U+FFFD, so the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);

// Renders a log line without writing it (used by Log and by tests).
std::string FormatLogLine(Level level, std::string_view event, std::string_view msg,
                          std::initializer_list<Field> fields);

}  // namespace tickwire::obs
