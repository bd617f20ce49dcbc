#include "observability/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>

#include "json_checker.h"
#include "support/wait.h"

namespace tickwire::obs {
namespace {

using testing::JsonParser;
using testing::JsonValue;

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

// Decodes the JSON string literal produced by AppendJsonString (and checks it is valid JSON).
std::string RoundTrip(std::string_view s) {
  const std::string literal = Json(s);
  JsonParser p;
  const auto v = p.Parse(literal);
  EXPECT_TRUE(v.has_value()) << p.error() << " in " << literal;
  if (!v) return {};
  EXPECT_EQ(v->kind, JsonValue::Kind::kString);
  return v->text;
}

TEST(AppendJsonString, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(Json(""), R"("")");
  EXPECT_EQ(Json("plain"), R"("plain")");
  EXPECT_EQ(Json("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(Json("C:\\path\\"), R"("C:\\path\\")");
  EXPECT_EQ(Json("\\\""), R"("\\\"")");
  EXPECT_EQ(Json("/"), R"("/")");
}

TEST(AppendJsonString, EscapesEveryControlCharacter) {
  EXPECT_EQ(Json("a\nb\rc\td"), R"("a\nb\rc\td")");
  EXPECT_EQ(Json(std::string_view("\0", 1)), R"("\u0000")");
  EXPECT_EQ(Json("\x01"), R"("\u0001")");
  EXPECT_EQ(Json("\x1f"), R"("\u001f")");
  EXPECT_EQ(Json("\x7f"), R"("\u007f")");
  EXPECT_EQ(Json("\x08\x0c"), R"("\u0008\u000c")");
  for (int c = 0; c < 0x20; ++c) {
    const std::string s(1, static_cast<char>(c));
    const std::string literal = Json(s);
    for (char ch : literal) EXPECT_GE(static_cast<unsigned char>(ch), 0x20) << c;
    EXPECT_EQ(RoundTrip(s), s) << c;
  }
}

TEST(AppendJsonString, ReplacesInvalidUtf8WithReplacementCharacter) {
  EXPECT_EQ(Json("\x80"), R"("\ufffd")");  // stray continuation byte
  EXPECT_EQ(Json("\xff"), R"("\ufffd")");
  EXPECT_EQ(Json("a\xc3"), R"("a\ufffd")");                              // truncated at the end
  EXPECT_EQ(Json("\xc3("), R"("\ufffd(")");                              // bad continuation
  EXPECT_EQ(Json("\xc0\x80"), R"("\ufffd\ufffd")");                      // overlong NUL
  EXPECT_EQ(Json("\xe0\x80\xaf"), R"("\ufffd\ufffd\ufffd")");            // overlong '/'
  EXPECT_EQ(Json("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // encoded surrogate
  EXPECT_EQ(Json("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  EXPECT_EQ(Json("\xf5\x80\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");
  EXPECT_EQ(Json("ok\xe2\x82"), R"("ok\ufffd\ufffd")");  // truncated 3-byte sequence
}

TEST(AppendJsonString, KeepsValidUtf8AsIs) {
  for (const char* s :
       {"caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9d\x84\x9e", "\xe6\x97\xa5\xe6\x9c\xac", "\xc2\x80",
        "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xee\x80\x80"}) {
    EXPECT_EQ(Json(s), "\"" + std::string(s) + "\"");
    EXPECT_EQ(RoundTrip(s), s);
  }
}

TEST(AppendJsonString, AppendsWithoutTouchingWhatIsThere) {
  std::string out = "prefix:";
  AppendJsonString(out, "x");
  EXPECT_EQ(out, "prefix:\"x\"");
}

TEST(AppendJsonString, RandomBytesAlwaysGiveValidJson) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 5000; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    const std::string literal = Json(s);
    JsonParser p;
    ASSERT_TRUE(p.Parse(literal).has_value()) << p.error();
  }
}

TEST(AppendJsonString, ValidUtf8RoundTripsExactly) {
  std::mt19937_64 rng(7);
  // Random code points of every encoded length, control characters and quotes included.
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    for (int k = 0; k < 20; ++k) {
      std::uint32_t cp = 0;
      switch (rng() % 4) {
        case 0:
          cp = static_cast<std::uint32_t>(rng() % 0x80);
          break;
        case 1:
          cp = 0x80 + static_cast<std::uint32_t>(rng() % 0x780);
          break;
        case 2:
          cp = 0x800 + static_cast<std::uint32_t>(rng() % 0xF800);
          break;
        default:
          cp = 0x10000 + static_cast<std::uint32_t>(rng() % 0x100000);
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    ASSERT_EQ(RoundTrip(s), s);
  }
}

// Parses one log line: exactly one '\n', at the end, and a JSON object before it.
JsonValue ParseLine(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a log line must be a single line";
  JsonParser p;
  auto v = p.Parse(std::string_view(line).substr(0, line.size() - 1));
  EXPECT_TRUE(v.has_value()) << p.error() << " in " << line;
  if (!v) return {};
  EXPECT_EQ(v->kind, JsonValue::Kind::kObject);
  return *v;
}

TEST(FormatLogLine, IsOneJsonObjectWithTheStandardKeys) {
  const JsonValue v = ParseLine(FormatLogLine(Level::kWarn, "conn_closed", "slow consumer", {}));
  ASSERT_NE(v.Find("ts"), nullptr);
  EXPECT_EQ(v.Find("ts")->kind, JsonValue::Kind::kString);
  EXPECT_EQ(v.Find("ts")->text.size(), std::string("2024-01-02T03:04:05.123456Z").size());
  EXPECT_EQ(v.Find("ts")->text.back(), 'Z');
  ASSERT_NE(v.Find("level"), nullptr);
  EXPECT_EQ(v.Find("level")->text, "warn");
  EXPECT_EQ(v.Find("event")->text, "conn_closed");
  EXPECT_EQ(v.Find("msg")->text, "slow consumer");
  EXPECT_EQ(v.object[0].first, "ts");
}

TEST(FormatLogLine, EveryLevelHasItsName) {
  EXPECT_EQ(ParseLine(FormatLogLine(Level::kDebug, "e", "m", {})).Find("level")->text, "debug");
  EXPECT_EQ(ParseLine(FormatLogLine(Level::kInfo, "e", "m", {})).Find("level")->text, "info");
  EXPECT_EQ(ParseLine(FormatLogLine(Level::kError, "e", "m", {})).Find("level")->text, "error");
}

TEST(FormatLogLine, FieldsOfEveryTypeAreValidJson) {
  const std::string owned = "owned \"value\"\n";
  const JsonValue v =
      ParseLine(FormatLogLine(Level::kInfo, "evt", "msg",
                              {{"str", "a\"b"},
                               {"owned", owned},
                               {"view", std::string_view("v\x01\xff")},
                               {"neg", -42},
                               {"i64min", std::numeric_limits<std::int64_t>::min()},
                               {"u64max", std::numeric_limits<std::uint64_t>::max()},
                               {"size", std::size_t{7}},
                               {"pi", 3.25},
                               {"nan", std::numeric_limits<double>::quiet_NaN()},
                               {"inf", -std::numeric_limits<double>::infinity()},
                               {"tiny", 5e-324},
                               {"yes", true},
                               {"no", false},
                               {"key \"with\" quotes\n", 1}}));
  EXPECT_EQ(v.Find("str")->text, "a\"b");
  EXPECT_EQ(v.Find("owned")->text, owned);
  EXPECT_EQ(v.Find("view")->text, "v\x01\xef\xbf\xbd");  // invalid byte became U+FFFD
  EXPECT_EQ(v.Find("neg")->text, "-42");
  EXPECT_EQ(v.Find("i64min")->text, "-9223372036854775808");
  EXPECT_EQ(v.Find("u64max")->text, "18446744073709551615");
  EXPECT_EQ(v.Find("size")->text, "7");
  EXPECT_EQ(v.Find("pi")->text, "3.25");
  EXPECT_EQ(v.Find("nan")->kind, JsonValue::Kind::kNull);
  EXPECT_EQ(v.Find("inf")->kind, JsonValue::Kind::kNull);
  EXPECT_EQ(v.Find("tiny")->kind, JsonValue::Kind::kNumber);
  EXPECT_TRUE(v.Find("yes")->boolean);
  EXPECT_EQ(v.Find("yes")->kind, JsonValue::Kind::kBool);
  EXPECT_FALSE(v.Find("no")->boolean);
  EXPECT_NE(v.Find("key \"with\" quotes\n"), nullptr);
}

TEST(FormatLogLine, HostileEventAndMessageStayOneValidLine) {
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    std::string event(rng() % 16, '\0');
    std::string msg(rng() % 64, '\0');
    std::string value(rng() % 32, '\0');
    for (char& c : event) c = static_cast<char>(rng());
    for (char& c : msg) c = static_cast<char>(rng());
    for (char& c : value) c = static_cast<char>(rng());
    const std::string line = FormatLogLine(Level::kInfo, event, msg, {{"client_name", value}});
    const JsonValue v = ParseLine(line);
    ASSERT_FALSE(::testing::Test::HasFailure()) << line;
    EXPECT_NE(v.Find("client_name"), nullptr);
  }
}

TEST(LogLevel, FiltersBelowTheSetLevel) {
  SetLogLevel(Level::kWarn);
  EXPECT_FALSE(LogEnabled(Level::kDebug));
  EXPECT_FALSE(LogEnabled(Level::kInfo));
  EXPECT_TRUE(LogEnabled(Level::kWarn));
  EXPECT_TRUE(LogEnabled(Level::kError));
  SetLogLevel(Level::kDebug);
  EXPECT_TRUE(LogEnabled(Level::kDebug));
  SetLogLevel(Level::kInfo);
  EXPECT_FALSE(LogEnabled(Level::kDebug));
  EXPECT_TRUE(LogEnabled(Level::kInfo));
}

// A pipe whose reader the test controls; its capacity is one page, so it fills at once.
class Pipe {
 public:
  Pipe() {
    EXPECT_EQ(::pipe(fds_), 0);
    ::fcntl(fds_[1], F_SETPIPE_SZ, 4096);
  }
  ~Pipe() {
    CloseWriteEnd();
    ::close(fds_[0]);
  }
  int write_end() const { return fds_[1]; }
  void CloseWriteEnd() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  // Reads until EOF (the write end closed) on a thread of its own; Join() returns the text.
  void StartReading() {
    reader_ = std::thread([this] {
      char buf[4096];
      for (;;) {
        const ssize_t n = ::read(fds_[0], buf, sizeof buf);
        if (n <= 0) return;
        text_.append(buf, static_cast<std::size_t>(n));
      }
    });
  }
  std::string Join() {
    reader_.join();
    return text_;
  }

 private:
  int fds_[2] = {-1, -1};
  std::thread reader_;
  std::string text_;
};

std::string NumberedLine(int i) {
  return FormatLogLine(Level::kInfo, "test_line", "a line of some length to fill the pipe",
                       {{"n", i}});
}

// A stalled descriptor: Push never waits for it; what does not fit is dropped and counted, and
// once the descriptor drains, one log_dropped line says how many. Nothing is reordered.
TEST(LogWriter, AFullBufferDropsAndCountsAndOutputResumesWithAReport) {
  Pipe pipe;
  LogWriter writer(pipe.write_end(), 16 * 1024);
  constexpr int kLines = 2000;  // about 240 KB: far over the pipe and the buffer
  int refused = 0;
  for (int i = 0; i < kLines; ++i) refused += writer.Push(NumberedLine(i)) ? 0 : 1;
  EXPECT_GT(refused, kLines / 2);
  EXPECT_EQ(writer.dropped(), static_cast<std::uint64_t>(refused));
  pipe.StartReading();
  // Output flows again: room comes back (each refused try is a counted drop too).
  int pushes = kLines;
  for (int i = kLines; i < kLines + 10; ++i) {
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
          ++pushes;
          const bool ok = writer.Push(NumberedLine(i));
          refused += ok ? 0 : 1;
          return ok;
        },
        std::chrono::seconds(10)));
  }
  EXPECT_TRUE(writer.Stop(std::chrono::seconds(10)));
  pipe.CloseWriteEnd();
  const std::string text = pipe.Join();

  std::uint64_t reported = 0;
  int written = 0;
  int last = -1;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    ASSERT_NE(nl, std::string::npos) << "a partial line at the end";
    const JsonValue v = ParseLine(text.substr(pos, nl + 1 - pos));
    pos = nl + 1;
    if (v.Find("event")->text == "log_dropped") {
      reported += std::stoull(v.Find("dropped")->text);
      continue;
    }
    const int n = std::stoi(v.Find("n")->text);
    EXPECT_GT(n, last);
    last = n;
    ++written;
  }
  EXPECT_EQ(written + refused, pushes) << "every line is written or counted";
  EXPECT_EQ(reported, writer.dropped());
  EXPECT_EQ(last, kLines + 9) << "lines pushed after the stall are written";
}

TEST(LogWriter, StopGivesUpOnADescriptorThatNeverDrains) {
  Pipe pipe;
  {
    LogWriter writer(pipe.write_end(), 64 * 1024);
    for (int i = 0; i < 200; ++i) writer.Push(NumberedLine(i));  // over the pipe's 4 KiB
    EXPECT_FALSE(writer.Stop(std::chrono::milliseconds(100)));
    // Once the descriptor drains, a second Stop sees the thread finish.
    pipe.StartReading();
    EXPECT_TRUE(writer.Stop(std::chrono::seconds(10)));
  }
  pipe.CloseWriteEnd();
  EXPECT_NE(pipe.Join().find("\"n\":199"), std::string::npos);
}

TEST(LogWriter, AFailedDescriptorCountsItsLinesAsDropped) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);  // no reader: writes fail with EPIPE (the writer's thread blocks SIGPIPE)
  LogWriter writer(fds[1], 64 * 1024);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(writer.Push(NumberedLine(i)));
  EXPECT_TRUE(writer.Stop(std::chrono::seconds(10)));
  EXPECT_EQ(writer.dropped(), 5u);
  ::close(fds[1]);
}

}  // namespace
}  // namespace tickwire::obs
