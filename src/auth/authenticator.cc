#include "auth/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace tickwire::auth {

Authenticator::Authenticator(std::string_view user, std::string_view pass)
    : has_stream_user_(true),
      stream_user_(user),
      user_digest_(Hash("user", user)),
      pass_digest_(Hash("pass", pass)) {}

std::variant<std::shared_ptr<const Authenticator>, std::string> Authenticator::Create(
    std::string_view stream_user, std::string_view stream_pass, std::vector<UserEntry> users) {
  std::shared_ptr<Authenticator> a(new Authenticator());
  if (!stream_user.empty()) {
    a->has_stream_user_ = true;
    a->stream_user_ = std::string(stream_user);
    a->user_digest_ = Hash("user", stream_user);
    a->pass_digest_ = Hash("pass", stream_pass);
  }
  std::uint32_t max_iterations = kMinIterations;
  for (auto& u : users) {
    if (a->has_stream_user_ && u.name == a->stream_user_) {
      return "user '" + u.name + "' is both STREAM_USER and in the users file";
    }
    max_iterations = std::max(max_iterations, u.hash.iterations);
    const std::size_t index = a->users_.size();
    auto [it, inserted] = a->users_.emplace(
        u.name, FileUser{std::move(u.hash),
                         std::make_shared<const Permissions>(std::move(u.permissions)), index});
    if (!inserted) return "user '" + it->first + "' is defined twice";
  }
  a->verified_.assign(a->users_.size(), Digest{});
  if (!a->users_.empty()) {
    a->dummy_.iterations = max_iterations;
    a->dummy_.salt.assign(kSaltBytes, 0x5a);
    a->dummy_.key.assign(kKeyBytes, 0);
    RAND_bytes(a->cache_key_.data(), static_cast<int>(a->cache_key_.size()));
  }
  return std::shared_ptr<const Authenticator>(std::move(a));
}

Authenticator::Digest Authenticator::Hash(std::string_view domain, std::string_view value) {
  Digest out{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, domain.data(), domain.size());
  EVP_DigestUpdate(ctx, "\0", 1);
  EVP_DigestUpdate(ctx, value.data(), value.size());
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

Authenticator::Digest Authenticator::CacheTag(std::string_view user, std::string_view pass) const {
  std::string msg;
  msg.reserve(user.size() + 1 + pass.size());
  msg.append(user).push_back('\0');
  msg.append(pass);
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), cache_key_.data(), static_cast<int>(cache_key_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data(), &len);
  OPENSSL_cleanse(msg.data(), msg.size());
  return out;
}

bool Authenticator::Check(std::string_view user, std::string_view pass) const {
  return Authenticate(user, pass) != nullptr;
}

PermissionsPtr Authenticator::Authenticate(std::string_view user, std::string_view pass) const {
  const Quick quick = TryQuick(user, pass);
  return quick.decided ? quick.permissions : Verify(user, pass);
}

bool Authenticator::IsStreamUser(std::string_view user, std::string_view pass) const {
  if (!has_stream_user_) return false;
  const Digest u = Hash("user", user);
  const Digest p = Hash("pass", pass);
  // Evaluate both comparisons unconditionally: no early exit on a wrong username.
  const int du = CRYPTO_memcmp(u.data(), user_digest_.data(), u.size());
  const int dp = CRYPTO_memcmp(p.data(), pass_digest_.data(), p.size());
  return (du | dp) == 0;
}

PermissionsPtr Authenticator::Cached(const FileUser& fu, const Digest& tag) const {
  std::lock_guard lock(cache_mu_);
  const bool hit = CRYPTO_memcmp(verified_[fu.index].data(), tag.data(), tag.size()) == 0;
  return hit ? fu.permissions : nullptr;
}

Authenticator::Quick Authenticator::TryQuick(std::string_view user, std::string_view pass) const {
  if (IsStreamUser(user, pass)) return {true, all_};
  if (users_.empty()) return {true, nullptr};
  const auto it = users_.find(std::string(user));
  if (it == users_.end()) return {};
  if (auto hit = Cached(it->second, CacheTag(user, pass))) return {true, std::move(hit)};
  return {};
}

PermissionsPtr Authenticator::Verify(std::string_view user, std::string_view pass) const {
  if (IsStreamUser(user, pass)) return all_;
  if (users_.empty()) return nullptr;
  const Digest tag = CacheTag(user, pass);  // for unknown names too: the same work either way
  const auto it = users_.find(std::string(user));
  if (it == users_.end()) {
    VerifyPassword(dummy_, pass);  // check_iterations(), like a known name's failure
    return nullptr;
  }
  const FileUser& fu = it->second;
  if (auto hit = Cached(fu, tag)) return hit;  // verified by a concurrent check meanwhile
  if (!VerifyPassword(fu.hash, pass)) {
    SpendIterations(dummy_.iterations - fu.hash.iterations);  // up to check_iterations()
    return nullptr;
  }
  {
    std::lock_guard lock(cache_mu_);
    verified_[fu.index] = tag;
  }
  return fu.permissions;
}

PermissionsPtr Authenticator::Lookup(std::string_view user) const {
  if (has_stream_user_ && user == stream_user_) return all_;
  const auto it = users_.find(std::string(user));
  return it == users_.end() ? nullptr : it->second.permissions;
}

}  // namespace tickwire::auth
