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
// Timing: the STREAM_USER pair is compared as fixed-size digests with CRYPTO_memcmp; an unknown
// user name costs a PBKDF2 run like a known one, so response time does not tell which names
// exist. Cost: a users-file password is verified with PBKDF2 once; later AUTHs with the same
// password (reconnects) match a keyed HMAC of it (random per-process key, one entry per user)
// and cost microseconds. Wrong passwords always pay the full PBKDF2 cost, and the AUTH rate
// limiter bounds how often a source can make the server pay it.
class Authenticator {
 public:
  // STREAM_USER / STREAM_PASS only.
  Authenticator(std::string_view user, std::string_view pass);
  // STREAM_USER / STREAM_PASS (skipped when `stream_user` is empty) plus the users of a users
  // file. Returns an error when a name is defined twice.
  static std::variant<std::shared_ptr<const Authenticator>, std::string> Create(
      std::string_view stream_user, std::string_view stream_pass, std::vector<UserEntry> users);

  // True when the credentials are right.
  bool Check(std::string_view user, std::string_view pass) const;
  // The user's permissions when the credentials are right, else null.
  PermissionsPtr Authenticate(std::string_view user, std::string_view pass) const;
  // Permissions of a known user without checking a password (a client certificate already
  // proved who it is), else null.
  PermissionsPtr Lookup(std::string_view user) const;
  std::size_t user_count() const { return (has_stream_user_ ? 1 : 0) + users_.size(); }

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

  bool has_stream_user_ = false;
  std::string stream_user_;
  Digest user_digest_{};
  Digest pass_digest_{};
  PermissionsPtr all_ = std::make_shared<const Permissions>(Permissions::All());
  std::unordered_map<std::string, FileUser> users_;
  PasswordHash dummy_;  // verified against for unknown names, so they cost the same
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
