#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "auth/password_hash.h"
#include "auth/permissions.h"
#include "auth/users_file.h"

namespace tickwire::auth {

using PermissionsPtr = std::shared_ptr<const Permissions>;

// Checks AUTH credentials against STREAM_USER / STREAM_PASS (may publish and subscribe to
// everything) and the users of a users file (salted PBKDF2 hashes, their own permissions).
// Immutable after construction apart from an internal cache; thread-safe. A reload builds a new
// Authenticator and swaps it in (CredentialStore).
//
// A check has a cheap part and an expensive one. TryQuick decides at once for STREAM_USER's
// credentials (fixed-size digests compared with CRYPTO_memcmp), for a file user's password that
// has verified before (it matches a keyed HMAC of that password: random per-process key, one
// entry per user, so reconnects cost microseconds), and for everything when there is no users
// file. What it leaves open needs Verify: PBKDF2, tens of milliseconds, which the server runs on
// its hashing threads, never on an event loop.
//
// Timing: a failed Verify costs exactly check_iterations() PBKDF2 iterations whatever the name:
// an unknown name (STREAM_USER with a wrong password included) runs that many on a dummy input,
// and a known name whose hash has fewer iterations runs the difference after its own. So the
// time of a failure does not tell which names exist, even when the users file mixes iteration
// counts. A success costs the user's own iterations.
class Authenticator {
 public:
  // STREAM_USER / STREAM_PASS only.
  Authenticator(std::string_view user, std::string_view pass);
  // STREAM_USER / STREAM_PASS (skipped when `stream_user` is empty) plus the users of a users
  // file. Returns an error when a name is defined twice.
  static std::variant<std::shared_ptr<const Authenticator>, std::string> Create(
      std::string_view stream_user, std::string_view stream_pass, std::vector<UserEntry> users);

  // What TryQuick found: `decided` with the user's permissions (null: wrong credentials), or
  // not decided: the check needs Verify.
  struct Quick {
    bool decided = false;
    PermissionsPtr permissions;
  };
  // The cheap part of a check (microseconds); runs on any thread.
  Quick TryQuick(std::string_view user, std::string_view pass) const;
  // The whole check, PBKDF2 included when TryQuick cannot decide: the user's permissions when
  // the credentials are right, else null. Expensive: call it off the event loops.
  PermissionsPtr Verify(std::string_view user, std::string_view pass) const;

  // True when the credentials are right (TryQuick, then Verify).
  bool Check(std::string_view user, std::string_view pass) const;
  // The user's permissions when the credentials are right, else null (TryQuick, then Verify).
  PermissionsPtr Authenticate(std::string_view user, std::string_view pass) const;
  // Permissions of a known user without checking a password (a client certificate already
  // proved who it is), else null.
  PermissionsPtr Lookup(std::string_view user) const;
  std::size_t user_count() const { return (has_stream_user_ ? 1 : 0) + users_.size(); }
  // PBKDF2 iterations a failed Verify costs: the highest of the users file (0 without one).
  std::uint32_t check_iterations() const { return users_.empty() ? 0 : dummy_.iterations; }

 private:
  using Digest = std::array<std::uint8_t, 32>;
  struct FileUser {
    PasswordHash hash;
    PermissionsPtr permissions;
    std::size_t index;  // into verified_
  };

  Authenticator() = default;
  static Digest Hash(std::string_view domain, std::string_view value);
  Digest CacheTag(std::string_view user, std::string_view pass) const;
  bool IsStreamUser(std::string_view user, std::string_view pass) const;
  // The file user's permissions when `tag` is the password that verified last, else null.
  PermissionsPtr Cached(const FileUser& fu, const Digest& tag) const;

  bool has_stream_user_ = false;
  std::string stream_user_;
  Digest user_digest_{};
  Digest pass_digest_{};
  PermissionsPtr all_ = std::make_shared<const Permissions>(Permissions::All());
  std::unordered_map<std::string, FileUser> users_;
  // Verified against for unknown names; its iteration count is the highest in the users file.
  PasswordHash dummy_;
  std::array<std::uint8_t, 32> cache_key_{};
  mutable std::mutex cache_mu_;
  // Per file user: keyed HMAC of the last password that verified (all zero: none yet).
  mutable std::vector<Digest> verified_;
};

// The current Authenticator, swapped on reload. Sessions take a snapshot when they AUTH, so a
// reload changes what new AUTHs see and leaves authenticated sessions alone.
class CredentialStore {
 public:
  explicit CredentialStore(std::shared_ptr<const Authenticator> initial = nullptr)
      : current_(std::move(initial)) {}
  std::shared_ptr<const Authenticator> Get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void Set(std::shared_ptr<const Authenticator> next) {
    std::lock_guard lock(mu_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Authenticator> current_;
};

}  // namespace tickwire::auth
