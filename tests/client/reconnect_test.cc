// Reconnect and resume against FakeServer: the test plays each server connection by hand, so it
// can check the exact frames a reconnecting client sends (AUTH, then SUBSCRIBE with since_ms)
// and feed it duplicates to drop.

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <vector>

#include "client/client.h"
#include "client/fake_server.h"
#include "support/wait.h"

namespace tickwire::client {
namespace {

using std::chrono::milliseconds;
using testing::DataBatchFrame;
using testing::ErrorFrame;
using testing::FakeServer;
using testing::PbTick;
using tickwire::testing::WaitUntil;
namespace pb = tickwire::v1;

constexpr milliseconds kWait{3000};

std::int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Collects connection events from the io thread.
class EventLog {
 public:
  void Add(const ConnectionEvent& e) {
    std::lock_guard lock(mu_);
    events_.push_back(e);
  }
  std::vector<ConnectionEvent> Get() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  bool Has(ConnectionEvent::Type type) const {
    for (const auto& e : Get()) {
      if (e.type == type) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<ConnectionEvent> events_;
};

ClientOptions ReconnectOptionsFor(const FakeServer& server, EventLog* log = nullptr) {
  ClientOptions o;
  o.port = server.port();
  o.username = "alice";
  o.password = "pw";
  o.connect_timeout = kWait;
  o.request_timeout = kWait;
  o.reconnect.enabled = true;
  o.reconnect.initial_backoff = milliseconds(10);
  o.reconnect.max_backoff = milliseconds(50);
  o.reconnect.resume_lookback = milliseconds(0);
  if (log != nullptr) o.on_connection = [log](const ConnectionEvent& e) { log->Add(e); };
  return o;
}

std::unique_ptr<Client> ConnectTo(FakeServer& server, ClientOptions options) {
  auto fut = std::async(std::launch::async, [&] { return Client::Connect(std::move(options)); });
  EXPECT_TRUE(server.Handshake());
  auto result = fut.get();
  if (!result.ok()) {
    ADD_FAILURE() << result.error().ToString();
    return nullptr;
  }
  return std::move(result).value();
}

// Subscribes through the fake server, answering with `server_id`; returns the client's handle.
std::uint64_t SubscribeVia(FakeServer& server, Client& c, Mode mode,
                           std::vector<std::string> topics, std::uint64_t server_id,
                           std::uint32_t backfill = 0) {
  auto fut = std::async(std::launch::async, [&] { return c.Subscribe(mode, topics, backfill); });
  pb::Subscribe sub;
  EXPECT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &sub));
  pb::SubscribeOk ok;
  ok.set_request_id(sub.request_id());
  ok.set_subscription_id(server_id);
  EXPECT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, ok));
  auto r = fut.get();
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? r.value() : 0;
}

// Records of the batches the client delivers until `n` records arrived or the deadline.
std::vector<Record> Collect(Client& c, std::size_t n, std::vector<Error>* errors = nullptr) {
  std::vector<Record> out;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto ev = c.Next(tickwire::testing::Remaining(deadline));
    if (!ev) break;
    if (auto* b = std::get_if<Batch>(&*ev)) {
      out.insert(out.end(), b->records.begin(), b->records.end());
    } else if (auto* e = std::get_if<Error>(&*ev)) {
      if (errors != nullptr) errors->push_back(*e);
    } else {
      break;
    }
  }
  return out;
}

// Reads the resumed SUBSCRIBE of a reconnect and answers it with `server_id`.
pb::Subscribe AnswerResume(FakeServer& server, std::uint64_t server_id) {
  pb::Subscribe sub;
  EXPECT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &sub));
  pb::SubscribeOk ok;
  ok.set_request_id(sub.request_id());
  ok.set_subscription_id(server_id);
  EXPECT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, ok));
  return sub;
}

TEST(ReconnectTest, ResumesTicksFromTheLastReceivedAndDropsDuplicates) {
  FakeServer server;
  EventLog log;
  auto c = ConnectTo(server, ReconnectOptionsFor(server, &log));
  ASSERT_TRUE(c);
  const std::uint64_t handle = SubscribeVia(server, *c, Mode::kTick, {"A", "B"}, 5, 10);
  EXPECT_EQ(handle, 1u);  // a client-side handle, not the server's 5
  // Stamped ahead of the client's clock so that the newest record, not the subscription's
  // start, decides where the resume begins.
  const std::int64_t t0 = (NowMs() + 60'000) * 1'000'000;
  ASSERT_TRUE(server.SendBytes(
      DataBatchFrame(1, {PbTick("A", 1, 1, t0, 1), PbTick("A", 2, 1, t0 + 1'500'000, 2),
                         PbTick("B", 3, 1, t0 + 2'700'000, 7)})));
  ASSERT_EQ(Collect(*c, 3).size(), 3u);

  server.CloseConnection();
  ASSERT_TRUE(server.Handshake());
  const pb::Subscribe resumed = AnswerResume(server, 9);
  EXPECT_EQ(resumed.mode(), pb::MODE_TICK);
  ASSERT_EQ(resumed.topics_size(), 2);
  EXPECT_EQ(resumed.topics(0), "A");
  EXPECT_EQ(resumed.backfill(), 0u);                  // backfill was for the first SUBSCRIBE only
  EXPECT_EQ(resumed.since_ms(), t0 / 1'000'000 + 2);  // floor of B's last tick, lookback 0
  ASSERT_TRUE(WaitUntil([&] { return c->state() == ConnectionState::kOpen; }, kWait));

  // The server re-sends what it retained from since_ms on: the duplicates are dropped.
  ASSERT_TRUE(server.SendBytes(DataBatchFrame(
      1, {PbTick("A", 2, 1, t0 + 1'500'000, 2), PbTick("B", 3, 1, t0 + 2'700'000, 7),
          PbTick("A", 4, 1, t0 + 3'000'000, 3), PbTick("B", 5, 1, t0 + 3'100'000, 8)})));
  std::vector<Error> errors;
  const auto records = Collect(*c, 2, &errors);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(std::get<Tick>(records[0]).seq, 3u);
  EXPECT_EQ(std::get<Tick>(records[1]).seq, 8u);
  const auto stats = c->stats();
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_EQ(stats.reconnects, 1u);
  EXPECT_EQ(stats.duplicates_dropped, 2u);
  EXPECT_EQ(stats.tick_gaps, 0u);
  EXPECT_EQ(stats.batch_gaps, 0u);  // batch_seq starts over on the new connection
  EXPECT_FALSE(c->closed());
  EXPECT_TRUE(log.Has(ConnectionEvent::Type::kDisconnected));
  EXPECT_TRUE(log.Has(ConnectionEvent::Type::kReconnected));

  // The handle still names the subscription: UNSUBSCRIBE carries the new server id.
  ASSERT_TRUE(c->Unsubscribe(handle).ok());
  pb::Unsubscribe u;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kUnsubscribe, &u));
  EXPECT_EQ(u.subscription_id(), 9u);
  EXPECT_EQ(c->Unsubscribe(handle).error().kind, ErrorKind::kInvalidArgument);
}

// PROTOCOL S8c: the first SUBSCRIBE_OK's resume_from_ns goes with the resumes until a resume's
// history_end marker arrives, then that resume's; a history cut before its marker is asked for
// again, once.
TEST(ReconnectTest, ResumeFromAdvancesAfterAResumesMarkerAndACutHistoryIsAskedAgain) {
  FakeServer server;
  auto c = ConnectTo(server, ReconnectOptionsFor(server));
  ASSERT_TRUE(c);
  auto fut = std::async(std::launch::async, [&] { return c->Subscribe(Mode::kTick, {"A"}, 5); });
  pb::Subscribe first;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &first));
  EXPECT_EQ(first.resume_from_ns(), 0);
  pb::SubscribeOk ok;
  ok.set_request_id(first.request_id());
  ok.set_subscription_id(5);
  ok.set_history_end(true);  // a marker will follow the replay
  ok.set_resume_from_ns(1001);
  ASSERT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, ok));
  ASSERT_TRUE(fut.get().ok());

  // Cut before the marker: the resume asks for the backfill again, with the position R.
  server.CloseConnection();
  ASSERT_TRUE(server.Handshake());
  pb::Subscribe resumed;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &resumed));
  EXPECT_EQ(resumed.resume_from_ns(), 1001);
  EXPECT_EQ(resumed.backfill(), 5u);
  EXPECT_EQ(resumed.since_ms(), 0);
  ok.set_request_id(resumed.request_id());
  ok.set_subscription_id(6);
  ok.set_resume_from_ns(2002);  // taken once this resume's marker has arrived
  ASSERT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, ok));
  ASSERT_TRUE(WaitUntil([&] { return c->state() == ConnectionState::kOpen; }, kWait));
  pb::DataBatch batch;
  batch.set_batch_seq(1);
  batch.add_records()->mutable_history_end()->set_subscription_id(6);
  ASSERT_TRUE(server.Send(protocol::FrameType::kDataBatch, batch));
  std::size_t ends = 0;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (ends == 0 && std::chrono::steady_clock::now() < deadline) {
    auto ev = c->Next(tickwire::testing::Remaining(deadline));
    if (!ev) break;
    if (auto* b = std::get_if<Batch>(&*ev)) ends += b->history_ends.size();
  }
  ASSERT_EQ(ends, 1u);

  // The history is complete now: the next resume asks only from what was received, and from
  // the completed resume's place in the accept order.
  server.CloseConnection();
  ASSERT_TRUE(server.Handshake());
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &resumed));
  EXPECT_EQ(resumed.resume_from_ns(), 2002);
  EXPECT_EQ(resumed.backfill(), 0u);
  EXPECT_GT(resumed.since_ms(), 0);
}

TEST(ReconnectTest, LostConnectionIsReportedAsANonFatalError) {
  FakeServer server;
  auto c = ConnectTo(server, ReconnectOptionsFor(server));
  ASSERT_TRUE(c);
  server.CloseConnection();
  std::optional<Error> e;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!e && std::chrono::steady_clock::now() < deadline) {
    auto ev = c->Next(tickwire::testing::Remaining(deadline));
    if (ev) {
      if (auto* err = std::get_if<Error>(&*ev)) e = *err;
    }
  }
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, ErrorKind::kIo) << e->ToString();
  EXPECT_FALSE(e->fatal);
  ASSERT_TRUE(server.Handshake());  // no subscriptions: open right after AUTH_OK
  EXPECT_TRUE(WaitUntil([&] { return c->state() == ConnectionState::kOpen; }, kWait));
}

TEST(ReconnectTest, ResumesBarsFromTheNewestBucketOfAWildcard) {
  FakeServer server;
  auto c = ConnectTo(server, ReconnectOptionsFor(server));
  ASSERT_TRUE(c);
  SubscribeVia(server, *c, Mode::kSecond, {"*"}, 3);
  const std::int64_t s0 = (NowMs() / 1000 + 60) * 1000;
  auto bar = [](const std::string& topic, std::int64_t start) {
    pb::Bar b;
    b.set_topic(topic);
    b.set_interval(pb::MODE_SECOND);
    b.set_start_ms(start);
    b.set_open(1);
    b.set_high(1);
    b.set_low(1);
    b.set_close(1);
    b.set_volume(1);
    b.set_count(1);
    b.set_vwap(1);
    return b;
  };
  ASSERT_TRUE(
      server.SendBytes(DataBatchFrame(1, {}, {bar("A", s0), bar("B", s0), bar("A", s0 + 1000)})));
  ASSERT_EQ(Collect(*c, 3).size(), 3u);
  server.CloseConnection();
  ASSERT_TRUE(server.Handshake());
  // B's bar of s0+1000 may still have been in flight: the resume starts at the newest bucket.
  EXPECT_EQ(AnswerResume(server, 4).since_ms(), s0 + 1000);
  ASSERT_TRUE(server.SendBytes(DataBatchFrame(
      1, {},
      {bar("A", s0 + 1000), bar("B", s0 + 1000), bar("C", s0 + 1000), bar("A", s0 + 2000)})));
  const auto records = Collect(*c, 3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(std::get<Bar>(records[0]).topic, "B");
  EXPECT_EQ(std::get<Bar>(records[1]).topic, "C");
  EXPECT_EQ(std::get<Bar>(records[2]).start_ms, s0 + 2000);
  EXPECT_EQ(c->stats().duplicates_dropped, 1u);
}

TEST(ReconnectTest, DrainingHonoursRetryAfter) {
  FakeServer server;
  EventLog log;
  auto c = ConnectTo(server, ReconnectOptionsFor(server, &log));
  ASSERT_TRUE(c);
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(server.SendBytes(ErrorFrame(pb::SERVER_DRAINING, true, 0, "bye", 300)));
  server.CloseConnection();
  ASSERT_TRUE(server.Accept());
  EXPECT_GE(std::chrono::steady_clock::now() - sent, milliseconds(300));
  ASSERT_TRUE(server.ReadSkippingHeartbeats());  // the AUTH of the new connection
  const auto events = log.Get();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].type, ConnectionEvent::Type::kDisconnected);
  EXPECT_EQ(events[0].reason.code, ErrorCode::kServerDraining);
  EXPECT_EQ(events[1].type, ConnectionEvent::Type::kRetrying);
  EXPECT_EQ(events[1].attempt, 1u);
  EXPECT_GE(events[1].delay, milliseconds(300));
  EXPECT_LE(events[1].delay, milliseconds(450));  // jitter 0.5 spreads it by at most half
}

TEST(ReconnectTest, AuthFailedOnReconnectClosesTheClient) {
  FakeServer server;
  auto c = ConnectTo(server, ReconnectOptionsFor(server));
  ASSERT_TRUE(c);
  server.CloseConnection();
  ASSERT_TRUE(server.Accept());
  ASSERT_TRUE(server.ReadSkippingHeartbeats());  // AUTH
  ASSERT_TRUE(server.SendBytes(ErrorFrame(pb::AUTH_FAILED, true, 0, "bad credentials")));
  ASSERT_TRUE(WaitUntil([&] { return c->closed(); }, kWait));
  ASSERT_TRUE(c->close_reason().has_value());
  EXPECT_EQ(c->close_reason()->code, ErrorCode::kAuthFailed);
  EXPECT_EQ(c->state(), ConnectionState::kClosed);
}

TEST(ReconnectTest, GivesUpAfterMaxAttempts) {
  FakeServer server;
  auto o = ReconnectOptionsFor(server);
  o.reconnect.max_attempts = 2;
  auto c = ConnectTo(server, o);
  ASSERT_TRUE(c);
  server.CloseConnection();
  for (int i = 0; i < 2; ++i) {  // each attempt: accepted, then hung up on before AUTH_OK
    ASSERT_TRUE(server.Accept()) << i;
    ASSERT_TRUE(server.ReadSkippingHeartbeats()) << i;
    server.CloseConnection();
  }
  ASSERT_TRUE(WaitUntil([&] { return c->closed(); }, kWait));
  EXPECT_NE(c->close_reason()->message.find("gave up"), std::string::npos)
      << c->close_reason()->message;
  EXPECT_EQ(c->stats().reconnect_attempts, 2u);
}

TEST(ReconnectTest, RequestsWaitForTheReconnect) {
  FakeServer server;
  auto c = ConnectTo(server, ReconnectOptionsFor(server));
  ASSERT_TRUE(c);
  server.CloseConnection();
  ASSERT_TRUE(WaitUntil([&] { return c->state() == ConnectionState::kReconnecting; }, kWait));
  // Subscribe while the connection is down: it goes out once the client is back.
  auto fut = std::async(std::launch::async, [&] { return c->Subscribe(Mode::kTick, {"X"}); });
  ASSERT_TRUE(server.Handshake());
  pb::Subscribe sub;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &sub));
  pb::SubscribeOk ok;
  ok.set_request_id(sub.request_id());
  ok.set_subscription_id(12);
  ASSERT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, ok));
  auto r = fut.get();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r.value(), 1u);
}

TEST(ReconnectTest, ServerSilenceIsDetectedByTheIdleTimeout) {
  FakeServer server;
  EventLog log;
  auto o = ReconnectOptionsFor(server, &log);
  o.reconnect.idle_timeout = milliseconds(200);
  auto c = ConnectTo(server, o);
  ASSERT_TRUE(c);
  // The fake server neither answers heartbeats nor closes: a half-open connection.
  const auto start = std::chrono::steady_clock::now();
  server.HoldConnection();
  ASSERT_TRUE(server.Accept(kWait));  // the client gave up on the silent one and came back
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(200));
  EXPECT_EQ(c->stats().disconnects, 1u);
  const auto events = log.Get();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].reason.kind, ErrorKind::kTimeout) << events[0].reason.ToString();
}

TEST(ReconnectTest, NoReconnectUnlessEnabled) {
  FakeServer server;
  auto o = ReconnectOptionsFor(server);
  o.reconnect.enabled = false;
  auto c = ConnectTo(server, o);
  ASSERT_TRUE(c);
  server.CloseConnection();
  ASSERT_TRUE(WaitUntil([&] { return c->closed(); }, kWait));
  EXPECT_EQ(c->close_reason()->kind, ErrorKind::kIo);
  EXPECT_EQ(c->stats().reconnect_attempts, 0u);
}

}  // namespace
}  // namespace tickwire::client
