#include "engine/topic.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace tickwire::engine {
namespace {

TEST(TopicTest, AcceptsTheContractAlphabet) {
  EXPECT_TRUE(IsValidTopic("AAPL"));
  EXPECT_TRUE(IsValidTopic("fx.EUR-USD:spot_1"));
  EXPECT_TRUE(IsValidTopic(std::string(128, 'a')));
}

TEST(TopicTest, RejectsEverythingElse) {
  EXPECT_FALSE(IsValidTopic(""));
  EXPECT_FALSE(IsValidTopic(std::string(129, 'a')));
  EXPECT_FALSE(IsValidTopic("*"));
  EXPECT_FALSE(IsValidTopic("a b"));
  EXPECT_FALSE(IsValidTopic("a/b"));
  EXPECT_FALSE(IsValidTopic("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidTopic(std::string("a\0b", 3)));
}

TEST(TopicTest, SipHash13MatchesTheReferenceImplementation) {
  // SipHash-1-3 of the bytes 00 01 02 ... (n of them) under the all-zero key, from the
  // reference implementation (github.com/veorq/SipHash built with cROUNDS=1, dROUNDS=3).
  const HashKey zero{0, 0};
  const std::pair<std::size_t, std::uint64_t> vectors[] = {
      {0, 0xd1fba762150c532cULL},  {1, 0x68a914128e01e473ULL},  {2, 0x010bac45c41e3669ULL},
      {3, 0x4d4c9a4a8ef6e0adULL},  {7, 0x2f098ab0c751325aULL},  {8, 0xead411e67ebe2eeaULL},
      {9, 0x75927f9d95124362ULL},  {15, 0xf30eb725bb91c9eaULL}, {16, 0x8972188433a5c5b7ULL},
      {17, 0x4883c49a2c009c1dULL}, {20, 0x639e355ae68c0100ULL},
  };
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  for (const auto& [n, want] : vectors) {
    EXPECT_EQ(SipHash13(zero, std::string_view(bytes).substr(0, n)), want) << n << " bytes";
  }
}

TEST(TopicTest, TopicHashIsKeyedPerProcess) {
  // The key is random, so neither the all-zero key nor a fixed constant can be it, and the
  // topic hash is SipHash under the process's key.
  const HashKey& key = TopicHashKey();
  EXPECT_FALSE(key[0] == 0 && key[1] == 0);
  EXPECT_EQ(TopicHash("AAPL"), SipHash13(key, "AAPL"));
  EXPECT_NE(TopicHash("AAPL"), SipHash13(HashKey{0, 0}, "AAPL"));
  // Another key puts names in different buckets: which names collide depends on the key.
  const HashKey other{key[0] ^ 1, key[1]};
  int same = 0;
  for (int i = 0; i < 64; ++i) {
    const std::string t = "sym" + std::to_string(i);
    same += SipHash13(key, t) % 64 == SipHash13(other, t) % 64 ? 1 : 0;
  }
  EXPECT_LT(same, 16);  // about 1 expected
}

TEST(TopicTest, ShardsSpreadTopics) {
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 4000; ++i) ++counts[ShardOf("sym" + std::to_string(i), 4)];
  for (int c : counts) {
    EXPECT_GT(c, 800);
    EXPECT_LT(c, 1200);
  }
}

}  // namespace
}  // namespace tickwire::engine
