// Session security rules: AUTH rate limiting (PROTOCOL S1), per-user permissions (FORBIDDEN, S4 and
// S6), credential reloads, and client-certificate identities.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "auth/rate_limiter.h"
#include "auth/users_file.h"
#include "protocol/frame.h"
#include "session/session.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::session {
namespace {

using namespace std::chrono_literals;
namespace pb = ::tickwire::v1;
using protocol::FrameType;

struct Host : SessionHost {
  std::vector<std::string> frames;
  CloseReason closed = CloseReason::kNone;
  std::size_t subscriptions = 0;
  std::size_t publishes = 0;

  void SendFrame(std::string frame) override { frames.push_back(std::move(frame)); }
  void CloseAfterError(CloseReason reason) override { closed = reason; }
  void AddSubscription(std::uint64_t, const Subscription&) override { ++subscriptions; }
  void RemoveSubscription(std::uint64_t, const Subscription&) override {}
  void Publish(std::uint32_t, bool, std::vector<engine::IngestTick>) override { ++publishes; }
  std::int64_t WallClockNs() override { return 1'700'000'000'000'000'000; }
  void OnAuthenticated(const std::string&, const std::string&) override {}
  void DelayAuth(std::chrono::milliseconds delay) override { delays.push_back(delay); }
  void CheckOffLoop(CredentialCheck c) override {
    EXPECT_FALSE(check) << "one check at a time";
    check = std::move(c);
    ++checks;
  }

  std::vector<std::chrono::milliseconds> delays;  // every DelayAuth
  CredentialCheck check;                          // the CheckOffLoop not yet run
  int checks = 0;

  std::uint8_t LastType() const { return static_cast<std::uint8_t>(frames.back()[4]); }
  pb::Error LastError() const {
    pb::Error e;
    EXPECT_EQ(LastType(), static_cast<std::uint8_t>(FrameType::kError));
    e.ParseFromArray(frames.back().data() + 5, static_cast<int>(frames.back().size() - 5));
    return e;
  }
};

// One connection: a host and its session.
struct Conn {
  Host host;
  std::unique_ptr<Session> session;

  template <typename M>
  bool Send(FrameType type, const M& m, Clock::time_point now) {
    const std::string p = m.SerializeAsString();
    return session->OnFrame(static_cast<std::uint8_t>(type),
                            std::span(reinterpret_cast<const std::uint8_t*>(p.data()), p.size()),
                            now);
  }
  // Sends AUTH and plays the host's part until it is decided: waits out a throttle delay, runs
  // the off-loop check (as a hashing thread would) and hands its result back.
  // Sends AUTH and leaves it to be decided.
  bool SendAuth(const std::string& user, const std::string& pass, Clock::time_point now) {
    pb::Auth a;
    a.set_username(user);
    a.set_password(pass);
    return Send(FrameType::kAuth, a, now);
  }
  bool Auth(const std::string& user, const std::string& pass, Clock::time_point now) {
    if (!SendAuth(user, pass, now)) return false;
    for (std::size_t d = 0; session->auth_pending(); ++d) {
      if (d < host.delays.size()) {
        session->ResumeAuth(now += host.delays[d]);
      } else if (host.check) {
        auto check = std::move(host.check);
        host.check = nullptr;
        session->OnAuthChecked({true, check(), 0}, now);
      } else {
        ADD_FAILURE() << "pending with nothing to wait for";
        return false;
      }
    }
    return !session->closed();
  }
  bool Subscribe(std::uint32_t rid, const std::vector<std::string>& topics, Clock::time_point now) {
    pb::Subscribe s;
    s.set_request_id(rid);
    s.set_mode(pb::MODE_TICK);
    for (const auto& t : topics) s.add_topics(t);
    return Send(FrameType::kSubscribe, s, now);
  }
  bool Publish(std::uint32_t rid, const std::vector<std::string>& topics, Clock::time_point now) {
    pb::Publish p;
    p.set_request_id(rid);
    for (const auto& t : topics) {
      auto* tick = p.add_ticks();
      tick->set_topic(t);
      tick->set_price(1);
      tick->set_size(1);
    }
    return Send(FrameType::kPublish, p, now);
  }
};

std::string Line(const std::string& user, const std::string& pass, const std::string& perms) {
  return user + " " + auth::FormatPasswordHash(auth::HashPassword(pass, auth::kMinIterations)) +
         " " + perms + "\n";
}

std::shared_ptr<const auth::Authenticator> MakeAuth(const std::string& users_text) {
  auto users = auth::ParseUsersFile(users_text);
  EXPECT_TRUE(std::holds_alternative<std::vector<auth::UserEntry>>(users));
  auto a = auth::Authenticator::Create("admin", "admin-pw",
                                       std::get<std::vector<auth::UserEntry>>(std::move(users)));
  return std::get<std::shared_ptr<const auth::Authenticator>>(a);
}

class SessionSecurityTest : public ::testing::Test {
 protected:
  SessionSecurityTest()
      : store_(MakeAuth(Line("feed", "feed-pw", "publish=T.*") +
                        Line("viewer", "viewer-pw", "subscribe=FX.*,AAPL") +
                        Line("nobody", "nobody-pw", ""))),
        limiter_(auth::RateLimitSettings{2, 4, 100ms, 400ms, 300ms, 64}) {}

  std::unique_ptr<Conn> Open(const std::string& address, const std::string& tls_identity = "",
                             std::chrono::milliseconds auth_timeout = 5000ms) {
    auto c = std::make_unique<Conn>();
    SessionParams p;
    p.credentials = &store_;
    p.rate_limiter = &limiter_;
    p.auth_timeout = auth_timeout;
    p.session_id = "s";
    c->session = std::make_unique<Session>(p, c->host, now_);
    c->session->OnTransportReady(now_, TransportInfo{address, tls_identity});
    return c;
  }
  std::unique_ptr<Conn> Authed(const std::string& user, const std::string& pass) {
    auto c = Open("10.0.0.1");
    EXPECT_TRUE(c->Auth(user, pass, now_));
    EXPECT_EQ(c->host.LastType(), static_cast<std::uint8_t>(FrameType::kAuthOk)) << user;
    return c;
  }
  void ExpectForbidden(Conn& c, std::uint32_t rid) {
    const auto e = c.host.LastError();
    EXPECT_EQ(e.code(), pb::FORBIDDEN) << e.message();
    EXPECT_FALSE(e.fatal());
    EXPECT_EQ(e.request_id(), rid);
    EXPECT_FALSE(c.session->closed());
  }

  Clock::time_point now_ = Clock::now();
  auth::CredentialStore store_;
  auth::AuthRateLimiter limiter_;
};

TEST_F(SessionSecurityTest, RateLimitedAuthIsRefusedWithoutCheckingThePassword) {
  for (int i = 0; i < 2; ++i) {
    auto c = Open("192.0.2.9");
    EXPECT_FALSE(c->Auth("feed", "guess", now_));
    EXPECT_EQ(c->host.LastError().code(), pb::AUTH_FAILED);
  }
  auto c = Open("192.0.2.9");
  EXPECT_FALSE(c->Auth("feed", "feed-pw", now_)) << "right password, but over budget";
  const auto e = c->host.LastError();
  EXPECT_EQ(e.code(), pb::AUTH_RATE_LIMITED);
  EXPECT_TRUE(e.fatal());
  EXPECT_EQ(e.retry_after_ms(), 100u);
  EXPECT_EQ(c->host.closed, CloseReason::kAuthRateLimited);
  EXPECT_EQ(limiter_.throttled_total(), 1u);
  EXPECT_EQ(limiter_.failures_total(), 2u);

  auto other = Open("192.0.2.10");
  EXPECT_TRUE(other->Auth("feed", "feed-pw", now_)) << "another address is not held back";

  auto later = Open("192.0.2.9");
  EXPECT_TRUE(later->Auth("feed", "feed-pw", now_ + 100ms)) << "the block has expired";
}

TEST_F(SessionSecurityTest, ProducerMayOnlyPublishItsTopics) {
  auto c = Authed("feed", "feed-pw");
  EXPECT_TRUE(c->Publish(1, {"T.1", "T.2"}, now_));
  EXPECT_EQ(c->host.publishes, 1u);
  EXPECT_TRUE(c->Publish(2, {"T.3", "U.1"}, now_));
  ExpectForbidden(*c, 2);
  EXPECT_NE(c->host.LastError().message().find("ticks[1]"), std::string::npos);
  EXPECT_EQ(c->host.publishes, 1u) << "nothing of a forbidden frame is applied";
  EXPECT_TRUE(c->Subscribe(3, {"T.1"}, now_));
  ExpectForbidden(*c, 3);
  EXPECT_TRUE(c->Subscribe(4, {"*"}, now_));
  ExpectForbidden(*c, 4);
  EXPECT_EQ(c->host.subscriptions, 0u);
}

TEST_F(SessionSecurityTest, ConsumerMayOnlySubscribeItsTopics) {
  auto c = Authed("viewer", "viewer-pw");
  EXPECT_TRUE(c->Subscribe(1, {"FX.EURUSD", "AAPL"}, now_));
  EXPECT_EQ(c->host.LastType(), static_cast<std::uint8_t>(FrameType::kSubscribeOk));
  EXPECT_TRUE(c->Subscribe(2, {"AAPL", "MSFT"}, now_));
  ExpectForbidden(*c, 2);
  EXPECT_TRUE(c->Subscribe(3, {"*"}, now_));
  ExpectForbidden(*c, 3);
  EXPECT_TRUE(c->Publish(4, {"FX.EURUSD"}, now_));
  ExpectForbidden(*c, 4);
  EXPECT_EQ(c->host.subscriptions, 1u);
  // A prefix subscription needs a permission that covers every topic under it: "FX.*" and
  // "FX.EUR.*" are within "FX.*"; "F.*" and "AAPL.*" (topics other than AAPL) are not.
  EXPECT_TRUE(c->Subscribe(5, {"FX.*", "FX.EUR.*"}, now_));
  EXPECT_EQ(c->host.LastType(), static_cast<std::uint8_t>(FrameType::kSubscribeOk));
  EXPECT_TRUE(c->Subscribe(6, {"F.*"}, now_));
  ExpectForbidden(*c, 6);
  EXPECT_TRUE(c->Subscribe(7, {"AAPL.*"}, now_));
  ExpectForbidden(*c, 7);
  EXPECT_EQ(c->host.subscriptions, 2u);
  EXPECT_EQ(c->host.publishes, 0u);
}

TEST_F(SessionSecurityTest, UserWithoutPermissionsAndAdminWithAll) {
  auto n = Authed("nobody", "nobody-pw");
  EXPECT_TRUE(n->Subscribe(1, {"AAPL"}, now_));
  ExpectForbidden(*n, 1);
  EXPECT_TRUE(n->Publish(2, {"AAPL"}, now_));
  ExpectForbidden(*n, 2);
  auto a = Authed("admin", "admin-pw");
  EXPECT_TRUE(a->Subscribe(1, {"*"}, now_));
  EXPECT_EQ(a->host.LastType(), static_cast<std::uint8_t>(FrameType::kSubscribeOk));
  EXPECT_TRUE(a->Publish(2, {"ANY.thing"}, now_));
  EXPECT_EQ(a->host.publishes, 1u);
}

TEST_F(SessionSecurityTest, ReloadChangesPermissionsForNewAuthsOnly) {
  auto before = Authed("viewer", "viewer-pw");
  store_.Set(MakeAuth(Line("viewer", "new-pw", "subscribe=MSFT")));
  EXPECT_TRUE(before->Subscribe(1, {"AAPL"}, now_));
  EXPECT_EQ(before->host.LastType(), static_cast<std::uint8_t>(FrameType::kSubscribeOk));
  auto old_pw = Open("10.0.0.2");
  EXPECT_FALSE(old_pw->Auth("viewer", "viewer-pw", now_));
  auto after = Authed("viewer", "new-pw");
  EXPECT_TRUE(after->Subscribe(2, {"AAPL"}, now_));
  ExpectForbidden(*after, 2);
  EXPECT_TRUE(after->Subscribe(3, {"MSFT"}, now_));
  EXPECT_EQ(after->host.LastType(), static_cast<std::uint8_t>(FrameType::kSubscribeOk));
}

TEST_F(SessionSecurityTest, CertificateIdentityNeedsNoPasswordButMustMatch) {
  auto c = Open("10.0.0.3", "viewer");
  EXPECT_TRUE(c->Auth("viewer", "", now_));
  EXPECT_EQ(c->host.LastType(), static_cast<std::uint8_t>(FrameType::kAuthOk));
  auto d = Open("10.0.0.3", "viewer");
  EXPECT_FALSE(d->Auth("admin", "admin-pw", now_)) << "a certificate for viewer cannot be admin";
  EXPECT_EQ(d->host.LastError().code(), pb::AUTH_FAILED);
  auto e = Open("10.0.0.4", "stranger");
  EXPECT_FALSE(e->Auth("stranger", "", now_)) << "a CN that is no user";
}

TEST_F(SessionSecurityTest, AuthDeadlineStartsWhenTheTransportIsReady) {
  Host host;
  SessionParams p;
  p.credentials = &store_;
  p.auth_timeout = 200ms;
  Session s(p, host, now_);
  s.OnTransportReady(now_ + 150ms, {});
  EXPECT_TRUE(s.CheckTimers(now_ + 300ms));
  EXPECT_FALSE(s.CheckTimers(now_ + 350ms));
  EXPECT_EQ(host.LastError().code(), pb::AUTH_TIMEOUT);
}

// PBKDF2 never runs on the session's thread: a users-file password that has not verified before
// goes to CheckOffLoop, and nothing is answered until its result comes back.
TEST_F(SessionSecurityTest, PasswordHashingRunsOffTheLoopAndTheVerdictComesBack) {
  auto c = Open("10.0.0.5");
  EXPECT_TRUE(c->SendAuth("viewer", "wrong", now_));
  EXPECT_TRUE(c->session->auth_pending());
  EXPECT_EQ(c->host.checks, 1);
  EXPECT_TRUE(c->host.frames.empty()) << "no answer before the check is done";
  EXPECT_TRUE(c->session->CheckTimers(now_ + 1ms));
  auto check = std::move(c->host.check);
  c->session->OnAuthChecked({true, check(), 0}, now_ + 30ms);
  EXPECT_FALSE(c->session->auth_pending());
  EXPECT_EQ(c->host.LastError().code(), pb::AUTH_FAILED);
  EXPECT_EQ(c->host.closed, CloseReason::kAuthFailed);
  // A right password checks off the loop once; the next AUTH with it is decided at once.
  auto first = Open("10.0.0.6");
  EXPECT_TRUE(first->Auth("viewer", "viewer-pw", now_));
  EXPECT_EQ(first->host.checks, 1);
  auto again = Open("10.0.0.6");
  EXPECT_TRUE(again->Auth("viewer", "viewer-pw", now_));
  EXPECT_EQ(again->host.checks, 0);
}

TEST_F(SessionSecurityTest, FullHashingQueueRefusesWithRetryAndChargesNothing) {
  for (int i = 0; i < 3; ++i) {  // the address's budget is 2: unchecked attempts cost nothing
    auto c = Open("10.0.0.7");
    EXPECT_TRUE(c->SendAuth("feed", "feed-pw", now_));
    ASSERT_TRUE(c->session->auth_pending());
    c->session->OnAuthChecked({false, nullptr, 250}, now_);
    const auto e = c->host.LastError();
    EXPECT_EQ(e.code(), pb::AUTH_RATE_LIMITED);
    EXPECT_EQ(e.retry_after_ms(), 250u);
    EXPECT_TRUE(e.fatal());
  }
  auto c = Open("10.0.0.7");
  EXPECT_TRUE(c->Auth("feed", "feed-pw", now_));
}

TEST_F(SessionSecurityTest, AuthsInFlightTogetherCannotOvershootTheAddressBudget) {
  std::vector<std::unique_ptr<Conn>> in_flight;
  for (int i = 0; i < 2; ++i) {
    in_flight.push_back(Open("10.0.0.8"));
    EXPECT_TRUE(in_flight.back()->SendAuth("feed", "guess" + std::to_string(i), now_));
    EXPECT_TRUE(in_flight.back()->session->auth_pending());
  }
  auto third = Open("10.0.0.8");
  EXPECT_FALSE(third->Auth("feed", "guess2", now_)) << "budget 2, two already being checked";
  EXPECT_EQ(third->host.LastError().code(), pb::AUTH_RATE_LIMITED);
  EXPECT_EQ(third->host.checks, 0);
}

// Regression (a user name over its budget was blocked from everywhere, right password
// included): the name is throttled, and a right password still gets in.
TEST_F(SessionSecurityTest, UserNameOverBudgetDelaysButNeverRefusesTheRightPassword) {
  auto usual = Open("192.0.2.50");
  EXPECT_TRUE(usual->Auth("feed", "feed-pw", now_));  // where feed usually logs in from
  // Four addresses, one wrong guess each: the user budget (4) is used, no address budget.
  for (int i = 0; i < 4; ++i) {
    auto c = Open("203.0.113." + std::to_string(i));
    EXPECT_FALSE(c->Auth("feed", "guess", now_));
    EXPECT_EQ(c->host.LastError().code(), pb::AUTH_FAILED);
  }
  auto fresh = Open("198.51.100.1");
  EXPECT_TRUE(fresh->Auth("feed", "feed-pw", now_)) << "delayed, not refused";
  EXPECT_EQ(fresh->host.LastType(), static_cast<std::uint8_t>(FrameType::kAuthOk));
  EXPECT_EQ(fresh->host.delays, (std::vector<std::chrono::milliseconds>{100ms}));
  auto wrong = Open("198.51.100.2");
  EXPECT_FALSE(wrong->Auth("feed", "guess", now_));
  EXPECT_EQ(wrong->host.LastError().code(), pb::AUTH_FAILED) << "guesses are checked, later";
  EXPECT_EQ(wrong->host.delays, (std::vector<std::chrono::milliseconds>{100ms}));
  auto again = Open("192.0.2.50");
  EXPECT_TRUE(again->Auth("feed", "feed-pw", now_));
  EXPECT_TRUE(again->host.delays.empty()) << "its usual address is not delayed";
  auto other = Open("198.51.100.3");
  EXPECT_TRUE(other->Auth("viewer", "viewer-pw", now_));
  EXPECT_TRUE(other->host.delays.empty()) << "other names are not affected";
}

TEST_F(SessionSecurityTest, AThrottleDelayExtendsTheAuthDeadline) {
  for (int i = 0; i < 4; ++i) Open("203.0.113." + std::to_string(i))->Auth("feed", "x", now_);
  auto c = Open("198.51.100.9", "", 200ms);
  EXPECT_TRUE(c->SendAuth("feed", "feed-pw", now_ + 150ms));
  ASSERT_EQ(c->host.delays.size(), 1u);
  const auto delay = c->host.delays[0];
  Session& s = *c->session;
  Host& host = c->host;
  EXPECT_TRUE(s.CheckTimers(now_ + 200ms + delay - 1ms))
      << "the server's delay is not held against the client";
  EXPECT_FALSE(s.CheckTimers(now_ + 200ms + delay));
  EXPECT_EQ(host.LastError().code(), pb::AUTH_TIMEOUT);
  s.ResumeAuth(now_ + 200ms + delay);  // too late: ignored
  EXPECT_EQ(host.checks, 0);
}

TEST_F(SessionSecurityTest, AFrameWhileAuthIsPendingIsAHostBug) {
  auto c = Open("10.0.0.9");
  EXPECT_TRUE(c->SendAuth("viewer", "viewer-pw", now_));
  ASSERT_TRUE(c->session->auth_pending());
  pb::Heartbeat hb;
  EXPECT_FALSE(c->Send(FrameType::kHeartbeat, hb, now_));
  EXPECT_EQ(c->host.LastError().code(), pb::INTERNAL);
  c->session->OnAuthChecked({true, c->host.check(), 0}, now_);  // closed: ignored
  EXPECT_EQ(c->host.LastError().code(), pb::INTERNAL);
}

}  // namespace
}  // namespace tickwire::session
