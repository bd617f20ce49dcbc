// PROXY protocol v1/v2 on the stream port: the real client address reaches logs, the AUTH
// rate limiter and /connz; LOCAL (health checks), TLVs, malformed, truncated and untrusted
// headers, each counted in /metrics.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "integration/integration_test.h"
#include "protocol/proxy_header.h"
#include "support/http_client.h"
#include "support/json.h"
#include "support/tls.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

std::string V2(std::uint8_t ver_cmd, std::uint8_t fam, const std::string& body) {
  std::string h(protocol::kProxyV2Signature);
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xFF));
  return h + body;
}

// v2 TCP4 from 198.51.100.<last>:4000 to 10.0.0.1:7878, with two TLVs.
std::string V2Tcp4(int last) {
  return V2(0x21, 0x11,
            Bytes({198, 51, 100, last, 10, 0, 0, 1, 0x0F, 0xA0, 0x1E, 0xC6}) +
                Bytes({0x01, 0x00, 0x02, 'h', '2', 0xEA, 0x00, 0x04, 'v', 'p', 'c', '1'}));
}

// v2 TCP6 from [2001:db8:<net>::<host>]:<port> to [2001:db8::1]:7878.
std::string V2Tcp6(int net, int host, int port = 4000) {
  std::string body(36, '\0');
  body[0] = 0x20;
  body[1] = 0x01;
  body[2] = 0x0d;
  body[3] = static_cast<char>(0xb8);
  body[4] = static_cast<char>(net >> 8);
  body[5] = static_cast<char>(net);
  body[15] = static_cast<char>(host);
  body[16] = 0x20;
  body[17] = 0x01;
  body[18] = 0x0d;
  body[19] = static_cast<char>(0xb8);
  body[31] = 1;
  body[32] = static_cast<char>(port >> 8);
  body[33] = static_cast<char>(port);
  body[34] = 0x1e;
  body[35] = static_cast<char>(0xc6);
  return V2(0x21, 0x21, body);
}

class ProxyProtocolTest : public IntegrationTest {
 protected:
  ::testing::AssertionResult StartProxied(EnvOverrides extra = {}) {
    EnvOverrides env = {{"PROXY_PROTOCOL", "required"},
                        {"PROXY_TRUSTED_CIDRS", "127.0.0.1/32, ::1"},
                        {"PROXY_HEADER_TIMEOUT", "500ms"}};
    for (auto& [k, v] : extra) env[k] = v;
    return Start(env);
  }
  // Connects, sends `header` (and optionally AUTH in the same segment) and expects AUTH_OK.
  ::testing::AssertionResult AuthThrough(const std::string& header, bool same_segment = false) {
    RawClient c;
    if (auto r = Connect(c); !r) return r;
    if (same_segment) {
      v1::Auth auth;
      auth.set_username(ServerProcess::kUser);
      auth.set_password(ServerProcess::kPass);
      std::string frame(5, '\0');
      const std::string payload = auth.SerializeAsString();
      const auto len = static_cast<std::uint32_t>(payload.size() + 1);
      frame[0] = static_cast<char>(len >> 24);
      frame[1] = static_cast<char>(len >> 16);
      frame[2] = static_cast<char>(len >> 8);
      frame[3] = static_cast<char>(len);
      frame[4] = static_cast<char>(FrameType::kAuth);
      if (!c.SendBytes(header + frame + payload)) return ::testing::AssertionFailure() << "send";
      return c.ReadMessage<v1::AuthOk>(FrameType::kAuthOk, nullptr);
    }
    if (!c.SendBytes(header)) return ::testing::AssertionFailure() << "send";
    return c.Authenticate(ServerProcess::kUser, ServerProcess::kPass);
  }
  // Connects, sends `bytes`, and expects the server to close without a frame.
  ::testing::AssertionResult ClosedAfter(const std::string& bytes,
                                         milliseconds wait = milliseconds(3000)) {
    RawClient c;
    if (auto r = Connect(c); !r) return r;
    if (!bytes.empty()) c.SendBytes(bytes);
    return c.ExpectClosed(wait);
  }
  bool LogHas(const std::string& text) { return server_->Logs().find(text) != std::string::npos; }
};

TEST_F(ProxyProtocolTest, V1Tcp4AndTcp6CarryTheRealAddress) {
  ASSERT_TRUE(StartProxied());
  EXPECT_TRUE(AuthThrough("PROXY TCP4 203.0.113.7 10.0.0.1 51234 7878\r\n"));
  EXPECT_TRUE(AuthThrough("PROXY TCP6 2001:db8::7 2001:db8::1 51235 7878\r\n", true));
  EXPECT_TRUE(
      WaitUntil([&] { return LogHas("\"remote\":\"[2001:db8::7]:51235\""); }, milliseconds(2000)));
  const std::string logs = server_->Logs();
  EXPECT_NE(logs.find("\"event\":\"auth_ok\""), std::string::npos);
  EXPECT_NE(logs.find("\"remote\":\"203.0.113.7:51234\""), std::string::npos) << logs;
}

TEST_F(ProxyProtocolTest, V2WithTlvsTcp6AndLocal) {
  ASSERT_TRUE(StartProxied());
  EXPECT_TRUE(AuthThrough(V2Tcp4(9)));
  EXPECT_TRUE(AuthThrough(V2Tcp4(10), true));
  EXPECT_TRUE(AuthThrough(V2Tcp6(0, 0x42, 5000)));
  // LOCAL: a load balancer health check; the connection is served with the socket's address.
  EXPECT_TRUE(AuthThrough(V2(0x20, 0x00, "")));
  EXPECT_TRUE(
      WaitUntil([&] { return LogHas("\"remote\":\"[2001:db8::42]:5000\""); }, milliseconds(2000)));
  EXPECT_TRUE(LogHas("\"remote\":\"198.51.100.9:4000\""));
  EXPECT_TRUE(LogHas("\"remote\":\"198.51.100.10:4000\""));
  // A health check that just connects, sends LOCAL and leaves.
  RawClient hc;
  ASSERT_TRUE(Connect(hc));
  ASSERT_TRUE(hc.SendBytes(V2(0x20, 0x00, "")));
  hc.Close();
  RawClient after;
  ASSERT_TRUE(Connect(after));
  ASSERT_TRUE(after.SendBytes("PROXY UNKNOWN\r\n"));
  EXPECT_TRUE(after.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  // Two v2 LOCAL headers and one v1 UNKNOWN.
  EXPECT_TRUE(Reaches("proxy_local_total", 3));
  EXPECT_EQ(Get(Scrape(), "proxy_header_rejections_total{reason=\"malformed\"}"), 0);
}

TEST_F(ProxyProtocolTest, MalformedTruncatedAndMissingHeadersClose) {
  ASSERT_TRUE(StartProxied());
  EXPECT_TRUE(ClosedAfter("PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n"));
  EXPECT_TRUE(ClosedAfter("PROXY TCP4 999.0.113.7 10.0.0.1 1 2\r\n"));
  EXPECT_TRUE(ClosedAfter("PROXY " + std::string(200, 'A')));
  EXPECT_TRUE(ClosedAfter(V2(0x22, 0x11, std::string(12, '\x01'))));
  EXPECT_TRUE(ClosedAfter(V2(0x21, 0x11, std::string(5, '\x01'))));
  EXPECT_TRUE(ClosedAfter(V2(0x21, 0x11, std::string(5000, '\x01'))));
  // No header at all: a client speaking the protocol directly.
  RawClient direct;
  ASSERT_TRUE(Connect(direct));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  ASSERT_TRUE(direct.SendFrame(FrameType::kAuth, auth));
  EXPECT_TRUE(direct.ExpectClosed());
  // Truncated: part of a header, then silence past PROXY_HEADER_TIMEOUT.
  // (PROXY_HEADER_TIMEOUT is 500 ms; the waits are generous for sanitizer builds.)
  EXPECT_TRUE(ClosedAfter("PROXY TCP4 203.0.", milliseconds(8000)));
  EXPECT_TRUE(ClosedAfter(V2Tcp4(1).substr(0, 20), milliseconds(8000)));
  EXPECT_TRUE(ClosedAfter("", milliseconds(8000)));
  // (The log is written by its own thread: a line may follow the close by a moment.)
  EXPECT_TRUE(WaitUntil([&] { return LogHas("proxy_header_invalid"); }, milliseconds(2000)));
  EXPECT_TRUE(WaitUntil([&] { return LogHas("proxy_header_timeout"); }, milliseconds(2000)));
  // Six malformed headers, one missing, three incomplete at the timeout.
  EXPECT_TRUE(Reaches("proxy_header_rejections_total{reason=\"malformed\"}", 10));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"proxy_header\"}", 10));
  EXPECT_EQ(Get(Scrape(), "proxy_header_rejections_total{reason=\"untrusted\"}"), 0);
  EXPECT_TRUE(AuthThrough(V2Tcp4(3))) << "the server keeps serving";
}

TEST_F(ProxyProtocolTest, UntrustedSourcesAreRefused) {
  ASSERT_TRUE(StartProxied({{"LISTEN_ADDR", "0.0.0.0:0"}}));
  RawClient c;
  c.SetSourceAddress("127.0.0.2");
  ASSERT_TRUE(c.Connect(server_->port())) << c.last_error();
  c.SendBytes("PROXY TCP4 203.0.113.7 10.0.0.1 51234 7878\r\n");
  EXPECT_TRUE(c.ExpectClosed());
  EXPECT_TRUE(WaitUntil([&] { return LogHas("proxy_untrusted"); }, milliseconds(2000)));
  EXPECT_TRUE(Reaches("proxy_header_rejections_total{reason=\"untrusted\"}", 1));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"proxy_header\"}", 1));
  EXPECT_TRUE(AuthThrough("PROXY TCP4 203.0.113.8 10.0.0.1 1 7878\r\n")) << "trusted still works";
  EXPECT_EQ(Get(Scrape(), "proxy_header_rejections_total{reason=\"malformed\"}"), 0);
}

// MAX_UNAUTH_PER_SOURCE counts the source the PROXY header names, not the balancer.
TEST_F(ProxyProtocolTest, PerSourceLimitCountsTheRealSource) {
  ASSERT_TRUE(StartProxied({{"MAX_UNAUTH_PER_SOURCE", "2"}}));
  std::vector<std::unique_ptr<RawClient>> same;
  for (int i = 0; i < 3; ++i) {
    same.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(Connect(*same.back()));
    ASSERT_TRUE(same.back()->SendBytes("PROXY TCP4 203.0.113.9 10.0.0.1 4000 7878\r\n"));
  }
  EXPECT_TRUE(same[0]->ExpectClosed(milliseconds(3000))) << "that source's oldest";
  EXPECT_TRUE(same[2]->Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  // The same /64 is one source; another one is not affected.
  EXPECT_TRUE(AuthThrough(V2Tcp6(7, 1)));
  EXPECT_TRUE(AuthThrough("PROXY TCP4 203.0.113.10 10.0.0.1 4000 7878\r\n"));
  EXPECT_TRUE(Reaches("connections_rejected_total{limit=\"max_unauth_per_source\"}", 1));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"unauth_evicted\"}", 1));
}

// An AUTH flood from many addresses (a botnet guessing STREAM_USER's password), posed through
// PROXY v2 headers: every address gets exactly its own budget of guesses, and the real user is
// never refused, at once from its usual address and after a short delay from a new one.
TEST_F(ProxyProtocolTest, AuthFloodFromManyAddressesNeverLocksOutTheUser) {
  ASSERT_TRUE(StartProxied({{"AUTH_BACKOFF_MIN", "10s"},
                            {"AUTH_USER_DELAY_MAX", "200ms"},
                            {"LOG_LEVEL", "info"}}));  // budgets: 5 per address, 20 per user
  const std::string usual = "PROXY TCP4 192.0.2.200 10.0.0.1 4000 7878\r\n";
  ASSERT_TRUE(AuthThrough(usual));
  constexpr int kAddresses = 100;
  constexpr int kRounds = 7;
  auto header = [](int a) {
    return a % 2 == 0 ? V2Tcp4(a / 2) : V2Tcp6(a, 1 + a % 7);  // a /64 each
  };
  int failed = 0;
  int refused = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::unique_ptr<RawClient>> wave;
    for (int a = 0; a < kAddresses; ++a) {
      wave.push_back(std::make_unique<RawClient>());
      ASSERT_TRUE(Connect(*wave.back()));
      v1::Auth auth;
      auth.set_username(ServerProcess::kUser);
      auth.set_password("guess-" + std::to_string(round));
      ASSERT_TRUE(wave.back()->SendBytes(
          header(a) + protocol::MakeFrame(FrameType::kAuth, auth.SerializeAsString())));
    }
    // Meanwhile the real user logs in from its usual address: never delayed or refused.
    const auto t0 = steady_clock::now();
    EXPECT_TRUE(AuthThrough(usual)) << "round " << round;
    EXPECT_LT(steady_clock::now() - t0, milliseconds(150)) << "round " << round;
    for (auto& c : wave) {
      v1::Error e;
      const ReadResult r = c->ReadFrame(milliseconds(10000));
      ASSERT_TRUE(r.ok()) << ReadStatusName(r.status);
      ASSERT_TRUE(e.ParseFromString(r.frame.payload)) << DescribeFrame(r.frame);
      if (e.code() == v1::AUTH_FAILED) ++failed;
      if (e.code() == v1::AUTH_RATE_LIMITED) ++refused;
    }
  }
  EXPECT_EQ(failed, kAddresses * 5) << "each address: its budget, not one guess more";
  EXPECT_EQ(refused, kAddresses * (kRounds - 5));
  // From an address it never used, the right password still gets in.
  EXPECT_TRUE(AuthThrough("PROXY TCP4 192.0.2.201 10.0.0.1 4000 7878\r\n"));
  EXPECT_TRUE(Reaches("auth_failures_total{reason=\"auth_failed\"}", kAddresses * 5));
  EXPECT_EQ(Get(Scrape(), "auth_rate_limited_total"), kAddresses * (kRounds - 5));
}

TEST_F(ProxyProtocolTest, RateLimiterSeesTheRealAddress) {
  ASSERT_TRUE(StartProxied({{"AUTH_FAIL_BUDGET_ADDR", "2"}, {"AUTH_BACKOFF_MIN", "5s"}}));
  const std::string attacker = "PROXY TCP4 203.0.113.66 10.0.0.1 40000 7878\r\n";
  for (int i = 0; i < 2; ++i) {
    RawClient c;
    ASSERT_TRUE(Connect(c));
    ASSERT_TRUE(c.SendBytes(attacker));
    v1::Auth auth;
    auth.set_username(ServerProcess::kUser);
    auth.set_password("guess" + std::to_string(i));
    ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
    EXPECT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
  }
  RawClient c;
  ASSERT_TRUE(Connect(c));
  ASSERT_TRUE(c.SendBytes(attacker));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  v1::Error e;
  EXPECT_TRUE(c.ExpectFatal(v1::AUTH_RATE_LIMITED, &e));
  EXPECT_GT(e.retry_after_ms(), 4000u);
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"auth_rate_limited\"}", 1));
  EXPECT_EQ(Get(Scrape(), "auth_rate_limited_total"), 1);
  // Every connection comes from 127.0.0.1, yet another real client is not held back.
  EXPECT_TRUE(AuthThrough("PROXY TCP4 203.0.113.67 10.0.0.1 40001 7878\r\n"));
}

TEST_F(ProxyProtocolTest, ConnzShowsTheProxiedAddress) {
  ASSERT_TRUE(StartProxied());
  RawClient proxied;
  ASSERT_TRUE(Connect(proxied));
  ASSERT_TRUE(proxied.SendBytes(V2Tcp4(42)));
  ASSERT_TRUE(proxied.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  RawClient health;  // LOCAL: listed with the socket's own address
  ASSERT_TRUE(Connect(health));
  ASSERT_TRUE(health.SendBytes(V2(0x20, 0x00, "")));
  ASSERT_TRUE(health.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  HttpResult r;
  std::vector<std::string> remotes;
  ASSERT_TRUE(WaitUntil(
      [&] {
        r = HttpGet(server_->metrics_port(), "/connz?sort=id");
        const auto v = ParseJson(r.body);
        if (!v) return false;
        remotes.clear();
        for (const auto& c : v->as_object().at("connections").as_array()) {
          remotes.push_back(StringField(c.as_object(), "remote"));
        }
        return remotes.size() == 2;
      },
      milliseconds(3000)))
      << r.body;
  EXPECT_EQ(remotes[0], "198.51.100.42:4000") << r.body;
  EXPECT_TRUE(remotes[1].starts_with("127.0.0.1:")) << r.body;
}

// A PROXY header in front of a TLS ClientHello; the connection's debug lines (conn_open,
// proxy_header, tls_established) are JSON with the documented fields.
TEST_F(ProxyProtocolTest, HeaderBeforeTls) {
  TestPki pki;
  ASSERT_TRUE(pki.ok()) << pki.error();
  ASSERT_TRUE(StartProxied({{"TLS_CERT_PATH", pki.Cert("server")},
                            {"TLS_KEY_PATH", pki.Key("server")},
                            {"LOG_LEVEL", "debug"}}));
  TlsOptions o;
  o.ca_file = pki.Cert("ca");
  o.before_tls = V2Tcp4(77);
  TlsClient c;
  ASSERT_TRUE(c.Connect(server_->port(), o)) << c.last_error();
  EXPECT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(
      WaitUntil([&] { return LogHas("\"remote\":\"198.51.100.77:4000\""); }, milliseconds(2000)));
  c.Close();
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"client_closed\"}", 1));
  ASSERT_EQ(server_->Stop(), 0);
  const LogCheck check = CheckJsonLogLines(server_->Logs());
  ASSERT_TRUE(check.error.empty()) << check.error;
  std::map<std::string, boost::json::object> debug;
  for (const auto& line : check.lines) {
    if (StringField(line, "level") == "debug") debug[StringField(line, "event")] = line;
  }
  ASSERT_TRUE(debug.contains("conn_open")) << server_->Logs();
  EXPECT_TRUE(StringField(debug["conn_open"], "remote").starts_with("127.0.0.1:"));
  ASSERT_TRUE(debug.contains("proxy_header")) << server_->Logs();
  EXPECT_EQ(StringField(debug["proxy_header"], "remote"), "198.51.100.77:4000");
  EXPECT_TRUE(StringField(debug["proxy_header"], "proxy").starts_with("127.0.0.1:"));
  ASSERT_TRUE(debug.contains("tls_established")) << server_->Logs();
  EXPECT_EQ(StringField(debug["tls_established"], "remote"), "198.51.100.77:4000");
  EXPECT_TRUE(StringField(debug["tls_established"], "version").starts_with("TLSv1."));
  EXPECT_FALSE(StringField(debug["tls_established"], "cipher").empty());
}

}  // namespace
}  // namespace tickwire::testing
