#include "auth/password_hash.h"

#include <gtest/gtest.h>

namespace tickwire::auth {
namespace {

TEST(PasswordHash, RoundTripsThroughTextAndVerifies) {
  const PasswordHash h = HashPassword("correct horse", kMinIterations);
  EXPECT_EQ(h.salt.size(), kSaltBytes);
  EXPECT_EQ(h.key.size(), kKeyBytes);
  const std::string text = FormatPasswordHash(h);
  EXPECT_TRUE(text.starts_with("pbkdf2-sha256$1000$")) << text;
  std::string error;
  auto parsed = ParsePasswordHash(text, &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_TRUE(VerifyPassword(*parsed, "correct horse"));
  EXPECT_FALSE(VerifyPassword(*parsed, "correct horsf"));
  EXPECT_FALSE(VerifyPassword(*parsed, ""));
}

TEST(PasswordHash, SaltsDiffer) {
  EXPECT_NE(HashPassword("pw", kMinIterations).salt, HashPassword("pw", kMinIterations).salt);
}

TEST(PasswordHash, MatchesAKnownPbkdf2Vector) {
  // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64), first 32 bytes.
  PasswordHash h;
  h.iterations = 1;
  h.salt = {'s', 'a', 'l', 't'};
  h.key = {0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91,
           0xc2, 0x25, 0x44, 0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde,
           0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc};
  EXPECT_TRUE(VerifyPassword(h, "passwd"));
  EXPECT_FALSE(VerifyPassword(h, "passwe"));
}

TEST(PasswordHash, RejectsMalformedText) {
  const std::string good = FormatPasswordHash(HashPassword("pw", kMinIterations));
  std::string error;
  for (const std::string& bad :
       {std::string(""), std::string("pbkdf2-sha256"),
        std::string("bcrypt$1000$c2FsdHNhbHQ=$") + "x",
        std::string("pbkdf2-sha256$abc$c2FsdHNhbHQ=$AAAA"),
        std::string("pbkdf2-sha256$10$c2FsdHNhbHQ=$AAAA"),
        std::string("pbkdf2-sha256$99999999$c2FsdHNhbHQ=$AAAA"),
        std::string("pbkdf2-sha256$1000$!!!!$AAAA"),
        std::string("pbkdf2-sha256$1000$c2FsdHNhbHQ=$AAAA"), good + "$extra"}) {
    EXPECT_FALSE(ParsePasswordHash(bad, &error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(Base64, RoundTripsAllLengths) {
  std::vector<std::uint8_t> bytes;
  for (int n = 0; n < 40; ++n) {
    if (n > 0) {
      auto decoded = Base64Decode(Base64Encode(bytes));
      ASSERT_TRUE(decoded) << n;
      EXPECT_EQ(*decoded, bytes);
    }
    bytes.push_back(static_cast<std::uint8_t>(n * 37));
  }
  EXPECT_EQ(Base64Encode({'f', 'o', 'o', 'b'}), "Zm9vYg==");
  EXPECT_FALSE(Base64Decode("Zm9"));
  EXPECT_FALSE(Base64Decode("Zm9v\n"));
}

}  // namespace
}  // namespace tickwire::auth
