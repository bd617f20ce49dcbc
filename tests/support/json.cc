#include "support/json.h"

#include <sstream>

namespace tickwire::testing {

std::optional<boost::json::value> ParseJson(std::string_view text, std::string* error) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) {
    if (error != nullptr) *error = ec.message();
    return std::nullopt;
  }
  return v;
}

LogCheck CheckJsonLogLines(const std::string& stdout_text) {
  LogCheck check;
  std::istringstream in(stdout_text);
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty()) continue;
    std::string why;
    auto v = ParseJson(line, &why);
    if (!v) {
      check.error = "line " + std::to_string(number) + " is not JSON (" + why + "): " + line;
      return check;
    }
    if (!v->is_object()) {
      check.error = "line " + std::to_string(number) + " is not a JSON object: " + line;
      return check;
    }
    for (const char* key : {"ts", "level", "event", "msg"}) {
      const auto* f = v->as_object().if_contains(key);
      if (f == nullptr || !f->is_string()) {
        check.error = "line " + std::to_string(number) + " has no string \"" + key + "\": " + line;
        return check;
      }
    }
    check.lines.push_back(std::move(v->as_object()));
  }
  return check;
}

std::string StringField(const boost::json::object& o, std::string_view key) {
  const auto* f = o.if_contains(key);
  if (f == nullptr || !f->is_string()) return {};
  return std::string(f->as_string());
}

}  // namespace tickwire::testing
