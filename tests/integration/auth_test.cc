// PROTOCOL S1 (AUTH first) and the first-frame rules, against the real server; users-file
// passwords checked on the hashing threads while the workers carry on.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "auth/password_hash.h"
#include "integration/integration_test.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class AuthTest : public IntegrationTest {};

TEST_F(AuthTest, AuthOkCarriesSessionParameters) {
  ASSERT_TRUE(Start({{"HEARTBEAT_INTERVAL", "7s"},
                     {"HEARTBEAT_TIMEOUT", "21s"},
                     {"MAX_MSG_SIZE", "32768"},
                     {"BATCH_WINDOW_MS", "17"}}));
  RawClient c;
  v1::AuthOk ok;
  ASSERT_TRUE(ConnectAuthed(c, &ok));
  EXPECT_FALSE(ok.session_id().empty());
  EXPECT_EQ(ok.heartbeat_interval_ms(), 7000u);
  EXPECT_EQ(ok.heartbeat_timeout_ms(), 21000u);
  EXPECT_EQ(ok.max_msg_size(), 32768u);
  EXPECT_EQ(ok.batch_window_ms(), 17u);
  EXPECT_FALSE(ok.server_version().empty());
  EXPECT_EQ(ok.protocol_version(), 1u);
}

TEST_F(AuthTest, SessionIdsDifferPerConnection) {
  ASSERT_TRUE(Start());
  RawClient a;
  RawClient b;
  v1::AuthOk ok_a;
  v1::AuthOk ok_b;
  ASSERT_TRUE(ConnectAuthed(a, &ok_a));
  ASSERT_TRUE(ConnectAuthed(b, &ok_b));
  EXPECT_NE(ok_a.session_id(), ok_b.session_id());
}

TEST_F(AuthTest, ProtocolVersionZeroMeansOne) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::AuthOk ok;
  ASSERT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass, &ok, 0));
  EXPECT_EQ(ok.protocol_version(), 1u);
  EXPECT_TRUE(c.HeartbeatRoundTrip(5));
}

TEST_F(AuthTest, UnsupportedProtocolVersionIsFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  auth.set_protocol_version(2);
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  EXPECT_TRUE(c.ExpectFatal(v1::INVALID_REQUEST));
}

// client_name is logged on every line about the connection and shown by /connz: a 60 KB name
// was accepted and copied into every one of them.
TEST_F(AuthTest, LongClientNameIsFatalInvalidRequestAndNeverLogged) {
  ASSERT_TRUE(Start());
  const std::string name(60 * 1024, 'x');
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  auth.set_client_name(name);
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  v1::Error e;
  EXPECT_TRUE(c.ExpectFatal(v1::INVALID_REQUEST, &e));
  EXPECT_EQ(e.message(), "client_name is 61440 bytes (at most 128)");
  RawClient ok;
  ASSERT_TRUE(Connect(ok));
  auth.set_client_name(std::string(128, 'y'));
  v1::AuthOk auth_ok;
  ASSERT_TRUE(ok.SendFrame(FrameType::kAuth, auth));
  ASSERT_TRUE(ok.ReadMessage(FrameType::kAuthOk, &auth_ok));
  ASSERT_EQ(server_->Stop(), 0);
  std::istringstream lines(server_->Logs());
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LT(line.size(), 2048u) << line.substr(0, 200);
    EXPECT_EQ(line.find("xxxxxxxxxxxxxxxx"), std::string::npos) << line.substr(0, 200);
  }
}

TEST_F(AuthTest, WrongPasswordIsFatalAuthFailed) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password("hunter2-not-the-password");
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  v1::Error e;
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_FAILED, &e));
  // The contract: an ERROR message never contains a password.
  EXPECT_EQ(e.message().find("hunter2"), std::string::npos) << e.message();
  EXPECT_EQ(e.message().find(ServerProcess::kPass), std::string::npos) << e.message();
}

TEST_F(AuthTest, WrongUserIsFatalAuthFailed) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username("nobody");
  auth.set_password(ServerProcess::kPass);
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
}

TEST_F(AuthTest, EmptyAuthIsFatalAuthFailed) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.SendRawFrame(0x01, ""));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
}

TEST_F(AuthTest, FirstFrameSubscribeIsFatalAuthRequired) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Subscribe sub;
  sub.set_request_id(1);
  sub.set_mode(v1::MODE_TICK);
  sub.add_topics("x");
  ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_REQUIRED));
}

TEST_F(AuthTest, FirstFrameHeartbeatIsFatalAuthRequired) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Heartbeat hb;
  hb.set_ts_ms(1);
  ASSERT_TRUE(c.SendFrame(FrameType::kHeartbeat, hb));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_REQUIRED));
}

TEST_F(AuthTest, FirstFramePublishIsFatalAuthRequired) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Publish pub;
  *pub.add_ticks() = MakeTick("x", 1, 1);
  ASSERT_TRUE(c.SendFrame(FrameType::kPublish, pub));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_REQUIRED));
}

TEST_F(AuthTest, FirstFrameUnsubscribeIsFatalAuthRequired) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  v1::Unsubscribe unsub;
  unsub.set_request_id(1);
  unsub.set_subscription_id(1);
  ASSERT_TRUE(c.SendFrame(FrameType::kUnsubscribe, unsub));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_REQUIRED));
}

// Server-only frame types as the first frame: known types, so AUTH_REQUIRED.
class AuthServerOnlyFirstFrameTest : public IntegrationTest,
                                     public ::testing::WithParamInterface<std::uint8_t> {};

TEST_P(AuthServerOnlyFirstFrameTest, IsFatalAuthRequired) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.SendRawFrame(GetParam(), ""));
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_REQUIRED));
}

INSTANTIATE_TEST_SUITE_P(ServerOnlyTypes, AuthServerOnlyFirstFrameTest,
                         ::testing::Values(0x02, 0x04, 0x07, 0x08, 0x0A), [](const auto& p) {
                           return std::string(protocol::FrameTypeName(p.param));
                         });

class AuthUnknownFirstFrameTest : public IntegrationTest,
                                  public ::testing::WithParamInterface<std::uint8_t> {};

TEST_P(AuthUnknownFirstFrameTest, IsFatalUnknownFrameType) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.SendRawFrame(GetParam(), "\x08\x01"));
  EXPECT_TRUE(c.ExpectFatal(v1::UNKNOWN_FRAME_TYPE));
}

INSTANTIATE_TEST_SUITE_P(UnknownTypes, AuthUnknownFirstFrameTest,
                         ::testing::Values(0x00, 0x0B, 0x7F, 0xFF),
                         [](const auto& p) { return "type" + std::to_string(p.param); });

TEST_F(AuthTest, NoAuthWithinTimeoutIsFatalAuthTimeout) {
  ASSERT_TRUE(Start({{"AUTH_TIMEOUT_MS", "300"}}));
  RawClient c;
  const auto t0 = steady_clock::now();
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.ExpectFatal(v1::AUTH_TIMEOUT, nullptr, milliseconds(3000)));
  const auto elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0);
  EXPECT_GE(elapsed.count(), 250);
  EXPECT_LE(elapsed.count(), 300 * 3 / 2 + 200);
}

// A client that trickles a valid AUTH one byte at a time must still be cut off at the deadline
// (the timer runs from connect, not from the last byte).
TEST_F(AuthTest, SlowlorisAuthIsFatalAuthTimeout) {
  ASSERT_TRUE(Start({{"AUTH_TIMEOUT_MS", "400"}}));
  RawClient c;
  const auto t0 = steady_clock::now();
  ASSERT_TRUE(Connect(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  auth.set_client_name("a slow client that sends one byte every 40 ms");
  const std::string frame = protocol::MakeFrame(FrameType::kAuth, auth.SerializeAsString());
  ASSERT_GT(frame.size() * 40, 400u * 3) << "the frame must take far longer than the timeout";
  ReadResult r;
  for (std::size_t i = 0; i < frame.size(); ++i) {
    if (!c.SendBytes(std::string_view(frame).substr(i, 1))) break;
    r = c.ReadFrame(milliseconds(40));
    if (r.status != ReadStatus::kTimeout) break;
  }
  if (r.status == ReadStatus::kTimeout) r = c.ReadFrame(milliseconds(2000));
  const auto elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0);
  ASSERT_TRUE(r.ok()) << ReadStatusName(r.status) << " " << r.detail;
  ASSERT_EQ(r.frame.frame_type(), FrameType::kError) << DescribeFrame(r.frame);
  v1::Error e;
  ASSERT_TRUE(e.ParseFromString(r.frame.payload));
  EXPECT_EQ(e.code(), v1::AUTH_TIMEOUT) << DescribeFrame(r.frame);
  EXPECT_TRUE(e.fatal());
  EXPECT_TRUE(c.ExpectClosed());
  EXPECT_LE(elapsed.count(), 400 * 3 / 2 + 200);
}

TEST_F(AuthTest, AuthJustBeforeTimeoutSucceedsAndTimerStops) {
  ASSERT_TRUE(Start({{"AUTH_TIMEOUT_MS", "300"}}));
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  // Well past the auth deadline the authenticated connection is still served.
  EXPECT_TRUE(c.ExpectNothing(milliseconds(700)));
  EXPECT_TRUE(c.HeartbeatRoundTrip(42));
}

TEST_F(AuthTest, SecondAuthIsNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false));
  // The connection keeps working.
  EXPECT_TRUE(c.HeartbeatRoundTrip(7));
  EXPECT_TRUE(c.Subscribe(1, v1::MODE_TICK, {Topic()}));
}

TEST_F(AuthTest, SecondAuthWithWrongPasswordIsStillNonFatalInvalidRequest) {
  ASSERT_TRUE(Start());
  RawClient c;
  ASSERT_TRUE(ConnectAuthed(c));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password("wrong");
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  EXPECT_TRUE(c.ExpectError(v1::INVALID_REQUEST, false));
  EXPECT_TRUE(c.HeartbeatRoundTrip(8));
}

// A users file whose checks cost `iterations` of PBKDF2 each (the server pads every failure to
// the file's highest count).
class HashedAuthTest : public IntegrationTest {
 protected:
  std::string UsersFile(std::uint32_t iterations) {
    const std::string path = dir_.File("users");
    std::ofstream out(path);
    out << "slow " << auth::FormatPasswordHash(auth::HashPassword("slow-pw", iterations))
        << " subscribe=*\n";
    return path;
  }
  static v1::Auth AuthFor(const std::string& user, const std::string& pass) {
    v1::Auth a;
    a.set_username(user);
    a.set_password(pass);
    return a;
  }
  TempDir dir_;
};

// Regression (PBKDF2 ran on the worker's event loop: each wrong password stopped everything on
// that worker for its whole check): while a queue of checks is being hashed, the worker keeps
// serving its other connections.
TEST_F(HashedAuthTest, WorkerKeepsServingWhileWrongPasswordsAreHashed) {
  ASSERT_TRUE(Start({{"USERS_FILE", UsersFile(auth::kMaxIterations)},
                     {"WORKERS", "1"},
                     {"AUTH_HASH_THREADS", "1"},
                     {"AUTH_TIMEOUT_MS", "30000"},
                     {"AUTH_FAIL_BUDGET_ADDR", "1000"},
                     {"AUTH_FAIL_BUDGET_USER", "1000"}}));
  RawClient watcher;
  ASSERT_TRUE(ConnectAuthed(watcher));
  // Four checks of about half a second each (2,000,000 iterations; more on a busy machine), for
  // a known and unknown names: seconds of hashing on one thread.
  constexpr int kGuesses = 4;
  std::vector<std::unique_ptr<RawClient>> guessers;
  for (int i = 0; i < kGuesses; ++i) {
    guessers.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(Connect(*guessers.back()));
    ASSERT_TRUE(guessers.back()->SendFrame(protocol::FrameType::kAuth,
                                           AuthFor(i % 2 == 0 ? "slow" : "nobody", "guess")));
  }
  // With PBKDF2 on the worker each of these waited for the check under way (~0.5 s or more).
  for (int i = 0; i < 5; ++i) {
    const auto t0 = steady_clock::now();
    ASSERT_TRUE(watcher.HeartbeatRoundTrip(100 + i));
    EXPECT_LT(steady_clock::now() - t0, milliseconds(250)) << "heartbeat " << i;
    std::this_thread::sleep_for(milliseconds(100));  // spread over the hashing, not a wait
  }
  EXPECT_LT(Get(Scrape(), "auth_hash_checks_total"), kGuesses)
      << "the heartbeats were answered while checks were still running";
  for (auto& g : guessers) {
    EXPECT_TRUE(g->ExpectFatal(v1::AUTH_FAILED, nullptr, milliseconds(30000)));
  }
  EXPECT_TRUE(Reaches("auth_hash_checks_total", kGuesses));  // counted as each check returns
  EXPECT_TRUE(watcher.HeartbeatRoundTrip(200));
}

// A client may pipeline requests right behind AUTH; they wait for the verdict and are then
// handled in order.
TEST_F(HashedAuthTest, FramesPipelinedBehindAnAuthWaitForItsVerdict) {
  ASSERT_TRUE(Start({{"USERS_FILE", UsersFile(auth::kMinIterations)}}));
  v1::Subscribe sub;
  sub.set_request_id(1);
  sub.set_mode(v1::MODE_TICK);
  sub.add_topics(Topic());
  v1::Heartbeat hb;
  hb.set_ts_ms(77);
  const std::string tail =
      protocol::MakeFrame(protocol::FrameType::kSubscribe, sub.SerializeAsString()) +
      protocol::MakeFrame(protocol::FrameType::kHeartbeat, hb.SerializeAsString());
  auto auth_frame = [&](const std::string& pass) {
    return protocol::MakeFrame(protocol::FrameType::kAuth,
                               AuthFor("slow", pass).SerializeAsString());
  };
  RawClient ok;
  ASSERT_TRUE(Connect(ok));
  ASSERT_TRUE(ok.SendBytes(auth_frame("slow-pw") + tail));  // one write
  EXPECT_TRUE(ok.ReadMessage<v1::AuthOk>(protocol::FrameType::kAuthOk, nullptr));
  v1::SubscribeOk sok;
  EXPECT_TRUE(ok.ReadMessage(protocol::FrameType::kSubscribeOk, &sok));
  EXPECT_EQ(sok.request_id(), 1u);
  v1::Heartbeat echo;
  EXPECT_TRUE(ok.ReadMessage(protocol::FrameType::kHeartbeat, &echo));
  EXPECT_EQ(echo.ts_ms(), 77);
  // A wrong password: the frames behind it are never handled.
  RawClient bad;
  ASSERT_TRUE(Connect(bad));
  ASSERT_TRUE(bad.SendBytes(auth_frame("wrong") + tail));
  EXPECT_TRUE(bad.ExpectFatal(v1::AUTH_FAILED));
  EXPECT_EQ(Get(Scrape(), "active_subscriptions{mode=\"tick\"}"), 1);
}

// The hashing queue is bounded: beyond it an AUTH is answered at once, AUTH_RATE_LIMITED with
// the wait the queue would have meant.
TEST_F(HashedAuthTest, FullHashingQueueAnswersAtOnceWithRetryAfter) {
  ASSERT_TRUE(Start({{"USERS_FILE", UsersFile(500'000)},
                     {"AUTH_HASH_THREADS", "1"},
                     {"AUTH_HASH_QUEUE", "1"},
                     {"AUTH_TIMEOUT_MS", "30000"},
                     {"AUTH_FAIL_BUDGET_ADDR", "100"}}));
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(Connect(*clients.back()));
    ASSERT_TRUE(clients.back()->SendFrame(protocol::FrameType::kAuth, AuthFor("slow", "guess")));
  }
  int refused = 0;
  int failed = 0;
  for (auto& c : clients) {
    const ReadResult r = c->ReadFrame(milliseconds(30000));
    ASSERT_TRUE(r.ok()) << ReadStatusName(r.status);
    ASSERT_EQ(r.frame.frame_type(), protocol::FrameType::kError) << DescribeFrame(r.frame);
    v1::Error e;
    ASSERT_TRUE(e.ParseFromString(r.frame.payload));
    if (e.code() == v1::AUTH_RATE_LIMITED) {
      ++refused;
      EXPECT_GE(e.retry_after_ms(), 100u);
      EXPECT_NE(e.message().find("busy"), std::string::npos) << e.message();
    } else {
      EXPECT_EQ(e.code(), v1::AUTH_FAILED);
      ++failed;
    }
  }
  // One check running and one queued: four refused, or five when the first had not started
  // when the second arrived.
  EXPECT_GE(refused, 4);
  EXPECT_LE(refused, 5);
  EXPECT_EQ(refused + failed, 6);
  EXPECT_TRUE(Reaches("auth_hash_refused_total", refused));
  EXPECT_TRUE(Reaches("auth_hash_checks_total", failed));
  EXPECT_EQ(Get(Scrape(), "auth_rate_limited_total"), refused);
  RawClient right;
  ASSERT_TRUE(Connect(right));
  EXPECT_TRUE(right.Authenticate("slow", "slow-pw"));
}

}  // namespace
}  // namespace tickwire::testing
