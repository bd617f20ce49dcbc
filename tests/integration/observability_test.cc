// Observability: /metrics counters move by exactly what a scripted workload causes, promtool
// accepts a live scrape, /healthz and /readyz answer, /connz lists connections (hostile names
// included), the JSON logs stay valid JSON, never carry passwords, and rate-limit noisy
// events while accounting for every suppressed line; docs/METRICS.md matches what is exported
// and logged; WEB_ROOT's files are served at /chart/ and nothing else is.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/integration_test.h"
#include "support/child_process.h"
#include "support/http_client.h"
#include "support/json.h"
#include "support/temp_dir.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

// Client-supplied text that a careless log or JSON writer would break on.
const std::string kHostileName = "he said \"hi\" \\ back\nslash\t\x01\x1f\x7f \xe2\x9c\x93 end";
const std::string kHostileTopic = "bad\"topic\\\n\x02{}";

class ObservabilityTest : public IntegrationTest {
 protected:
  // Starts a server with small socket buffers, the limits given, and connects `slow` (a small
  // receive window; subscribed to Topic(), never reads) and `pub`. Use with
  // ASSERT_NO_FATAL_FAILURE.
  void StartWithStalledReader(const std::string& max_pending_bytes,
                              const std::string& write_deadline_ms, RawClient& slow,
                              RawClient& pub) {
    ASSERT_TRUE(Start({{"MAX_MSG_SIZE", "16384"},
                       {"MAX_PENDING_BYTES", max_pending_bytes},
                       {"SO_SNDBUF", "8192"},
                       {"WRITE_DEADLINE_MS", write_deadline_ms}}));
    slow.SetReceiveBuffer(4096);
    ASSERT_TRUE(ConnectAuthed(slow));
    ASSERT_TRUE(slow.Subscribe(1, v1::MODE_TICK, {Topic()}));
    ASSERT_TRUE(ConnectAuthed(pub));
  }
};

std::string ReadSourceFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Names in backquotes (`like_this`) in `text`.
std::set<std::string> QuotedNames(const std::string& text) {
  static const std::regex kQuoted("`([a-z_]+)`");
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), kQuoted), end; it != end; ++it) {
    out.insert((*it)[1].str());
  }
  return out;
}

// The arguments of a call, split at top-level commas; `pos` is just after its '('.
std::vector<std::string> CallArguments(const std::string& text, std::size_t pos) {
  std::vector<std::string> args;
  int depth = 0;
  std::size_t start = pos;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (c == '(' || c == '{' || c == '[') {
      ++depth;
    } else if ((c == ')' || c == '}' || c == ']') && depth-- == 0) {
      args.push_back(text.substr(start, i - start));
      break;
    } else if (c == ',' && depth == 0) {
      args.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return args;
}

// Every event name the server's code writes: the string literals in the event argument of
// each obs::Log, obs::LogNoisy and FormatLine call under src/.
std::set<std::string> LogEventsInCode() {
  static const std::regex kCall(R"(\b(Log|LogNoisy|FormatLine|FormatLogLine)\()");
  static const std::regex kLiteral(R"xx("([a-z_]+)")xx");
  std::set<std::string> events;
  const std::filesystem::path src = std::filesystem::path(TICKWIRE_SOURCE_DIR) / "src";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(src)) {
    const auto ext = entry.path().extension();
    if (ext != ".cc" && ext != ".h") continue;
    const std::string text = ReadSourceFile(entry.path());
    for (std::sregex_iterator it(text.begin(), text.end(), kCall), end; it != end; ++it) {
      const std::size_t event_arg = (*it)[1] == "LogNoisy" ? 2 : 1;
      const auto args =
          CallArguments(text, static_cast<std::size_t>(it->position() + it->length()));
      if (args.size() <= event_arg) continue;
      const std::string& arg = args[event_arg];
      for (std::sregex_iterator l(arg.begin(), arg.end(), kLiteral), lend; l != lend; ++l) {
        events.insert((*l)[1].str());
      }
    }
  }
  return events;
}

// conn_close lines with `reason` written to the log, and the number of such lines the `kind`
// budget suppressed (reported by later lines of that reason and by log_suppressed lines).
struct BudgetedLines {
  std::uint64_t written = 0;
  std::uint64_t suppressed = 0;
};
BudgetedLines CloseLines(const LogCheck& check, std::string_view reason, std::string_view kind) {
  BudgetedLines n;
  for (const auto& line : check.lines) {
    const std::string event = StringField(line, "event");
    const bool close = event == "conn_close" && StringField(line, "reason") == reason;
    const bool summary = event == "log_suppressed" && StringField(line, "kind") == kind;
    if (close) ++n.written;
    if ((close || summary) && line.contains("suppressed")) {
      n.suppressed += line.at("suppressed").to_number<std::uint64_t>();
    }
  }
  return n;
}

TEST_F(ObservabilityTest, HeartbeatTimeoutsRiseByExactlyTheNumberCaused) {
  ASSERT_TRUE(Start({{"HEARTBEAT_INTERVAL", "200ms"}, {"HEARTBEAT_TIMEOUT", "600ms"}}));
  const Metrics before = Scrape();
  EXPECT_EQ(Get(before, "heartbeat_timeouts_total"), 0);
  EXPECT_EQ(Get(before, "active_connections"), 0);

  constexpr int kSilent = 4;
  std::vector<RawClient> clients(kSilent);
  for (auto& c : clients) ASSERT_TRUE(ConnectAuthed(c));
  EXPECT_TRUE(Reaches("active_connections", kSilent));
  for (auto& c : clients)
    ASSERT_TRUE(c.ExpectFatal(v1::HEARTBEAT_TIMEOUT, nullptr, milliseconds(3000)));

  EXPECT_TRUE(Reaches("heartbeat_timeouts_total", kSilent));
  EXPECT_TRUE(Reaches("active_connections", 0));
  const Metrics after = Scrape();
  EXPECT_EQ(Get(after, "connection_drops_total{reason=\"heartbeat_timeout\"}"), kSilent);
  EXPECT_EQ(Get(after, "protocol_errors_total{code=\"HEARTBEAT_TIMEOUT\"}"), kSilent);
  EXPECT_EQ(Get(after, "connections_accepted_total"), kSilent);
  EXPECT_EQ(Get(after, "frames_received_total{type=\"auth\"}"), kSilent);
  // Counted once per connection, not once per sweep: several sweeps (every 60 ms here) later
  // the count has not moved.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(Get(Scrape(), "heartbeat_timeouts_total"), kSilent);
}

TEST_F(ObservabilityTest, AuthFailuresAndProtocolErrorsByReasonAndCode) {
  ASSERT_TRUE(Start({{"AUTH_TIMEOUT_MS", "300"}}));
  for (int i = 0; i < 2; ++i) {
    RawClient c;
    ASSERT_TRUE(Connect(c));
    v1::Auth auth;
    auth.set_username(ServerProcess::kUser);
    auth.set_password("wrong");
    ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
    ASSERT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
  }
  {
    RawClient c;
    ASSERT_TRUE(Connect(c));
    v1::Subscribe sub;
    sub.set_mode(v1::MODE_TICK);
    sub.add_topics("x");
    ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
    ASSERT_TRUE(c.ExpectFatal(v1::AUTH_REQUIRED));
  }
  {
    RawClient c;
    ASSERT_TRUE(Connect(c));
    ASSERT_TRUE(c.ExpectFatal(v1::AUTH_TIMEOUT, nullptr, milliseconds(3000)));
  }
  {
    RawClient c;
    ASSERT_TRUE(ConnectAuthed(c));
    v1::Subscribe sub;
    sub.set_request_id(7);
    sub.set_mode(v1::MODE_TICK);
    sub.add_topics(kHostileTopic);
    ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
    ASSERT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 7u));
    ASSERT_TRUE(c.SendRawFrame(0x7F, ""));
    ASSERT_TRUE(c.ExpectFatal(v1::UNKNOWN_FRAME_TYPE));
  }
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"unknown_frame_type\"}", 1));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "auth_failures_total{reason=\"auth_failed\"}"), 2);
  EXPECT_EQ(Get(m, "auth_failures_total{reason=\"auth_required\"}"), 1);
  EXPECT_EQ(Get(m, "auth_failures_total{reason=\"auth_timeout\"}"), 1);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"AUTH_FAILED\"}"), 2);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"AUTH_REQUIRED\"}"), 1);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"AUTH_TIMEOUT\"}"), 1);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"INVALID_REQUEST\"}"), 1);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"UNKNOWN_FRAME_TYPE\"}"), 1);
  EXPECT_EQ(Get(m, "frames_received_total{type=\"other\"}"), 1);
  EXPECT_EQ(Get(m, "frames_received_total{type=\"subscribe\"}"), 2);
  EXPECT_EQ(Get(m, "connections_accepted_total"), 5);
  EXPECT_EQ(Get(m, "active_connections"), 0);
}

TEST_F(ObservabilityTest, PublishDeliveryAndSubscriptionCounters) {
  ASSERT_TRUE(Start());
  const std::string topic = Topic();
  RawClient consumer;
  ASSERT_TRUE(ConnectAuthed(consumer));
  std::uint64_t sub_id = 0;
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {topic}, &sub_id));
  EXPECT_EQ(Get(Scrape(), "active_subscriptions{mode=\"tick\"}"), 1);

  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(producer));
  constexpr int kFrames = 3;
  constexpr int kPerFrame = 10;
  double publish_bytes = 0;
  for (int f = 0; f < kFrames; ++f) {
    v1::Publish pub;
    pub.set_request_id(static_cast<std::uint32_t>(f + 1));
    pub.set_ack(true);
    for (int i = 0; i < kPerFrame; ++i) *pub.add_ticks() = MakeTick(topic, 100 + i, 1);
    publish_bytes += static_cast<double>(protocol::kHeaderSize + pub.ByteSizeLong());
    ASSERT_TRUE(producer.SendFrame(FrameType::kPublish, pub));
    ASSERT_TRUE(
        producer.ReadMessage(FrameType::kPublishAck, static_cast<v1::PublishAck*>(nullptr)));
  }
  Delivery d;
  ASSERT_TRUE(ReadTicks(consumer, kFrames * kPerFrame, milliseconds(3000), d));
  const double frames = static_cast<double>(d.frame_tick_counts.size());

  EXPECT_TRUE(Reaches("records_delivered_total", kFrames * kPerFrame));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "records_published_total"), kFrames * kPerFrame);
  EXPECT_EQ(Get(m, "frames_received_total{type=\"publish\"}"), kFrames);
  EXPECT_EQ(Get(m, "bytes_received_total{type=\"publish\"}"), publish_bytes);
  EXPECT_EQ(Get(m, "data_batch_records_count"), frames);
  EXPECT_EQ(Get(m, "data_batch_records_sum"), kFrames * kPerFrame);
  EXPECT_EQ(Get(m, "publish_latency_ms_count"), frames);
  EXPECT_EQ(Get(m, "publish_latency_ms_bucket{le=\"+Inf\"}"), frames);
  EXPECT_LE(Get(m, "publish_latency_ms_bucket{le=\"1\"}"),
            Get(m, "publish_latency_ms_bucket{le=\"5\"}"));
  EXPECT_GE(Get(m, "publish_latency_ms_sum"), 0);
  EXPECT_EQ(Get(m, "late_ticks_total{interval=\"second\"}"), 0);
  EXPECT_EQ(Get(m, "late_ticks_total{interval=\"minute\"}"), 0);
  EXPECT_EQ(Get(m, "active_connections"), 2);
  // The topic's owner shard updates the gauge on its next sweep.
  EXPECT_TRUE(Reaches("active_topics", 1));

  v1::Unsubscribe unsub;
  unsub.set_subscription_id(sub_id);
  ASSERT_TRUE(consumer.SendFrame(FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(Reaches("active_subscriptions{mode=\"tick\"}", 0));
  ASSERT_TRUE(consumer.Subscribe(2, v1::MODE_SECOND, {topic, "*"}));
  EXPECT_EQ(Get(Scrape(), "active_subscriptions{mode=\"second\"}"), 1);
  consumer.Close();
  EXPECT_TRUE(Reaches("active_subscriptions{mode=\"second\"}", 0));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"client_closed\"}", 1));
}

TEST_F(ObservabilityTest, BytesSentAndReceivedMatchTheWireExactly) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  auth.set_client_name("bytes");
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  v1::AuthOk ok;
  ASSERT_TRUE(c.ReadMessage(FrameType::kAuthOk, &ok));
  double sent = static_cast<double>(protocol::kHeaderSize + ok.ByteSizeLong());
  double heartbeat_in = 0;
  for (std::int64_t ts : std::initializer_list<std::int64_t>{1, 1000, 1'700'000'000'000}) {
    ASSERT_TRUE(c.HeartbeatRoundTrip(ts));
    v1::Heartbeat hb;
    hb.set_ts_ms(ts);
    sent += static_cast<double>(protocol::kHeaderSize + hb.ByteSizeLong());
    heartbeat_in += static_cast<double>(protocol::kHeaderSize + hb.ByteSizeLong());
  }
  EXPECT_TRUE(Reaches("bytes_sent_total", sent));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "bytes_received_total{type=\"auth\"}"),
            static_cast<double>(protocol::kHeaderSize + auth.ByteSizeLong()));
  EXPECT_EQ(Get(m, "bytes_received_total{type=\"heartbeat\"}"), heartbeat_in);
  EXPECT_EQ(Get(m, "frames_received_total{type=\"heartbeat\"}"), 3);
}

TEST_F(ObservabilityTest, SlowConsumerIsCountedOnceWithItsCause) {
  const std::string topic = Topic();
  RawClient slow;
  RawClient pub;
  ASSERT_NO_FATAL_FAILURE(StartWithStalledReader("32768", "1000", slow, pub));
  auto dropped = [&] {
    const Metrics m = Scrape();
    return Get(m, "slow_consumer_disconnects_total{reason=\"pending_bytes\"}") +
           Get(m, "slow_consumer_disconnects_total{reason=\"write_deadline\"}");
  };
  for (std::uint32_t f = 1; f <= 400 && dropped() == 0; ++f) {
    std::vector<v1::Tick> ticks;
    for (int i = 0; i < 100; ++i) ticks.push_back(MakeTick(topic, i, 1));
    ASSERT_TRUE(pub.PublishAcked(f, ticks));
  }
  EXPECT_TRUE(WaitUntil([&] { return dropped() == 1; }, milliseconds(3000)));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"slow_consumer\"}", 1));
  EXPECT_EQ(dropped(), 1);
  EXPECT_LE(Get(Scrape(), "protocol_errors_total{code=\"SLOW_CONSUMER\"}"), 1);
}

TEST_F(ObservabilityTest, WriteDeadlineAloneDropsAStalledReaderOnceWithItsCause) {
  // MAX_PENDING_BYTES far above what is published: only the write deadline can fire. The
  // consumer never reads and has a small receive window, so the server's write sticks.
  const std::string topic = Topic();
  RawClient slow;
  RawClient pub;
  ASSERT_NO_FATAL_FAILURE(
      StartWithStalledReader(std::to_string(256 * 1024 * 1024), "300", slow, pub));
  // About 1 MB of DATA_BATCH for the stalled consumer: far more than both socket buffers hold.
  for (std::uint32_t f = 1; f <= 100; ++f) {
    std::vector<v1::Tick> ticks;
    for (int i = 0; i < 100; ++i) ticks.push_back(MakeTick(topic, i, 1));
    ASSERT_TRUE(pub.PublishAcked(f, ticks));
  }
  EXPECT_TRUE(Reaches("slow_consumer_disconnects_total{reason=\"write_deadline\"}", 1));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"slow_consumer\"}", 1));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "slow_consumer_disconnects_total{reason=\"pending_bytes\"}"), 0);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"SLOW_CONSUMER\"}"), 1);
  EXPECT_TRUE(pub.HeartbeatRoundTrip(1)) << "the publisher is still served";

  const LogCheck check = CheckJsonLogLines(server_->Logs());
  ASSERT_TRUE(check.error.empty()) << check.error;
  int slow_lines = 0;
  int slow_closes = 0;
  for (const auto& line : check.lines) {
    const std::string event = StringField(line, "event");
    if (event == "slow_consumer") {
      ++slow_lines;
      EXPECT_EQ(StringField(line, "reason"), "write deadline missed");
    }
    if (event == "conn_close" && StringField(line, "reason") == "slow_consumer") {
      ++slow_closes;
      EXPECT_TRUE(StringField(line, "detail").starts_with("write deadline missed"))
          << StringField(line, "detail");
    }
  }
  EXPECT_EQ(slow_lines, 1) << server_->Logs();
  EXPECT_EQ(slow_closes, 1) << server_->Logs();
}

TEST_F(ObservabilityTest, PromtoolAcceptsALiveScrape) {
  ASSERT_TRUE(InPath("promtool"))
      << "promtool is missing: run scripts/setup.sh (package prometheus)";
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  ASSERT_TRUE(c.Subscribe(1, v1::MODE_TICK, {Topic()}));
  std::vector<Frame> batches;  // its own tick may arrive before the ack
  ASSERT_TRUE(c.PublishAcked(1, {MakeTick(Topic(), 1, 1)}, &batches));
  const HttpResult r = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(r.status, 200u) << r.error;
  const CommandResult check = RunCommand({"promtool", "check", "metrics"}, r.body);
  // The one lint finding is documented in docs/METRICS.md: the runbook names the latency
  // histogram publish_latency_ms, in milliseconds, and its dashboards and alerts use that name.
  std::istringstream lines(check.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    EXPECT_EQ(line, "publish_latency_ms metric names should not contain abbreviated units")
        << "promtool check metrics exit " << check.exit_code << ":\n"
        << check.output;
  }
  EXPECT_TRUE(check.exit_code == 0 || check.exit_code == 3) << check.output;
}

TEST_F(ObservabilityTest, HealthReadinessAndHttpBasics) {
  ASSERT_TRUE(Start());
  const auto port = server_->metrics_port();
  ASSERT_NE(port, 0);
  HttpResult r = HttpGet(port, "/healthz");
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_EQ(r.body, "ok\n");
  r = HttpGet(port, "/readyz");
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_EQ(r.body, "ready\n");
  r = HttpGet(port, "/metrics");
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  r = HttpRequestTo(port, "HEAD", "/metrics");
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_TRUE(r.body.empty());
  EXPECT_GT(std::stoul(r.headers["content-length"]), 1000u);
  EXPECT_EQ(HttpRequestTo(port, "POST", "/metrics").status, 405u);
  EXPECT_EQ(HttpGet(port, "/nope").status, 404u);
  // build_info: one series, value 1, the protocol version as a label.
  int build_info = 0;
  for (const auto& [series, value] : Scrape()) {
    if (!series.starts_with("build_info{")) continue;
    ++build_info;
    EXPECT_EQ(value, 1) << series;
    EXPECT_NE(series.find("protocol=\"1\""), std::string::npos) << series;
    EXPECT_NE(series.find("version=\""), std::string::npos) << series;
  }
  EXPECT_EQ(build_info, 1);
}

// WEB_ROOT: the chart page's files at /chart/ on the operations endpoint, with their types;
// nothing outside the directory (nor a dot file in it) is reachable, whatever the path says.
TEST_F(ObservabilityTest, WebRootServesTheChartPageAndNothingElse) {
  TempDir dir;
  const std::string root = dir.File("web");
  std::filesystem::create_directories(root + "/assets");
  std::ofstream(root + "/index.html") << "<!doctype html><title>chart</title>";
  std::ofstream(root + "/chart.js") << "export const x = 1;";
  std::ofstream(root + "/assets/chart.css") << "body{}";
  std::ofstream(root + "/.secret") << "token";
  std::ofstream(dir.File("outside.txt")) << "outside";
  ASSERT_TRUE(Start({{"WEB_ROOT", root}}));
  const auto port = server_->metrics_port();
  ASSERT_NE(port, 0);
  HttpResult r = HttpGet(port, "/chart");
  EXPECT_EQ(r.status, 301u) << r.error;
  EXPECT_EQ(r.headers["location"], "/chart/");
  r = HttpGet(port, "/chart/");
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_EQ(r.body, "<!doctype html><title>chart</title>");
  EXPECT_EQ(r.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(r.headers["x-content-type-options"], "nosniff");
  EXPECT_NE(r.headers["content-security-policy"].find("connect-src 'self' ws: wss:"),
            std::string::npos);
  r = HttpGet(port, "/chart/chart.js?v=1");
  EXPECT_EQ(r.body, "export const x = 1;");
  EXPECT_EQ(r.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(HttpGet(port, "/chart/assets/chart.css").headers["content-type"],
            "text/css; charset=utf-8");
  r = HttpRequestTo(port, "HEAD", "/chart/chart.js");
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.headers["content-length"], "19");
  EXPECT_EQ(HttpGet(port, "/chart/missing.js").status, 404u);
  for (const char* escape :
       {"/chart/../outside.txt", "/chart/..%2foutside.txt", "/chart/%2e%2e/outside.txt",
        "/chart/.secret", "/chart/assets/../chart.js", "/chart/%00", "/chart//etc/passwd"}) {
    r = HttpGet(port, escape);
    EXPECT_EQ(r.status, 400u) << escape << ": " << r.body;
    EXPECT_EQ(r.body.find("outside"), std::string::npos) << escape;
    EXPECT_EQ(r.body.find("token"), std::string::npos) << escape;
  }
  // The other endpoints are unchanged.
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200u);
}

TEST_F(ObservabilityTest, TopicEvictionsAndTruncatedBackfillsAreCounted) {
  // One worker, so one shard holds every topic and the whole backfill budget.
  ASSERT_TRUE(Start({{"WORKERS", "1"}, {"MAX_TOPICS", "3"}, {"MAX_BACKFILL_RECORDS", "5"}}));
  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(producer));
  // A topic with an open bucket is not evicted (its MINUTE bar stays open up to a minute), so
  // the ticks are stamped two minutes ago: late for both bars, they open none, and each topic
  // past the third can be evicted as soon as it is created.
  const std::int64_t stamped = NowNs() - std::int64_t{120} * 1'000'000'000;
  constexpr int kTopics = 10;
  for (int i = 0; i < kTopics; ++i) {
    ASSERT_TRUE(producer.PublishAcked(static_cast<std::uint32_t>(i + 1),
                                      {MakeTick(Topic(std::to_string(i)), 1, 1, stamped)}));
  }
  // Each topic past the third evicts the least recently published one.
  EXPECT_TRUE(Reaches("topics_evicted_total", kTopics - 3));
  EXPECT_TRUE(Reaches("active_topics", 3));
  EXPECT_EQ(Get(Scrape(), "backfills_truncated_total"), 0);

  std::vector<v1::Tick> ticks;
  for (int i = 0; i < 20; ++i) ticks.push_back(MakeTick(Topic("history"), 100 + i, 1, stamped));
  ASSERT_TRUE(producer.PublishAcked(100, ticks));
  RawClient consumer;
  ASSERT_TRUE(ConnectAuthed(consumer));
  v1::Subscribe sub;
  sub.set_request_id(1);
  sub.set_mode(v1::MODE_TICK);
  sub.add_topics(Topic("history"));
  sub.set_backfill(20);
  ASSERT_TRUE(consumer.SendFrame(FrameType::kSubscribe, sub));
  // 20 records asked for, MAX_BACKFILL_RECORDS=5: the request is cut once.
  EXPECT_TRUE(Reaches("backfills_truncated_total", 1));
  EXPECT_EQ(Get(Scrape(), "topics_evicted_total"), kTopics - 2);
}

TEST_F(ObservabilityTest, MetricsEndpointCanBeTurnedOff) {
  ASSERT_TRUE(Start({{"METRICS_ADDR", ""}}));
  EXPECT_EQ(server_->metrics_port(), 0);
  RawClient c;
  EXPECT_TRUE(ConnectAuthed(c));
}

const boost::json::object* FindByName(const boost::json::array& conns, const std::string& name) {
  for (const auto& c : conns) {
    if (StringField(c.as_object(), "client_name") == name) return &c.as_object();
  }
  return nullptr;
}

TEST_F(ObservabilityTest, ConnzListsConnectionsWithLimitSortAndHostileNames) {
  ASSERT_TRUE(Start());
  const auto port = server_->metrics_port();
  RawClient hostile;
  ASSERT_TRUE(Connect(hostile));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  auth.set_client_name(kHostileName);
  ASSERT_TRUE(hostile.SendFrame(FrameType::kAuth, auth));
  ASSERT_TRUE(hostile.ReadMessage(FrameType::kAuthOk, static_cast<v1::AuthOk*>(nullptr)));
  ASSERT_TRUE(hostile.Subscribe(1, v1::MODE_TICK, {Topic("a"), Topic("b")}));
  RawClient busy;
  ASSERT_TRUE(ConnectAuthed(busy));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(busy.HeartbeatRoundTrip(i));
  RawClient fresh;
  ASSERT_TRUE(Connect(fresh));

  HttpResult r;
  ASSERT_TRUE(WaitUntil(
      [&] {
        r = HttpGet(port, "/connz?subs=1");
        auto v = ParseJson(r.body);
        return v && v->as_object().at("total").to_number<int>() == 3;
      },
      milliseconds(3000)))
      << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  std::string why;
  auto v = ParseJson(r.body, &why);
  ASSERT_TRUE(v) << why << ": " << r.body;
  const auto& conns = v->as_object().at("connections").as_array();
  ASSERT_EQ(conns.size(), 3u);
  const auto* h = FindByName(conns, kHostileName);
  ASSERT_NE(h, nullptr) << "the hostile client_name did not survive the JSON round trip: "
                        << r.body;
  EXPECT_EQ(StringField(*h, "user"), ServerProcess::kUser);
  EXPECT_EQ(StringField(*h, "state"), "ready");
  EXPECT_EQ(h->at("subscriptions").to_number<int>(), 1);
  const auto& topics = h->at("subs").as_array().at(0).as_object().at("topics").as_array();
  EXPECT_EQ(topics.size(), 2u);
  EXPECT_GT(h->at("bytes_in").to_number<std::uint64_t>(), 0u);
  EXPECT_TRUE(StringField(*h, "remote").starts_with("127.0.0.1:"));
  const auto* f = FindByName(conns, "");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(StringField(*f, "state"), "awaiting_auth");

  // Sorting (largest first) and paging.
  r = HttpGet(port, "/connz?sort=bytes_in&limit=1");
  v = ParseJson(r.body);
  ASSERT_TRUE(v) << r.body;
  EXPECT_EQ(v->as_object().at("total").to_number<int>(), 3);
  ASSERT_EQ(v->as_object().at("connections").as_array().size(), 1u);
  const auto& top = v->as_object().at("connections").as_array().at(0).as_object();
  EXPECT_EQ(StringField(top, "client_name"), "tickwire-integration-test");  // 100 heartbeats in
  EXPECT_FALSE(top.contains("subs"));
  r = HttpGet(port, "/connz?sort=id&offset=2");
  v = ParseJson(r.body);
  ASSERT_TRUE(v) << r.body;
  EXPECT_EQ(v->as_object().at("connections").as_array().size(), 1u);

  for (const char* bad :
       {"/connz?sort=nope", "/connz?limit=0", "/connz?limit=x", "/connz?what=1"}) {
    r = HttpGet(port, bad);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_TRUE(ParseJson(r.body)) << r.body;
  }
}

// /connz?subs=1 copied every topic of every connection (8 MB for limit=1); now only the page's
// connections are described, with a bounded number of topic names and each subscription's
// topic_count.
TEST_F(ObservabilityTest, ConnzSubscriptionDetailsArePagedAndCapped) {
  ASSERT_TRUE(Start());
  const auto port = server_->metrics_port();
  RawClient big;
  ASSERT_TRUE(ConnectAuthed(big));
  std::vector<std::string> many;
  for (int i = 0; i < 600; ++i) many.push_back(Topic("t" + std::to_string(i)));
  ASSERT_TRUE(big.Subscribe(1, v1::MODE_TICK, many));
  ASSERT_TRUE(big.Subscribe(2, v1::MODE_SECOND, {many.begin(), many.begin() + 300}));
  ASSERT_TRUE(big.Subscribe(3, v1::MODE_MINUTE, {"*"}));
  RawClient small;
  ASSERT_TRUE(ConnectAuthed(small));
  ASSERT_TRUE(small.Subscribe(1, v1::MODE_TICK, {Topic("only")}));

  auto subs_of = [&](const std::string& target) {
    const HttpResult r = HttpGet(port, target);
    EXPECT_EQ(r.status, 200u) << target << ": " << r.body;
    auto v = ParseJson(r.body);
    EXPECT_TRUE(v) << r.body;
    if (!v) return boost::json::array{};
    EXPECT_EQ(v->as_object().at("total").to_number<int>(), 2) << r.body;
    const auto& conns = v->as_object().at("connections").as_array();
    EXPECT_EQ(conns.size(), 1u) << r.body;
    if (conns.empty()) return boost::json::array{};
    return conns[0].as_object().at("subs").as_array();
  };
  auto count_and_shown = [](const boost::json::value& sub) {
    const auto& o = sub.as_object();
    return std::make_pair(o.at("topic_count").to_number<int>(),
                          static_cast<int>(o.at("topics").as_array().size()));
  };
  // The default: 16 names per subscription.
  auto subs = subs_of("/connz?subs=1&sort=subs&limit=1");
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(count_and_shown(subs[0]), std::make_pair(600, 16));
  EXPECT_EQ(count_and_shown(subs[1]), std::make_pair(300, 16));
  EXPECT_EQ(count_and_shown(subs[2]), std::make_pair(1, 1));
  EXPECT_EQ(subs[2].as_object().at("topics").as_array()[0].as_string(), "*");
  // At most 256 names per connection, whatever sub_topics asks for.
  subs = subs_of("/connz?subs=1&sort=subs&limit=1&sub_topics=256");
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(count_and_shown(subs[0]), std::make_pair(600, 256));
  EXPECT_EQ(count_and_shown(subs[1]), std::make_pair(300, 0));
  EXPECT_EQ(count_and_shown(subs[2]), std::make_pair(1, 0));
  // The next page is the small connection alone.
  subs = subs_of("/connz?subs=1&sort=subs&limit=1&offset=1");
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(count_and_shown(subs[0]), std::make_pair(1, 1));
  // Pages with details are at most 100 connections.
  const HttpResult r = HttpGet(port, "/connz?subs=1&limit=101");
  EXPECT_EQ(r.status, 400u) << r.body;
}

TEST_F(ObservabilityTest, LogsStayJsonWithHostileStringsAndNeverCarryPasswords) {
  const std::string right = "right-CANARY-pass";
  ASSERT_TRUE(Start({{"STREAM_PASS", right}}));
  {
    RawClient c;
    ASSERT_TRUE(Connect(c));
    v1::Auth auth;
    auth.set_username(kHostileName);
    auth.set_password("wrong-CANARY-pass");
    auth.set_client_name(kHostileName);
    ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
    ASSERT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
  }
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(right);
  auth.set_client_name(kHostileName);
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  ASSERT_TRUE(c.ReadMessage(FrameType::kAuthOk, static_cast<v1::AuthOk*>(nullptr)));
  v1::Subscribe sub;
  sub.set_request_id(3);
  sub.set_mode(v1::MODE_TICK);
  sub.add_topics(kHostileTopic);
  ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
  ASSERT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 3u));
  v1::Publish pub;
  pub.set_request_id(4);
  *pub.add_ticks() = MakeTick(kHostileTopic, 1, 1);
  ASSERT_TRUE(c.SendFrame(FrameType::kPublish, pub));
  ASSERT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false, 4u));
  c.Close();
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"client_closed\"}", 1));
  ASSERT_EQ(server_->Stop(), 0);

  const std::string logs = server_->Logs();
  EXPECT_EQ(logs.find("CANARY"), std::string::npos) << logs;
  EXPECT_EQ(server_->Stderr().find("CANARY"), std::string::npos);
  const LogCheck check = CheckJsonLogLines(logs);
  ASSERT_TRUE(check.error.empty()) << check.error;
  int rejected_with_topic = 0;
  int hostile_names = 0;
  for (const auto& line : check.lines) {
    const std::string event = StringField(line, "event");
    if (event == "request_rejected" && StringField(line, "topic") == kHostileTopic) {
      ++rejected_with_topic;
    }
    if ((event == "auth_ok" || event == "conn_close") &&
        StringField(line, "client_name") == kHostileName) {
      ++hostile_names;
    }
    if (event == "conn_close") {
      for (const char* key : {"duration_ms", "bytes_in", "bytes_out"}) {
        EXPECT_TRUE(line.contains(key)) << key << " missing in a close line";
      }
      EXPECT_FALSE(StringField(line, "reason").empty());
    }
  }
  EXPECT_EQ(rejected_with_topic, 2) << logs;  // the SUBSCRIBE and the PUBLISH
  EXPECT_EQ(hostile_names, 2) << logs;        // auth_ok and the close line of the accepted one
}

TEST_F(ObservabilityTest, NoisyLogLinesAreRateLimitedAndEverySuppressedLineIsCounted) {
  // Failed-AUTH budgets high enough that every attempt is checked (and logged).
  ASSERT_TRUE(Start({{"LOG_RATE_LIMIT", "3"},
                     {"AUTH_FAIL_BUDGET_ADDR", "1000"},
                     {"AUTH_FAIL_BUDGET_USER", "1000"}}));
  constexpr int kFailures = 25;
  for (int i = 0; i < kFailures; ++i) {
    RawClient c;
    ASSERT_TRUE(Connect(c));
    v1::Auth auth;
    auth.set_username(ServerProcess::kUser);
    auth.set_password("wrong");
    ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
    ASSERT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
  }
  EXPECT_TRUE(Reaches("auth_failures_total{reason=\"auth_failed\"}", kFailures));
  ASSERT_EQ(server_->Stop(), 0);
  const LogCheck check = CheckJsonLogLines(server_->Logs());
  ASSERT_TRUE(check.error.empty()) << check.error;
  const auto [written, suppressed] = CloseLines(check, "auth_failed", "auth");
  EXPECT_LT(written, static_cast<std::uint64_t>(kFailures));
  EXPECT_GT(suppressed, 0u);
  EXPECT_EQ(written + suppressed, static_cast<std::uint64_t>(kFailures));
}

// A stalled stdout (a pipe nobody reads) used to block every worker in write(2) while
// /healthz stayed 200. Now the workers keep serving, the lines that do not fit the log buffer
// are dropped and counted, and once stdout flows again a log_dropped line accounts for them.
TEST_F(ObservabilityTest, AStalledStdoutNeitherStopsTheServerNorLosesTrackOfDroppedLines) {
  EnvOverrides env = DefaultIntegrationEnv();
  env["LOG_RATE_LIMIT"] = "0";  // every close line is written (or dropped)
  server_ = std::make_unique<ServerProcess>(env);
  server_->StallStdout();
  ASSERT_TRUE(server_->Start()) << server_->error();

  // Each short connection logs conn_open and conn_close (about 400 bytes): a few thousand fill
  // the 4 KiB pipe and the 1 MiB log buffer.
  double dropped = 0;
  const auto deadline = steady_clock::now() + std::chrono::seconds(60);
  for (int round = 0; round < 40 && !(dropped > 0) && steady_clock::now() < deadline; ++round) {
    std::vector<RawClient> clients(200);
    for (auto& c : clients) ASSERT_TRUE(Connect(c));
    clients.clear();
    dropped = MetricValue(Scrape(), "log_lines_dropped_total");  // NaN while missing
  }

  // stdout is still stalled: clients are served as usual.
  RawClient consumer;
  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(consumer));
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {Topic()}));
  ASSERT_TRUE(ConnectAuthed(producer));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(Topic(), 100, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(consumer, 1, milliseconds(3000), d));
  EXPECT_EQ(HttpGet(server_->metrics_port(), "/healthz").status, 200u);
  ASSERT_GT(dropped, 0) << "the log buffer never filled";

  server_->ResumeStdout();
  EXPECT_TRUE(
      WaitUntil([&] { return server_->Logs().find("\"log_dropped\"") != std::string::npos; },
                milliseconds(10000)));
  consumer.Close();
  producer.Close();
  ASSERT_EQ(server_->Stop(), 0);
  const LogCheck check = CheckJsonLogLines(server_->Logs());
  ASSERT_TRUE(check.error.empty()) << check.error;
  std::uint64_t reported = 0;
  std::optional<std::uint64_t> at_exit;
  for (const auto& line : check.lines) {
    const std::string event = StringField(line, "event");
    if (event == "log_dropped") reported += line.at("dropped").to_number<std::uint64_t>();
    if (event == "server_exit") at_exit = line.at("log_lines_dropped").to_number<std::uint64_t>();
  }
  ASSERT_TRUE(at_exit.has_value()) << "the last lines were not flushed at exit";
  EXPECT_GE(*at_exit, static_cast<std::uint64_t>(dropped));
  EXPECT_EQ(reported, *at_exit) << "every dropped line is reported once";
}

// Closes a client chooses (it closes, before or after AUTH) were logged without a budget:
// about 3,000 lines a second from one unauthenticated client loop.
TEST_F(ObservabilityTest, ClientClosesAreRateLimitedToo) {
  ASSERT_TRUE(Start({{"LOG_RATE_LIMIT", "3"}}));
  constexpr int kEach = 20;
  for (int i = 0; i < kEach; ++i) {
    RawClient before_auth;
    ASSERT_TRUE(Connect(before_auth));
    RawClient after_auth;
    ASSERT_TRUE(ConnectAuthed(after_auth));
  }
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"client_closed\"}", 2 * kEach));
  ASSERT_EQ(server_->Stop(), 0);
  const LogCheck check = CheckJsonLogLines(server_->Logs());
  ASSERT_TRUE(check.error.empty()) << check.error;
  const auto [written, suppressed] = CloseLines(check, "client_closed", "disconnect");
  EXPECT_LT(written, static_cast<std::uint64_t>(2 * kEach));
  EXPECT_EQ(written + suppressed, static_cast<std::uint64_t>(2 * kEach));
}

// 64 idle connections used to fill the operations endpoint and fail /healthz and /readyz for
// 21 s. Hundreds of idle connections and slow half-requests from the probes' own address now
// only displace each other.
TEST_F(ObservabilityTest, ProbesAnswerWhileHundredsOfConnectionsHoldTheMetricsPort) {
  ASSERT_TRUE(Start());
  const auto port = server_->metrics_port();
  constexpr int kIdle = 300;
  constexpr int kSlow = 50;
  std::vector<RawClient> holders(kIdle + kSlow);
  for (int i = 0; i < kIdle + kSlow; ++i) {
    ASSERT_TRUE(holders[static_cast<std::size_t>(i)].Connect(port));
    if (i >= kIdle) {
      holders[static_cast<std::size_t>(i)].SendBytes("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    }
  }
  for (const char* probe : {"/healthz", "/readyz", "/healthz", "/readyz"}) {
    const HttpResult r = HttpGet(port, probe, milliseconds(1000));
    EXPECT_EQ(r.status, 200u) << probe << ": " << r.error;
  }
  const Metrics m = Scrape();
  // At most 32 from one address: the rest made room for later ones, probes included.
  EXPECT_GE(Get(m, "http_connections_dropped_total{reason=\"evicted\"}"), kIdle + kSlow - 32);
  EXPECT_LE(Get(m, "http_connections"), 32);
  EXPECT_EQ(Get(m, "http_connections_dropped_total{reason=\"refused\"}"), 0);
}

TEST_F(ObservabilityTest, LateTicksAndBarsAreCountedByInterval) {
  ASSERT_TRUE(Start({{"BAR_CLOSE_DELAY_MS", "50"}}));
  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(producer));
  // Two minutes old: late for its second and for its minute. The second tick is on time.
  ASSERT_TRUE(producer.PublishAcked(
      1, {MakeTick(Topic(), 1, 1, NowNs() - 120'000'000'000LL), MakeTick(Topic(), 2, 1)}));
  EXPECT_TRUE(Reaches("late_ticks_total{interval=\"second\"}", 1));
  EXPECT_TRUE(Reaches("late_ticks_total{interval=\"minute\"}", 1));
  EXPECT_TRUE(Reaches("bars_closed_total{interval=\"second\"}", 1));
}

TEST_F(ObservabilityTest, RejectedConnectionsAreCountedByLimit) {
  ASSERT_TRUE(Start({{"MAX_UNAUTH_CONNECTIONS", "1"}, {"MAX_CONNECTIONS", "2"}}));
  RawClient holder;
  ASSERT_TRUE(Connect(holder));
  ASSERT_TRUE(
      WaitUntil([&] { return Get(Scrape(), "active_connections") == 1; }, milliseconds(5000)));
  RawClient newer;
  ASSERT_TRUE(Connect(newer));
  EXPECT_TRUE(holder.ExpectClosed(milliseconds(3000)));
  ASSERT_TRUE(newer.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  RawClient authed;
  ASSERT_TRUE(ConnectAuthed(authed));
  RawClient extra;  // the third open connection
  ASSERT_TRUE(Connect(extra));
  EXPECT_TRUE(extra.ExpectClosed(milliseconds(3000)));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "connections_rejected_total{limit=\"max_unauth_connections\"}"), 1);
  EXPECT_EQ(Get(m, "connections_rejected_total{limit=\"max_connections\"}"), 1);
  EXPECT_EQ(Get(m, "connections_rejected_total{limit=\"max_unauth_per_source\"}"), 0);
}

// docs/METRICS.md documents every metric family the server exports, and lists exactly the
// close reasons that connection_drops_total is exported with.
TEST_F(ObservabilityTest, MetricsDocMatchesTheExport) {
  const std::string doc =
      ReadSourceFile(std::filesystem::path(TICKWIRE_SOURCE_DIR) / "docs/METRICS.md");
  ASSERT_FALSE(doc.empty());
  ASSERT_TRUE(Start());
  const HttpResult r = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(r.status, 200u) << r.error;
  std::istringstream lines(r.body);
  std::size_t families = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("# TYPE ")) continue;
    const std::string family = line.substr(7, line.find(' ', 7) - 7);
    ++families;
    EXPECT_NE(doc.find("`" + family + "`"), std::string::npos)
        << family << " is not in docs/METRICS.md";
  }
  EXPECT_GT(families, 20u);

  std::set<std::string> exported;
  const std::string prefix = "connection_drops_total{reason=\"";
  for (const auto& [series, value] : ParseMetrics(r.body)) {
    if (series.starts_with(prefix)) {
      exported.insert(series.substr(prefix.size(), series.size() - prefix.size() - 2));
    }
  }
  const auto row = doc.find("| `connection_drops_total` |");
  ASSERT_NE(row, std::string::npos);
  const std::string row_text = doc.substr(row, doc.find('\n', row) - row);
  const auto list = row_text.find("by close reason:");
  ASSERT_NE(list, std::string::npos) << row_text;
  EXPECT_EQ(QuotedNames(row_text.substr(list)), exported) << row_text;
  EXPECT_EQ(exported.size(), 18u);
}

// Family names of a scrape (its "# TYPE" lines), in order.
std::vector<std::string> Families(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# TYPE ")) out.push_back(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

// METRICS_PREFIX renames every family and nothing else; without it the names are the
// documented ones (the deploy/ alert rules and dashboard rely on them).
TEST_F(ObservabilityTest, MetricsPrefixGoesBeforeEveryFamilyName) {
  ASSERT_TRUE(Start());
  const HttpResult plain = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(plain.status, 200u) << plain.error;
  const std::vector<std::string> names = Families(plain.body);
  ASSERT_GT(names.size(), 20u);
  for (const auto& n : names) EXPECT_FALSE(n.starts_with("tickwire_")) << n;
  EXPECT_NE(std::find(names.begin(), names.end(), "active_connections"), names.end());
  ASSERT_EQ(server_->Stop(milliseconds(5000)), 0);

  ASSERT_TRUE(Start({{"METRICS_PREFIX", "tickwire_"}}));
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  const HttpResult prefixed = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_EQ(prefixed.status, 200u) << prefixed.error;
  std::vector<std::string> stripped;
  for (const auto& n : Families(prefixed.body)) {
    ASSERT_TRUE(n.starts_with("tickwire_")) << n;
    stripped.push_back(n.substr(9));
  }
  EXPECT_EQ(stripped, names);
  // Samples carry the prefix too, with their values and labels unchanged.
  const Metrics m = ParseMetrics(prefixed.body);
  EXPECT_EQ(Get(m, "tickwire_active_connections"), 1);
  bool bucket = false;
  for (const auto& [series, value] : m) {
    EXPECT_TRUE(series.starts_with("tickwire_")) << series;
    bucket = bucket || series.starts_with("tickwire_publish_latency_ms_bucket{");
  }
  EXPECT_TRUE(bucket);
  if (InPath("promtool")) {
    const CommandResult check = RunCommand({"promtool", "check", "metrics"}, prefixed.body);
    EXPECT_TRUE(check.exit_code == 0 || check.exit_code == 3) << check.output;
  }
}

// The log events table of docs/METRICS.md lists exactly the events the server's code writes.
TEST_F(ObservabilityTest, LogEventsTableListsEveryEventTheCodeWrites) {
  const std::string doc =
      ReadSourceFile(std::filesystem::path(TICKWIRE_SOURCE_DIR) / "docs/METRICS.md");
  const auto table = doc.find("| event | level | when | fields |");
  ASSERT_NE(table, std::string::npos);
  std::set<std::string> documented;
  std::istringstream rows(doc.substr(table, doc.find("\n\n", table) - table));
  for (std::string row; std::getline(rows, row);) {
    const auto first = row.find('|', 1);
    if (first == std::string::npos) continue;
    for (const auto& name : QuotedNames(row.substr(0, first))) documented.insert(name);
  }
  const std::set<std::string> in_code = LogEventsInCode();
  EXPECT_GT(in_code.size(), 30u) << "the scan of src/ found too few events";
  for (const auto& event : in_code) {
    EXPECT_TRUE(documented.contains(event)) << event << " is written by the server but not in "
                                            << "the log events table of docs/METRICS.md";
  }
  for (const auto& event : documented) {
    EXPECT_TRUE(in_code.contains(event)) << event << " is in the log events table but the "
                                         << "server's code does not write it";
  }
}

}  // namespace
}  // namespace tickwire::testing
