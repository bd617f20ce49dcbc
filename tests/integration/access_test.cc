// AUTH rate limiting, users file permissions (every allowed and forbidden combination) and
// runtime reload (SIGHUP) of credentials, permissions, AUTH rate limits, BATCH_WINDOW_MS and
// LOG_LEVEL.
#include <signal.h>

#include <fstream>
#include <string>
#include <thread>

#include "auth/password_hash.h"
#include "integration/integration_test.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

std::string UserLine(const std::string& user, const std::string& pass, const std::string& perms) {
  return user + " " + auth::FormatPasswordHash(auth::HashPassword(pass, auth::kMinIterations)) +
         " " + perms + "\n";
}

class AccessTest : public IntegrationTest {
 protected:
  void WriteFile(const std::string& path, const std::string& text) {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << text;
    out.close();
    std::rename((path + ".tmp").c_str(), path.c_str());
  }
  // SIGHUP and wait for the reload's log line (the n-th reload).
  ::testing::AssertionResult Reload(int n) {
    if (kill(server_->pid(), SIGHUP) != 0) return ::testing::AssertionFailure() << "kill";
    const bool done = WaitUntil(
        [&] {
          const std::string logs = server_->Logs();
          int count = 0;
          for (auto pos = logs.find("\"event\":\"reload\""); pos != std::string::npos;
               pos = logs.find("\"event\":\"reload\"", pos + 1)) {
            ++count;
          }
          return count >= n;
        },
        milliseconds(5000));
    if (!done)
      return ::testing::AssertionFailure() << "no reload log line\n" << server_->Describe();
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult AuthAs(RawClient& c, const std::string& user,
                                    const std::string& pass) {
    if (auto r = Connect(c); !r) return r;
    return c.Authenticate(user, pass);
  }
  // One AUTH attempt; the ERROR code, or 0 for AUTH_OK.
  int Attempt(const std::string& source, const std::string& user, const std::string& pass,
              v1::Error* error = nullptr) {
    RawClient c;
    c.SetSourceAddress(source);
    if (!c.Connect(server_->port())) {
      ADD_FAILURE() << c.last_error();
      return -1;
    }
    v1::Auth auth;
    auth.set_username(user);
    auth.set_password(pass);
    c.SendFrame(FrameType::kAuth, auth);
    const ReadResult r = c.ReadFrame();
    if (!r.ok()) return -2;
    if (r.frame.frame_type() == FrameType::kAuthOk) return 0;
    v1::Error e;
    e.ParseFromString(r.frame.payload);
    if (error != nullptr) *error = e;
    return e.code();
  }

  TempDir dir_;
};

TEST_F(AccessTest, BruteForceIsThrottledWhileOthersAuthenticateAtOnce) {
  ASSERT_TRUE(Start({{"LISTEN_ADDR", "0.0.0.0:0"},
                     {"AUTH_FAIL_BUDGET_ADDR", "3"},
                     {"AUTH_FAIL_BUDGET_USER", "100"},
                     {"AUTH_BACKOFF_MIN", "300ms"},
                     {"AUTH_BACKOFF_MAX", "2s"}}));
  const std::string attacker = "127.0.0.2";
  // The budget: three wrong guesses are answered AUTH_FAILED.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Attempt(attacker, ServerProcess::kUser, "guess" + std::to_string(i)),
              v1::AUTH_FAILED);
  }
  // Then the loop is throttled: refused without a password check, even the right one.
  v1::Error e;
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    const int code =
        Attempt(attacker, ServerProcess::kUser, i == 19 ? ServerProcess::kPass : "x", &e);
    if (code == v1::AUTH_RATE_LIMITED) ++limited;
  }
  EXPECT_EQ(limited, 20);
  EXPECT_TRUE(e.fatal());
  EXPECT_GT(e.retry_after_ms(), 0u);
  EXPECT_LE(e.retry_after_ms(), 300u);
  // A correct client from another address is not held back.
  const auto t0 = steady_clock::now();
  EXPECT_EQ(Attempt("127.0.0.1", ServerProcess::kUser, ServerProcess::kPass), 0);
  EXPECT_LT(steady_clock::now() - t0, milliseconds(1000));
  // After the wait, the next failure doubles it (exponential back-off).
  std::this_thread::sleep_for(milliseconds(e.retry_after_ms() + 20));
  EXPECT_EQ(Attempt(attacker, ServerProcess::kUser, "again"), v1::AUTH_FAILED);
  EXPECT_EQ(Attempt(attacker, ServerProcess::kUser, "again", &e), v1::AUTH_RATE_LIMITED);
  EXPECT_GT(e.retry_after_ms(), 300u);
  EXPECT_LE(e.retry_after_ms(), 600u);
  EXPECT_NE(server_->Logs().find("auth_rate_limited"), std::string::npos);
  // 21 refusals without a password check, 4 wrong passwords checked.
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"auth_rate_limited\"}", 21));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "auth_rate_limited_total"), 21);
  EXPECT_EQ(Get(m, "protocol_errors_total{code=\"AUTH_RATE_LIMITED\"}"), 21);
  EXPECT_EQ(Get(m, "auth_failures_total{reason=\"auth_failed\"}"), 4);
}

// Regression (issue: 4 addresses x 5 wrong passwords used up the user name's budget, and from
// then on the right password was refused from anywhere, renewable for ever): a user name over
// its budget is throttled, never blocked. Only an address's own failures refuse it.
TEST_F(AccessTest, GuessingFromManyAddressesNeverLocksTheRealUserOut) {
  ASSERT_TRUE(Start({{"LISTEN_ADDR", "0.0.0.0:0"},
                     {"AUTH_BACKOFF_MIN", "200ms"},
                     {"AUTH_USER_DELAY_MAX", "800ms"}}));  // budgets: 5 per address, 20 per user
  EXPECT_EQ(Attempt("127.0.0.20", ServerProcess::kUser, ServerProcess::kPass), 0)
      << "the real user's usual address";
  auto guess_from = [&](int a) {
    return Attempt("127.0.0." + std::to_string(a), ServerProcess::kUser, "guess");
  };
  // Four addresses, five wrong passwords each: 20 failures for the name.
  for (int a = 2; a <= 5; ++a) {
    for (int i = 0; i < 5; ++i) EXPECT_EQ(guess_from(a), v1::AUTH_FAILED) << a << " " << i;
  }
  // Each address has used its own budget: there even the right password is refused.
  v1::Error e;
  EXPECT_EQ(Attempt("127.0.0.2", ServerProcess::kUser, ServerProcess::kPass, &e),
            v1::AUTH_RATE_LIMITED);
  EXPECT_GT(e.retry_after_ms(), 0u);
  EXPECT_LE(e.retry_after_ms(), 200u);
  // Anywhere else the right password gets in: after a delay from a fresh address, at once from
  // the usual one.
  auto login_from = [&](int a) {
    const auto t0 = steady_clock::now();
    EXPECT_EQ(Attempt("127.0.0." + std::to_string(a), ServerProcess::kUser, ServerProcess::kPass),
              0)
        << "from 127.0.0." << a;
    return steady_clock::now() - t0;
  };
  EXPECT_GE(login_from(30), milliseconds(150)) << "throttled: 200 ms";
  EXPECT_LT(login_from(20), milliseconds(150)) << "trusted: not throttled";
  // The attackers renew the attack as soon as their back-off allows (refused attempts do not
  // count): the name's delay doubles up to its cap, and the real user still gets in.
  for (int a = 2; a <= 5; ++a) {
    EXPECT_TRUE(WaitUntil([&] { return guess_from(a) == v1::AUTH_FAILED; }, milliseconds(5000)));
  }
  const auto waited = login_from(31);
  EXPECT_GE(waited, milliseconds(700)) << "800 ms, the cap";
  EXPECT_LT(waited, milliseconds(800 + 1500));
  EXPECT_LT(login_from(20), milliseconds(150));
  // Delayed: the two logins from fresh addresses and the four renewed guesses.
  EXPECT_EQ(Get(Scrape(), "auth_delayed_total"), 6);
}

// Regression (a successful AUTH erased its address's failures, so "4 wrong guesses, then log in
// to one's own account" could be repeated for ever): a success refunds only its own attempt.
TEST_F(AccessTest, ASuccessDoesNotResetTheAddressBudget) {
  ASSERT_TRUE(Start({{"LISTEN_ADDR", "0.0.0.0:0"},
                     {"AUTH_BACKOFF_MIN", "10s"},
                     {"AUTH_BACKOFF_MAX", "1m"}}));  // 5 failures per address
  const std::string attacker = "127.0.0.7";
  int failed = 0;
  int refused = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      const int code = Attempt(attacker, "victim", "guess");
      failed += code == v1::AUTH_FAILED ? 1 : 0;
      refused += code == v1::AUTH_RATE_LIMITED ? 1 : 0;
    }
    const int own = Attempt(attacker, ServerProcess::kUser, ServerProcess::kPass);
    refused += own == v1::AUTH_RATE_LIMITED ? 1 : 0;
  }
  EXPECT_EQ(failed, 5) << "the address budget, once: not 12";
  EXPECT_GT(refused, 0);
}

TEST_F(AccessTest, EveryPermissionCombination) {
  const std::string users = dir_.File("users");
  WriteFile(users, "# test users\n" + UserLine("producer", "p-pw", "publish=T.*") +
                       UserLine("consumer", "c-pw", "subscribe=T.*") +
                       UserLine("both", "b-pw", "publish=T.a subscribe=*") +
                       UserLine("none", "n-pw", ""));
  ASSERT_TRUE(Start({{"USERS_FILE", users}}));
  struct Who {
    std::string user, pass;
  };
  const Who who[] = {{"producer", "p-pw"},
                     {"consumer", "c-pw"},
                     {"both", "b-pw"},
                     {"none", "n-pw"},
                     {ServerProcess::kUser, ServerProcess::kPass}};
  // Expected outcome (true = allowed) for: publish T.a, publish U.a, subscribe T.a,
  // subscribe U.a, subscribe *.
  const bool allowed[][5] = {{true, false, false, false, false},
                             {false, false, true, false, false},
                             {true, false, true, true, true},
                             {false, false, false, false, false},
                             {true, true, true, true, true}};
  for (std::size_t u = 0; u < std::size(who); ++u) {
    SCOPED_TRACE(who[u].user);
    RawClient c;
    ASSERT_TRUE(AuthAs(c, who[u].user, who[u].pass));
    std::uint32_t rid = 1;
    for (const char* topic : {"T.a", "U.a"}) {
      v1::Publish p;
      p.set_request_id(rid);
      p.set_ack(true);
      *p.add_ticks() = MakeTick(topic, 1, 1);
      ASSERT_TRUE(c.SendFrame(FrameType::kPublish, p));
      const bool ok = allowed[u][rid - 1];
      if (ok) {
        v1::PublishAck ack;
        EXPECT_TRUE(c.ReadMessage(FrameType::kPublishAck, &ack)) << "publish " << topic;
      } else {
        EXPECT_TRUE(c.ExpectError(v1::FORBIDDEN, false, rid)) << "publish " << topic;
      }
      ++rid;
    }
    for (const char* topic : {"T.a", "U.a", "*"}) {
      v1::Subscribe s;
      s.set_request_id(rid);
      s.set_mode(v1::MODE_TICK);
      s.add_topics(topic);
      ASSERT_TRUE(c.SendFrame(FrameType::kSubscribe, s));
      if (allowed[u][rid - 1]) {
        v1::SubscribeOk ok;
        EXPECT_TRUE(c.ReadMessage(FrameType::kSubscribeOk, &ok)) << "subscribe " << topic;
      } else {
        EXPECT_TRUE(c.ExpectError(v1::FORBIDDEN, false, rid)) << "subscribe " << topic;
      }
      ++rid;
    }
    EXPECT_TRUE(c.HeartbeatRoundTrip(1)) << "FORBIDDEN is not fatal";
  }
  RawClient wrong;
  ASSERT_TRUE(Connect(wrong));
  ASSERT_TRUE(wrong.Authenticate("producer", "c-pw") == false);
}

TEST_F(AccessTest, SighupReloadsUsersPermissionsAndSettings) {
  const std::string users = dir_.File("users");
  const std::string conf = dir_.File("tickwire.conf");
  WriteFile(users, UserLine("alice", "old-pw", "subscribe=A.*"));
  WriteFile(conf, "BATCH_WINDOW_MS=5\nLOG_LEVEL=debug\n");
  ASSERT_TRUE(Start({{"USERS_FILE", users},
                     {"CONFIG_FILE", conf},
                     {"BATCH_WINDOW_MS", std::nullopt},
                     {"LOG_LEVEL", std::nullopt}}));
  RawClient before;
  ASSERT_TRUE(AuthAs(before, "alice", "old-pw"));

  // Rotate alice's password and permissions; widen the batch window; quieter logs; and one
  // setting that needs a restart.
  WriteFile(users, UserLine("alice", "new-pw", "subscribe=B.*"));
  WriteFile(conf, "BATCH_WINDOW_MS=250\nLOG_LEVEL=info\nMAX_PENDING_BYTES=8388608\n");
  ASSERT_TRUE(Reload(1));
  const std::string logs = server_->Logs();
  EXPECT_NE(logs.find("reload_needs_restart"), std::string::npos);
  EXPECT_NE(logs.find("\"settings\":\"MAX_PENDING_BYTES\""), std::string::npos) << logs;

  RawClient old_pw;
  ASSERT_TRUE(Connect(old_pw));
  EXPECT_FALSE(old_pw.Authenticate("alice", "old-pw"));
  RawClient after;
  v1::AuthOk ok;
  ASSERT_TRUE(Connect(after));
  ASSERT_TRUE(after.Authenticate("alice", "new-pw", &ok));
  EXPECT_EQ(ok.batch_window_ms(), 250u);
  EXPECT_TRUE(after.Subscribe(1, v1::MODE_TICK, {"B.x"}));
  v1::Subscribe s;
  s.set_request_id(2);
  s.set_mode(v1::MODE_TICK);
  s.add_topics("A.x");
  ASSERT_TRUE(after.SendFrame(FrameType::kSubscribe, s));
  EXPECT_TRUE(after.ExpectError(v1::FORBIDDEN, false, 2u));
  // The session authenticated before the reload keeps its permissions.
  EXPECT_TRUE(before.Subscribe(3, v1::MODE_TICK, {"A.x"}));
  EXPECT_TRUE(before.HeartbeatRoundTrip(5));

  // The wider window holds records back: a tick arrives no sooner than ~250 ms.
  RawClient pub;
  ASSERT_TRUE(AuthAs(pub, ServerProcess::kUser, ServerProcess::kPass));
  const auto sent = steady_clock::now();
  ASSERT_TRUE(pub.PublishAcked(1, {MakeTick("B.x", 1, 1)}));
  Delivery d;
  ASSERT_TRUE(ReadTicks(after, 1, milliseconds(3000), d));
  EXPECT_GE(d.frame_arrivals[0] - sent, milliseconds(200));

  // LOG_LEVEL=info: debug lines stop (a new connection's conn_open is a debug line).
  const auto debug_lines = [&] {
    const std::string l = server_->Logs();
    std::size_t n = 0;
    for (auto p = l.find("\"level\":\"debug\""); p != std::string::npos;
         p = l.find("\"level\":\"debug\"", p + 1)) {
      ++n;
    }
    return n;
  };
  const std::size_t before_count = debug_lines();
  RawClient quiet;
  ASSERT_TRUE(AuthAs(quiet, ServerProcess::kUser, ServerProcess::kPass));
  quiet.Close();
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(debug_lines(), before_count);

  // A broken users file keeps the previous credentials.
  WriteFile(users, "alice not-a-hash\n");
  ASSERT_TRUE(Reload(2));
  EXPECT_NE(server_->Logs().find("reload_credentials_failed"), std::string::npos);
  RawClient still;
  EXPECT_TRUE(AuthAs(still, "alice", "new-pw"));
  // A bad setting refuses the whole reload.
  WriteFile(conf, "BATCH_WINDOW_MS=lots\n");
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitUntil([&] { return server_->Logs().find("reload_failed") != std::string::npos; },
                        milliseconds(5000)));
  RawClient last;
  v1::AuthOk last_ok;
  ASSERT_TRUE(Connect(last));
  ASSERT_TRUE(last.Authenticate("alice", "new-pw", &last_ok));
  EXPECT_EQ(last_ok.batch_window_ms(), 250u);
}

TEST_F(AccessTest, SighupReloadsAuthRateLimits) {
  const std::string conf = dir_.File("tickwire.conf");
  WriteFile(conf, "AUTH_FAIL_BUDGET_ADDR=1\nAUTH_BACKOFF_MIN=5s\nAUTH_BACKOFF_MAX=10s\n");
  ASSERT_TRUE(Start({{"LISTEN_ADDR", "0.0.0.0:0"}, {"CONFIG_FILE", conf}}));
  v1::Error e;
  EXPECT_EQ(Attempt("127.0.0.2", ServerProcess::kUser, "guess"), v1::AUTH_FAILED);
  EXPECT_EQ(Attempt("127.0.0.2", ServerProcess::kUser, "guess", &e), v1::AUTH_RATE_LIMITED);
  EXPECT_GT(e.retry_after_ms(), 4000u);

  // A larger budget, a shorter back-off and its cap, a smaller table: all apply without a restart.
  WriteFile(conf,
            "AUTH_FAIL_BUDGET_ADDR=3\nAUTH_FAIL_BUDGET_USER=100\nAUTH_BACKOFF_MIN=100ms\n"
            "AUTH_BACKOFF_MAX=300ms\nAUTH_RATE_TABLE_SIZE=64\n");
  ASSERT_TRUE(Reload(1));
  EXPECT_EQ(server_->Logs().find("reload_needs_restart"), std::string::npos) << server_->Logs();
  const std::string source = "127.0.0.3";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Attempt(source, ServerProcess::kUser, "guess"), v1::AUTH_FAILED) << i;
  }
  EXPECT_EQ(Attempt(source, ServerProcess::kUser, "guess", &e), v1::AUTH_RATE_LIMITED);
  EXPECT_GT(e.retry_after_ms(), 0u);
  EXPECT_LE(e.retry_after_ms(), 100u);
  // Each failure after a wait doubles it: 200 ms; after that the address also forgets one
  // failure per AUTH_BACKOFF_MAX (300 ms), so the next wait is 200 or 400 cut to the cap of
  // 300 ms, never more.
  for (const auto& [low, high] : {std::pair{100u, 200u}, std::pair{100u, 300u}}) {
    std::this_thread::sleep_for(milliseconds(e.retry_after_ms() + 20));
    EXPECT_EQ(Attempt(source, ServerProcess::kUser, "guess"), v1::AUTH_FAILED);
    EXPECT_EQ(Attempt(source, ServerProcess::kUser, "guess", &e), v1::AUTH_RATE_LIMITED);
    EXPECT_GT(e.retry_after_ms(), low);
    EXPECT_LE(e.retry_after_ms(), high);
  }
}

TEST_F(AccessTest, SighupReloadsStreamUserAndPassFromConfigFile) {
  const std::string conf = dir_.File("tickwire.conf");
  WriteFile(conf, "STREAM_USER=carol\nSTREAM_PASS=old-pw\n");
  ASSERT_TRUE(
      Start({{"CONFIG_FILE", conf}, {"STREAM_USER", std::nullopt}, {"STREAM_PASS", std::nullopt}}));
  RawClient before;
  ASSERT_TRUE(AuthAs(before, "carol", "old-pw"));

  WriteFile(conf, "STREAM_USER=carol\nSTREAM_PASS=new-pw\n");
  ASSERT_TRUE(Reload(1));
  EXPECT_EQ(server_->Logs().find("reload_needs_restart"), std::string::npos) << server_->Logs();
  RawClient old_pw;
  ASSERT_TRUE(Connect(old_pw));
  EXPECT_FALSE(old_pw.Authenticate("carol", "old-pw"));
  RawClient new_pw;
  EXPECT_TRUE(AuthAs(new_pw, "carol", "new-pw"));
  EXPECT_TRUE(before.HeartbeatRoundTrip(1)) << "the session from before the reload stays";

  // A new user name replaces the old one.
  WriteFile(conf, "STREAM_USER=dave\nSTREAM_PASS=dave-pw\n");
  ASSERT_TRUE(Reload(2));
  RawClient dave;
  EXPECT_TRUE(AuthAs(dave, "dave", "dave-pw"));
  RawClient carol;
  ASSERT_TRUE(Connect(carol));
  EXPECT_FALSE(carol.Authenticate("carol", "new-pw"));
}

TEST_F(AccessTest, BadUsersFileStopsStartup) {
  const std::string users = dir_.File("users");
  WriteFile(users, "alice short\n");
  ServerProcess bad({{"USERS_FILE", users}});
  ASSERT_TRUE(bad.Spawn());
  EXPECT_EQ(bad.WaitForExit(milliseconds(5000)), 1);
  EXPECT_NE(bad.Stderr().find("USERS_FILE"), std::string::npos) << bad.Stderr();
  EXPECT_NE(bad.Stderr().find("line 1"), std::string::npos) << bad.Stderr();
}

}  // namespace
}  // namespace tickwire::testing
