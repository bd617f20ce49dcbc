// The bench scenarios in their short correctness mode: `tickwire bench latency|fanout|ingest|
// conns` against a server they spawn (fanout with stalled consumers the server must drop), and
// the peers' load generators (tickwire-nats-bench, tickwire-redis-bench) against a nats-server /
// redis-server started here on a free loopback port. Only what the runs prove is asserted (every
// record once and in order, every PUBLISH acked, every connection alive, every stalled consumer
// dropped), never how fast they were.

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/json.h"
#include "support/loopback.h"

namespace tickwire::testing {
namespace {

using namespace std::chrono_literals;

// The JSON report line in a bench's output (progress lines around it go to stderr).
std::optional<boost::json::object> Report(const std::string& output) {
  std::size_t pos = 0;
  while (pos < output.size()) {
    const std::size_t end = output.find('\n', pos);
    const std::string line = output.substr(pos, end == std::string::npos ? end : end - pos);
    if (line.rfind("{\"system\":", 0) == 0) {
      if (auto v = ParseJson(line); v && v->is_object()) return v->as_object();
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return std::nullopt;
}

std::int64_t Int(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}

// Every integrity field of a report is zero and it says it passed.
void ExpectClean(const boost::json::object& r, const std::string& output) {
  for (const char* key : {"gaps", "dups", "reorders", "lost", "errors"}) {
    EXPECT_EQ(Int(r, key), 0) << key << "\n" << output;
  }
  const auto* passed = r.if_contains("passed");
  EXPECT_TRUE(passed != nullptr && passed->is_bool() && passed->as_bool()) << output;
}

// Runs `argv` (a bench with --json); expects exit 0 and a clean report, which it returns (an
// empty object when there is none). `output` gets what the run printed, for messages.
boost::json::object CleanRun(const std::vector<std::string>& argv, std::string& output) {
  const auto run = RunCommand(argv, {}, 60s);
  output = run.output;
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const auto r = Report(run.output);
  EXPECT_TRUE(r) << run.output;
  if (!r) return {};
  ExpectClean(*r, run.output);
  return *r;
}

// `tickwire bench <args> --spawn <server> --json`, through CleanRun.
boost::json::object RunBench(std::vector<std::string> args, std::string& output) {
  std::vector<std::string> argv = {TICKWIRE_CLI_BIN, "bench"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--spawn", TICKWIRE_SERVER_BIN_PATH, "--json"});
  return CleanRun(argv, output);
}

// The object member `key` of `o` (empty when missing).
boost::json::object Member(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? v->as_object() : boost::json::object();
}

TEST(BenchTest, LatencyDeliversEveryTickOnceInOrder) {
  std::string out;
  const auto r = RunBench(
      {"latency", "--subscribers", "3", "--rate", "5000", "--duration", "1s", "--warmup", "200ms"},
      out);
  EXPECT_EQ(StringField(r, "scenario"), "latency");
  EXPECT_GT(Int(r, "delivered"), 0) << out;
  EXPECT_GT(Int(Member(r, "latency_us"), "samples"), 0) << out;
}

TEST(BenchTest, FanoutDropsStalledConsumersAndServesTheRest) {
  // Two extra consumers subscribe and never read; a 256 KiB output limit and a 500 ms write
  // deadline drop them well within the 2 s run (also under the sanitizers on a busy machine),
  // while the reading consumers get every tick.
  std::string out;
  const auto r = RunBench(
      {"fanout", "--subscribers", "3", "--stalled", "2", "--duration", "2s", "--warmup", "200ms",
       "--server-env", "MAX_PENDING_BYTES=262144", "--server-env", "WRITE_DEADLINE_MS=500"},
      out);
  EXPECT_EQ(StringField(r, "scenario"), "fanout");
  EXPECT_GT(Int(r, "delivered"), 0) << out;
  EXPECT_EQ(Int(r, "stalled"), 2) << out;
  EXPECT_EQ(Int(r, "stalled_dropped"), 2) << out;
}

TEST(BenchTest, IngestGetsEveryFrameAckedAndEveryTickDelivered) {
  std::string out;
  const auto r = RunBench({"ingest", "--producers", "2", "--topics", "50", "--check", "--duration",
                           "1s", "--warmup", "200ms"},
                          out);
  EXPECT_GT(Int(r, "frames_sent"), 0) << out;
  EXPECT_EQ(Int(r, "acks"), Int(r, "frames_sent")) << out;
  EXPECT_GT(Int(r, "accepted"), 0) << out;
  EXPECT_GT(Int(r, "delivered"), 0) << out;
}

TEST(BenchTest, ConnsKeepsEveryConnectionAliveThroughHeartbeats) {
  // Heartbeats every 300 ms against a 1 s timeout, held for 2 s: a connection that missed its
  // heartbeats would be closed by the server well within the run.
  std::string out;
  const auto c = Member(
      RunBench({"conns", "--connections", "300", "--heartbeat", "300ms", "--duration", "2s",
                "--server-env", "HEARTBEAT_INTERVAL=300ms", "--server-env", "HEARTBEAT_TIMEOUT=1s"},
               out),
      "conns");
  EXPECT_EQ(Int(c, "ready"), 300) << out;
  EXPECT_EQ(Int(c, "alive"), 300) << out;
  EXPECT_GE(Int(c, "keepalives"), 300 * 5) << out;
  EXPECT_GT(Int(c, "rss_after_kb"), 0) << out;
}

// Runs one peer generator's fanout (3 subscribers, 1 s) and conns (200 connections) against a
// server started here with `server_argv` + the port.
void RunPeer(const std::string& generator, const std::string& server_binary,
             std::vector<std::string> server_argv) {
  if (generator.empty()) GTEST_SKIP() << "load generator not built (client library missing)";
  if (::access(server_binary.c_str(), X_OK) != 0) GTEST_SKIP() << server_binary << " not installed";
  const std::uint16_t port = FreePort();
  ASSERT_NE(port, 0);
  server_argv.insert(server_argv.begin(), server_binary);
  for (auto& a : server_argv) {
    if (a == "PORT") a = std::to_string(port);
  }
  ChildProcess server(server_argv);
  ASSERT_TRUE(server.Start()) << server.error();
  ASSERT_TRUE(WaitForListener(port, 10s)) << server.Output();
  const std::string addr = "127.0.0.1:" + std::to_string(port);

  std::string out;
  const auto f = CleanRun({generator, "fanout", "--addr", addr, "--subscribers", "3", "--duration",
                           "1s", "--warmup", "200ms", "--json"},
                          out);
  EXPECT_GT(Int(f, "delivered"), 0) << out;
  EXPECT_EQ(Int(f, "payload_bytes"), 64) << out;
  const auto c = CleanRun({generator, "conns", "--addr", addr, "--connections", "200",
                           "--heartbeat", "300ms", "--duration", "1s", "--json"},
                          out);
  EXPECT_EQ(Int(Member(c, "conns"), "alive"), 200) << out;
  server.Stop();
}

TEST(PeerBenchTest, NatsGeneratorChecksEveryMessage) {
  RunPeer(TICKWIRE_NATS_BENCH_BIN, "/usr/sbin/nats-server",
          {"-a", "127.0.0.1", "-p", "PORT", "--user", "bench", "--pass", "bench"});
}

TEST(PeerBenchTest, RedisGeneratorChecksEveryMessage) {
  RunPeer(TICKWIRE_REDIS_BENCH_BIN, "/usr/bin/redis-server",
          {"--bind", "127.0.0.1", "--port", "PORT", "--save", "", "--appendonly", "no",
           "--requirepass", "bench"});
}

}  // namespace
}  // namespace tickwire::testing
