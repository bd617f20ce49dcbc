#pragma once

// Boost.JSON for tests: a strict RFC 8259 parser (invalid UTF-8 is rejected), used to check
// that log lines and JSON endpoints are real JSON and to read their fields.
#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tickwire::testing {

// Parses `text` as one JSON value; nullopt (and `error`) when it is not valid JSON.
std::optional<boost::json::value> ParseJson(std::string_view text, std::string* error = nullptr);

// Checks every non-empty line of a server's stdout: each must be a JSON object with string
// members ts, level, event and msg. Returns the parsed objects, or an error naming the first
// bad line.
struct LogCheck {
  std::vector<boost::json::object> lines;
  std::string error;  // empty when every line passed
};
LogCheck CheckJsonLogLines(const std::string& stdout_text);

// A string member of `o`, or empty.
std::string StringField(const boost::json::object& o, std::string_view key);

}  // namespace tickwire::testing
