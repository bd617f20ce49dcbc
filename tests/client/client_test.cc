// Client library against FakeServer: the happy paths and every error path the contract allows a
// server to take (fatal ERROR, batch_seq gap, malformed frames, EOF).

#include "client/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "client/fake_server.h"
#include "protocol/wire.h"
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

ClientOptions Options(const FakeServer& server) {
  ClientOptions o;
  o.port = server.port();
  o.username = "alice";
  o.password = "pw";
  o.client_name = "client-test";
  o.connect_timeout = milliseconds(3000);
  o.request_timeout = milliseconds(3000);
  return o;
}

// Connects a client to `server` (accepting and answering AUTH on this thread).
std::unique_ptr<Client> ConnectTo(FakeServer& server, ClientOptions options,
                                  const pb::AuthOk& ok = FakeServer::DefaultAuthOk()) {
  auto fut = std::async(std::launch::async, [&] { return Client::Connect(std::move(options)); });
  EXPECT_TRUE(server.Handshake(ok));
  auto result = fut.get();
  if (!result.ok()) {
    ADD_FAILURE() << result.error().ToString();
    return nullptr;
  }
  return std::move(result).value();
}

// Next event that is not a batch (errors and Closed), skipping batches.
template <typename T>
std::optional<T> NextOf(Client& c, milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.Next(tickwire::testing::Remaining(deadline));
    if (!ev) return std::nullopt;
    if (auto* v = std::get_if<T>(&*ev)) return std::move(*v);
  }
  return std::nullopt;
}

TEST(ClientTest, ConnectSendsAuthAndExposesAuthOk) {
  FakeServer server;
  auto options = Options(server);
  auto fut = std::async(std::launch::async, [&] { return Client::Connect(options); });
  pb::Auth auth;
  pb::AuthOk ok = FakeServer::DefaultAuthOk();
  ok.set_heartbeat_interval_ms(1234);
  ok.set_max_msg_size(4096);
  ASSERT_TRUE(server.Handshake(ok, &auth));
  auto result = fut.get();
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(auth.username(), "alice");
  EXPECT_EQ(auth.password(), "pw");
  EXPECT_EQ(auth.client_name(), "client-test");
  EXPECT_EQ(auth.protocol_version(), 1u);
  const auto& info = result.value()->auth_info();
  EXPECT_EQ(info.session_id, "fake-session");
  EXPECT_EQ(info.heartbeat_interval_ms, 1234u);
  EXPECT_EQ(info.heartbeat_timeout_ms, 20000u);
  EXPECT_EQ(info.max_msg_size, 4096u);
  EXPECT_EQ(info.batch_window_ms, 5u);
  EXPECT_EQ(info.server_version, "fake-1.0");
  EXPECT_EQ(info.protocol_version, 1u);
  EXPECT_FALSE(result.value()->closed());
}

TEST(ClientTest, ConnectReturnsFatalAuthError) {
  FakeServer server;
  auto options = Options(server);
  auto fut = std::async(std::launch::async, [&] { return Client::Connect(options); });
  ASSERT_TRUE(server.Accept());
  ASSERT_TRUE(server.ReadSkippingHeartbeats());
  ASSERT_TRUE(server.SendBytes(ErrorFrame(pb::AUTH_RATE_LIMITED, true, 0, "slow down", 750)));
  server.CloseConnection();
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kServer);
  EXPECT_EQ(result.error().code, ErrorCode::kAuthRateLimited);
  EXPECT_EQ(result.error().retry_after_ms, 750u);
  EXPECT_EQ(result.error().message, "slow down");
  EXPECT_TRUE(result.error().fatal);
}

TEST(ClientTest, ConnectTimesOutWithoutAuthOk) {
  FakeServer server;
  auto options = Options(server);
  options.connect_timeout = milliseconds(200);
  auto fut = std::async(std::launch::async, [&] { return Client::Connect(options); });
  ASSERT_TRUE(server.Accept());
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kTimeout) << result.error().ToString();
  EXPECT_TRUE(server.WaitForEof());  // the client hung up
}

TEST(ClientTest, ConnectRefusedIsConnectError) {
  std::uint16_t port = 0;
  {
    FakeServer gone;  // a port that was free a moment ago and now has no listener
    port = gone.port();
  }
  ClientOptions options;
  options.port = port;
  options.connect_timeout = milliseconds(2000);
  auto result = Client::Connect(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kConnect) << result.error().ToString();
}

TEST(ClientTest, UnexpectedFirstFrameIsProtocolError) {
  FakeServer server;
  auto options = Options(server);
  auto fut = std::async(std::launch::async, [&] { return Client::Connect(options); });
  ASSERT_TRUE(server.Accept());
  ASSERT_TRUE(server.ReadSkippingHeartbeats());
  ASSERT_TRUE(server.SendBytes(DataBatchFrame(1, {})));
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kProtocol) << result.error().ToString();
}

TEST(ClientTest, SendsHeartbeatsAtServerInterval) {
  FakeServer server;
  pb::AuthOk ok = FakeServer::DefaultAuthOk();
  ok.set_heartbeat_interval_ms(30);
  auto client = ConnectTo(server, Options(server), ok);
  ASSERT_TRUE(client);
  for (int i = 0; i < 3; ++i) {
    auto f = server.Read();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->type, protocol::FrameType::kHeartbeat);
    pb::Heartbeat hb;
    ASSERT_TRUE(hb.ParseFromString(f->payload));
    EXPECT_GT(hb.ts_ms(), 1'600'000'000'000);  // wall clock ms
  }
  EXPECT_GE(client->stats().heartbeats_sent, 3u);
}

TEST(ClientTest, HeartbeatIntervalOptionOverridesServer) {
  FakeServer server;
  auto options = Options(server);
  options.heartbeat_interval = milliseconds(30);  // server says 15 s
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  auto f = server.Read(milliseconds(2000));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, protocol::FrameType::kHeartbeat);
}

TEST(ClientTest, SubscribeReturnsSubscriptionId) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  auto fut = std::async(std::launch::async, [&] {
    return client->Subscribe(Mode::kMinute, {"AAPL", "MSFT"}, 10, 0);
  });
  pb::Subscribe sub;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &sub));
  EXPECT_EQ(sub.mode(), pb::MODE_MINUTE);
  ASSERT_EQ(sub.topics_size(), 2);
  EXPECT_EQ(sub.topics(0), "AAPL");
  EXPECT_EQ(sub.topics(1), "MSFT");
  EXPECT_EQ(sub.backfill(), 10u);
  EXPECT_NE(sub.request_id(), 0u);
  // A reply for some other request first: ignored.
  pb::SubscribeOk other;
  other.set_request_id(sub.request_id() + 100);
  other.set_subscription_id(1);
  ASSERT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, other));
  pb::SubscribeOk ok;
  ok.set_request_id(sub.request_id());
  ok.set_subscription_id(77);
  ASSERT_TRUE(server.Send(protocol::FrameType::kSubscribeOk, ok));
  auto result = fut.get();
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result.value(), 77u);
}

TEST(ClientTest, SubscribeErrorCarriesRequestId) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  auto fut = std::async(std::launch::async,
                        [&] { return client->Subscribe(Mode::kTick, {"bad topic!"}); });
  pb::Subscribe sub;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &sub));
  ASSERT_TRUE(
      server.SendBytes(ErrorFrame(pb::INVALID_REQUEST, false, sub.request_id(), "bad topic")));
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kServer);
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(result.error().request_id, sub.request_id());
  EXPECT_FALSE(result.error().fatal);
  EXPECT_FALSE(client->closed());
  // The answered error is not also queued as an event.
  EXPECT_FALSE(client->Next(milliseconds(50)).has_value());
}

TEST(ClientTest, SubscribeTimesOut) {
  FakeServer server;
  auto options = Options(server);
  options.request_timeout = milliseconds(100);
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  auto result = client->Subscribe(Mode::kTick, {"A"});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kTimeout);
  EXPECT_FALSE(client->closed());
}

TEST(ClientTest, SubscribeRejectsEmptyTopicsLocally) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  auto result = client->Subscribe(Mode::kTick, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ClientTest, ConnectRefusesAClientNameTheServerWouldRefuse) {
  FakeServer server;
  auto options = Options(server);
  options.client_name = std::string(129, 'n');
  auto result = Client::Connect(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kInvalidArgument);
  options.client_name = std::string(128, 'n');
  EXPECT_TRUE(ConnectTo(server, options));
}

TEST(ClientTest, UnsubscribeSendsFrame) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Unsubscribe(42).ok());
  pb::Unsubscribe u;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kUnsubscribe, &u));
  EXPECT_EQ(u.subscription_id(), 42u);
  EXPECT_NE(u.request_id(), 0u);
}

TEST(ClientTest, PublishWithAckReturnsAccepted) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  std::vector<Tick> ticks = {{"A", 1.5, 2, 0, 0, 0},
                             {"B", 3.25, 4, 1'700'000'000'000'000'000, 0, 0}};
  auto fut = std::async(std::launch::async, [&] { return client->Publish(ticks, true); });
  pb::Publish p;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kPublish, &p));
  EXPECT_TRUE(p.ack());
  ASSERT_EQ(p.ticks_size(), 2);
  EXPECT_EQ(p.ticks(0).topic(), "A");
  EXPECT_EQ(p.ticks(0).price(), 1.5);
  EXPECT_EQ(p.ticks(1).size(), 4);
  EXPECT_EQ(p.ticks(1).ts_ns(), 1'700'000'000'000'000'000);
  pb::PublishAck ack;
  ack.set_request_id(p.request_id());
  ack.set_accepted(2);
  ASSERT_TRUE(server.Send(protocol::FrameType::kPublishAck, ack));
  auto result = fut.get();
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result.value(), 2u);
}

TEST(ClientTest, PublishRejectedByServer) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  std::vector<Tick> ticks = {{"A", -1, -2, 0, 0, 0}};
  auto fut = std::async(std::launch::async, [&] { return client->Publish(ticks, true); });
  pb::Publish p;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kPublish, &p));
  ASSERT_TRUE(server.SendBytes(
      ErrorFrame(pb::INVALID_REQUEST, false, p.request_id(), "ticks[0]: negative size")));
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(result.error().message, "ticks[0]: negative size");
}

TEST(ClientTest, PublishWithoutAckReturnsTickCount) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  std::vector<Tick> ticks(3, Tick{"A", 1, 1, 0, 0, 0});
  auto result = client->Publish(ticks, false);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value(), 3u);
  pb::Publish p;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kPublish, &p));
  EXPECT_FALSE(p.ack());
  EXPECT_EQ(p.ticks_size(), 3);
}

// A DATA_BATCH frame with a bar of "B" at `start_ms` and then a SECOND watermark at `mark_ms`.
std::string BarThenWatermark(std::uint64_t batch_seq, std::int64_t start_ms, std::int64_t mark_ms) {
  pb::DataBatch b;
  b.set_batch_seq(batch_seq);
  pb::Bar* bar = b.add_records()->mutable_bar();
  bar->set_topic("B");
  bar->set_interval(pb::MODE_SECOND);
  bar->set_start_ms(start_ms);
  bar->set_count(1);
  pb::Watermark* w = b.add_records()->mutable_watermark();
  w->set_interval(pb::MODE_SECOND);
  w->set_start_ms(mark_ms);
  return protocol::EncodeFrame(protocol::FrameType::kDataBatch, b);
}

// Watermarks (PROTOCOL S8d) reach the caller only when asked for; the AUTH_OK's delay and
// watermark are in auth_info() either way.
TEST(ClientTest, WatermarksAreDeliveredOnlyWhenAskedFor) {
  for (const bool wanted : {false, true}) {
    SCOPED_TRACE(wanted ? "watermarks = true" : "watermarks = false");
    FakeServer server;
    ClientOptions options = Options(server);
    options.watermarks = wanted;
    pb::AuthOk ok = FakeServer::DefaultAuthOk();
    ok.set_bar_close_delay_ms(250);
    ok.set_watermark_ms(5000);
    auto client = ConnectTo(server, options, ok);
    ASSERT_TRUE(client);
    EXPECT_EQ(client->auth_info().bar_close_delay_ms, 250u);
    EXPECT_EQ(client->auth_info().watermark_ms, 5000);
    ASSERT_TRUE(server.SendBytes(BarThenWatermark(1, 6000, 6000)));
    auto batch = NextOf<Batch>(*client);
    ASSERT_TRUE(batch);
    ASSERT_EQ(batch->records.size(), wanted ? 2u : 1u);
    EXPECT_EQ(std::get<Bar>(batch->records[0]).start_ms, 6000);
    if (wanted) {
      const auto& w = std::get<Watermark>(batch->records[1]);
      EXPECT_EQ(w.interval, Mode::kSecond);
      EXPECT_EQ(w.start_ms, 6000);
    }
  }
}

TEST(ClientTest, PublishOverMaxMsgSizeIsRejectedLocally) {
  FakeServer server;
  pb::AuthOk ok = FakeServer::DefaultAuthOk();
  ok.set_max_msg_size(1024);
  auto client = ConnectTo(server, Options(server), ok);
  ASSERT_TRUE(client);
  std::vector<Tick> ticks(100, Tick{"topic", 1, 1, 0, 0, 0});
  auto result = client->Publish(ticks, false);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ClientTest, DeliversDecodedTicksAndBars) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  pb::Bar bar;
  bar.set_topic("B");
  bar.set_interval(pb::MODE_SECOND);
  bar.set_start_ms(1000);
  bar.set_open(1);
  bar.set_high(3);
  bar.set_low(0.5);
  bar.set_close(2);
  bar.set_volume(10);
  bar.set_count(4);
  bar.set_vwap(1.75);
  ASSERT_TRUE(server.SendBytes(DataBatchFrame(1, {PbTick("A", 10.5, 2, 123, 1)}, {bar})));
  auto batch = NextOf<Batch>(*client);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->batch_seq, 1u);
  ASSERT_EQ(batch->records.size(), 2u);
  const auto& t = std::get<Tick>(batch->records[0]);
  EXPECT_EQ(t.topic, "A");
  EXPECT_EQ(t.price, 10.5);
  EXPECT_EQ(t.size, 2);
  EXPECT_EQ(t.ts_ns, 123);
  EXPECT_EQ(t.seq, 1u);
  EXPECT_EQ(t.prev_seq, 0u);
  const auto& b = std::get<Bar>(batch->records[1]);
  EXPECT_EQ(b.topic, "B");
  EXPECT_EQ(b.interval, Mode::kSecond);
  EXPECT_EQ(b.start_ms, 1000);
  EXPECT_EQ(b.open, 1);
  EXPECT_EQ(b.high, 3);
  EXPECT_EQ(b.low, 0.5);
  EXPECT_EQ(b.close, 2);
  EXPECT_EQ(b.volume, 10);
  EXPECT_EQ(b.count, 4u);
  EXPECT_EQ(b.vwap, 1.75);
  EXPECT_EQ(client->stats().records, 2u);
}

TEST(ClientTest, BatchSeqGapIsReported) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  ASSERT_TRUE(server.SendBytes(
      DataBatchFrame(1, {PbTick("A", 1, 1, 1, 1)}) + DataBatchFrame(2, {PbTick("A", 1, 1, 1, 2)}) +
      DataBatchFrame(4, {PbTick("A", 1, 1, 1, 3)}) + DataBatchFrame(5, {PbTick("A", 1, 1, 1, 4)})));
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    auto ev = client->Next(kWait);
    ASSERT_TRUE(ev);
    if (auto* b = std::get_if<Batch>(&*ev)) {
      seen.push_back("batch " + std::to_string(b->batch_seq));
    } else if (auto* e = std::get_if<Error>(&*ev)) {
      EXPECT_EQ(e->kind, ErrorKind::kBatchGap);
      EXPECT_FALSE(e->fatal);
      seen.push_back("gap");
    } else {
      FAIL() << "closed";
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"batch 1", "batch 2", "gap", "batch 4", "batch 5"}));
  EXPECT_EQ(client->stats().batch_gaps, 1u);
  EXPECT_FALSE(client->closed());
}

TEST(ClientTest, FatalErrorClosesClient) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  ASSERT_TRUE(server.SendBytes(ErrorFrame(pb::SERVER_DRAINING, true, 0, "bye", 2000)));
  server.CloseConnection();
  auto err = NextOf<Error>(*client);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, ErrorCode::kServerDraining);
  EXPECT_EQ(err->retry_after_ms, 2000u);
  EXPECT_TRUE(err->fatal);
  auto closed = NextOf<Closed>(*client);
  ASSERT_TRUE(closed);
  ASSERT_TRUE(closed->reason);
  EXPECT_EQ(closed->reason->code, ErrorCode::kServerDraining);
  EXPECT_TRUE(client->closed());
  std::vector<Tick> ticks = {{"A", 1, 1, 0, 0, 0}};
  auto pub = client->Publish(ticks, true);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.error().kind, ErrorKind::kClosed);
}

TEST(ClientTest, FatalErrorAnswersPendingRequest) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  auto fut = std::async(std::launch::async, [&] { return client->Subscribe(Mode::kTick, {"A"}); });
  pb::Subscribe sub;
  ASSERT_TRUE(server.ReadMessage(protocol::FrameType::kSubscribe, &sub));
  ASSERT_TRUE(server.SendBytes(ErrorFrame(pb::INTERNAL, true, sub.request_id(), "oops")));
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInternal);
  EXPECT_TRUE(WaitUntil([&] { return client->closed(); }, kWait));
}

TEST(ClientTest, NonFatalUnsolicitedErrorIsAnEvent) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  ASSERT_TRUE(server.SendBytes(ErrorFrame(pb::INVALID_REQUEST, false, 0, "second AUTH")));
  auto err = NextOf<Error>(*client);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, ErrorCode::kInvalidRequest);
  EXPECT_FALSE(client->closed());
}

TEST(ClientTest, ServerEofClosesClient) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  server.CloseConnection();
  auto err = NextOf<Error>(*client);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind, ErrorKind::kIo);
  EXPECT_TRUE(NextOf<Closed>(*client));
}

// Malformed input from the server: the client reports a protocol error and closes.
class MalformedTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MalformedTest, ClosesWithProtocolError) {
  FakeServer server;
  auto client = ConnectTo(server, Options(server));
  ASSERT_TRUE(client);
  ASSERT_TRUE(server.SendBytes(GetParam()));
  auto err = NextOf<Error>(*client);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind, ErrorKind::kProtocol) << err->ToString();
  EXPECT_TRUE(err->fatal);
  EXPECT_TRUE(NextOf<Closed>(*client));
  EXPECT_TRUE(server.WaitForEof());
}

INSTANTIATE_TEST_SUITE_P(
    Frames, MalformedTest,
    ::testing::Values(std::string("\0\0\0\0\x08", 5),                                   // length 0
                      std::string("\x7f\0\0\0\x08", 5),                                 // too large
                      protocol::MakeFrame(static_cast<protocol::FrameType>(0x7f), ""),  // unknown
                      protocol::MakeFrame(protocol::FrameType::kSubscribe, ""),  // client-only
                      protocol::MakeFrame(protocol::FrameType::kDataBatch, "\xff\xff\xff"),
                      protocol::MakeFrame(protocol::FrameType::kError, "\x0a\x05x"),
                      protocol::MakeFrame(protocol::FrameType::kAuthOk, "")));  // second AUTH_OK

TEST(ClientTest, RawBatchCallbackGetsPayload) {
  FakeServer server;
  auto options = Options(server);
  std::atomic<std::uint64_t> ticks{0};
  std::atomic<std::uint64_t> last_seq{0};
  options.on_raw_batch = [&](std::uint64_t batch_seq, std::span<const std::uint8_t> payload) {
    auto scanned = protocol::ScanDataBatch(payload, [&](protocol::RecordKind kind, auto inner) {
      if (kind == protocol::RecordKind::kTick && protocol::ParseTickFields(inner)) ++ticks;
    });
    if (scanned && *scanned == batch_seq) last_seq = batch_seq;
  };
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(
      server.SendBytes(DataBatchFrame(1, {PbTick("A", 1, 1, 1, 1), PbTick("A", 1, 1, 1, 2)}) +
                       DataBatchFrame(2, {PbTick("A", 1, 1, 1, 3)})));
  EXPECT_TRUE(WaitUntil([&] { return ticks == 3 && last_seq == 2; }, kWait));
  // Batches went to the callback, not the pull queue.
  EXPECT_FALSE(client->Next(milliseconds(20)).has_value());
}

TEST(ClientTest, ThrowingCallbackClosesClient) {
  FakeServer server;
  auto options = Options(server);
  options.on_batch = [](const Batch&) { throw std::runtime_error("boom"); };
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(server.SendBytes(DataBatchFrame(1, {PbTick("A", 1, 1, 1, 1)})));
  ASSERT_TRUE(WaitUntil([&] { return client->closed(); }, kWait));
  auto reason = client->close_reason();
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->kind, ErrorKind::kCallback);
  EXPECT_NE(reason->message.find("boom"), std::string::npos);
}

TEST(ClientTest, OnErrorCallbackReceivesGapAndCloseFromCallbackIsSafe) {
  FakeServer server;
  auto options = Options(server);
  std::atomic<int> errors{0};
  Client* self = nullptr;
  options.on_batch = [](const Batch&) {};
  options.on_error = [&](const Error& e) {
    if (e.kind == ErrorKind::kBatchGap) {
      ++errors;
      self->Close();
    }
  };
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  self = client.get();
  ASSERT_TRUE(server.SendBytes(DataBatchFrame(3, {PbTick("A", 1, 1, 1, 1)})));
  EXPECT_TRUE(WaitUntil([&] { return client->closed(); }, kWait));
  EXPECT_EQ(errors, 1);
  EXPECT_FALSE(client->close_reason().has_value());  // closed by the user
}

TEST(ClientTest, FullPullQueueStopsReadingUntilDrained) {
  FakeServer server;
  auto options = Options(server);
  options.queue_capacity = 4;
  options.read_buffer_size = 4096;
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  constexpr int kBatches = 300;
  std::string all;
  for (int i = 1; i <= kBatches; ++i) {
    all += DataBatchFrame(static_cast<std::uint64_t>(i),
                          {PbTick("A", 1, 1, 1, static_cast<std::uint64_t>(i))});
  }
  ASSERT_GT(all.size(), 2 * options.read_buffer_size);
  ASSERT_TRUE(server.SendBytes(all));
  ASSERT_TRUE(WaitUntil([&] { return client->stats().read_pauses >= 1; }, kWait));
  // Paused: the client holds at most the capacity plus one read's worth of batches.
  EXPECT_LT(client->stats().batches, static_cast<std::uint64_t>(kBatches));
  for (int i = 1; i <= kBatches; ++i) {
    auto ev = client->Next(kWait);
    ASSERT_TRUE(ev);
    auto* b = std::get_if<Batch>(&*ev);
    ASSERT_NE(b, nullptr) << "event " << i << " is not a batch";
    ASSERT_EQ(b->batch_seq, static_cast<std::uint64_t>(i));
  }
  EXPECT_EQ(client->stats().batch_gaps, 0u);
}

TEST(ClientTest, CloseFailsPendingRequestAndUnblocksNext) {
  FakeServer server;
  auto options = Options(server);
  options.request_timeout = milliseconds(10000);
  auto client = ConnectTo(server, options);
  ASSERT_TRUE(client);
  auto fut = std::async(std::launch::async, [&] { return client->Subscribe(Mode::kTick, {"A"}); });
  ASSERT_TRUE(server.ReadSkippingHeartbeats());  // the SUBSCRIBE is out; never answered
  auto next = std::async(std::launch::async, [&] { return client->Next(milliseconds(10000)); });
  client->Close();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  auto result = fut.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kClosed);
  ASSERT_EQ(next.wait_for(kWait), std::future_status::ready);
  auto ev = next.get();
  ASSERT_TRUE(ev);
  EXPECT_TRUE(std::holds_alternative<Closed>(*ev));
  EXPECT_TRUE(server.WaitForEof());
  client->Close();  // idempotent
}

TEST(ClientTest, ManyClientsShareAnExternalIoContext) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  {
    FakeServer s1;
    FakeServer s2;
    auto o1 = Options(s1);
    auto o2 = Options(s2);
    o1.io_context = &io;
    o2.io_context = &io;
    auto c1 = ConnectTo(s1, o1);
    auto c2 = ConnectTo(s2, o2);
    ASSERT_TRUE(c1 && c2);
    ASSERT_TRUE(s1.SendBytes(DataBatchFrame(1, {PbTick("A", 1, 1, 1, 1)})));
    ASSERT_TRUE(s2.SendBytes(DataBatchFrame(1, {PbTick("B", 1, 1, 1, 1)})));
    EXPECT_TRUE(NextOf<Batch>(*c1));
    EXPECT_TRUE(NextOf<Batch>(*c2));
  }
  guard.reset();
  runner.join();
}

}  // namespace
}  // namespace tickwire::client
