#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/password_hash.h"
#include "auth/permissions.h"

namespace tickwire::auth {

// One line of a users file:
//
//   <user> <password hash> [publish=<patterns>] [subscribe=<patterns>]
//
// Fields are separated by spaces or tabs; '#' starts a comment; blank lines are skipped. A user
// name is 1-64 bytes of [A-Za-z0-9._@-]. An omitted permission is the empty set. See
// docs/SECURITY.md.
struct UserEntry {
  std::string name;
  PasswordHash hash;
  Permissions permissions;
};

inline constexpr std::size_t kMaxUsersFileBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kMaxUsers = 100'000;

using UsersFileResult = std::variant<std::vector<UserEntry>, std::string>;

// Parses users file text; an error names the line and what is wrong with it.
UsersFileResult ParseUsersFile(std::string_view text);
// Reads and parses `path`.
UsersFileResult LoadUsersFile(const std::string& path);

bool IsValidUserName(std::string_view name);

}  // namespace tickwire::auth
