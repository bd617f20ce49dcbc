#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tickwire::auth {

// Checks AUTH credentials against the configured STREAM_USER / STREAM_PASS. Both sides are
// hashed to fixed-size digests and compared with CRYPTO_memcmp, so the time taken does not
// depend on where (or whether) the inputs differ, nor on their lengths.
class Authenticator {
 public:
  Authenticator(std::string_view user, std::string_view pass);

  // True when both username and password match. Thread-safe (immutable after construction).
  bool Check(std::string_view user, std::string_view pass) const;

 private:
  using Digest = std::array<std::uint8_t, 32>;
  static Digest Hash(std::string_view domain, std::string_view value);

  Digest user_digest_;
  Digest pass_digest_;
};

}  // namespace tickwire::auth
