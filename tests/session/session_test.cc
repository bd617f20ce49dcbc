#include "session/session.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "protocol/errors.h"
#include "protocol/frame.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::session {
namespace {

using namespace std::chrono_literals;
namespace pb = ::tickwire::v1;

constexpr std::int64_t kNowNs = 1'700'000'000'000'000'000;

// Records every side effect of the session.
struct FakeHost : SessionHost {
  std::vector<std::string> frames;
  CloseReason closed = CloseReason::kNone;
  std::vector<std::pair<std::uint64_t, Subscription>> added;
  std::vector<std::uint64_t> removed;
  struct Pub {
    std::uint32_t request_id;
    bool ack;
    std::vector<engine::IngestTick> ticks;
  };
  std::vector<Pub> published;
  bool throw_on_add = false;  // AddSubscription throws, like a bug in the host would
  std::string fault;          // what OnInternalFault reported

  void SendFrame(std::string frame) override { frames.push_back(std::move(frame)); }
  void CloseAfterError(CloseReason reason) override { closed = reason; }
  void AddSubscription(std::uint64_t id, const Subscription& sub) override {
    if (throw_on_add) throw std::runtime_error("fanout table broke");
    added.emplace_back(id, sub);
  }
  void RemoveSubscription(std::uint64_t id, const Subscription&) override { removed.push_back(id); }
  void Publish(std::uint32_t rid, bool ack, std::vector<engine::IngestTick> ticks) override {
    published.push_back({rid, ack, std::move(ticks)});
  }
  std::int64_t WallClockNs() override { return kNowNs; }
  void OnAuthenticated(const std::string&, const std::string&) override {}
  void OnInternalFault(std::string_view what) override { fault = what; }
  // STREAM_USER credentials are decided at once: nothing here is ever asked to wait.
  void DelayAuth(std::chrono::milliseconds) override { ADD_FAILURE() << "DelayAuth"; }
  void CheckOffLoop(CredentialCheck) override { ADD_FAILURE() << "CheckOffLoop"; }

  std::uint8_t LastType() const { return static_cast<std::uint8_t>(frames.back()[4]); }
  template <typename M>
  M Last() const {
    M m;
    EXPECT_TRUE(
        m.ParseFromArray(frames.back().data() + 5, static_cast<int>(frames.back().size() - 5)));
    return m;
  }
  pb::Error LastError() const {
    EXPECT_EQ(LastType(), 0x0A);
    return Last<pb::Error>();
  }
};

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : authenticator_("user", "pass"), session_(Params(), host_, t0_) {}

  SessionParams Params() {
    SessionParams p;
    p.authenticator = &authenticator_;
    p.heartbeat_interval = 100ms;
    p.heartbeat_timeout = 300ms;
    p.auth_timeout = 200ms;
    p.max_msg_size = 4096;
    p.batch_window_ms = 7;
    p.session_id = "abc";
    p.stream_epoch = 0x5eed;
    return p;
  }

  template <typename M>
  bool Send(protocol::FrameType type, const M& m, Clock::time_point at = {}) {
    const std::string payload = m.SerializeAsString();
    return session_.OnFrame(
        static_cast<std::uint8_t>(type),
        std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
        at == Clock::time_point{} ? t0_ : at);
  }
  bool SendRaw(std::uint8_t type, std::string_view payload) {
    return session_.OnFrame(
        type, std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
        t0_);
  }
  void Authenticate() {
    pb::Auth auth;
    auth.set_username("user");
    auth.set_password("pass");
    ASSERT_TRUE(Send(protocol::FrameType::kAuth, auth));
    ASSERT_EQ(host_.LastType(), 0x02);
  }
  pb::Tick Tick(std::string topic, double price = 1.0, double size = 1.0, std::int64_t ts = 0) {
    pb::Tick t;
    t.set_topic(std::move(topic));
    t.set_price(price);
    t.set_size(size);
    t.set_ts_ns(ts);
    return t;
  }
  void ExpectPublishRejected(const pb::Tick& bad, std::string_view why) {
    pb::Publish pub;
    pub.set_request_id(77);
    *pub.add_ticks() = Tick("OK");
    *pub.add_ticks() = bad;
    EXPECT_TRUE(Send(protocol::FrameType::kPublish, pub));
    const auto err = host_.LastError();
    EXPECT_EQ(err.code(), pb::INVALID_REQUEST);
    EXPECT_FALSE(err.fatal());
    EXPECT_EQ(err.request_id(), 77u);
    EXPECT_NE(err.message().find("ticks[1]"), std::string::npos) << err.message();
    EXPECT_NE(err.message().find(why), std::string::npos) << err.message();
    EXPECT_TRUE(host_.published.empty());
    EXPECT_FALSE(session_.closed());
  }

  Clock::time_point t0_ = Clock::now();
  auth::Authenticator authenticator_;
  FakeHost host_;
  Session session_;
};

TEST_F(SessionTest, AuthOkCarriesSessionParameters) {
  Authenticate();
  const auto ok = host_.Last<pb::AuthOk>();
  EXPECT_EQ(ok.session_id(), "abc");
  EXPECT_EQ(ok.heartbeat_interval_ms(), 100u);
  EXPECT_EQ(ok.heartbeat_timeout_ms(), 300u);
  EXPECT_EQ(ok.max_msg_size(), 4096u);
  EXPECT_EQ(ok.batch_window_ms(), 7u);
  EXPECT_EQ(ok.protocol_version(), 1u);
  EXPECT_EQ(ok.stream_epoch(), 0x5eedu);
  EXPECT_FALSE(ok.server_version().empty());
  EXPECT_EQ(session_.state(), Session::State::kReady);
}

TEST_F(SessionTest, FirstFrameMustBeAuth) {
  pb::Heartbeat hb;
  EXPECT_FALSE(Send(protocol::FrameType::kHeartbeat, hb));
  EXPECT_EQ(host_.LastError().code(), pb::AUTH_REQUIRED);
  EXPECT_TRUE(host_.LastError().fatal());
  EXPECT_EQ(host_.closed, CloseReason::kAuthRequired);
  // Nothing else is sent once closed.
  const auto n = host_.frames.size();
  EXPECT_FALSE(Send(protocol::FrameType::kHeartbeat, hb));
  EXPECT_EQ(host_.frames.size(), n);
}

TEST_F(SessionTest, UnsubscribeFirstIsAuthRequired) {
  pb::Unsubscribe unsub;
  unsub.set_request_id(1);
  unsub.set_subscription_id(1);
  EXPECT_FALSE(Send(protocol::FrameType::kUnsubscribe, unsub));
  EXPECT_EQ(host_.LastError().code(), pb::AUTH_REQUIRED);
  EXPECT_TRUE(host_.LastError().fatal());
  EXPECT_EQ(host_.closed, CloseReason::kAuthRequired);
  EXPECT_TRUE(host_.removed.empty());
}

TEST_F(SessionTest, UnknownTypeBeatsAuthRequired) {
  EXPECT_FALSE(SendRaw(0x42, ""));
  EXPECT_EQ(host_.LastError().code(), pb::UNKNOWN_FRAME_TYPE);
  EXPECT_EQ(host_.closed, CloseReason::kUnknownFrameType);
}

TEST_F(SessionTest, WrongCredentialsFail) {
  pb::Auth auth;
  auth.set_username("user");
  auth.set_password("nope");
  EXPECT_FALSE(Send(protocol::FrameType::kAuth, auth));
  const auto err = host_.LastError();
  EXPECT_EQ(err.code(), pb::AUTH_FAILED);
  EXPECT_TRUE(err.fatal());
  EXPECT_EQ(err.message().find("nope"), std::string::npos);
}

TEST_F(SessionTest, UnsupportedProtocolVersionIsRefused) {
  pb::Auth auth;
  auth.set_username("user");
  auth.set_password("pass");
  auth.set_protocol_version(2);
  EXPECT_FALSE(Send(protocol::FrameType::kAuth, auth));
  EXPECT_EQ(host_.LastError().code(), pb::INVALID_REQUEST);
  EXPECT_TRUE(host_.LastError().fatal());
}

TEST_F(SessionTest, ClientNameOver128BytesIsRefusedBeforeTheCredentials) {
  pb::Auth auth;
  auth.set_username("user");
  auth.set_password("pass");
  auth.set_client_name(std::string(129, 'n'));
  EXPECT_FALSE(Send(protocol::FrameType::kAuth, auth));
  EXPECT_EQ(host_.LastError().code(), pb::INVALID_REQUEST);
  EXPECT_TRUE(host_.LastError().fatal());
  EXPECT_EQ(host_.LastError().message(), "client_name is 129 bytes (at most 128)");
  EXPECT_EQ(host_.closed, CloseReason::kInvalidRequest);
  EXPECT_TRUE(session_.user().empty());
  EXPECT_TRUE(session_.client_name().empty());
}

TEST_F(SessionTest, ClientNameOf128BytesIsKept) {
  pb::Auth auth;
  auth.set_username("user");
  auth.set_password("pass");
  auth.set_client_name(std::string(128, 'n'));
  ASSERT_TRUE(Send(protocol::FrameType::kAuth, auth));
  EXPECT_EQ(host_.LastType(), 0x02);
  EXPECT_EQ(session_.client_name(), std::string(128, 'n'));
}

TEST_F(SessionTest, MalformedPayloadIsFatal) {
  EXPECT_FALSE(SendRaw(0x01,
                       "\x0a\x05"
                       "ab"));  // string field longer than the payload
  EXPECT_EQ(host_.LastError().code(), pb::MALFORMED_FRAME);
  EXPECT_EQ(host_.closed, CloseReason::kMalformedFrame);
}

TEST_F(SessionTest, SecondAuthIsNonFatal) {
  Authenticate();
  pb::Auth again;
  EXPECT_TRUE(Send(protocol::FrameType::kAuth, again));
  EXPECT_EQ(host_.LastError().code(), pb::INVALID_REQUEST);
  EXPECT_FALSE(host_.LastError().fatal());
  EXPECT_FALSE(session_.closed());
}

TEST_F(SessionTest, ServerOnlyTypesAreFatalAfterAuth) {
  for (int type : {0x02, 0x04, 0x07, 0x08, 0x0A}) {
    FakeHost host;
    Session s(Params(), host, t0_);
    pb::Auth auth;
    auth.set_username("user");
    auth.set_password("pass");
    const auto a = auth.SerializeAsString();
    ASSERT_TRUE(
        s.OnFrame(1, std::span(reinterpret_cast<const std::uint8_t*>(a.data()), a.size()), t0_));
    EXPECT_FALSE(s.OnFrame(static_cast<std::uint8_t>(type), {}, t0_));
    EXPECT_EQ(host.LastError().code(), pb::INVALID_REQUEST) << type;
    EXPECT_TRUE(host.LastError().fatal());
  }
}

TEST_F(SessionTest, HeartbeatEchoAndTimeout) {
  Authenticate();
  pb::Heartbeat hb;
  hb.set_ts_ms(12345);
  EXPECT_TRUE(Send(protocol::FrameType::kHeartbeat, hb, t0_ + 200ms));
  EXPECT_EQ(host_.LastType(), 0x09);
  EXPECT_EQ(host_.Last<pb::Heartbeat>().ts_ms(), 12345);
  // Other frames do not reset the timer.
  pb::Subscribe sub;
  sub.set_mode(pb::MODE_TICK);
  sub.add_topics("A");
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, sub, t0_ + 450ms));
  EXPECT_TRUE(session_.CheckTimers(t0_ + 450ms));
  EXPECT_FALSE(session_.CheckTimers(t0_ + 500ms));
  EXPECT_EQ(host_.LastError().code(), pb::HEARTBEAT_TIMEOUT);
  EXPECT_EQ(host_.closed, CloseReason::kHeartbeatTimeout);
}

TEST_F(SessionTest, AuthTimeout) {
  EXPECT_TRUE(session_.CheckTimers(t0_ + 199ms));
  EXPECT_FALSE(session_.CheckTimers(t0_ + 200ms));
  EXPECT_EQ(host_.LastError().code(), pb::AUTH_TIMEOUT);
  EXPECT_TRUE(host_.LastError().fatal());
}

TEST_F(SessionTest, SubscribeValidation) {
  Authenticate();
  struct Case {
    int mode;
    std::vector<std::string> topics;
    std::uint32_t backfill;
    std::int64_t since;
  };
  const std::vector<Case> bad = {
      {0, {"A"}, 0, 0},
      {9, {"A"}, 0, 0},
      {3, {}, 0, 0},
      {3, {"a b"}, 0, 0},
      {3, {""}, 0, 0},
      {3, {std::string(129, 'x')}, 0, 0},
      // Prefix patterns end in ".*" with a prefix of at least two bytes (PROTOCOL S4).
      {3, {"A", "foo*"}, 0, 0},
      {3, {".*"}, 0, 0},
      {3, {"FX.*.A"}, 0, 0},
      {3, {"*.A"}, 0, 0},
      {3, {"FX.**"}, 0, 0},
      {3, {"F X.*"}, 0, 0},
      {3, {std::string(127, 'x') + ".*"}, 0, 0},  // 129 bytes
      {3, {"A"}, 0, -1},
      {3, {"A"}, 5, 1000},
      // A since_ms whose ns do not fit 64 bits would wrap and replay every tick.
      {3, {"A"}, 0, engine::kMaxSinceMs + 1},
      {1, {"A"}, 0, INT64_MAX},
  };
  std::uint32_t rid = 100;
  for (const auto& c : bad) {
    pb::Subscribe sub;
    sub.set_request_id(++rid);
    sub.set_mode(static_cast<pb::Mode>(c.mode));
    for (const auto& t : c.topics) sub.add_topics(t);
    sub.set_backfill(c.backfill);
    sub.set_since_ms(c.since);
    EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, sub));
    const auto err = host_.LastError();
    EXPECT_EQ(err.code(), pb::INVALID_REQUEST) << rid;
    EXPECT_EQ(err.request_id(), rid);
    EXPECT_FALSE(err.fatal());
  }
  EXPECT_TRUE(host_.added.empty());
}

TEST_F(SessionTest, PrefixPatternsAreAcceptedAndBounded) {
  Authenticate();
  pb::Subscribe sub;
  sub.set_request_id(1);
  sub.set_mode(pb::MODE_TICK);
  sub.add_topics("FX.*");
  sub.add_topics("EQ.AAPL");
  sub.add_topics("FX.*");
  sub.add_topics(std::string(126, 'x') + ".*");  // 128 bytes: the longest pattern
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, sub));
  EXPECT_EQ(host_.Last<pb::SubscribeOk>().request_id(), 1u);
  ASSERT_EQ(host_.added.size(), 1u);
  EXPECT_FALSE(host_.added[0].second.wildcard);
  EXPECT_EQ(host_.added[0].second.topics,
            (std::vector<std::string>{"EQ.AAPL", "FX.*", std::string(126, 'x') + ".*"}));
  EXPECT_EQ(host_.added[0].second.patterns, 2u);

  // kMaxPrefixPatternsPerConnection over all subscriptions: 254 more fit, one more does not.
  pb::Subscribe more;
  more.set_request_id(2);
  more.set_mode(pb::MODE_SECOND);
  for (std::size_t i = 0; i < kMaxPrefixPatternsPerConnection - 2; ++i) {
    more.add_topics("P" + std::to_string(i) + ".*");
  }
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, more));
  EXPECT_EQ(host_.Last<pb::SubscribeOk>().request_id(), 2u);
  pb::Subscribe over;
  over.set_request_id(3);
  over.set_mode(pb::MODE_SECOND);
  over.add_topics("Z.*");
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, over));
  EXPECT_EQ(host_.LastError().code(), pb::INVALID_REQUEST);
  EXPECT_EQ(host_.LastError().request_id(), 3u);
  EXPECT_FALSE(host_.LastError().fatal());
  EXPECT_EQ(host_.added.size(), 2u);
  // Exact topics are still welcome, and an UNSUBSCRIBE gives the patterns back.
  over.set_topics(0, "Z.A");
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, over));
  EXPECT_EQ(host_.Last<pb::SubscribeOk>().request_id(), 3u);
  pb::Unsubscribe unsub;
  unsub.set_request_id(4);
  unsub.set_subscription_id(host_.added[1].first);
  EXPECT_TRUE(Send(protocol::FrameType::kUnsubscribe, unsub));
  over.set_request_id(5);
  over.set_topics(0, "Z.*");
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, over));
  EXPECT_EQ(host_.Last<pb::SubscribeOk>().request_id(), 5u);
}

TEST_F(SessionTest, SubscribeAndUnsubscribe) {
  Authenticate();
  pb::Subscribe sub;
  sub.set_request_id(5);
  sub.set_mode(pb::MODE_SECOND);
  sub.add_topics("B");
  sub.add_topics("A");
  sub.add_topics("B");
  sub.add_topics("*");
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, sub));
  const auto ok = host_.Last<pb::SubscribeOk>();
  EXPECT_EQ(ok.request_id(), 5u);
  EXPECT_NE(ok.subscription_id(), 0u);
  ASSERT_EQ(host_.added.size(), 1u);
  EXPECT_TRUE(host_.added[0].second.wildcard);
  EXPECT_EQ(host_.added[0].second.topics, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(host_.added[0].second.mode, engine::Mode::kSecond);

  pb::Unsubscribe unsub;
  unsub.set_request_id(6);
  unsub.set_subscription_id(ok.subscription_id() + 100);
  EXPECT_TRUE(Send(protocol::FrameType::kUnsubscribe, unsub));
  EXPECT_EQ(host_.LastError().code(), pb::INVALID_REQUEST);
  EXPECT_EQ(host_.LastError().request_id(), 6u);
  const auto frames = host_.frames.size();
  unsub.set_subscription_id(ok.subscription_id());
  EXPECT_TRUE(Send(protocol::FrameType::kUnsubscribe, unsub));
  EXPECT_EQ(host_.frames.size(), frames);  // no reply on success
  EXPECT_EQ(host_.removed, (std::vector<std::uint64_t>{ok.subscription_id()}));
}

TEST_F(SessionTest, SubscriptionCountLimitIsNonFatal) {
  Authenticate();
  auto subscribe = [&](std::uint32_t rid) {
    pb::Subscribe sub;
    sub.set_request_id(rid);
    sub.set_mode(pb::MODE_TICK);
    sub.add_topics("A");
    return Send(protocol::FrameType::kSubscribe, sub);
  };
  for (std::uint32_t i = 1; i <= kMaxSubscriptionsPerConnection; ++i) {
    ASSERT_TRUE(subscribe(i));
    ASSERT_EQ(host_.LastType(), 0x04) << i;
  }
  EXPECT_TRUE(subscribe(5000));
  const auto err = host_.LastError();
  EXPECT_EQ(err.code(), pb::INVALID_REQUEST);
  EXPECT_FALSE(err.fatal());
  EXPECT_EQ(err.request_id(), 5000u);
  EXPECT_NE(err.message().find("too many subscriptions"), std::string::npos) << err.message();
  EXPECT_EQ(host_.added.size(), kMaxSubscriptionsPerConnection);
  EXPECT_FALSE(session_.closed());
  // Freeing one makes room for one.
  pb::Unsubscribe unsub;
  unsub.set_subscription_id(host_.added.front().first);
  EXPECT_TRUE(Send(protocol::FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(subscribe(5001));
  EXPECT_EQ(host_.LastType(), 0x04);
}

TEST_F(SessionTest, TopicReferenceLimitIsNonFatal) {
  Authenticate();
  // 64 subscriptions of 1024 distinct topics each reach the 65536 topic references exactly.
  constexpr std::size_t kPerSub = 1024;
  static_assert(kMaxTopicRefsPerConnection % kPerSub == 0);
  auto subscribe = [&](std::uint32_t rid, std::size_t topics) {
    pb::Subscribe sub;
    sub.set_request_id(rid);
    sub.set_mode(pb::MODE_SECOND);
    for (std::size_t t = 0; t < topics; ++t) sub.add_topics("T" + std::to_string(t));
    return Send(protocol::FrameType::kSubscribe, sub);
  };
  for (std::uint32_t i = 1; i <= kMaxTopicRefsPerConnection / kPerSub; ++i) {
    ASSERT_TRUE(subscribe(i, kPerSub));
    ASSERT_EQ(host_.LastType(), 0x04) << i;
  }
  EXPECT_TRUE(subscribe(900, 1));
  const auto err = host_.LastError();
  EXPECT_EQ(err.code(), pb::INVALID_REQUEST);
  EXPECT_FALSE(err.fatal());
  EXPECT_EQ(err.request_id(), 900u);
  EXPECT_NE(err.message().find("too many subscriptions"), std::string::npos) << err.message();
  EXPECT_FALSE(session_.closed());
  // A single request over the limit on a fresh connection is refused the same way.
  FakeHost host;
  Session fresh(Params(), host, t0_);
  pb::Auth auth;
  auth.set_username("user");
  auth.set_password("pass");
  const std::string auth_bytes = auth.SerializeAsString();
  ASSERT_TRUE(fresh.OnFrame(
      0x01, std::span(reinterpret_cast<const std::uint8_t*>(auth_bytes.data()), auth_bytes.size()),
      t0_));
  pb::Subscribe big;
  big.set_request_id(901);
  big.set_mode(pb::MODE_TICK);
  for (std::size_t t = 0; t <= kMaxTopicRefsPerConnection; ++t)
    big.add_topics("T" + std::to_string(t));
  const std::string big_bytes = big.SerializeAsString();
  EXPECT_TRUE(fresh.OnFrame(
      0x03, std::span(reinterpret_cast<const std::uint8_t*>(big_bytes.data()), big_bytes.size()),
      t0_));
  EXPECT_EQ(host.LastError().code(), pb::INVALID_REQUEST);
  EXPECT_TRUE(host.added.empty());
}

TEST_F(SessionTest, AHandlerThatThrowsEndsOnlyThisSessionWithInternal) {
  Authenticate();
  host_.throw_on_add = true;
  pb::Subscribe sub;
  sub.set_request_id(3);
  sub.set_mode(pb::MODE_TICK);
  sub.add_topics("A");
  EXPECT_FALSE(Send(protocol::FrameType::kSubscribe, sub));
  const auto err = host_.LastError();
  EXPECT_EQ(err.code(), pb::INTERNAL);
  EXPECT_TRUE(err.fatal());
  EXPECT_EQ(host_.closed, CloseReason::kInternal);
  EXPECT_EQ(host_.fault, "fanout table broke");
  EXPECT_TRUE(session_.closed());
  // The half-added subscription stays recorded, so the connection's cleanup removes it.
  EXPECT_EQ(session_.subscriptions().size(), 1u);
  const auto n = host_.frames.size();
  pb::Heartbeat hb;
  EXPECT_FALSE(Send(protocol::FrameType::kHeartbeat, hb));
  EXPECT_EQ(host_.frames.size(), n);
}

TEST_F(SessionTest, PublishValidatesTheWholeFrame) {
  Authenticate();
  const double inf = std::numeric_limits<double>::infinity();
  ExpectPublishRejected(Tick("*"), "topic");
  ExpectPublishRejected(Tick("bad topic"), "topic");
  ExpectPublishRejected(Tick("A", std::nan("")), "price");
  ExpectPublishRejected(Tick("A", inf), "price");
  ExpectPublishRejected(Tick("A", 1.0, -inf), "size");
  ExpectPublishRejected(Tick("A", 1.0, -0.5), "negative");
  ExpectPublishRejected(Tick("A", 1.0, 1.0, -1), "ts_ns");
  ExpectPublishRejected(Tick("A", 1.0, 1.0, kNowNs + 5'000'000'001), "ahead");
  // Finite but large enough to make a bar's volume or vwap infinite or NaN.
  ExpectPublishRejected(Tick("A", 1e300, 1e300), "|price| is above 1e15");
  ExpectPublishRejected(Tick("A", -1.5e15), "|price| is above 1e15");
  ExpectPublishRejected(Tick("A", 1.0, 1.0000001e15), "size is above 1e15");
}

TEST_F(SessionTest, PriceAndSizeBoundsAreInclusiveAndSinceMsUpToTheBoundIsAccepted) {
  Authenticate();
  pb::Publish pub;
  pub.set_request_id(5);
  *pub.add_ticks() = Tick("A", engine::kMaxAbsPrice, engine::kMaxSize);
  *pub.add_ticks() = Tick("A", -engine::kMaxAbsPrice, 0.0);
  EXPECT_TRUE(Send(protocol::FrameType::kPublish, pub));
  ASSERT_EQ(host_.published.size(), 1u);
  EXPECT_EQ(host_.published[0].ticks[1].index, 1u);  // frame positions travel with the ticks
  pb::Subscribe sub;
  sub.set_request_id(6);
  sub.set_mode(pb::MODE_TICK);
  sub.add_topics("A");
  sub.set_since_ms(engine::kMaxSinceMs);
  EXPECT_TRUE(Send(protocol::FrameType::kSubscribe, sub));
  EXPECT_EQ(host_.LastType(), 0x04);  // SUBSCRIBE_OK
}

TEST_F(SessionTest, RefusedTicksAreReportedAsTopicLimitBeforeTheAck) {
  Authenticate();
  PublishRefusal r;
  r.index = 3;
  r.topic = "NEW.1";
  r.refused = 4;
  r.total = 10;
  session_.OnPublishRefused(21, r);
  auto err = host_.LastError();
  EXPECT_EQ(err.code(), pb::TOPIC_LIMIT);
  EXPECT_FALSE(err.fatal());
  EXPECT_EQ(err.request_id(), 21u);
  EXPECT_EQ(err.message().rfind("ticks[3]: new topic 'NEW.1' refused", 0), 0u) << err.message();
  EXPECT_NE(err.message().find("MAX_TOPICS"), std::string::npos);
  EXPECT_NE(err.message().find("4 of 10 ticks"), std::string::npos);
  r.reason = engine::Refusal::kUserTopicLimit;
  session_.OnPublishRefused(22, r);
  err = host_.LastError();
  EXPECT_NE(err.message().find("user 'user'"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("MAX_TOPICS_PER_USER"), std::string::npos);
  EXPECT_FALSE(session_.closed());
}

TEST_F(SessionTest, PublishStampsAndForwardsInOrder) {
  Authenticate();
  pb::Publish pub;
  pub.set_request_id(9);
  pub.set_ack(true);
  *pub.add_ticks() = Tick("A", 1.0, 2.0, 0);
  *pub.add_ticks() = Tick("B", 3.0, 0.0, kNowNs + 5'000'000'000);
  *pub.add_ticks() = Tick("A", 4.0, 1.0, 42);
  EXPECT_TRUE(Send(protocol::FrameType::kPublish, pub));
  ASSERT_EQ(host_.published.size(), 1u);
  const auto& p = host_.published[0];
  EXPECT_EQ(p.request_id, 9u);
  EXPECT_TRUE(p.ack);
  ASSERT_EQ(p.ticks.size(), 3u);
  EXPECT_EQ(p.ticks[0].ts_ns, kNowNs);
  EXPECT_EQ(p.ticks[1].ts_ns, kNowNs + 5'000'000'000);
  EXPECT_EQ(p.ticks[2].topic, "A");
  EXPECT_EQ(p.ticks[2].ts_ns, 42);
  session_.OnPublishApplied(9, 3);
  const auto ack = host_.Last<pb::PublishAck>();
  EXPECT_EQ(ack.request_id(), 9u);
  EXPECT_EQ(ack.accepted(), 3u);
}

TEST_F(SessionTest, DecodeErrorsMapToTheirCodes) {
  session_.OnDecodeError(protocol::DecodeError::kFrameTooLarge);
  EXPECT_EQ(host_.LastError().code(), pb::FRAME_TOO_LARGE);
  EXPECT_EQ(host_.closed, CloseReason::kFrameTooLarge);
  FakeHost host;
  Session s(Params(), host, t0_);
  s.OnDecodeError(protocol::DecodeError::kZeroLength);
  EXPECT_EQ(host.LastError().code(), pb::MALFORMED_FRAME);
}

}  // namespace
}  // namespace tickwire::session
