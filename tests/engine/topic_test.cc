#include "engine/topic.h"

#include <gtest/gtest.h>

#include <string>
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

TEST(TopicTest, HashIsStableFnv1a) {
  // FNV-1a 64 reference values: the sharding must not change between builds.
  EXPECT_EQ(TopicHash(""), 14695981039346656037ULL);
  EXPECT_EQ(TopicHash("a"), 0xaf63dc4c8601ec8cULL);
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
