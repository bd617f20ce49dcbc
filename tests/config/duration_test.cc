#include "config/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace tickwire::config {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsAWholeNumberAndAUnit) {
  EXPECT_EQ(ParseDuration("15s"), milliseconds(15'000));
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("2m"), milliseconds(120'000));
  EXPECT_EQ(ParseDuration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(ParseDuration("0ms"), milliseconds(0));
  EXPECT_EQ(ParseDuration("0s"), milliseconds(0));
  EXPECT_EQ(ParseDuration("007s"), milliseconds(7'000));
}

TEST(ParseDuration, RoundsMicrosecondsUp) {
  EXPECT_EQ(ParseDuration("250us"), milliseconds(1));
  EXPECT_EQ(ParseDuration("1000us"), milliseconds(1));
  EXPECT_EQ(ParseDuration("1001us"), milliseconds(2));
  EXPECT_EQ(ParseDuration("0us"), milliseconds(0));
}

TEST(ParseDuration, RejectsEverythingElse) {
  for (const char* bad : {"",
                          "s",
                          "15",
                          "15S",
                          "15sec",
                          "1.5s",
                          "-1s",
                          "+1s",
                          " 15s",
                          "15s ",
                          "15 s",
                          "1y",
                          "1d",
                          "ms",
                          "0x10s",
                          "1s1",
                          "99999999999999999999s",
                          "366d",
                          "8761h",
                          "525601m"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(ParseDuration, BoundedToOneYear) {
  EXPECT_EQ(ParseDuration("8760h"), milliseconds(8760LL * 3'600'000));
  EXPECT_FALSE(ParseDuration("8761h").has_value());
  EXPECT_FALSE(ParseDuration("31536000001ms").has_value());
}

TEST(FormatDuration, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatDuration(milliseconds(15'000)), "15s");
  EXPECT_EQ(FormatDuration(milliseconds(20'000)), "20s");
  EXPECT_EQ(FormatDuration(milliseconds(500)), "500ms");
  EXPECT_EQ(FormatDuration(milliseconds(1'500)), "1500ms");
  EXPECT_EQ(FormatDuration(milliseconds(90'000)), "90s");
  EXPECT_EQ(FormatDuration(milliseconds(120'000)), "2m");
  EXPECT_EQ(FormatDuration(milliseconds(3'600'000)), "1h");
  EXPECT_EQ(FormatDuration(milliseconds(5'400'000)), "90m");
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0ms");
}

TEST(FormatDuration, RoundTripsThroughParseDuration) {
  for (long long ms : {0LL, 1LL, 999LL, 1000LL, 1001LL, 59'999LL, 60'000LL, 61'000LL, 3'599'999LL,
                       3'600'000LL, 86'400'000LL, 365LL * 86'400'000}) {
    const std::string text = FormatDuration(milliseconds(ms));
    EXPECT_EQ(ParseDuration(text), milliseconds(ms)) << text;
  }
}

}  // namespace
}  // namespace tickwire::config
