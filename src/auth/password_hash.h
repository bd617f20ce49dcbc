#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tickwire::auth {

// Salted password hashes for the users file: PBKDF2-HMAC-SHA256 (OpenSSL 3), written as
//
//   pbkdf2-sha256$<iterations>$<salt, base64>$<derived key, base64>
//
// with a 16-byte random salt and a 32-byte derived key. `tickwire passwd` writes them.
inline constexpr std::string_view kPasswordScheme = "pbkdf2-sha256";
inline constexpr std::uint32_t kDefaultIterations = 100'000;
// Bounds on what a users file may ask for: below the minimum a stolen file is too cheap to
// attack; above the maximum one AUTH would stall its worker for too long.
inline constexpr std::uint32_t kMinIterations = 1'000;
inline constexpr std::uint32_t kMaxIterations = 2'000'000;
inline constexpr std::size_t kSaltBytes = 16;
inline constexpr std::size_t kKeyBytes = 32;

struct PasswordHash {
  std::uint32_t iterations = kDefaultIterations;
  std::vector<std::uint8_t> salt;
  std::vector<std::uint8_t> key;
};

// Parses the text form; on failure returns nullopt and says why in `*error`.
std::optional<PasswordHash> ParsePasswordHash(std::string_view text, std::string* error);
// The text form of `hash`.
std::string FormatPasswordHash(const PasswordHash& hash);
// Hashes `password` with a fresh random salt.
PasswordHash HashPassword(std::string_view password, std::uint32_t iterations = kDefaultIterations);
// Derives the key for `password` with `hash`'s salt and iterations and compares it with the
// stored key in constant time.
bool VerifyPassword(const PasswordHash& hash, std::string_view password);
// Runs PBKDF2 for `iterations` on a fixed input and discards the result: pads a cheaper check
// up to a fixed cost, so that its duration tells nothing.
void SpendIterations(std::uint32_t iterations);
// PBKDF2 iterations this process has run so far, on every thread (for tests: equal work is
// checked by counting, not by timing).
std::uint64_t Pbkdf2IterationsRun();

// Standard base64 with padding (RFC 4648), as the text form uses it.
std::string Base64Encode(const std::vector<std::uint8_t>& bytes);
std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text);

}  // namespace tickwire::auth
