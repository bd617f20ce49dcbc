// TLS and mTLS on the stream port: handshakes (our TLS client and `openssl s_client`), refused
// protocol versions and ciphers, plaintext/TLS mismatches, client certificates, and certificate
// reload on SIGHUP while clients stay connected.
#include <openssl/ssl.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <ostream>
#include <string>

#include "client/client.h"
#include "integration/integration_test.h"
#include "support/tls.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class TlsTest : public IntegrationTest {
 protected:
  void SetUp() override { ASSERT_TRUE(pki_.ok()) << pki_.error(); }

  EnvOverrides TlsEnv(EnvOverrides extra = {}) {
    EnvOverrides env = {{"TLS_CERT_PATH", pki_.Cert("server")},
                        {"TLS_KEY_PATH", pki_.Key("server")},
                        {"TLS_HANDSHAKE_TIMEOUT", "2s"}};
    for (auto& [k, v] : extra) env[k] = v;
    return env;
  }
  TlsOptions Verified() const {
    TlsOptions o;
    o.ca_file = pki_.Cert("ca");
    return o;
  }
  // `openssl s_client` against the server with extra arguments; its exit status.
  int SClient(const std::string& args) {
    return pki_.Run(
        "timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(server_->port()) +
        " -CAfile ca.crt -verify_return_error " + args + " </dev/null");
  }
  // A refused mTLS client: the handshake fails, or (TLS 1.3, where the server checks the
  // client's certificate after the client has finished) AUTH gets no answer but a close.
  ::testing::AssertionResult Refused(const TlsOptions& o) {
    TlsClient c;
    if (!c.Connect(server_->port(), o)) return ::testing::AssertionSuccess();
    v1::Auth auth;
    auth.set_username(ServerProcess::kUser);
    auth.set_password(ServerProcess::kPass);
    c.SendFrame(FrameType::kAuth, auth);
    const ReadResult r = c.ReadFrame(milliseconds(3000));
    if (r.status == ReadStatus::kClosed || r.status == ReadStatus::kError) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "the server accepted the client: " << ReadStatusName(r.status);
  }

  // Starts a server that takes a client certificate's CN for the user (TLS_CLIENT_CN_USER) and
  // returns client options with a certificate for the test user.
  ::testing::AssertionResult StartWithCertificateUser(TlsOptions& o) {
    if (!pki_.MakeClientCert("test-user", ServerProcess::kUser)) {
      return ::testing::AssertionFailure() << pki_.Log();
    }
    o = Verified();
    o.cert_file = pki_.Cert("test-user");
    o.key_file = pki_.Key("test-user");
    return Start(TlsEnv({{"TLS_CLIENT_CA_PATH", pki_.Cert("ca")}, {"TLS_CLIENT_CN_USER", "true"}}));
  }

  TestPki pki_;
};

TEST_F(TlsTest, HandshakeAndSessionOverTls) {
  ASSERT_TRUE(Start(TlsEnv()));
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    TlsOptions o = Verified();
    o.min_version = version;
    o.max_version = version;
    TlsClient c;
    ASSERT_TRUE(c.Connect(server_->port(), o)) << c.last_error();
    EXPECT_EQ(c.PeerCommonName(), "tickwire-server");
    EXPECT_EQ(c.Version(), version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3");
    ASSERT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
    EXPECT_TRUE(c.HeartbeatRoundTrip(42));
  }
  // Publish and receive over TLS.
  TlsClient sub;
  TlsClient pub;
  ASSERT_TRUE(sub.Connect(server_->port(), Verified())) << sub.last_error();
  ASSERT_TRUE(pub.Connect(server_->port(), Verified())) << pub.last_error();
  ASSERT_TRUE(sub.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  ASSERT_TRUE(pub.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  v1::Subscribe s;
  s.set_request_id(1);
  s.set_mode(v1::MODE_TICK);
  s.add_topics(Topic());
  ASSERT_TRUE(sub.SendFrame(FrameType::kSubscribe, s));
  auto ok = sub.ReadFrame();
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok.frame.frame_type(), FrameType::kSubscribeOk) << DescribeFrame(ok.frame);
  v1::Publish p;
  p.set_request_id(2);
  for (int i = 0; i < 500; ++i) *p.add_ticks() = MakeTick(Topic(), 100 + i, 1);
  ASSERT_TRUE(pub.SendFrame(FrameType::kPublish, p));
  std::size_t got = 0;
  while (got < 500) {
    auto r = sub.ReadFrame();
    ASSERT_TRUE(r.ok()) << "after " << got << " ticks: " << ReadStatusName(r.status);
    auto batch = DecodeBatch(r.frame);
    ASSERT_TRUE(batch) << DescribeFrame(r.frame);
    got += batch->ticks.size();
  }
  EXPECT_EQ(got, 500u);
}

TEST_F(TlsTest, ClientLibraryOverTls) {
  ASSERT_TRUE(Start(TlsEnv({{"TLS_CLIENT_CA_PATH", pki_.Cert("ca")}})));
  client::ClientOptions o;
  o.port = server_->port();
  o.username = ServerProcess::kUser;
  o.password = ServerProcess::kPass;
  o.tls.enabled = true;
  o.tls.ca_file = pki_.Cert("ca");
  o.tls.cert_file = pki_.Cert("client");
  o.tls.key_file = pki_.Key("client");
  auto connected = client::Client::Connect(o);
  ASSERT_TRUE(connected.ok()) << connected.error().message;
  auto& c = connected.value();
  auto sub = c->Subscribe(client::Mode::kTick, {Topic()});
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  std::vector<client::Tick> ticks(3);
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    ticks[i].topic = Topic();
    ticks[i].price = 1.0 + static_cast<double>(i);
    ticks[i].size = 1;
  }
  auto pub = c->Publish(ticks, true);
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(pub.value(), 3u);
  std::size_t got = 0;
  const auto deadline = steady_clock::now() + milliseconds(5000);
  while (got < 3 && steady_clock::now() < deadline) {
    auto ev = c->Next(milliseconds(500));
    if (!ev) continue;
    if (auto* b = std::get_if<client::Batch>(&*ev)) got += b->records.size();
  }
  EXPECT_EQ(got, 3u);
  // The wrong CA: the client refuses the server.
  client::ClientOptions wrong = o;
  wrong.tls.ca_file = pki_.Cert("rogue-ca");
  wrong.connect_timeout = milliseconds(3000);
  auto refused = client::Client::Connect(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("TLS handshake"), std::string::npos)
      << refused.error().message;
}

TEST_F(TlsTest, OpensslSClientHandshakes) {
  ASSERT_TRUE(Start(TlsEnv()));
  EXPECT_EQ(SClient("-tls1_2"), 0) << pki_.Log();
  EXPECT_EQ(SClient("-tls1_3"), 0) << pki_.Log();
  EXPECT_EQ(SClient("-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384"), 0) << pki_.Log();
  EXPECT_EQ(SClient("-tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305"), 0) << pki_.Log();
}

TEST_F(TlsTest, OldProtocolsAndWeakCiphersAreRefused) {
  ASSERT_TRUE(Start(TlsEnv()));
  // TLS 1.0 and 1.1 (offered at security level 0 so that the client really tries them).
  EXPECT_NE(SClient("-tls1 -cipher DEFAULT@SECLEVEL=0"), 0);
  EXPECT_NE(SClient("-tls1_1 -cipher DEFAULT@SECLEVEL=0"), 0);
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    TlsOptions o = Verified();
    o.min_version = version;
    o.max_version = version;
    TlsClient c;
    EXPECT_FALSE(c.Connect(server_->port(), o)) << "version " << version << " was accepted";
  }
  // TLS 1.2 ciphers outside Mozilla's intermediate profile: CBC, no forward secrecy, NULL.
  for (const char* weak : {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                           "AES128-GCM-SHA256", "ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0"}) {
    EXPECT_NE(SClient(std::string("-tls1_2 -cipher ") + weak), 0) << weak;
    TlsOptions o = Verified();
    o.max_version = TLS1_2_VERSION;
    o.ciphers = weak;
    TlsClient c;
    EXPECT_FALSE(c.Connect(server_->port(), o)) << weak << " was accepted";
  }
  // The server keeps serving.
  TlsClient good;
  ASSERT_TRUE(good.Connect(server_->port(), Verified())) << good.last_error();
  EXPECT_TRUE(good.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(
      WaitUntil([&] { return server_->Logs().find("tls_handshake_failed") != std::string::npos; },
                milliseconds(2000)));
}

TEST_F(TlsTest, PlaintextOnTlsPortAndTlsOnPlainPortFailCleanly) {
  ASSERT_TRUE(Start(TlsEnv()));
  RawClient plain;
  ASSERT_TRUE(Connect(plain));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  ASSERT_TRUE(plain.SendFrame(FrameType::kAuth, auth));
  const ReadResult r = plain.ReadFrame(milliseconds(3000));
  EXPECT_TRUE(r.status == ReadStatus::kClosed || r.status == ReadStatus::kError ||
              (r.ok() && r.frame.frame_type() != FrameType::kAuthOk))
      << "plaintext AUTH on a TLS port must not succeed";
  EXPECT_TRUE(
      WaitUntil([&] { return server_->Logs().find("tls_handshake_failed") != std::string::npos; },
                milliseconds(3000)));
  EXPECT_TRUE(Reaches("tls_handshake_failures_total", 1));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"tls_handshake\"}", 1));

  IntegrationTest::TearDown();
  server_.reset();
  ASSERT_TRUE(Start());  // plain
  TlsClient tls;
  EXPECT_FALSE(tls.Connect(server_->port(), Verified())) << "TLS to a plain port";
  // The ClientHello's first bytes (record type 0x16, version 0x0301, ...) read as a frame header
  // declare a length far over MAX_MSG_SIZE: ERROR{FRAME_TOO_LARGE}, then the close.
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"frame_too_large\"}", 1));
  EXPECT_EQ(Get(Scrape(), "protocol_errors_total{code=\"FRAME_TOO_LARGE\"}"), 1);
  RawClient hello;
  ASSERT_TRUE(Connect(hello));
  ASSERT_TRUE(hello.SendBytes(std::string("\x16\x03\x01\x02\x00\x01", 6)));
  EXPECT_TRUE(hello.ExpectFatal(v1::FRAME_TOO_LARGE));
  RawClient after;
  ASSERT_TRUE(ConnectAuthed(after)) << "the plain server keeps serving";
}

TEST_F(TlsTest, HandshakeTimeoutClosesSilentClients) {
  ASSERT_TRUE(Start(TlsEnv({{"TLS_HANDSHAKE_TIMEOUT", "300ms"}})));
  RawClient silent;
  ASSERT_TRUE(Connect(silent));
  EXPECT_TRUE(silent.ExpectClosed(milliseconds(3000)));
  // The log is written by its own thread: the line may follow the close by a moment.
  EXPECT_TRUE(
      WaitUntil([&] { return server_->Logs().find("tls_handshake_timeout") != std::string::npos; },
                milliseconds(2000)));
  EXPECT_TRUE(Reaches("tls_handshake_failures_total", 1));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"tls_handshake\"}", 1));
}

// bytes_sent_total counts TLS connections as it counts plaintext ones: the frames' bytes.
TEST_F(TlsTest, BytesSentCountsTlsConnectionsExactly) {
  ASSERT_TRUE(Start(TlsEnv()));
  EXPECT_EQ(Get(Scrape(), "bytes_sent_total"), 0);
  TlsClient c;
  ASSERT_TRUE(c.Connect(server_->port(), Verified())) << c.last_error();
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  auth.set_client_name("bytes-over-tls");
  ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
  const ReadResult ok = c.ReadFrame();
  ASSERT_TRUE(ok.ok()) << ReadStatusName(ok.status);
  ASSERT_EQ(ok.frame.frame_type(), FrameType::kAuthOk) << DescribeFrame(ok.frame);
  double sent = static_cast<double>(protocol::kHeaderSize + ok.frame.payload.size());
  for (std::int64_t ts : std::initializer_list<std::int64_t>{1, 1000, 1'700'000'000'000}) {
    ASSERT_TRUE(c.HeartbeatRoundTrip(ts));
    v1::Heartbeat hb;
    hb.set_ts_ms(ts);
    sent += static_cast<double>(protocol::kHeaderSize + hb.ByteSizeLong());
  }
  EXPECT_TRUE(Reaches("bytes_sent_total", sent));
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  ASSERT_TRUE(Start(TlsEnv({{"TLS_CLIENT_CA_PATH", pki_.Cert("ca")}})));
  EXPECT_TRUE(Refused(Verified())) << "no client certificate";
  TlsOptions rogue = Verified();
  rogue.cert_file = pki_.Cert("rogue-client");
  rogue.key_file = pki_.Key("rogue-client");
  EXPECT_TRUE(Refused(rogue)) << "certificate from another CA";
  TlsOptions rogue12 = rogue;
  rogue12.max_version = TLS1_2_VERSION;
  EXPECT_TRUE(Refused(rogue12)) << "certificate from another CA, TLS 1.2";
  TlsOptions good = Verified();
  good.cert_file = pki_.Cert("client");
  good.key_file = pki_.Key("client");
  TlsClient c;
  ASSERT_TRUE(c.Connect(server_->port(), good)) << c.last_error();
  EXPECT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_EQ(
      pki_.Run("timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(server_->port()) +
               " -CAfile ca.crt -cert client.crt -key client.key </dev/null"),
      0);
}

TEST_F(TlsTest, CertificateSubjectMapsToUser) {
  TlsOptions o;
  ASSERT_TRUE(StartWithCertificateUser(o));
  TlsClient c;
  ASSERT_TRUE(c.Connect(server_->port(), o)) << c.last_error();
  EXPECT_TRUE(c.Authenticate(ServerProcess::kUser, "")) << "the certificate is the credential";
  // A certificate whose CN is not a user cannot log in as anyone.
  TlsOptions v = Verified();
  v.cert_file = pki_.Cert("client");  // CN viewer
  v.key_file = pki_.Key("client");
  TlsClient d;
  ASSERT_TRUE(d.Connect(server_->port(), v)) << d.last_error();
  EXPECT_FALSE(d.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
}

// TLS session resumption, with and without mutual TLS: a second connection resumes the first
// one's session (TLS 1.2 by session id from the server's cache or by ticket, TLS 1.3 by ticket)
// and then works like any other. With mutual TLS the server needs a session id context, or
// OpenSSL refuses to resume ("session id context uninitialized") and the handshake fails.
struct ResumeCase {
  const char* name;
  int version;
  bool no_tickets;
  bool mtls;
};

void PrintTo(const ResumeCase& c, std::ostream* os) { *os << c.name; }

class TlsResumeTest : public TlsTest, public ::testing::WithParamInterface<ResumeCase> {};

// Connects with `o`, authenticates (AUTH_OK is read after the TLS 1.3 tickets the server sends
// once the handshake is done) and returns the session to resume, closing cleanly.
std::shared_ptr<SSL_SESSION> FirstSession(std::uint16_t port, const TlsOptions& o,
                                          const std::string& password) {
  TlsClient first;
  EXPECT_TRUE(first.Connect(port, o)) << first.last_error();
  EXPECT_FALSE(first.Resumed());
  EXPECT_TRUE(first.Authenticate(ServerProcess::kUser, password));
  auto session = first.Session();
  EXPECT_TRUE(session) << "no resumable session";
  return session;
}

TEST_P(TlsResumeTest, ASecondConnectionResumesTheFirstOnesSession) {
  const ResumeCase& p = GetParam();
  ASSERT_TRUE(Start(
      TlsEnv(p.mtls ? EnvOverrides{{"TLS_CLIENT_CA_PATH", pki_.Cert("ca")}} : EnvOverrides{})));
  TlsOptions o = Verified();
  o.min_version = o.max_version = p.version;
  o.no_tickets = p.no_tickets;
  if (p.mtls) {
    o.cert_file = pki_.Cert("client");
    o.key_file = pki_.Key("client");
  }
  o.resume = FirstSession(server_->port(), o, ServerProcess::kPass);
  ASSERT_TRUE(o.resume);
  TlsClient second;
  ASSERT_TRUE(second.Connect(server_->port(), o)) << second.last_error();
  EXPECT_TRUE(second.Resumed());
  EXPECT_TRUE(second.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(second.HeartbeatRoundTrip(5));
}

INSTANTIATE_TEST_SUITE_P(
    Sessions, TlsResumeTest,
    ::testing::Values(ResumeCase{"Tls12SessionId", TLS1_2_VERSION, true, false},
                      ResumeCase{"Tls12Ticket", TLS1_2_VERSION, false, false},
                      ResumeCase{"Tls13Ticket", TLS1_3_VERSION, false, false},
                      ResumeCase{"Tls12SessionIdMutual", TLS1_2_VERSION, true, true},
                      ResumeCase{"Tls12TicketMutual", TLS1_2_VERSION, false, true},
                      ResumeCase{"Tls13TicketMutual", TLS1_3_VERSION, false, true}),
    [](const auto& p) { return std::string(p.param.name); });

// A resumed session keeps the client certificate it was made with: TLS_CLIENT_CN_USER still
// knows the user.
TEST_F(TlsTest, AResumedSessionKeepsTheCertificateUser) {
  TlsOptions o;
  ASSERT_TRUE(StartWithCertificateUser(o));
  o.resume = FirstSession(server_->port(), o, "");
  ASSERT_TRUE(o.resume);
  TlsClient second;
  ASSERT_TRUE(second.Connect(server_->port(), o)) << second.last_error();
  EXPECT_TRUE(second.Resumed());
  EXPECT_TRUE(second.Authenticate(ServerProcess::kUser, "")) << "the certificate is the credential";
}

TEST_F(TlsTest, SighupReloadsCertificatesAndKeepsConnections) {
  ASSERT_TRUE(pki_.MakeServerCert("live", "cert-one"));
  ASSERT_TRUE(
      Start(TlsEnv({{"TLS_CERT_PATH", pki_.Cert("live")}, {"TLS_KEY_PATH", pki_.Key("live")}})));
  TlsClient old_client;
  ASSERT_TRUE(old_client.Connect(server_->port(), Verified())) << old_client.last_error();
  ASSERT_TRUE(old_client.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_EQ(old_client.PeerCommonName(), "cert-one");

  // Rotate: a new certificate and key in place, then SIGHUP.
  ASSERT_TRUE(pki_.MakeServerCert("live", "cert-two"));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return server_->Logs().find("\"reload\"") != std::string::npos; },
                        milliseconds(5000)));
  TlsClient new_client;
  ASSERT_TRUE(new_client.Connect(server_->port(), Verified())) << new_client.last_error();
  EXPECT_EQ(new_client.PeerCommonName(), "cert-two");
  EXPECT_TRUE(new_client.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(old_client.HeartbeatRoundTrip(7)) << "the established connection survives";

  // A broken file: the reload keeps the last good certificate and says why.
  { std::ofstream(pki_.Cert("live"), std::ios::trunc) << "not a certificate\n"; }
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return server_->Logs().find("reload_tls_failed") != std::string::npos; },
                milliseconds(5000)));
  TlsClient after;
  ASSERT_TRUE(after.Connect(server_->port(), Verified())) << after.last_error();
  EXPECT_EQ(after.PeerCommonName(), "cert-two");
  EXPECT_TRUE(after.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(old_client.HeartbeatRoundTrip(8));
  EXPECT_TRUE(new_client.HeartbeatRoundTrip(9));
}

TEST_F(TlsTest, SighupReloadsTheClientCaFile) {
  // Start trusting only the rogue CA; then put the real CA in the same file and reload.
  const std::string ca_file = pki_.dir().File("client-ca.pem");
  const auto copy = [&](const std::string& from) {
    std::ifstream in(from);
    std::ofstream(ca_file, std::ios::trunc) << in.rdbuf();
  };
  copy(pki_.Cert("rogue-ca"));
  ASSERT_TRUE(Start(TlsEnv({{"TLS_CLIENT_CA_PATH", ca_file}})));
  TlsOptions good = Verified();
  good.cert_file = pki_.Cert("client");
  good.key_file = pki_.Key("client");
  TlsOptions rogue = Verified();
  rogue.cert_file = pki_.Cert("rogue-client");
  rogue.key_file = pki_.Key("rogue-client");
  EXPECT_TRUE(Refused(good)) << "signed by a CA the server does not trust yet";
  TlsClient old_session;
  ASSERT_TRUE(old_session.Connect(server_->port(), rogue)) << old_session.last_error();
  ASSERT_TRUE(old_session.Authenticate(ServerProcess::kUser, ServerProcess::kPass));

  copy(pki_.Cert("ca"));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return server_->Logs().find("\"reload\"") != std::string::npos; },
                        milliseconds(5000)));
  TlsClient c;
  ASSERT_TRUE(c.Connect(server_->port(), good)) << c.last_error();
  EXPECT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(Refused(rogue)) << "the old CA is no longer trusted";
  EXPECT_TRUE(old_session.HeartbeatRoundTrip(3)) << "the established connection survives";
  EXPECT_EQ(server_->Logs().find("reload_needs_restart"), std::string::npos);
}

TEST_F(TlsTest, BadCertificateStopsStartupWithOneLine) {
  ServerProcess bad(
      {{"TLS_CERT_PATH", pki_.dir().File("missing.crt")}, {"TLS_KEY_PATH", pki_.Key("server")}});
  ASSERT_TRUE(bad.Spawn());
  EXPECT_EQ(bad.WaitForExit(milliseconds(5000)), 1);
  EXPECT_NE(bad.Stderr().find("TLS_CERT_PATH"), std::string::npos) << bad.Stderr();
  ServerProcess mismatch(
      {{"TLS_CERT_PATH", pki_.Cert("server")}, {"TLS_KEY_PATH", pki_.Key("client")}});
  ASSERT_TRUE(mismatch.Spawn());
  EXPECT_EQ(mismatch.WaitForExit(milliseconds(5000)), 1);
  EXPECT_NE(mismatch.Stderr().find("TLS_KEY_PATH"), std::string::npos) << mismatch.Stderr();
}

}  // namespace
}  // namespace tickwire::testing
