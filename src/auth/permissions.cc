#include "auth/permissions.h"

#include <algorithm>

namespace tickwire::auth {
namespace {

// Topic name characters (PROTOCOL.md S4).
bool IsTopicChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

bool AllTopicChars(std::string_view s) { return std::all_of(s.begin(), s.end(), IsTopicChar); }

}  // namespace

TopicPatterns TopicPatterns::All() {
  TopicPatterns p;
  p.all_ = true;
  return p;
}

std::optional<TopicPatterns> TopicPatterns::Parse(std::string_view list, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<TopicPatterns> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  TopicPatterns p;
  if (list == "-") return p;
  if (list.empty()) return fail("empty pattern list (write '-' for none)");
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    const std::string_view item = list.substr(start, end - start);
    start = end + 1;
    if (item == "*") {
      p.all_ = true;
    } else if (item.size() >= 2 && item.back() == '*') {
      const auto prefix = item.substr(0, item.size() - 1);
      if (prefix.size() > 127 || !AllTopicChars(prefix)) {
        return fail("pattern '" + std::string(item) +
                    "': a prefix is 1-127 bytes of [A-Za-z0-9._:-] followed by '*'");
      }
      p.prefixes_.emplace_back(prefix);
    } else if (!item.empty() && item.size() <= 128 && AllTopicChars(item)) {
      p.exact_.emplace_back(item);
    } else {
      return fail("pattern '" + std::string(item) +
                  "': must be a topic name, a prefix followed by '*', or '*'");
    }
    if (end == list.size()) break;
  }
  std::sort(p.exact_.begin(), p.exact_.end());
  p.exact_.erase(std::unique(p.exact_.begin(), p.exact_.end()), p.exact_.end());
  return p;
}

bool TopicPatterns::Matches(std::string_view topic) const {
  if (all_) return true;
  if (std::binary_search(exact_.begin(), exact_.end(), topic,
                         [](std::string_view a, std::string_view b) { return a < b; })) {
    return true;
  }
  return std::any_of(prefixes_.begin(), prefixes_.end(),
                     [&](const std::string& prefix) { return topic.starts_with(prefix); });
}

bool TopicPatterns::CoversPrefix(std::string_view prefix) const {
  if (all_) return true;
  return std::any_of(prefixes_.begin(), prefixes_.end(),
                     [&](const std::string& p) { return prefix.starts_with(p); });
}

std::string TopicPatterns::ToString() const {
  if (all_) return "*";
  std::string out;
  for (const auto& e : exact_) out += (out.empty() ? "" : ",") + e;
  for (const auto& p : prefixes_) out += (out.empty() ? "" : ",") + p + "*";
  return out.empty() ? "-" : out;
}

}  // namespace tickwire::auth
