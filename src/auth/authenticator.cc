#include "auth/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace tickwire::auth {

Authenticator::Authenticator(std::string_view user, std::string_view pass)
    : user_digest_(Hash("user", user)), pass_digest_(Hash("pass", pass)) {}

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

bool Authenticator::Check(std::string_view user, std::string_view pass) const {
  const Digest u = Hash("user", user);
  const Digest p = Hash("pass", pass);
  // Evaluate both comparisons unconditionally: no early exit on a wrong username.
  const int du = CRYPTO_memcmp(u.data(), user_digest_.data(), u.size());
  const int dp = CRYPTO_memcmp(p.data(), pass_digest_.data(), p.size());
  return (du | dp) == 0;
}

}  // namespace tickwire::auth
