// Runs the `tickwire` CLI and `tickwire-server` binaries the way the README shows them.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/http_client.h"
#include "support/json.h"
#include "support/raw_client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/tls.h"
#include "support/utc_time.h"
#include "support/wait.h"

extern char** environ;

namespace tickwire::testing {
namespace {

using namespace std::chrono_literals;

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// A child process with stdin from a string and stdout/stderr into files. Signals only its own
// PID; killed at destruction if still running.
class Child {
 public:
  Child(std::vector<std::string> argv, std::map<std::string, std::string> env,
        const std::string& stdin_text = "") {
    const std::string in = dir_.File("stdin");
    {
      const int fd = ::open(in.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        if (!stdin_text.empty()) {
          [[maybe_unused]] auto n = ::write(fd, stdin_text.data(), stdin_text.size());
        }
        ::close(fd);
      }
    }
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      if (env.count(kv.substr(0, kv.find('='))) == 0) env_strings.push_back(kv);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const std::string out = dir_.File("stdout");
    const std::string err = dir_.File("stderr");
    pid_ = ::fork();
    if (pid_ == 0) {
      const int i = ::open(in.c_str(), O_RDONLY);
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int r = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(i, 0);
      ::dup2(o, 1);
      ::dup2(r, 2);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      Wait(5s);
    }
  }

  // Waits up to `timeout`; returns whether the process ended.
  bool Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }
  RunResult Result() const {
    return RunResult{status_.value_or(-1), ReadFileOrEmpty(dir_.File("stdout")),
                     ReadFileOrEmpty(dir_.File("stderr"))};
  }
  std::string Stdout() const { return ReadFileOrEmpty(dir_.File("stdout")); }
  std::string Stderr() const { return ReadFileOrEmpty(dir_.File("stderr")); }
  // Sends `sig` to this child only (nothing once it has been reaped).
  void Signal(int sig) {
    if (pid_ > 0 && !status_) ::kill(pid_, sig);
  }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

RunResult RunToEnd(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                   const std::string& stdin_text = "") {
  Child c(std::move(argv), std::move(env), stdin_text);
  EXPECT_TRUE(c.Wait(60s)) << "command did not finish";
  return c.Result();
}

std::map<std::string, std::string> ClientEnv(const ServerProcess& server) {
  return {{"STREAM_USER", ServerProcess::kUser},
          {"STREAM_PASS", ServerProcess::kPass},
          {"TICKWIRE_ADDR", "127.0.0.1:" + std::to_string(server.port())}};
}

int CountLines(const std::string& s, const std::string& needle) {
  int n = 0;
  for (std::size_t pos = 0; (pos = s.find(needle, pos)) != std::string::npos; ++pos) ++n;
  return n;
}

TEST(CliTest, VersionAndHelp) {
  const RunResult v = RunToEnd({TICKWIRE_CLI_BIN, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find(TICKWIRE_VERSION), std::string::npos) << v.out;
  const RunResult h = RunToEnd({TICKWIRE_CLI_BIN, "--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (const char* cmd : {"sub", "pub", "bench"}) EXPECT_NE(h.out.find(cmd), std::string::npos);
}

TEST(CliTest, ServerHelpListsEverySettingWithItsDefault) {
  const RunResult h = RunToEnd({TICKWIRE_SERVER_BIN_PATH, "--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (const char* setting :
       {"STREAM_USER", "STREAM_PASS", "LISTEN_ADDR", "HEARTBEAT_INTERVAL", "HEARTBEAT_TIMEOUT",
        "AUTH_TIMEOUT_MS", "BATCH_WINDOW_MS", "MAX_MSG_SIZE", "WRITE_DEADLINE_MS",
        "MAX_PENDING_BYTES", "WORKERS", "TCP_NODELAY", "SO_SNDBUF", "SO_RCVBUF", "TLS_CERT_PATH",
        "TLS_KEY_PATH", "LOG_LEVEL"}) {
    EXPECT_NE(h.out.find(setting), std::string::npos) << setting;
  }
  EXPECT_NE(h.out.find("default 15s"), std::string::npos);
  EXPECT_NE(h.out.find("default 65536"), std::string::npos);
  const RunResult v = RunToEnd({TICKWIRE_SERVER_BIN_PATH, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find(TICKWIRE_VERSION), std::string::npos);
}

TEST(CliTest, SubPrintsWhatPubPublishes) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  Child sub({TICKWIRE_CLI_BIN, "sub", "--mode", "tick", "--json", "--count", "3", "*"}, env);
  // The subscriber may not be subscribed yet when the first tick goes out: publish until it
  // has printed three records (it exits by itself), within a deadline.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int rounds = 0;
  while (!sub.Wait(0ms) && std::chrono::steady_clock::now() < deadline) {
    const RunResult pub = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack"}, env,
                                   "# comment\nAAPL 187.25 100\n\nMSFT 402.5 20\n");
    ASSERT_EQ(pub.exit_code, 0) << pub.err;
    ++rounds;
    sub.Wait(200ms);
  }
  ASSERT_TRUE(sub.Wait(1s)) << "sub did not exit after --count 3";
  const RunResult r = sub.Result();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CountLines(r.out, "\n"), 3) << r.out;
  EXPECT_NE(r.out.find("\"topic\":\"AAPL\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"seq\":"), std::string::npos) << r.out;
  EXPECT_GE(rounds, 1);
}

TEST(CliTest, PubReportsBadLinesAndServerRejections) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  // Bad lines are skipped, the rest is published, and the exit code says so.
  const RunResult bad =
      RunToEnd({TICKWIRE_CLI_BIN, "pub"}, env, "AAPL 1 1\nnot-a-tick\nMSFT 2 2\n");
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("line 2: expected 'TOPIC PRICE SIZE [TS]', got 1 field; skipped"),
            std::string::npos)
      << bad.err;
  EXPECT_NE(bad.err.find("skipped 1 of 3 input lines"), std::string::npos) << bad.err;
  EXPECT_NE(bad.out.find("published 2 ticks in 1 frame"), std::string::npos) << bad.out;
  const RunResult one = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "AAPL", "1", "1"}, env);
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "published 1 tick in 1 frame, 1 accepted\n");
  // What the server would refuse is refused before sending: a usage error.
  const RunResult topic = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "bad topic!", "1", "1"}, env);
  EXPECT_EQ(topic.exit_code, 2);
  EXPECT_NE(topic.err.find("bad topic 'bad topic!'"), std::string::npos) << topic.err;
  const RunResult wrong = RunToEnd({TICKWIRE_CLI_BIN, "pub", "AAPL", "1", "1"},
                                   {{"STREAM_USER", "test"},
                                    {"STREAM_PASS", "wrong"},
                                    {"TICKWIRE_ADDR", env.at("TICKWIRE_ADDR")}});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("AUTH_FAILED"), std::string::npos) << wrong.err;
}

// The retained ticks of `topics`, as `sub --json` prints them (one JSON object per line, sorted).
std::vector<std::string> RetainedTickLines(const std::map<std::string, std::string>& env,
                                           std::vector<std::string> topics, std::size_t count,
                                           std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {
      TICKWIRE_CLI_BIN,     "sub", "--mode", "tick", "--json", "--backfill", "100", "--count",
      std::to_string(count)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), topics.begin(), topics.end());
  const RunResult r = RunToEnd(argv, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// pub reads CSV (with a header) and JSON lines with timestamps and keeps them; what `sub --json`
// prints replays into another server as the same ticks.
TEST(CliTest, PubReplaysCsvAndJsonLinesKeepingTimestamps) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  const std::int64_t base_ms = NowMs() - 60'000;  // recorded a minute ago: late, still ticks
  const std::int64_t base_ns = base_ms * 1'000'000;
  const std::string csv = "time,topic,price,size\n" + UtcTime(base_ms, "%Y-%m-%dT%H:%M:%S") + "." +
                          std::to_string(1'000'000'000 + base_ns % 1'000'000'000).substr(1) +
                          "Z,replay.a,1.5,10\n" + std::to_string(base_ms + 2) +
                          ",replay.a,1.25,5\n" + std::to_string(NowMs() + 60'000) +
                          ",replay.a,9,9\n";
  const RunResult c = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "--format", "csv"}, env, csv);
  EXPECT_EQ(c.exit_code, 3) << c.err;  // the tick a minute ahead is skipped
  EXPECT_NE(c.err.find("line 4: timestamp"), std::string::npos) << c.err;
  EXPECT_NE(c.out.find("published 2 ticks in 1 frame, 2 accepted"), std::string::npos) << c.out;
  const std::string json = "{\"topic\":\"replay.b\",\"price\":2,\"size\":1,\"ts_ns\":\"" +
                           std::to_string(base_ns + 7) + "\"}\n";
  const RunResult j = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "--format", "json"}, env, json);
  EXPECT_EQ(j.exit_code, 0) << j.err;

  const auto lines = RetainedTickLines(env, {"replay.a", "replay.b"}, 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("\"price\":1.5,\"size\":10,\"ts_ns\":\"" + std::to_string(base_ns) +
                          "\",\"seq\":\"1\""),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("\"price\":1.25,\"size\":5,\"ts_ns\":\"" +
                          std::to_string(base_ms * 1'000'000 + 2'000'000) + "\",\"seq\":\"2\""),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find("\"ts_ns\":\"" + std::to_string(base_ns + 7) + "\""), std::string::npos)
      << lines[2];

  // Replay: sub's output into a fresh server gives the same records, seq numbers included.
  ServerProcess other;
  ASSERT_TRUE(other.Start()) << other.error();
  std::string replay;
  for (const auto& l : lines) replay += l + "\n";
  const RunResult r =
      RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "--format", "json"}, ClientEnv(other), replay);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(RetainedTickLines(ClientEnv(other), {"replay.a", "replay.b"}, 3), lines);
}

// Prices and sizes in fixed notation, aligned on the decimal point; 64-bit values exact in JSON.
TEST(CliTest, SubPrintsFixedDecimalsAndExactJsonIntegers) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  const std::int64_t ts_ms = NowMs() - 1000;
  for (const auto& [topic, price, size] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"num.big", "1e15", "1e-7"}, {"num.fx", "1.08505", "250000"}}) {
    const RunResult p = RunToEnd(
        {TICKWIRE_CLI_BIN, "pub", "--ack", topic, price, size, std::to_string(ts_ms)}, env);
    ASSERT_EQ(p.exit_code, 0) << p.err;
  }
  const RunResult table = RunToEnd({TICKWIRE_CLI_BIN, "sub", "--mode", "tick", "--backfill", "1",
                                    "--count", "2", "num.big", "num.fx"},
                                   env);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find("e+"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("e-"), std::string::npos) << table.out;
  std::istringstream rows(table.out);
  std::string header, big, fx;
  ASSERT_TRUE(std::getline(rows, header) && std::getline(rows, big) && std::getline(rows, fx))
      << table.out;
  if (big.find("num.big") == std::string::npos) std::swap(big, fx);
  EXPECT_NE(big.find(" 1000000000000000 "), std::string::npos) << big;
  EXPECT_NE(big.find(" 0.0000001"), std::string::npos) << big;
  // The price column's point (the first after the topic) in fx's row; in big's, the integer
  // 1000000000000000 ends just before it.
  const std::size_t point = fx.find('.', fx.find("num.fx") + 6);
  ASSERT_NE(point, std::string::npos) << fx;
  EXPECT_EQ(fx.substr(point - 1, 7), "1.08505") << fx;
  EXPECT_EQ(big.substr(point - 16, 17), "1000000000000000 ") << table.out;
  // The size column: 0.0000001 and 250000 share the units position.
  const std::size_t size_point = big.find('.', point + 1);
  ASSERT_NE(size_point, std::string::npos) << big;
  EXPECT_EQ(fx.substr(size_point - 6, 7), "250000 ") << table.out;

  const std::string ns = std::to_string(ts_ms * 1'000'000);
  const auto strings = RetainedTickLines(env, {"num.big"}, 1);
  ASSERT_EQ(strings.size(), 1u);
  EXPECT_NE(strings[0].find("\"price\":1000000000000000,\"size\":0.0000001,\"ts_ns\":\"" + ns +
                            "\",\"seq\":\"1\",\"prev_seq\":\"0\"}"),
            std::string::npos)
      << strings[0];
  const auto numbers = RetainedTickLines(env, {"num.big"}, 1, {"--json-ts", "ms"});
  ASSERT_EQ(numbers.size(), 1u);
  EXPECT_NE(numbers[0].find("\"ts_ms\":" + std::to_string(ts_ms) + ",\"seq\":1,\"prev_seq\":0}"),
            std::string::npos)
      << numbers[0];
  for (const auto& line : {strings[0], numbers[0]}) {
    std::string error;
    EXPECT_TRUE(ParseJson(line, &error)) << line << ": " << error;
  }
  EXPECT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "sub", "--json", "--json-ts", "us", "x"}, env).exit_code,
            2);
}

TEST(CliTest, TopicsListsWhatTheServerHolds) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  const RunResult none = RunToEnd({TICKWIRE_CLI_BIN, "topics", "--wait", "200ms"}, env);
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out.rfind("topic", 0), 0u) << none.out;
  EXPECT_EQ(CountLines(none.out, "\n"), 1) << none.out;  // the header
  EXPECT_EQ(none.err, "tickwire: 0 topics\n");

  ASSERT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack"}, env,
                     "list.b 2.5 1\nlist.a 187.25 100\nlist.a 187.5 1\n")
                .exit_code,
            0);
  // --wait generous enough for a loaded machine (sanitizer builds): the history of the three
  // subscriptions must all have arrived.
  const RunResult names = RunToEnd({TICKWIRE_CLI_BIN, "topics", "--names", "--wait", "2s"}, env);
  EXPECT_EQ(names.exit_code, 0) << names.err;
  EXPECT_EQ(names.out, "list.a\nlist.b\n");
  const RunResult table = RunToEnd({TICKWIRE_CLI_BIN, "topics", "--wait", "2s"}, env);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.err, "tickwire: 2 topics\n");
  std::istringstream rows(table.out);
  std::string header, a, b;
  ASSERT_TRUE(std::getline(rows, header) && std::getline(rows, a) && std::getline(rows, b))
      << table.out;
  EXPECT_EQ(header.rfind("topic   last (UTC)", 0), 0u) << header;
  EXPECT_EQ(a.rfind("list.a  ", 0), 0u) << a;
  EXPECT_NE(a.find("  187.5    2"), std::string::npos) << a;  // the newest tick: price, seq
  EXPECT_NE(b.find("    2.5    1"), std::string::npos) << b;
  EXPECT_EQ(a.find('.', 10), b.find('.', 10)) << table.out;  // the points line up
  const RunResult json = RunToEnd({TICKWIRE_CLI_BIN, "topics", "--json", "--wait", "2s"}, env);
  EXPECT_EQ(json.exit_code, 0) << json.err;
  std::istringstream lines(json.out);
  std::string first;
  ASSERT_TRUE(std::getline(lines, first)) << json.out;
  const auto v = ParseJson(first);
  ASSERT_TRUE(v && v->is_object()) << first;
  EXPECT_EQ(StringField(v->as_object(), "topic"), "list.a");
  EXPECT_EQ(StringField(v->as_object(), "seq"), "2");

  // Stopped by --timeout while it would still wait for new topics: what arrived, exit 3.
  const RunResult cut =
      RunToEnd({TICKWIRE_CLI_BIN, "topics", "--names", "--wait", "20s", "--timeout", "2s"}, env);
  EXPECT_EQ(cut.exit_code, 3) << cut.err;
  EXPECT_EQ(cut.out, "list.a\nlist.b\n");
  EXPECT_NE(cut.err.find("may be incomplete"), std::string::npos) << cut.err;

  // Interrupted once subscribed (all three modes): 130.
  Child waiting({TICKWIRE_CLI_BIN, "topics", "--wait", "30s", "--timeout", "30s"}, env);
  ASSERT_TRUE(WaitUntil(
      [&] {
        const auto m = ParseMetrics(HttpGet(server.metrics_port(), "/metrics").body);
        return MetricValue(m, "active_subscriptions{mode=\"minute\"}") == 1;
      },
      10s));
  waiting.Signal(SIGTERM);
  ASSERT_TRUE(waiting.Wait(10s));
  EXPECT_EQ(waiting.Result().exit_code, 130) << waiting.Result().err;
  EXPECT_EQ(waiting.Result().out, "");
}

TEST(CliTest, TopicsNeedsPermissionForEveryTopic) {
  const RunResult line =
      RunToEnd({TICKWIRE_CLI_BIN, "passwd", "fx", "--subscribe", "FX.*", "--iterations", "1000"},
               {}, "pw\n");
  ASSERT_EQ(line.exit_code, 0) << line.err;
  TempDir dir;
  { std::ofstream(dir.File("users")) << line.out; }
  ServerProcess server({{"USERS_FILE", dir.File("users")}});
  ASSERT_TRUE(server.Start()) << server.error();
  const RunResult r = RunToEnd({TICKWIRE_CLI_BIN, "topics"},
                               {{"STREAM_USER", "fx"},
                                {"STREAM_PASS", "pw"},
                                {"TICKWIRE_ADDR", ClientEnv(server).at("TICKWIRE_ADDR")}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("FORBIDDEN"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("subscribe=*"), std::string::npos) << r.err;
}

// No credentials: one line naming STREAM_USER/STREAM_PASS and the flags, exit 2, and no
// connection attempt (nothing listens on the address: trying would exit 1).
TEST(CliTest, MissingCredentialsAreAUsageErrorForEveryCommand) {
  const std::map<std::string, std::string> none = {
      {"STREAM_USER", ""}, {"STREAM_PASS", ""}, {"TICKWIRE_ADDR", "127.0.0.1:9"}};
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"sub", "x"},
                                             {"pub", "x", "1", "1"},
                                             {"pub", "--demo"},
                                             {"topics"},
                                             {"bench", "fanout", "--duration", "1s"}}) {
    std::vector<std::string> argv = {TICKWIRE_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = RunToEnd(argv, none);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err,
              "tickwire: no credentials: set STREAM_USER and STREAM_PASS, or pass --user and "
              "--pass\n")
        << args[0];
  }
  const RunResult no_pass =
      RunToEnd({TICKWIRE_CLI_BIN, "sub", "x"},
               {{"STREAM_USER", "u"}, {"STREAM_PASS", ""}, {"TICKWIRE_ADDR", "127.0.0.1:9"}});
  EXPECT_EQ(no_pass.exit_code, 2);
  EXPECT_EQ(no_pass.err, "tickwire: no password for user 'u': set STREAM_PASS or pass --pass\n");
  const RunResult flags = RunToEnd(
      {TICKWIRE_CLI_BIN, "sub", "--user", "u", "--pass", "p", "--no-reconnect", "x"}, none);
  EXPECT_EQ(flags.exit_code, 1) << flags.err;  // credentials from flags: it tries, and fails
  EXPECT_NE(flags.err.find("connect"), std::string::npos) << flags.err;
}

TEST(CliTest, ExitCodesAreTheSameForEveryCommand) {
  const std::map<std::string, std::string> env = {
      {"STREAM_USER", "u"}, {"STREAM_PASS", "p"}, {"TICKWIRE_ADDR", "127.0.0.1:9"}};
  // Usage errors, from the flag parser or from the command: 2.
  for (const auto& args :
       std::vector<std::vector<std::string>>{{},
                                             {"nonsense"},
                                             {"sub", "--bogus", "x"},
                                             {"sub", "--count", "abc", "x"},
                                             {"sub", "--mode", "hour", "x"},
                                             {"sub"},
                                             {"pub", "--format", "xml"},
                                             {"pub", "--batch", "0"},
                                             {"pub", "a", "b"},
                                             {"pub", "A", "x", "1"},
                                             {"topics", "--wait", "soon"},
                                             {"topics", "extra"},
                                             {"sub", "--ca", "/nonexistent/ca.pem", "x"},
                                             {"sub", "--addr", "nowhere", "x"}}) {
    std::vector<std::string> argv = {TICKWIRE_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = RunToEnd(argv, env);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
  }
  // The server cannot be reached: 1.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"sub", "--no-reconnect", "x"}, {"sub", "x"}, {"pub", "A", "1", "1"}, {"topics"}}) {
    std::vector<std::string> argv = {TICKWIRE_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = RunToEnd(argv, env);
    EXPECT_EQ(r.exit_code, 1) << ::testing::PrintToString(args) << ": " << r.err;
  }
  // Every command's --help says what the codes mean.
  for (const char* cmd : {"sub", "pub", "topics", "bench", "passwd"}) {
    const RunResult h = RunToEnd({TICKWIRE_CLI_BIN, cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("Exit codes: 0 done; 1 runtime or server error"), std::string::npos)
        << cmd << ": " << h.out;
    EXPECT_NE(h.out.find("3 partial"), std::string::npos) << cmd;
  }
}

// TLS and mutual TLS from the command line, by flags and by environment.
TEST(CliTest, SubAndPubOverMutualTls) {
  TestPki pki;
  ASSERT_TRUE(pki.ok()) << pki.error();
  ServerProcess server({{"TLS_CERT_PATH", pki.Cert("server")},
                        {"TLS_KEY_PATH", pki.Key("server")},
                        {"TLS_CLIENT_CA_PATH", pki.Cert("ca")}});
  ASSERT_TRUE(server.Start()) << server.error();
  auto env = ClientEnv(server);
  auto tls_env = env;
  tls_env["TICKWIRE_TLS_CA"] = pki.Cert("ca");
  tls_env["TICKWIRE_TLS_CERT"] = pki.Cert("client");
  tls_env["TICKWIRE_TLS_KEY"] = pki.Key("client");
  Child sub({TICKWIRE_CLI_BIN, "sub", "--mode", "tick", "--json", "--count", "1", "tls.t"},
            tls_env);
  const std::vector<std::string> pub = {
      TICKWIRE_CLI_BIN,   "pub",   "--ack",           "--ca",  pki.Cert("ca"), "--cert",
      pki.Cert("client"), "--key", pki.Key("client"), "tls.t", "1.5",          "2"};
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!sub.Wait(0ms) && std::chrono::steady_clock::now() < deadline) {
    const RunResult p = RunToEnd(pub, env);
    ASSERT_EQ(p.exit_code, 0) << p.err << server.Describe();
    sub.Wait(200ms);
  }
  ASSERT_TRUE(sub.Wait(1s));
  EXPECT_EQ(sub.Result().exit_code, 0) << sub.Result().err;
  EXPECT_NE(sub.Result().out.find("\"topic\":\"tls.t\",\"time\""), std::string::npos)
      << sub.Result().out;

  const auto tail = std::vector<std::string>{"tls.t", "1", "1"};
  auto refused = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {TICKWIRE_CLI_BIN, "pub", "--ack"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), tail.begin(), tail.end());
    return RunToEnd(argv, env);
  };
  // No client certificate, one from another CA, no TLS at all, a server the system's CAs do
  // not know: runtime errors.
  for (const auto& flags : std::vector<std::vector<std::string>>{
           {"--ca", pki.Cert("ca")},
           {"--ca", pki.Cert("ca"), "--cert", pki.Cert("rogue-client"), "--key",
            pki.Key("rogue-client")},
           {},
           {"--tls", "--cert", pki.Cert("client"), "--key", pki.Key("client")}}) {
    const RunResult r = refused(flags);
    EXPECT_EQ(r.exit_code, 1) << ::testing::PrintToString(flags) << ": " << r.err;
  }
  const RunResult unknown_ca =
      refused({"--tls", "--cert", pki.Cert("client"), "--key", pki.Key("client")});
  EXPECT_NE(unknown_ca.err.find("certificate verify failed"), std::string::npos) << unknown_ca.err;
  const RunResult half = refused({"--ca", pki.Cert("ca"), "--cert", pki.Cert("client")});
  EXPECT_EQ(half.exit_code, 2) << half.err;  // --cert without --key
}

// With TLS_CLIENT_CN_USER the certificate is the credential: no password needed.
TEST(CliTest, ClientCertificateStandsInForThePassword) {
  TestPki pki;
  ASSERT_TRUE(pki.ok()) << pki.error();
  ServerProcess server({{"TLS_CERT_PATH", pki.Cert("server")},
                        {"TLS_KEY_PATH", pki.Key("server")},
                        {"TLS_CLIENT_CA_PATH", pki.Cert("ca")},
                        {"TLS_CLIENT_CN_USER", "true"},
                        {"STREAM_USER", "viewer"},
                        {"STREAM_PASS", "not-sent"}});
  ASSERT_TRUE(server.Start()) << server.error();
  const std::map<std::string, std::string> env = {
      {"STREAM_USER", "viewer"},
      {"STREAM_PASS", ""},
      {"TICKWIRE_ADDR", "127.0.0.1:" + std::to_string(server.port())}};
  const RunResult ok = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "--ca", pki.Cert("ca"), "--cert",
                                 pki.Cert("client"), "--key", pki.Key("client"), "cn.t", "1", "1"},
                                env);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("1 accepted"), std::string::npos) << ok.out;
  const RunResult no_cert =
      RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "--ca", pki.Cert("ca"), "cn.t", "1", "1"}, env);
  EXPECT_EQ(no_cert.exit_code, 2) << no_cert.err;
  EXPECT_NE(no_cert.err.find("STREAM_PASS"), std::string::npos) << no_cert.err;
}

TEST(CliTest, PasswdMakesUsersFileLinesTheServerAccepts) {
  const RunResult line =
      RunToEnd({TICKWIRE_CLI_BIN, "passwd", "feeder", "--publish", "FX.*", "--iterations", "1000"},
               {}, "feeder-secret\n");
  ASSERT_EQ(line.exit_code, 0) << line.err;
  EXPECT_EQ(line.out.rfind("feeder pbkdf2-sha256$1000$", 0), 0u) << line.out;
  EXPECT_NE(line.out.find(" publish=FX.*"), std::string::npos) << line.out;
  EXPECT_EQ(line.out.find("feeder-secret"), std::string::npos) << "no password in the output";
  const RunResult hash = RunToEnd({TICKWIRE_CLI_BIN, "passwd"}, {}, "x\n");
  ASSERT_EQ(hash.exit_code, 0) << hash.err;
  EXPECT_EQ(hash.out.rfind("pbkdf2-sha256$100000$", 0), 0u) << hash.out;
  EXPECT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "passwd", "bad name"}, {}, "x\n").exit_code, 2);
  EXPECT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "passwd", "u", "--publish", "a*b"}, {}, "x\n").exit_code,
            2);
  EXPECT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "passwd", "u"}, {}, "").exit_code, 2);

  TempDir dir;
  { std::ofstream(dir.File("users")) << line.out; }
  ServerProcess server({{"USERS_FILE", dir.File("users")}});
  ASSERT_TRUE(server.Start()) << server.error();
  const std::map<std::string, std::string> env = {
      {"STREAM_USER", "feeder"},
      {"STREAM_PASS", "feeder-secret"},
      {"TICKWIRE_ADDR", "127.0.0.1:" + std::to_string(server.port())}};
  const RunResult ok = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "FX.EURUSD", "1.1", "5"}, env);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const RunResult forbidden = RunToEnd({TICKWIRE_CLI_BIN, "pub", "--ack", "AAPL", "1", "1"}, env);
  EXPECT_EQ(forbidden.exit_code, 1);
  EXPECT_NE(forbidden.err.find("FORBIDDEN"), std::string::npos) << forbidden.err;
}

TEST(CliTest, BenchFanoutRunsCleanAndStopsByItself) {
  const RunResult r = RunToEnd(
      {TICKWIRE_CLI_BIN, "bench", "fanout", "--spawn", TICKWIRE_SERVER_BIN_PATH, "--subscribers",
       "3", "--rate", "2000", "--duration", "1s", "--warmup", "200ms", "--json"},
      {{"STREAM_USER", "bench"}, {"STREAM_PASS", "bench"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"gaps\":0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"delivered_per_s\""), std::string::npos) << r.out;
}

TEST(CliTest, BenchBarsDeliversEveryBarOnce) {
  const RunResult r =
      RunToEnd({TICKWIRE_CLI_BIN, "bench", "bars", "--spawn", TICKWIRE_SERVER_BIN_PATH, "--topics",
                "50", "--rate-per-topic", "20", "--subscribers", "3", "--duration", "3s", "--json"},
               {{"STREAM_USER", "bench"}, {"STREAM_PASS", "bench"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"missing\":0,\"duplicates\":0,\"count_mismatches\":0"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("\"covered_seconds\":0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"per_second\":[{"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("delivered"), std::string::npos) << r.err;  // the progress line
}

TEST(CliTest, DemoFeedShowsUpInTheSubTable) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  Child feed(
      {TICKWIRE_CLI_BIN, "pub", "--demo", "--symbols", "AAA,BBB", "--rate", "200", "--seed", "3"},
      env);
  const RunResult sub =
      RunToEnd({TICKWIRE_CLI_BIN, "sub", "--mode", "tick", "--count", "6", "*"}, env);
  EXPECT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_EQ(sub.out.rfind("time (UTC)", 0), 0u) << sub.out;  // the header comes first
  EXPECT_EQ(CountLines(sub.out, "\n"), 7) << sub.out;
  EXPECT_NE(sub.out.find("AAA"), std::string::npos) << sub.out;
  EXPECT_NE(sub.out.find("BBB"), std::string::npos) << sub.out;
  feed.Signal(SIGTERM);  // runs until stopped; stops cleanly on SIGTERM
  ASSERT_TRUE(feed.Wait(10s));
  const RunResult f = feed.Result();
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.err.find("published"), std::string::npos) << f.err;
}

TEST(CliTest, DemoFeedStopsAfterItsDuration) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const RunResult f =
      RunToEnd({TICKWIRE_CLI_BIN, "pub", "--demo", "--rate-per-symbol", "20", "--duration", "1s"},
               ClientEnv(server));
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.err.find("8 symbols"), std::string::npos) << f.err;  // the default set
  EXPECT_NE(f.err.find("160 ticks/s"), std::string::npos) << f.err;
}

// The server goes away under a running `sub` and comes back on the same port: sub reconnects,
// resumes and keeps printing.
TEST(CliTest, SubReconnectsWhenTheServerRestarts) {
  auto server = std::make_unique<ServerProcess>();
  ASSERT_TRUE(server->Start()) << server->error();
  const std::uint16_t port = server->port();
  const auto env = ClientEnv(*server);
  Child sub({TICKWIRE_CLI_BIN, "sub", "--mode", "tick", "--json", "--count", "2", "restart.t"},
            env);
  // Publish until the subscriber has printed the first tick (it may not be subscribed yet).
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (CountLines(sub.Stdout(), "\n") < 1 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "pub", "restart.t", "1", "1"}, env).exit_code, 0);
    sub.Wait(100ms);
  }
  ASSERT_EQ(CountLines(sub.Stdout(), "\n"), 1) << sub.Stdout();
  ASSERT_EQ(server->Stop(), 0);
  server = std::make_unique<ServerProcess>(
      EnvOverrides{{"LISTEN_ADDR", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(server->Start()) << server->error();
  while (sub.Stderr().find("reconnected") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline && !sub.Wait(50ms)) {
  }
  ASSERT_NE(sub.Stderr().find("reconnected"), std::string::npos) << sub.Stderr();
  ASSERT_EQ(RunToEnd({TICKWIRE_CLI_BIN, "pub", "restart.t", "2", "1"}, env).exit_code, 0);
  ASSERT_TRUE(sub.Wait(10s)) << sub.Stderr();
  const RunResult r = sub.Result();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CountLines(r.out, "\n"), 2) << r.out;
  EXPECT_NE(r.out.find("\"price\":2"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("SERVER_DRAINING"), std::string::npos) << r.err;
}

// "2024-05-01 12:00:01", the table's time column for a SECOND bar.
std::string SecondTime(std::int64_t start_ms) { return UtcTime(start_ms, "%Y-%m-%d %H:%M:%S"); }

// `sub --mode second` against a server: live bars as JSON lines, and history through
// --backfill (table) and --since (JSON, absolute and relative). Two known SECOND bars are made
// from producer-stamped ticks in the next two seconds.
TEST(CliTest, SubPrintsSecondBarsLiveAndFromBackfillAndSince) {
  ServerProcess server(EnvOverrides{{"BAR_CLOSE_DELAY_MS", "0"}});
  ASSERT_TRUE(server.Start()) << server.error();
  const auto env = ClientEnv(server);
  const std::string topic = "cli.bars";
  RawClient producer;
  ASSERT_TRUE(producer.Connect(server.port())) << producer.last_error();
  ASSERT_TRUE(producer.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  // Two seconds ahead, so the ticks are on time even if the PUBLISH is slow to arrive, and
  // within the 5 s a producer may stamp ahead.
  const std::int64_t a_ms = NowMs() / 1000 * 1000 + 2000;
  const std::int64_t b_ms = a_ms + 1000;
  const std::int64_t a_ns = a_ms * 1'000'000;
  const std::int64_t b_ns = b_ms * 1'000'000;
  ASSERT_TRUE(producer.PublishAcked(
      1, {MakeTick(topic, 12, 2, a_ns + 2), MakeTick(topic, 10, 1, a_ns + 1),
          MakeTick(topic, 9, 3, a_ns + 3), MakeTick(topic, 11, 4, a_ns + 999'999'999),
          MakeTick(topic, 20, 1, b_ns + 500'000'000), MakeTick(topic, 21, 1, b_ns + 600'000'000)}));
  // --since the first bar's start: history first, then live, so it gets both bars whether it
  // subscribes before or after they close.
  Child live({TICKWIRE_CLI_BIN, "sub", "--mode", "second", "--json", "--since",
              std::to_string(a_ms), "--count", "2", topic},
             env);
  const std::string bar_a = "\"start_ms\":" + std::to_string(a_ms) +
                            ",\"open\":10,\"high\":12,\"low\":9,\"close\":11,\"volume\":10,"
                            "\"count\":4,\"vwap\":10.5}";
  const std::string bar_b = "\"start_ms\":" + std::to_string(b_ms) +
                            ",\"open\":20,\"high\":21,\"low\":20,\"close\":21,\"volume\":2,"
                            "\"count\":2,\"vwap\":20.5}";

  ASSERT_TRUE(live.Wait(15s)) << live.Stderr();  // both bars close by b_ms + 1 s
  const RunResult l = live.Result();
  EXPECT_EQ(l.exit_code, 0) << l.err;
  // Watermarks (PROTOCOL S8d) mark the end of each second between the bars: none may say a
  // bar's second is final before that bar.
  std::istringstream lines(l.out);
  std::vector<std::string> bar_lines;
  std::int64_t final_through = 0;
  auto start_of = [](const std::string& line) {
    const auto at = line.find("\"start_ms\":");
    return at == std::string::npos ? std::int64_t{-1} : std::stoll(line.substr(at + 11));
  };
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("{\"type\":\"watermark\",\"interval\":\"second\"", 0) == 0) {
      EXPECT_GT(start_of(line), final_through) << l.out;
      final_through = start_of(line);
      continue;
    }
    EXPECT_GT(start_of(line), final_through) << "a bar after its watermark:\n" << l.out;
    bar_lines.push_back(line);
  }
  ASSERT_EQ(bar_lines.size(), 2u) << l.out;
  const std::string& first = bar_lines[0];
  const std::string& second = bar_lines[1];
  EXPECT_EQ(first.rfind("{\"type\":\"bar\",\"interval\":\"second\",\"topic\":\"cli.bars\"", 0), 0u)
      << first;
  EXPECT_NE(first.find(bar_a), std::string::npos) << first;
  EXPECT_NE(second.find(bar_b), std::string::npos) << second;

  // --backfill 1: the newest retained bar, as a table row.
  const RunResult table = RunToEnd(
      {TICKWIRE_CLI_BIN, "sub", "--mode", "second", "--backfill", "1", "--count", "1", topic}, env);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  std::istringstream rows(table.out);
  std::string header, row;
  ASSERT_TRUE(std::getline(rows, header) && std::getline(rows, row)) << table.out;
  EXPECT_EQ(header.rfind("time (UTC)", 0), 0u) << header;
  std::istringstream cols(row);
  std::vector<std::string> cells;
  for (std::string c; cols >> c;) cells.push_back(c);
  const std::vector<std::string> want_cells = {"",   "",   topic, "20", "21",
                                               "20", "21", "2",   "2",  "20.5"};
  ASSERT_EQ(cells.size(), want_cells.size()) << row;
  EXPECT_EQ(cells[0] + " " + cells[1], SecondTime(b_ms)) << row;
  for (std::size_t i = 2; i < cells.size(); ++i) EXPECT_EQ(cells[i], want_cells[i]) << row;

  // --since at the second bar's start leaves the first out; a relative --since covers both.
  const RunResult since_b = RunToEnd({TICKWIRE_CLI_BIN, "sub", "--mode", "second", "--json",
                                      "--since", std::to_string(b_ms), "--count", "1", topic},
                                     env);
  EXPECT_EQ(since_b.exit_code, 0) << since_b.err;
  EXPECT_EQ(CountLines(since_b.out, "\n"), 1) << since_b.out;
  EXPECT_NE(since_b.out.find(bar_b), std::string::npos) << since_b.out;
  const RunResult since_rel = RunToEnd({TICKWIRE_CLI_BIN, "sub", "--mode", "second", "--json",
                                        "--since", "-1m", "--count", "2", "*"},
                                       env);
  EXPECT_EQ(since_rel.exit_code, 0) << since_rel.err;
  EXPECT_EQ(CountLines(since_rel.out, "\n"), 2) << since_rel.out;
  EXPECT_LT(since_rel.out.find(bar_a), since_rel.out.find(bar_b)) << since_rel.out;
}

TEST(CliTest, SubRejectsAnUnreadableSince) {
  const RunResult r = RunToEnd({TICKWIRE_CLI_BIN, "sub", "--since", "yesterday", "*"},
                               {{"TICKWIRE_ADDR", "127.0.0.1:9"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--since"), std::string::npos) << r.err;
  const RunResult both =
      RunToEnd({TICKWIRE_CLI_BIN, "sub", "--since", "-5m", "--backfill", "3", "*"},
               {{"TICKWIRE_ADDR", "127.0.0.1:9"}});
  EXPECT_EQ(both.exit_code, 2);
}

}  // namespace
}  // namespace tickwire::testing
