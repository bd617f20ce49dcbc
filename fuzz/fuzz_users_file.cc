// Fuzzes the users file parser (ParseUsersFile) and the password hash text form it reads, with
// properties that must hold for any input: an accepted file holds unique valid names and hashes
// within their bounds; an accepted hash prints back to text that parses to the same hash;
// permissions print back to a list that parses to the same set; base64 decodes what it encodes.
// Passwords are never derived here (PBKDF2 is slow by design).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "auth/password_hash.h"
#include "auth/permissions.h"
#include "auth/users_file.h"

namespace {

using namespace tickwire::auth;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool SameHash(const PasswordHash& a, const PasswordHash& b) {
  return a.iterations == b.iterations && a.salt == b.salt && a.key == b.key;
}

void CheckHash(const PasswordHash& h) {
  Check(h.iterations >= kMinIterations && h.iterations <= kMaxIterations);
  Check(h.salt.size() >= 8 && h.salt.size() <= 64);
  Check(h.key.size() == kKeyBytes);
  std::string error;
  const auto again = ParsePasswordHash(FormatPasswordHash(h), &error);
  Check(again.has_value() && SameHash(*again, h));
  Check(Base64Decode(Base64Encode(h.salt)) == h.salt);
}

void CheckPatterns(const TopicPatterns& p) {
  std::string error;
  const auto again = TopicPatterns::Parse(p.ToString(), &error);
  Check(again.has_value());
  Check(again->ToString() == p.ToString() && again->MatchesAll() == p.MatchesAll());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // The whole input as one hash field.
  std::string error;
  if (auto h = ParsePasswordHash(text, &error)) {
    CheckHash(*h);
  } else {
    Check(!error.empty());
  }
  if (auto bytes = Base64Decode(text)) Check(Base64Decode(Base64Encode(*bytes)) == *bytes);

  // The whole input as a users file.
  const auto result = ParseUsersFile(text);
  if (const auto* err = std::get_if<std::string>(&result)) {
    Check(err->starts_with("line "));
    return 0;
  }
  const auto& users = std::get<std::vector<UserEntry>>(result);
  Check(users.size() <= kMaxUsers);
  std::set<std::string> names;
  for (const auto& u : users) {
    Check(IsValidUserName(u.name));
    Check(names.insert(u.name).second);
    CheckHash(u.hash);
    CheckPatterns(u.permissions.publish);
    CheckPatterns(u.permissions.subscribe);
  }
  return 0;
}
