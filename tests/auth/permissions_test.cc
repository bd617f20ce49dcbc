#include "auth/permissions.h"

#include <gtest/gtest.h>

namespace tickwire::auth {
namespace {

TopicPatterns P(std::string_view list) {
  std::string error;
  auto p = TopicPatterns::Parse(list, &error);
  EXPECT_TRUE(p) << list << ": " << error;
  return p.value_or(TopicPatterns{});
}

TEST(TopicPatterns, ExactPrefixAndAll) {
  const auto p = P("AAPL,FX.*,MSFT");
  EXPECT_TRUE(p.Matches("AAPL"));
  EXPECT_TRUE(p.Matches("MSFT"));
  EXPECT_TRUE(p.Matches("FX.EURUSD"));
  EXPECT_TRUE(p.Matches("FX."));
  EXPECT_FALSE(p.Matches("FX"));
  EXPECT_FALSE(p.Matches("AAPL2"));
  EXPECT_FALSE(p.Matches("AAP"));
  EXPECT_FALSE(p.MatchesAll());
  EXPECT_EQ(p.ToString(), "AAPL,MSFT,FX.*");

  const auto all = P("*");
  EXPECT_TRUE(all.MatchesAll());
  EXPECT_TRUE(all.Matches("anything"));

  const auto none = P("-");
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.Matches("AAPL"));
  EXPECT_EQ(none.ToString(), "-");
  EXPECT_TRUE(TopicPatterns{}.empty());
}

TEST(TopicPatterns, RejectsBadPatterns) {
  std::string error;
  for (const char* bad : {"", ",", "AAPL,", "A*B", "**", "bad topic", "a/b", "*x"}) {
    EXPECT_FALSE(TopicPatterns::Parse(bad, &error)) << bad;
    EXPECT_FALSE(error.empty());
  }
  EXPECT_FALSE(TopicPatterns::Parse(std::string(129, 'a'), &error));
}

}  // namespace
}  // namespace tickwire::auth
