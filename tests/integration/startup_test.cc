// Startup: bad configuration fails fast with one line naming the setting; SIGTERM exits 0.
#include <signal.h>

#include <ostream>
#include <string>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

struct BadConfig {
  const char* name;
  EnvOverrides env;
  const char* setting;  // must be named in the error line
};

void PrintTo(const BadConfig& p, std::ostream* os) { *os << p.name; }

class StartupBadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(StartupBadConfigTest, ExitsNonZeroWithOneLineNamingTheSetting) {
  EnvOverrides env = DefaultIntegrationEnv();
  for (const auto& [k, v] : GetParam().env) env[k] = v;
  ServerProcess server(env);
  ASSERT_TRUE(server.Spawn()) << server.error();
  const auto code = server.WaitForExit(milliseconds(5000));
  ASSERT_TRUE(code.has_value()) << "the server kept running with a bad config\n"
                                << server.Describe();
  EXPECT_NE(*code, 0);
  EXPECT_LT(*code, 128) << "exited by a signal rather than failing cleanly";
  const auto lines = NonEmptyLines(server.Stderr());
  ASSERT_EQ(lines.size(), 1u) << "stderr:\n" << server.Stderr();
  EXPECT_NE(lines[0].find(GetParam().setting), std::string::npos) << lines[0];
}

INSTANTIATE_TEST_SUITE_P(
    Settings, StartupBadConfigTest,
    ::testing::Values(
        BadConfig{"MissingUser", {{"STREAM_USER", std::nullopt}}, "STREAM_USER"},
        BadConfig{"MissingPass", {{"STREAM_PASS", std::nullopt}}, "STREAM_PASS"},
        BadConfig{"EmptyUser", {{"STREAM_USER", ""}}, "STREAM_USER"},
        BadConfig{"BatchWindowTooLarge", {{"BATCH_WINDOW_MS", "1001"}}, "BATCH_WINDOW_MS"},
        BadConfig{"BatchWindowNotANumber", {{"BATCH_WINDOW_MS", "soon"}}, "BATCH_WINDOW_MS"},
        BadConfig{"MaxMsgSizeTooSmall", {{"MAX_MSG_SIZE", "1023"}}, "MAX_MSG_SIZE"},
        BadConfig{"HeartbeatIntervalNotADuration",
                  {{"HEARTBEAT_INTERVAL", "often"}},
                  "HEARTBEAT_INTERVAL"},
        BadConfig{"HeartbeatTimeoutNotAboveInterval",
                  {{"HEARTBEAT_INTERVAL", "600ms"}, {"HEARTBEAT_TIMEOUT", "600ms"}},
                  "HEARTBEAT_TIMEOUT"},
        BadConfig{"ListenAddrWithoutPort", {{"LISTEN_ADDR", "127.0.0.1"}}, "LISTEN_ADDR"},
        BadConfig{"WorkersNegative", {{"WORKERS", "-1"}}, "WORKERS"},
        BadConfig{"AuthTimeoutNotANumber", {{"AUTH_TIMEOUT_MS", "x"}}, "AUTH_TIMEOUT_MS"},
        BadConfig{
            "MetricsPrefixBadCharacter", {{"METRICS_PREFIX", "tick-wire_"}}, "METRICS_PREFIX"},
        BadConfig{
            "MetricsPrefixLeadingDigit", {{"METRICS_PREFIX", "1tickwire_"}}, "METRICS_PREFIX"},
        BadConfig{
            "MetricsPrefixTooLong", {{"METRICS_PREFIX", std::string(65, 'a')}}, "METRICS_PREFIX"},
        BadConfig{"WebRootMissing", {{"WEB_ROOT", "/nonexistent/tickwire-web"}}, "WEB_ROOT"},
        BadConfig{"WebRootWithoutMetrics", {{"WEB_ROOT", "/"}, {"METRICS_ADDR", ""}}, "WEB_ROOT"}),
    [](const auto& p) { return std::string(p.param.name); });

class StartupTest : public IntegrationTest {};

TEST_F(StartupTest, SigtermExitsZero) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  EXPECT_EQ(server_->Stop(milliseconds(5000)), 0) << server_->Describe();
}

// A server that has written PORT_FILE is up: SIGTERM from then on is a clean shutdown, however
// soon it comes. Repeated because the window right after startup is short.
TEST(StartupSignalTest, SigtermRightAfterPortFileExitsZero) {
  for (int i = 0; i < 20; ++i) {
    ServerProcess server(DefaultIntegrationEnv());
    ASSERT_TRUE(server.Start()) << server.error();
    const int code = server.Stop(milliseconds(5000));
    ASSERT_EQ(code, 0) << "attempt " << i + 1 << ": " << server.Describe();
  }
}

// PROTOCOL S10: on shutdown every client gets ERROR{SERVER_DRAINING} (fatal) and a close.
TEST_F(StartupTest, SigtermSendsServerDrainingToClients) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.HeartbeatRoundTrip(1));
  ASSERT_GT(server_->pid(), 0);
  kill(server_->pid(), SIGTERM);
  v1::Error e;
  EXPECT_TRUE(c.ExpectFatal(v1::SERVER_DRAINING, &e, milliseconds(5000)));
  const auto code = server_->WaitForExit(milliseconds(5000));
  ASSERT_TRUE(code.has_value()) << "still running 5 s after SIGTERM";
  EXPECT_EQ(*code, 0);
}

TEST_F(StartupTest, LogsAreJsonLines) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  c.Close();
  ASSERT_EQ(server_->Stop(), 0);
  const auto lines = NonEmptyLines(server_->Logs());
  EXPECT_FALSE(lines.empty()) << "no log lines on stdout";
  for (const auto& line : lines) {
    EXPECT_TRUE(line.front() == '{' && line.back() == '}') << "not a JSON object line: " << line;
  }
}

TEST_F(StartupTest, PortZeroGivesEachServerItsOwnPort) {
  ASSERT_TRUE(Start());
  ServerProcess other(DefaultIntegrationEnv());
  ASSERT_TRUE(other.Start()) << other.error();
  EXPECT_NE(other.port(), server_->port());
  RawClient c;
  ASSERT_TRUE(c.Connect(other.port()));
  EXPECT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_EQ(other.Stop(), 0);
}

}  // namespace
}  // namespace tickwire::testing
