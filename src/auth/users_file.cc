#include "auth/users_file.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <unordered_set>

namespace tickwire::auth {
namespace {

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

bool IsValidUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '-';
  });
}

UsersFileResult ParseUsersFile(std::string_view text) {
  std::vector<UserEntry> users;
  std::unordered_set<std::string> names;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    const auto fields = Fields(line);
    if (fields.empty()) continue;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (fields.size() < 2)
      return where + "expected '<user> <password hash> [publish=..] [subscribe=..]'";
    UserEntry u;
    u.name = std::string(fields[0]);
    if (!IsValidUserName(u.name)) {
      return where + "user name must be 1-64 bytes of [A-Za-z0-9._@-]";
    }
    if (!names.insert(u.name).second) return where + "user '" + u.name + "' appears twice";
    std::string error;
    auto hash = ParsePasswordHash(fields[1], &error);
    if (!hash) return where + error;
    u.hash = std::move(*hash);
    bool seen_publish = false;
    bool seen_subscribe = false;
    for (std::size_t i = 2; i < fields.size(); ++i) {
      const auto eq = fields[i].find('=');
      const auto key = fields[i].substr(0, eq);
      if (eq == std::string_view::npos || (key != "publish" && key != "subscribe")) {
        return where + "unknown field '" + std::string(fields[i]) +
               "' (expected publish=<patterns> or subscribe=<patterns>)";
      }
      bool& seen = key == "publish" ? seen_publish : seen_subscribe;
      if (seen) return where + std::string(key) + " given twice";
      seen = true;
      auto patterns = TopicPatterns::Parse(fields[i].substr(eq + 1), &error);
      if (!patterns) return where + std::string(key) + ": " + error;
      (key == "publish" ? u.permissions.publish : u.permissions.subscribe) = std::move(*patterns);
    }
    if (users.size() >= kMaxUsers)
      return where + "more than " + std::to_string(kMaxUsers) + " users";
    users.push_back(std::move(u));
  }
  return users;
}

UsersFileResult LoadUsersFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read '" + path + "'";
  std::string text;
  text.resize(kMaxUsersFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxUsersFileBytes) {
    return "'" + path + "' is larger than " + std::to_string(kMaxUsersFileBytes) + " bytes";
  }
  auto result = ParseUsersFile(text);
  if (auto* err = std::get_if<std::string>(&result)) *err = path + ": " + *err;
  return result;
}

}  // namespace tickwire::auth
