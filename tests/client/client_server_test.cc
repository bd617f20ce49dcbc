// Client library against the real tickwire-server (ServerProcess). Skipped when the build has no
// server binary.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "client/client.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace tickwire::client {
namespace {

using std::chrono::milliseconds;
using tickwire::testing::ServerProcess;

constexpr milliseconds kWait{5000};

class ClientServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ServerProcess::BinaryPath().empty()) GTEST_SKIP() << "no tickwire-server in this build";
    server_ = std::make_unique<ServerProcess>(tickwire::testing::EnvOverrides{
        {"HEARTBEAT_INTERVAL", "100ms"}, {"HEARTBEAT_TIMEOUT", "2s"}, {"BATCH_WINDOW_MS", "1"}});
    ASSERT_TRUE(server_->Start()) << server_->error();
  }

  ClientOptions Options(const std::string& name) const {
    ClientOptions o;
    o.port = server_->port();
    o.username = ServerProcess::kUser;
    o.password = ServerProcess::kPass;
    o.client_name = name;
    o.connect_timeout = kWait;
    o.request_timeout = kWait;
    return o;
  }

  std::unique_ptr<Client> Connect(const std::string& name) {
    auto r = Client::Connect(Options(name));
    if (!r.ok()) {
      ADD_FAILURE() << r.error().ToString() << "\n" << server_->Describe();
      return nullptr;
    }
    return std::move(r).value();
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ClientServerTest, AuthOkParameters) {
  auto c = Connect("params");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->auth_info().heartbeat_interval_ms, 100u);
  EXPECT_EQ(c->auth_info().heartbeat_timeout_ms, 2000u);
  EXPECT_EQ(c->auth_info().batch_window_ms, 1u);
  EXPECT_FALSE(c->auth_info().session_id.empty());
}

TEST_F(ClientServerTest, WrongPasswordIsAuthFailed) {
  auto o = Options("bad");
  o.password = "wrong";
  auto r = Client::Connect(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kServer) << r.error().ToString();
  EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(r.error().fatal);
}

TEST_F(ClientServerTest, PublishedTicksReachSubscriber) {
  auto sub = Connect("sub");
  auto pub = Connect("pub");
  ASSERT_TRUE(sub && pub);
  auto id = sub->Subscribe(Mode::kTick, {"client.test"});
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  std::vector<Tick> ticks = {{"client.test", 10, 1, 0, 0, 0}, {"client.test", 11, 2, 0, 0, 0}};
  auto acc = pub->Publish(ticks, true);
  ASSERT_TRUE(acc.ok()) << acc.error().ToString();
  EXPECT_EQ(acc.value(), 2u);
  std::vector<Tick> got;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    auto ev = sub->Next(tickwire::testing::Remaining(deadline));
    ASSERT_TRUE(ev);
    auto* b = std::get_if<Batch>(&*ev);
    ASSERT_NE(b, nullptr) << (std::holds_alternative<Error>(*ev) ? std::get<Error>(*ev).ToString()
                                                                 : std::string("closed"));
    for (auto& r : b->records) got.push_back(std::get<Tick>(r));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].price, 10);
  EXPECT_EQ(got[1].price, 11);
  EXPECT_EQ(got[1].prev_seq, got[0].seq);
  EXPECT_GT(got[0].ts_ns, 0);  // stamped by the server
  EXPECT_EQ(sub->stats().batch_gaps, 0u);
}

TEST_F(ClientServerTest, InvalidTopicIsRequestError) {
  auto c = Connect("bad-topic");
  ASSERT_TRUE(c);
  auto r = c->Subscribe(Mode::kTick, {"no spaces allowed"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << r.error().ToString();
  EXPECT_FALSE(r.error().fatal);
  EXPECT_FALSE(c->closed());
  // The connection still works.
  EXPECT_TRUE(c->Subscribe(Mode::kSecond, {"*"}).ok());
}

TEST_F(ClientServerTest, InvalidTickIsRejected) {
  auto c = Connect("bad-tick");
  ASSERT_TRUE(c);
  std::vector<Tick> ticks = {{"ok", 1, 1, 0, 0, 0}, {"ok", 1, -1, 0, 0, 0}};
  auto r = c->Publish(ticks, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidRequest) << r.error().ToString();
}

TEST(ClientTopicLimitTest, RefusedTicksAreReportedAndTheAckCountsTheAppliedOnes) {
  if (ServerProcess::BinaryPath().empty()) GTEST_SKIP() << "no tickwire-server in this build";
  ServerProcess server({{"MAX_TOPICS", "2"}, {"WORKERS", "1"}});
  ASSERT_TRUE(server.Start()) << server.error();
  ClientOptions o;
  o.port = server.port();
  o.username = ServerProcess::kUser;
  o.password = ServerProcess::kPass;
  o.connect_timeout = kWait;
  o.request_timeout = kWait;
  auto c = Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  // Server-stamped ticks keep their bars open: the first two topics fill the cap, the rest are
  // refused. The PUBLISH_ACK still answers the request, with the ticks applied.
  std::vector<Tick> ticks;
  for (int i = 0; i < 5; ++i) ticks.push_back({"cap." + std::to_string(i), 1, 1, 0, 0, 0});
  auto r = c.value()->Publish(ticks, true);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r.value(), 2u);
  // The ERROR TOPIC_LIMIT that said why arrives as an event, non-fatal.
  auto ev = c.value()->Next(kWait);
  ASSERT_TRUE(ev);
  auto* e = std::get_if<Error>(&*ev);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, ErrorCode::kTopicLimit) << e->ToString();
  EXPECT_FALSE(e->fatal);
  EXPECT_NE(e->message.find("3 of 5 ticks"), std::string::npos) << e->message;
  EXPECT_EQ(ErrorCodeName(e->code), "TOPIC_LIMIT");
  EXPECT_FALSE(c.value()->closed());
}

TEST_F(ClientServerTest, HeartbeatsKeepConnectionAlive) {
  auto c = Connect("alive");
  ASSERT_TRUE(c);
  // Longer than HEARTBEAT_TIMEOUT (2 s): the client's heartbeats must keep it open.
  const auto until = std::chrono::steady_clock::now() + milliseconds(2600);
  while (std::chrono::steady_clock::now() < until) {
    auto ev = c->Next(tickwire::testing::Remaining(until));
    if (ev) FAIL() << "unexpected event; closed=" << c->closed();
  }
  EXPECT_FALSE(c->closed());
  EXPECT_GE(c->stats().heartbeats_sent, 10u);
}

TEST_F(ClientServerTest, DrainingServerReportsFatalError) {
  auto c = Connect("drain");
  ASSERT_TRUE(c);
  server_->Stop();
  ASSERT_TRUE(tickwire::testing::WaitUntil([&] { return c->closed(); }, kWait));
  auto reason = c->close_reason();
  ASSERT_TRUE(reason);
  // SERVER_DRAINING per the contract; a plain close if the server skipped it.
  EXPECT_TRUE(reason->code == ErrorCode::kServerDraining || reason->kind == ErrorKind::kIo)
      << reason->ToString();
}

// Reconnect through a real server restart on the same port: the old server drains
// (SERVER_DRAINING, retry_after_ms), the client waits, re-AUTHs, resumes its subscription, and
// ticks of the new server (numbered from 1 again) reach it with nothing dropped.
TEST_F(ClientServerTest, ReconnectsAcrossAServerRestartAndResumes) {
  std::mutex mu;
  std::vector<ConnectionEvent> events;
  auto o = Options("resume");
  o.reconnect.enabled = true;
  o.reconnect.initial_backoff = milliseconds(20);
  o.reconnect.max_backoff = milliseconds(200);
  o.on_connection = [&](const ConnectionEvent& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  };
  auto r = Client::Connect(o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  auto sub = std::move(r).value();
  auto handle = sub->Subscribe(Mode::kTick, {"resume.a"});
  ASSERT_TRUE(handle.ok()) << handle.error().ToString();

  auto publish = [&](double price) {
    auto pub = Connect("pub");
    ASSERT_TRUE(pub);
    std::vector<Tick> ticks = {{"resume.a", price, 1, 0, 0, 0},
                               {"resume.a", price + 1, 1, 0, 0, 0}};
    auto acc = pub->Publish(ticks, true);
    ASSERT_TRUE(acc.ok()) << acc.error().ToString();
  };
  auto receive = [&](std::size_t n) {
    std::vector<Tick> got;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto ev = sub->Next(tickwire::testing::Remaining(deadline));
      if (!ev) break;
      if (auto* b = std::get_if<Batch>(&*ev)) {
        for (auto& rec : b->records) got.push_back(std::get<Tick>(rec));
      }
    }
    return got;
  };
  publish(10);
  auto before = receive(2);
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[1].seq, 2u);

  const std::uint16_t port = server_->port();
  EXPECT_EQ(server_->Stop(), 0);
  server_ = std::make_unique<ServerProcess>(
      tickwire::testing::EnvOverrides{{"HEARTBEAT_INTERVAL", "100ms"},
                                      {"HEARTBEAT_TIMEOUT", "2s"},
                                      {"BATCH_WINDOW_MS", "1"},
                                      {"LISTEN_ADDR", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(server_->Start()) << server_->error();
  // retry_after_ms is under 1 s: allow for it, the jitter on top, and the resume.
  ASSERT_TRUE(tickwire::testing::WaitUntil(
      [&] { return sub->stats().reconnects == 1 && sub->state() == ConnectionState::kOpen; },
      milliseconds(8000)))
      << "state " << ConnectionStateName(sub->state()) << "\n"
      << server_->Describe();
  publish(20);
  auto after = receive(2);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].price, 20);
  EXPECT_EQ(after[0].seq, 1u);  // the new server numbers the topic afresh
  EXPECT_EQ(after[1].price, 21);
  EXPECT_FALSE(sub->closed());
  const auto stats = sub->stats();
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_EQ(stats.duplicates_dropped, 0u);
  EXPECT_EQ(stats.tick_gaps, 0u);
  std::lock_guard lock(mu);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().type, ConnectionEvent::Type::kDisconnected);
  EXPECT_EQ(events.front().reason.code, ErrorCode::kServerDraining)
      << events.front().reason.ToString();
  EXPECT_EQ(events[1].type, ConnectionEvent::Type::kRetrying);
  // The server's retry_after_ms (spread over 100-999 ms by the drain) is honoured.
  EXPECT_GT(events.front().reason.retry_after_ms, 0u);
  EXPECT_GE(events[1].delay, milliseconds(events.front().reason.retry_after_ms));
  EXPECT_EQ(events.back().type, ConnectionEvent::Type::kReconnected);
  EXPECT_EQ(events.back().resubscribed, 1u);
}

// Resume against retained history: the server keeps running but drops the subscriber again and
// again (it never sends a HEARTBEAT, so HEARTBEAT_TIMEOUT closes it), while a producer keeps
// publishing. Through every reconnect the subscriber must see each record exactly once.
class ResumeTest : public ::testing::Test {
 protected:
  static constexpr int kTopics = 3;
  static constexpr auto kPublishFor = milliseconds(4000);

  void SetUp() override {
    if (ServerProcess::BinaryPath().empty()) GTEST_SKIP() << "no tickwire-server in this build";
    server_ = std::make_unique<ServerProcess>(tickwire::testing::EnvOverrides{
        {"HEARTBEAT_INTERVAL", "100ms"}, {"HEARTBEAT_TIMEOUT", "600ms"}, {"BATCH_WINDOW_MS", "1"}});
    ASSERT_TRUE(server_->Start()) << server_->error();
  }

  ClientOptions Options(const std::string& name) const {
    ClientOptions o;
    o.port = server_->port();
    o.username = ServerProcess::kUser;
    o.password = ServerProcess::kPass;
    o.client_name = name;
    o.connect_timeout = kWait;
    o.request_timeout = kWait;
    return o;
  }

  // A subscriber that never heartbeats: the server drops it every HEARTBEAT_TIMEOUT, and it
  // stays away for `outage` each time.
  // Reads ticks until every topic has `published` of them (or 10 s pass), handing each batch's
  // history ends to `on_end`, then checks each topic got seq 1, 2, 3, ... exactly once.
  template <typename OnEnd>
  void ExpectEveryTickOnce(Client& sub, std::uint64_t published, OnEnd on_end) {
    std::map<std::string, std::vector<std::uint64_t>> seqs;
    std::uint64_t total = 0;
    const auto deadline = std::chrono::steady_clock::now() + milliseconds(10'000);
    while (total < published * kTopics && std::chrono::steady_clock::now() < deadline) {
      auto ev = sub.Next(tickwire::testing::Remaining(deadline));
      if (!ev) break;
      if (auto* b = std::get_if<Batch>(&*ev)) {
        for (const auto& rec : b->records) {
          const auto& t = std::get<Tick>(rec);
          seqs[t.topic].push_back(t.seq);
          ++total;
        }
        for (const auto& e : b->history_ends) on_end(e);
      }
      ASSERT_FALSE(std::holds_alternative<Closed>(*ev));
    }
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kTopics));
    for (const auto& [topic, v] : seqs) {
      ASSERT_EQ(v.size(), published) << topic;
      for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i + 1) << topic;  // 1, 2, 3, ...
    }
  }

  std::unique_ptr<Client> DroppedSubscriber(Mode mode, milliseconds outage) {
    auto o = Options("dropped");
    o.heartbeat_interval = milliseconds(60'000);
    o.reconnect.enabled = true;
    o.reconnect.initial_backoff = outage;
    o.reconnect.max_backoff = outage;
    o.reconnect.jitter = 0;
    auto r = Client::Connect(o);
    if (!r.ok()) {
      ADD_FAILURE() << r.error().ToString();
      return nullptr;
    }
    auto c = std::move(r).value();
    auto sub = c->Subscribe(mode, {"*"});
    if (!sub.ok()) {
      ADD_FAILURE() << sub.error().ToString();
      return nullptr;
    }
    return c;
  }

  static std::string Topic(int i) { return "resume.t" + std::to_string(i); }

  // Publishes one tick per topic every 10 ms for kPublishFor; returns ticks per topic. With
  // `back_ns`, each tick is stamped that long before its publication.
  std::uint64_t Publish(std::int64_t back_ns = 0) {
    auto r = Client::Connect(Options("producer"));
    if (!r.ok()) {
      ADD_FAILURE() << r.error().ToString();
      return 0;
    }
    auto pub = std::move(r).value();
    std::uint64_t n = 0;
    const auto end = std::chrono::steady_clock::now() + kPublishFor;
    while (std::chrono::steady_clock::now() < end) {
      std::vector<Tick> ticks;
      for (int i = 0; i < kTopics; ++i) {
        const std::int64_t ts = back_ns > 0
                                    ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                              .count() -
                                          back_ns
                                    : 0;
        ticks.push_back({Topic(i), 100.0 + static_cast<double>(n % 50), 1, ts, 0, 0});
      }
      auto acc = pub->Publish(ticks, true);
      if (!acc.ok()) {
        ADD_FAILURE() << acc.error().ToString();
        return n;
      }
      ++n;
      // Pacing the producer, not waiting for a result.
      std::this_thread::sleep_for(milliseconds(10));
    }
    return n;
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ResumeTest, TicksArriveExactlyOnceAcrossRepeatedDrops) {
  // Ticks go out every 10 ms: any outage misses some unless the resume brings them back.
  auto sub = DroppedSubscriber(Mode::kTick, milliseconds(20));
  ASSERT_TRUE(sub);
  const std::uint64_t published = Publish();
  ASSERT_GT(published, 0u);
  ExpectEveryTickOnce(*sub, published, [](const auto&) {});
  if (HasFatalFailure()) return;
  const auto stats = sub->stats();
  EXPECT_GE(stats.disconnects, 3u) << "the server should have dropped it several times";
  EXPECT_GE(stats.reconnects, 3u);
  EXPECT_EQ(stats.tick_gaps, 0u);
  EXPECT_FALSE(sub->closed());
}

// PROTOCOL S8c: ticks stamped 30 s in the past, published while the subscriber is away, lie
// below any since_ms it could resume from; the resume by seq brings every one of them back,
// and each resume ends its history with a marker saying nothing was left out.
TEST_F(ResumeTest, BackDatedTicksPublishedWhileAwayArriveExactlyOnce) {
  auto sub = DroppedSubscriber(Mode::kTick, milliseconds(20));
  ASSERT_TRUE(sub);
  const std::uint64_t published = Publish(30'000'000'000);
  ASSERT_GT(published, 0u);
  std::size_t ends = 0;
  ExpectEveryTickOnce(*sub, published, [&](const auto& e) {
    ++ends;
    EXPECT_EQ(e.subscription_id, 1u);  // the client's handle, not the server's id
    EXPECT_FALSE(e.truncated);
    EXPECT_TRUE(e.lost.empty());
  });
  if (HasFatalFailure()) return;
  const auto stats = sub->stats();
  EXPECT_GE(stats.reconnects, 3u) << "the server should have dropped it several times";
  EXPECT_EQ(stats.tick_gaps, 0u);
  EXPECT_GE(ends, 1u);  // every resume asks for history and ends it with a marker
}

// PROTOCOL S8c resume_from_ns: a topic created while the subscriber is away, with ticks stamped
// a minute back, has no position to resume from and lies below any since_ms; its ticks still
// arrive, once each, because the resume asks for every tick accepted since the subscription.
TEST_F(ResumeTest, BackDatedTicksOfATopicCreatedWhileAwayArriveExactlyOnce) {
  auto sub = DroppedSubscriber(Mode::kTick, milliseconds(400));
  ASSERT_TRUE(sub);
  auto r = Client::Connect(Options("producer"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  auto pub = std::move(r).value();
  const std::vector<Tick> seen_tick = {{"away.seen", 1, 1, 0, 0, 0}};
  ASSERT_TRUE(pub->Publish(seen_tick, true).ok());
  // Away: the server dropped it (no heartbeats) and it waits 400 ms before reconnecting.
  ASSERT_TRUE(tickwire::testing::WaitUntil(
      [&] { return sub->stats().disconnects >= 1 && sub->state() != ConnectionState::kOpen; },
      milliseconds(5000)));
  const std::int64_t minute_ago = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() -
                                  60'000'000'000;
  std::vector<Tick> back_dated;
  for (int i = 0; i < 5; ++i) back_dated.push_back({"away.new", 10.0 + i, 1, minute_ago, 0, 0});
  ASSERT_TRUE(pub->Publish(back_dated, true).ok());
  std::vector<std::uint64_t> seqs;
  std::size_t seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(8000);
  while (seqs.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    auto ev = sub->Next(tickwire::testing::Remaining(deadline));
    if (!ev) break;
    if (auto* b = std::get_if<Batch>(&*ev)) {
      for (const auto& rec : b->records) {
        const auto& t = std::get<Tick>(rec);
        if (t.topic == "away.new") {
          seqs.push_back(t.seq);
          EXPECT_EQ(t.ts_ns, minute_ago);
        } else {
          ++seen;
        }
      }
    }
  }
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_GE(sub->stats().reconnects, 1u);
  EXPECT_EQ(sub->stats().tick_gaps, 0u);
}

TEST_F(ResumeTest, SecondBarsArriveExactlyOnceAcrossRepeatedDrops) {
  // A bar goes out once a second: outages of a full second each miss at least one, unless the
  // resume brings it back.
  auto sub = DroppedSubscriber(Mode::kSecond, milliseconds(1000));
  ASSERT_TRUE(sub);
  const std::uint64_t published = Publish();
  ASSERT_GT(published, 0u);
  std::map<std::string, std::vector<Bar>> bars;
  auto counted = [&] {
    std::uint64_t n = 0;
    for (const auto& [t, v] : bars) {
      for (const auto& b : v) n += b.count;
    }
    return n;
  };
  // The last second closes up to 1 s + BAR_CLOSE_DELAY_MS after publishing stops.
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(10'000);
  while (counted() < published * kTopics && std::chrono::steady_clock::now() < deadline) {
    auto ev = sub->Next(tickwire::testing::Remaining(deadline));
    if (!ev) break;
    if (auto* b = std::get_if<Batch>(&*ev)) {
      for (const auto& rec : b->records) {
        if (std::holds_alternative<Watermark>(rec)) continue;  // the end of a second
        const auto& bar = std::get<Bar>(rec);
        bars[bar.topic].push_back(bar);
      }
    }
    ASSERT_FALSE(std::holds_alternative<Closed>(*ev));
  }
  ASSERT_EQ(bars.size(), static_cast<std::size_t>(kTopics));
  for (const auto& [topic, v] : bars) {
    std::uint64_t ticks = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      ticks += v[i].count;
      EXPECT_EQ(v[i].interval, Mode::kSecond);
      // The producer ticks every 10 ms: every second in between has a bar, once, in order.
      if (i > 0) {
        EXPECT_EQ(v[i].start_ms, v[i - 1].start_ms + 1000) << topic << " bar " << i;
      }
    }
    EXPECT_EQ(ticks, published) << topic;
    EXPECT_GE(v.size(), 3u) << topic;
  }
  const auto stats = sub->stats();
  EXPECT_GE(stats.disconnects, 2u) << "the server should have dropped it several times";
  EXPECT_GE(stats.reconnects, 2u);
  EXPECT_FALSE(sub->closed());
}

}  // namespace
}  // namespace tickwire::client
