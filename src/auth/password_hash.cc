#include "auth/password_hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <stdexcept>

namespace tickwire::auth {
namespace {

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = text.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(text.substr(start));
      return out;
    }
    out.push_back(text.substr(start, pos - start));
    start = pos + 1;
  }
}

std::atomic<std::uint64_t> g_iterations_run{0};

std::vector<std::uint8_t> Derive(std::string_view password, const std::vector<std::uint8_t>& salt,
                                 std::uint32_t iterations, std::size_t length) {
  std::vector<std::uint8_t> key(length);
  g_iterations_run.fetch_add(iterations, std::memory_order_relaxed);
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(length), key.data()) != 1) {
    key.clear();  // out of memory; callers treat it as a failed derivation
  }
  return key;
}

}  // namespace

std::string Base64Encode(const std::vector<std::uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4096) return std::nullopt;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::vector<std::uint8_t> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock keeps the zero bytes that padding stands for; drop them.
  std::size_t len = static_cast<std::size_t>(n);
  if (text.back() == '=') --len;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

std::optional<PasswordHash> ParsePasswordHash(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<PasswordHash> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  const auto parts = Split(text, '$');
  if (parts.size() != 4 || parts[0] != kPasswordScheme) {
    return fail("password hash must be " + std::string(kPasswordScheme) +
                "$<iterations>$<salt>$<key> (made by `tickwire passwd`)");
  }
  PasswordHash h;
  const auto it = parts[1];
  auto [ptr, ec] = std::from_chars(it.data(), it.data() + it.size(), h.iterations);
  if (ec != std::errc() || ptr != it.data() + it.size() || it.empty()) {
    return fail("iterations '" + std::string(it) + "' is not a whole number");
  }
  if (h.iterations < kMinIterations || h.iterations > kMaxIterations) {
    return fail("iterations " + std::to_string(h.iterations) + " is outside [" +
                std::to_string(kMinIterations) + ", " + std::to_string(kMaxIterations) + "]");
  }
  auto salt = Base64Decode(parts[2]);
  if (!salt || salt->size() < 8 || salt->size() > 64) {
    return fail("salt is not base64 of 8 to 64 bytes");
  }
  auto key = Base64Decode(parts[3]);
  if (!key || key->size() != kKeyBytes) return fail("key is not base64 of 32 bytes");
  h.salt = std::move(*salt);
  h.key = std::move(*key);
  return h;
}

std::string FormatPasswordHash(const PasswordHash& hash) {
  return std::string(kPasswordScheme) + "$" + std::to_string(hash.iterations) + "$" +
         Base64Encode(hash.salt) + "$" + Base64Encode(hash.key);
}

PasswordHash HashPassword(std::string_view password, std::uint32_t iterations) {
  PasswordHash h;
  h.iterations = iterations;
  h.salt.resize(kSaltBytes);
  if (RAND_bytes(h.salt.data(), static_cast<int>(h.salt.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  h.key = Derive(password, h.salt, iterations, kKeyBytes);
  if (h.key.empty()) throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  return h;
}

bool VerifyPassword(const PasswordHash& hash, std::string_view password) {
  const auto key = Derive(password, hash.salt, hash.iterations, hash.key.size());
  if (key.size() != hash.key.size() || key.empty()) return false;
  return CRYPTO_memcmp(key.data(), hash.key.data(), key.size()) == 0;
}

void SpendIterations(std::uint32_t iterations) {
  if (iterations == 0) return;
  static const std::vector<std::uint8_t> kSalt(kSaltBytes, 0xa5);
  Derive("tickwire: padding", kSalt, iterations, kKeyBytes);
}

std::uint64_t Pbkdf2IterationsRun() { return g_iterations_run.load(std::memory_order_relaxed); }

}  // namespace tickwire::auth
