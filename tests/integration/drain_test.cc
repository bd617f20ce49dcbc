// Graceful drain on SIGTERM: not ready at once, SERVER_DRAINING spread over DRAIN_PERIOD, queued
// records flushed first, no new connections, exit 0 within DRAIN_DEADLINE even when a client
// does not read; DRAIN_PERIOD and DRAIN_DEADLINE reload on SIGHUP.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "integration/integration_test.h"
#include "support/http_client.h"
#include "support/json.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class DrainTest : public IntegrationTest {};

struct ConsumerResult {
  std::size_t ticks = 0;
  bool drained = false;  // got ERROR{SERVER_DRAINING, fatal}
  bool closed = false;   // and then the close
  std::uint32_t retry_after_ms = 0;
  steady_clock::time_point at{};
  std::string problem;
};

// Reads DATA_BATCH frames until ERROR{SERVER_DRAINING}, then expects the close.
void Consume(RawClient& c, ConsumerResult& out) {
  while (true) {
    const ReadResult r = c.ReadFrame(milliseconds(8000));
    if (!r.ok()) {
      out.problem = std::string("read ") + std::string(ReadStatusName(r.status)) + " " + r.detail;
      return;
    }
    if (auto batch = DecodeBatch(r.frame)) {
      out.ticks += batch->ticks.size();
      continue;
    }
    if (r.frame.frame_type() != FrameType::kError) {
      out.problem = "unexpected " + DescribeFrame(r.frame);
      return;
    }
    v1::Error e;
    e.ParseFromString(r.frame.payload);
    out.at = steady_clock::now();
    out.drained = e.code() == v1::SERVER_DRAINING && e.fatal();
    out.retry_after_ms = e.retry_after_ms();
    out.closed = c.ExpectClosed(milliseconds(3000));
    return;
  }
}

TEST_F(DrainTest, SigtermDrainsSpreadOverThePeriodFlushesAndExitsZero) {
  constexpr auto kPeriod = milliseconds(1500);
  ASSERT_TRUE(
      Start({{"DRAIN_PERIOD", "1500ms"}, {"DRAIN_DEADLINE", "6s"}, {"BATCH_WINDOW_MS", "400"}}));
  constexpr int kConsumers = 8;
  constexpr int kTicks = 10;
  std::vector<RawClient> consumers(kConsumers);
  for (auto& c : consumers) {
    ASSERT_TRUE(ConnectAuthed(c));
    ASSERT_TRUE(c.Subscribe(1, v1::MODE_TICK, {Topic()}));
  }
  RawClient pre_auth;  // connected, not yet authenticated: told too
  ASSERT_TRUE(Connect(pre_auth));
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(pub));
  std::vector<v1::Tick> ticks;
  for (int i = 0; i < kTicks; ++i) ticks.push_back(MakeTick(Topic(), 10 + i, 1));
  ASSERT_TRUE(pub.PublishAcked(1, ticks));
  // PUBLISH_ACK means applied by the owner shard; the hand-over to the consumers' workers
  // follows. Give it a moment (well inside the 400 ms window): then the ticks wait in each
  // consumer's open DATA_BATCH, and those drained first (before their window ends) show that
  // the drain flushes it.
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_EQ(HttpGet(server_->metrics_port(), "/readyz").status, 200u);
  const auto sigterm = steady_clock::now();
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);

  std::vector<ConsumerResult> results(kConsumers + 2);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConsumers; ++i) {
    threads.emplace_back([&, i] {
      Consume(consumers[static_cast<std::size_t>(i)], results[static_cast<std::size_t>(i)]);
    });
  }
  threads.emplace_back([&] { Consume(pre_auth, results[kConsumers]); });
  threads.emplace_back([&] { Consume(pub, results[kConsumers + 1]); });

  // Not ready (a load balancer takes it out of rotation) and not accepting any more (give the
  // signal a moment to be taken). The operations endpoint answers until the drain ends.
  std::this_thread::sleep_for(milliseconds(200));
  const HttpResult ready = HttpGet(server_->metrics_port(), "/readyz");
  EXPECT_EQ(ready.status, 503u) << ready.error;
  EXPECT_TRUE(ready.body.starts_with("not ready")) << ready.body;
  RawClient late;
  if (late.Connect(server_->port())) {
    EXPECT_TRUE(late.ExpectClosed(milliseconds(3000))) << "a connection after SIGTERM is refused";
  }

  for (auto& t : threads) t.join();
  const auto code = server_->WaitForExit(milliseconds(6000));
  const auto exited = steady_clock::now();
  ASSERT_TRUE(code.has_value()) << "no exit within the drain deadline";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(exited - sigterm, milliseconds(4000)) << "exits once everyone is drained";

  steady_clock::time_point first = steady_clock::time_point::max();
  steady_clock::time_point last = steady_clock::time_point::min();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    SCOPED_TRACE("client " + std::to_string(i));
    EXPECT_TRUE(r.problem.empty()) << r.problem;
    EXPECT_TRUE(r.drained);
    EXPECT_TRUE(r.closed);
    EXPECT_GE(r.retry_after_ms, 100u);
    EXPECT_LT(r.retry_after_ms, 1000u);
    if (i < kConsumers) {
      EXPECT_EQ(r.ticks, static_cast<std::size_t>(kTicks)) << "queued records come first";
    }
    first = std::min(first, r.at);
    last = std::max(last, r.at);
  }
  // Spread over the period (10 connections on 2 workers: 5 each, 300 ms apart), not all at once,
  // and none after it.
  EXPECT_GE(last - first, milliseconds(700));
  EXPECT_LE(last - sigterm, kPeriod + milliseconds(500));
  const std::string logs = server_->Logs();
  EXPECT_NE(logs.find("server_drain"), std::string::npos);
  EXPECT_NE(logs.find("\"connections_left\":0"), std::string::npos) << logs;
}

// A rolling restart with a replicated feed: the producer publishes every tick to two instances;
// a consumer of the first, drained mid-stream, resumes on the second with since_ms and misses
// nothing (duplicates from the overlap are allowed; gaps are not).
TEST_F(DrainTest, ConsumerResumesOnAnotherInstanceWithSinceMs) {
  ASSERT_TRUE(Start({{"DRAIN_PERIOD", "300ms"}, {"DRAIN_DEADLINE", "5s"}}));
  EnvOverrides env_b = DefaultIntegrationEnv();
  ServerProcess b(env_b);
  ASSERT_TRUE(b.Start()) << b.error();
  const std::string topic = Topic();
  constexpr int kTicks = 300;

  RawClient consumer;
  ASSERT_TRUE(ConnectAuthed(consumer));
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {topic}));
  RawClient pub_a;
  RawClient pub_b;
  ASSERT_TRUE(ConnectAuthed(pub_a));
  ASSERT_TRUE(pub_b.Connect(b.port()));
  ASSERT_TRUE(pub_b.Authenticate(ServerProcess::kUser, ServerProcess::kPass));

  std::atomic<bool> producer_ok{true};
  std::thread producer([&] {
    bool a_open = true;
    const std::int64_t base_ns = NowNs() - 2'000'000'000;  // event times: 2 ms apart, in the past
    for (int i = 1; i <= kTicks; ++i) {
      const auto tick = MakeTick(topic, i, 1, base_ns + std::int64_t{i} * 2'000'000);
      v1::Publish p;
      p.set_request_id(static_cast<std::uint32_t>(i));
      *p.add_ticks() = tick;
      if (a_open && !pub_a.SendFrame(FrameType::kPublish, p)) a_open = false;
      if (!pub_b.PublishAcked(static_cast<std::uint32_t>(i), {tick})) producer_ok = false;
      if (i == 100 && kill(server_->pid(), SIGTERM) != 0) producer_ok = false;
      std::this_thread::sleep_for(milliseconds(2));
    }
  });

  // On A until SERVER_DRAINING.
  std::set<int> prices;
  std::int64_t last_ts_ns = 0;
  bool drained = false;
  while (!drained) {
    const ReadResult r = consumer.ReadFrame(milliseconds(5000));
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status);
    if (auto batch = DecodeBatch(r.frame)) {
      for (const auto& t : batch->ticks) {
        prices.insert(static_cast<int>(t.price()));
        last_ts_ns = std::max(last_ts_ns, t.ts_ns());
      }
      continue;
    }
    ASSERT_EQ(r.frame.frame_type(), FrameType::kError) << DescribeFrame(r.frame);
    v1::Error e;
    e.ParseFromString(r.frame.payload);
    ASSERT_EQ(e.code(), v1::SERVER_DRAINING);
    drained = true;
  }
  ASSERT_FALSE(prices.empty());
  EXPECT_LT(prices.size(), static_cast<std::size_t>(kTicks)) << "drained mid-stream";

  // Reconnect to B and resume from the last record seen.
  RawClient resumed;
  ASSERT_TRUE(resumed.Connect(b.port()));
  ASSERT_TRUE(resumed.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  v1::Subscribe sub;
  sub.set_request_id(2);
  sub.set_mode(v1::MODE_TICK);
  sub.add_topics(topic);
  sub.set_since_ms(last_ts_ns / 1'000'000);
  ASSERT_TRUE(resumed.SendFrame(FrameType::kSubscribe, sub));
  v1::SubscribeOk ok;
  ASSERT_TRUE(resumed.ReadMessage(FrameType::kSubscribeOk, &ok));
  const auto deadline = steady_clock::now() + milliseconds(10000);
  while (!prices.contains(kTicks) && steady_clock::now() < deadline) {
    const ReadResult r = resumed.ReadFrame(Remaining(deadline));
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status);
    auto batch = DecodeBatch(r.frame);
    ASSERT_TRUE(batch) << DescribeFrame(r.frame);
    for (const auto& t : batch->ticks) prices.insert(static_cast<int>(t.price()));
  }
  producer.join();
  EXPECT_TRUE(producer_ok.load());
  for (int i = 1; i <= kTicks; ++i) EXPECT_TRUE(prices.contains(i)) << "missed tick " << i;
  EXPECT_EQ(server_->WaitForExit(milliseconds(5000)), 0);
}

TEST_F(DrainTest, DeadlineBoundsExitWhenAClientDoesNotRead) {
  ASSERT_TRUE(Start({{"DRAIN_PERIOD", "200ms"},
                     {"DRAIN_DEADLINE", "1500ms"},
                     {"WRITE_DEADLINE_MS", "60000"},
                     {"SO_SNDBUF", "4096"},
                     {"BATCH_WINDOW_MS", "0"}}));
  RawClient stuck;
  stuck.SetReceiveBuffer(4096);
  ASSERT_TRUE(ConnectAuthed(stuck));
  ASSERT_TRUE(stuck.Subscribe(1, v1::MODE_TICK, {Topic()}));
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(pub));
  for (int round = 0; round < 20; ++round) {
    std::vector<v1::Tick> ticks;
    for (int i = 0; i < 500; ++i) ticks.push_back(MakeTick(Topic(), i, 1));
    ASSERT_TRUE(pub.PublishAcked(static_cast<std::uint32_t>(round + 1), ticks));
  }
  const auto sigterm = steady_clock::now();
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  const auto code = server_->WaitForExit(milliseconds(10000));
  const auto took = steady_clock::now() - sigterm;
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_GE(took, milliseconds(1300)) << "waited for the stuck client until the deadline";
  // The deadline plus stopping the workers (generous: sanitizer builds on a loaded machine).
  EXPECT_LT(took, milliseconds(6000));
  EXPECT_NE(server_->Logs().find("drain deadline reached"), std::string::npos);
}

TEST_F(DrainTest, SighupReloadsDrainPeriodAndDeadline) {
  TempDir dir;
  const std::string conf = dir.File("tickwire.conf");
  { std::ofstream(conf) << "DRAIN_PERIOD=10s\nDRAIN_DEADLINE=30s\n"; }
  ASSERT_TRUE(Start({{"CONFIG_FILE", conf}, {"DRAIN_PERIOD", std::nullopt}}));
  std::vector<RawClient> clients(4);
  for (auto& c : clients) ASSERT_TRUE(ConnectAuthed(c));
  { std::ofstream(conf, std::ios::trunc) << "DRAIN_PERIOD=300ms\nDRAIN_DEADLINE=5s\n"; }
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return server_->Logs().find("\"event\":\"reload\"") != std::string::npos; },
                milliseconds(5000)));
  EXPECT_EQ(server_->Logs().find("reload_needs_restart"), std::string::npos);

  // The old period would spread the clients over 10 s; the new one tells them all within 300 ms.
  const auto t0 = steady_clock::now();
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  for (auto& c : clients) {
    EXPECT_TRUE(c.ExpectFatal(v1::SERVER_DRAINING, nullptr, milliseconds(3000)));
  }
  const auto code = server_->WaitForExit(milliseconds(5000));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(steady_clock::now() - t0, milliseconds(3000));
  const LogCheck check = CheckJsonLogLines(server_->Logs());
  ASSERT_TRUE(check.error.empty()) << check.error;
  bool drain_line = false;
  for (const auto& line : check.lines) {
    if (StringField(line, "event") != "server_drain") continue;
    drain_line = true;
    EXPECT_EQ(line.at("drain_period_ms").to_number<std::int64_t>(), 300);
    EXPECT_EQ(line.at("drain_deadline_ms").to_number<std::int64_t>(), 5000);
  }
  EXPECT_TRUE(drain_line) << server_->Logs();
}

TEST_F(DrainTest, SecondSignalHurries) {
  ASSERT_TRUE(Start({{"DRAIN_PERIOD", "10s"}, {"DRAIN_DEADLINE", "30s"}}));
  std::vector<RawClient> clients(6);
  for (auto& c : clients) ASSERT_TRUE(ConnectAuthed(c));
  const auto t0 = steady_clock::now();
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_EQ(kill(server_->pid(), SIGINT), 0);
  const auto code = server_->WaitForExit(milliseconds(5000));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(steady_clock::now() - t0, milliseconds(3000));
  for (auto& c : clients)
    EXPECT_TRUE(c.ExpectFatal(v1::SERVER_DRAINING, nullptr, milliseconds(1000)));
}

}  // namespace
}  // namespace tickwire::testing
