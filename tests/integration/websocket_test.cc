// The WebSocket transport (WS_LISTEN_ADDR, PROTOCOL.md "Transports"): the same frames, one per
// binary message, with the same AUTH, limits, heartbeats, slow-consumer rules, TLS and drain as
// the TCP port; the upgrade request is bounded and checked.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "integration/integration_test.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "support/tls.h"
#include "support/ws_client.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

constexpr const char* kValidKey = "dGhlIHNhbXBsZSBub25jZQ==";

// A masked client frame (FIN set) with `payload`.
std::string MaskedFrame(std::uint8_t opcode, std::string_view payload,
                        std::uint64_t declared = ~std::uint64_t{0}) {
  const std::uint64_t len = declared == ~std::uint64_t{0} ? payload.size() : declared;
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  if (len < 126) {
    f.push_back(static_cast<char>(0x80 | static_cast<unsigned>(len)));
  } else if (len <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(len >> 8));
    f.push_back(static_cast<char>(len & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((len >> (8 * i)) & 0xFF));
  }
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  f.append(mask, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  }
  return f;
}

std::string UpgradeRequest(std::string_view path = "/", std::string_view extra = {}) {
  std::string r = "GET " + std::string(path) +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: " +
                  kValidKey + "\r\nSec-WebSocket-Version: 13\r\n";
  r.append(extra);
  r.append("\r\n");
  return r;
}

// Sends `bytes` on a plain TCP connection and returns what the server sends until it closes
// (or `timeout` passes).
std::string RawExchange(std::uint16_t port, const std::string& bytes,
                        milliseconds timeout = milliseconds(3000)) {
  RawClient c;
  if (!c.Connect(port)) return "connect failed";
  c.SendBytes(bytes);
  std::string got;
  const auto deadline = steady_clock::now() + timeout;
  timeval tv{0, 20'000};
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (steady_clock::now() < deadline) {
    char buf[4096];
    const ssize_t n = recv(c.fd(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

class WebSocketTest : public IntegrationTest {
 protected:
  ::testing::AssertionResult StartWs(EnvOverrides env = {}) {
    env.emplace("WS_LISTEN_ADDR", "127.0.0.1:0");
    auto r = Start(env);
    if (r && server_->ws_port() == 0) return ::testing::AssertionFailure() << "no WS_PORT_FILE";
    return r;
  }
  ::testing::AssertionResult WsAuthed(WsClient& c, const WsOptions& options = {}) {
    if (!c.Connect(server_->ws_port(), options)) {
      return ::testing::AssertionFailure() << c.last_error() << " status " << c.http_status();
    }
    return c.Authenticate(ServerProcess::kUser, ServerProcess::kPass);
  }
  // Reads DATA_BATCH frames until `want` ticks arrived.
  ::testing::AssertionResult ReadWsTicks(WsClient& c, std::size_t want,
                                         std::vector<v1::Tick>& out) {
    const auto deadline = steady_clock::now() + milliseconds(5000);
    while (out.size() < want) {
      const ReadResult r = c.ReadFrame(Remaining(deadline));
      if (!r.ok()) return ::testing::AssertionFailure() << ReadStatusName(r.status) << r.detail;
      if (r.frame.frame_type() != FrameType::kDataBatch) {
        return ::testing::AssertionFailure() << "unexpected " << DescribeFrame(r.frame);
      }
      v1::DataBatch batch;
      if (!batch.ParseFromString(r.frame.payload)) return ::testing::AssertionFailure();
      for (const auto& rec : batch.records()) out.push_back(rec.tick());
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(WebSocketTest, AuthSubscribePublishRoundTripAcrossTransports) {
  ASSERT_TRUE(StartWs());
  const std::string topic = Topic();
  WsClient consumer;
  ASSERT_TRUE(WsAuthed(consumer));
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {topic}));
  WsClient producer;
  ASSERT_TRUE(WsAuthed(producer));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(topic, 1.5, 2), MakeTick(topic, 2.5, 1)}));
  // A TCP producer reaches the WebSocket consumer too.
  RawClient tcp;
  ASSERT_TRUE(ConnectAuthed(tcp));
  ASSERT_TRUE(tcp.PublishAcked(1, {MakeTick(topic, 3.5, 1)}));
  std::vector<v1::Tick> ticks;
  ASSERT_TRUE(ReadWsTicks(consumer, 3, ticks));
  ASSERT_EQ(ticks.size(), 3u);
  EXPECT_TRUE(CheckSequence(ticks));
  EXPECT_DOUBLE_EQ(ticks[2].price(), 3.5);
  // HEARTBEAT echoes travel as frames too.
  v1::Heartbeat hb;
  hb.set_ts_ms(42);
  ASSERT_TRUE(consumer.SendFrame(FrameType::kHeartbeat, hb));
  v1::Heartbeat echo;
  ASSERT_TRUE(consumer.ReadMessage(FrameType::kHeartbeat, &echo));
  EXPECT_EQ(echo.ts_ms(), 42);
  // A WebSocket ping gets a pong (read while waiting for the next frame).
  ASSERT_TRUE(consumer.SendPing("p"));
  ASSERT_TRUE(consumer.SendFrame(FrameType::kHeartbeat, hb));
  ASSERT_TRUE(consumer.ReadMessage(FrameType::kHeartbeat, &echo));
  EXPECT_EQ(consumer.pongs(), 1u);
  const auto m = Scrape();
  EXPECT_EQ(Get(m, "active_connections_by_transport{transport=\"ws\"}"), 2);
  EXPECT_EQ(Get(m, "active_connections_by_transport{transport=\"tcp\"}"), 1);
  EXPECT_EQ(Get(m, "active_connections"), 3);
  EXPECT_EQ(Get(m, "connections_accepted_by_transport_total{transport=\"ws\"}"), 2);
}

TEST_F(WebSocketTest, FramesPipelinedBehindTheUpgradeRequestAreRead) {
  ASSERT_TRUE(StartWs());
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  v1::Heartbeat hb;
  hb.set_ts_ms(7);
  // The request, AUTH and a HEARTBEAT in one write, the last split over two frames.
  const std::string hb_frame = protocol::EncodeFrame(FrameType::kHeartbeat, hb);
  std::string first = MaskedFrame(0x2, hb_frame.substr(0, 3));
  first[0] = 0x02;  // FIN clear: a fragment
  const std::string bytes = UpgradeRequest() +
                            MaskedFrame(0x2, protocol::EncodeFrame(FrameType::kAuth, auth)) +
                            first + MaskedFrame(0x0, hb_frame.substr(3));
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->ws_port()));
  ASSERT_TRUE(c.SendBytes(bytes));
  // 101, then AUTH_OK and the echo as unmasked binary messages.
  std::string got;
  ASSERT_TRUE(WaitUntil(
      [&] {
        char buf[4096];
        const ssize_t n = recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        const auto end = got.find("\r\n\r\n");
        if (end == std::string::npos) return false;
        // Two messages: each 0x82, a 7-bit length, the frame.
        std::size_t pos = end + 4;
        int messages = 0;
        while (pos + 2 <= got.size()) {
          const std::size_t len = static_cast<std::uint8_t>(got[pos + 1]);
          if (pos + 2 + len > got.size()) break;
          pos += 2 + len;
          ++messages;
        }
        return messages == 2;
      },
      milliseconds(3000)))
      << got;
  EXPECT_EQ(got.rfind("HTTP/1.1 101 ", 0), 0u) << got;
  EXPECT_NE(got.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
  const std::size_t body = got.find("\r\n\r\n") + 4;
  EXPECT_EQ(static_cast<std::uint8_t>(got[body]), 0x82);
  EXPECT_EQ(static_cast<std::uint8_t>(got[body + 2 + 4]),
            static_cast<std::uint8_t>(FrameType::kAuthOk));
}

TEST_F(WebSocketTest, OversizeMessageIsRefusedFromItsHeader) {
  ASSERT_TRUE(StartWs({{"MAX_MSG_SIZE", "1024"}}));
  {
    WsClient c;
    ASSERT_TRUE(WsAuthed(c));
    // One byte over MAX_MSG_SIZE + 5.
    ASSERT_TRUE(c.SendMessage(std::string(1024 + 5 + 1, 'x')));
    EXPECT_TRUE(c.ExpectFatal(v1::FRAME_TOO_LARGE));
    EXPECT_EQ(c.close_code(), 1009);
  }
  // A header that declares 1 GiB is answered at once: nothing of it is waited for or buffered.
  RawClient raw;
  ASSERT_TRUE(raw.Connect(server_->ws_port()));
  ASSERT_TRUE(raw.SendBytes(UpgradeRequest()));
  std::string header = MaskedFrame(0x2, "", std::uint64_t{1} << 30);
  ASSERT_TRUE(raw.SendBytes(header));
  std::string got;
  ASSERT_TRUE(WaitUntil(
      [&] {
        char buf[4096];
        const ssize_t n = recv(raw.fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        return n == 0 || got.find("MAX_MSG_SIZE") != std::string::npos;
      },
      milliseconds(3000)))
      << got;
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"frame_too_large\"}", 2));
}

TEST_F(WebSocketTest, TextMessagesAndTwoFramesInOneMessageAreMalformed) {
  ASSERT_TRUE(StartWs());
  v1::Heartbeat hb;
  hb.set_ts_ms(1);
  const std::string frame = protocol::EncodeFrame(FrameType::kHeartbeat, hb);
  {
    WsClient c;
    ASSERT_TRUE(WsAuthed(c));
    ASSERT_TRUE(c.SendMessage(frame, /*binary=*/false));
    v1::Error err;
    EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME, &err));
    EXPECT_NE(err.message().find("text WebSocket message"), std::string::npos);
    EXPECT_EQ(c.close_code(), 1003);
  }
  {
    WsClient c;
    ASSERT_TRUE(WsAuthed(c));
    ASSERT_TRUE(c.SendMessage(frame + frame));
    EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME));
    EXPECT_EQ(c.close_code(), 1002);
  }
  {
    WsClient c;
    ASSERT_TRUE(WsAuthed(c));
    ASSERT_TRUE(c.SendMessage(frame.substr(0, 3)));
    EXPECT_TRUE(c.ExpectFatal(v1::MALFORMED_FRAME));
  }
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"malformed_frame\"}", 3));
}

TEST_F(WebSocketTest, BadUpgradeRequestsGetHttpErrors) {
  ASSERT_TRUE(StartWs({{"WS_PATH", "/stream"},
                       {"WS_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:8080"}}));
  const auto port = server_->ws_port();
  // A plain HTTP GET: no Upgrade header.
  std::string r = RawExchange(port, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 426 ", 0), 0u) << r;
  // Another path.
  r = RawExchange(port, UpgradeRequest("/other"));
  EXPECT_EQ(r.rfind("HTTP/1.1 404 ", 0), 0u) << r;
  // Headers over 8 KiB.
  r = RawExchange(port, UpgradeRequest("/stream", "X-Pad: " + std::string(9000, 'a') + "\r\n"));
  EXPECT_EQ(r.rfind("HTTP/1.1 431 ", 0), 0u) << r;
  // Not HTTP at all.
  r = RawExchange(port, std::string("\x00\x00\x00\x05\x01hello\r\n\r\n", 14));
  EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
  // Another version.
  std::string req = UpgradeRequest("/stream");
  req.replace(req.find("Version: 13"), 11, "Version: 8");
  r = RawExchange(port, req);
  EXPECT_EQ(r.rfind("HTTP/1.1 426 ", 0), 0u) << r;
  EXPECT_NE(r.find("Sec-WebSocket-Version: 13"), std::string::npos) << r;
  // An Origin not allowed; an allowed one (any case), and none (not a browser) pass.
  r = RawExchange(port, UpgradeRequest("/stream", "Origin: https://evil.example.com\r\n"));
  EXPECT_EQ(r.rfind("HTTP/1.1 403 ", 0), 0u) << r;
  WsClient ok;
  WsOptions opts;
  opts.path = "/stream?x=1";
  opts.origin = "HTTPS://APP.example.com";
  opts.subprotocol = "tickwire.v1";
  ASSERT_TRUE(WsAuthed(ok, opts));
  EXPECT_EQ(ok.selected_subprotocol(), "tickwire.v1");
  WsClient no_origin;
  opts.origin.clear();
  opts.subprotocol.clear();
  ASSERT_TRUE(WsAuthed(no_origin, opts));
  EXPECT_EQ(no_origin.selected_subprotocol(), "");

  EXPECT_TRUE(Reaches("ws_upgrades_rejected_total{reason=\"not_upgrade\"}", 1));
  const auto m = Scrape();
  EXPECT_EQ(Get(m, "ws_upgrades_rejected_total{reason=\"not_found\"}"), 1);
  EXPECT_EQ(Get(m, "ws_upgrades_rejected_total{reason=\"too_large\"}"), 1);
  EXPECT_EQ(Get(m, "ws_upgrades_rejected_total{reason=\"malformed\"}"), 1);
  EXPECT_EQ(Get(m, "ws_upgrades_rejected_total{reason=\"version\"}"), 1);
  EXPECT_EQ(Get(m, "ws_upgrades_rejected_total{reason=\"origin\"}"), 1);
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"ws_handshake\"}", 6));
}

TEST_F(WebSocketTest, SilentAndSlowUpgradesTimeOut) {
  ASSERT_TRUE(StartWs({{"WS_HANDSHAKE_TIMEOUT", "300ms"}}));
  // Half a request, then nothing: closed without a response.
  const std::string r =
      RawExchange(server_->ws_port(), "GET / HTTP/1.1\r\nHost: x\r\n", milliseconds(5000));
  EXPECT_EQ(r, "");
  EXPECT_TRUE(Reaches("ws_upgrades_rejected_total{reason=\"timeout\"}", 1));
}

TEST_F(WebSocketTest, AuthRulesAndTheAuthDeadlineApply) {
  ASSERT_TRUE(StartWs({{"AUTH_TIMEOUT_MS", "300"}}));
  {
    WsClient c;
    ASSERT_TRUE(c.Connect(server_->ws_port()));
    v1::Auth auth;
    auth.set_username(ServerProcess::kUser);
    auth.set_password("wrong");
    ASSERT_TRUE(c.SendFrame(FrameType::kAuth, auth));
    EXPECT_TRUE(c.ExpectFatal(v1::AUTH_FAILED));
  }
  {
    WsClient c;
    ASSERT_TRUE(c.Connect(server_->ws_port()));
    EXPECT_TRUE(c.ExpectFatal(v1::AUTH_TIMEOUT));
    EXPECT_EQ(c.close_code(), 1008);
  }
}

TEST_F(WebSocketTest, PingsAreNotHeartbeats) {
  ASSERT_TRUE(StartWs({{"HEARTBEAT_INTERVAL", "200ms"}, {"HEARTBEAT_TIMEOUT", "600ms"}}));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->ws_port()));
  ASSERT_TRUE(c.SendBytes(UpgradeRequest() +
                          MaskedFrame(0x2, protocol::EncodeFrame(FrameType::kAuth, auth))));
  // Pings every 50 ms, no HEARTBEAT: pongs come back, and the heartbeat deadline still ends
  // the session (its ERROR names it), followed by a close frame.
  std::string got;
  bool closed = false;
  ASSERT_TRUE(WaitUntil(
      [&] {
        c.SendBytes(MaskedFrame(0x9, "alive?"));
        char buf[4096];
        ssize_t n;
        while ((n = recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT)) > 0) {
          got.append(buf, static_cast<std::size_t>(n));
        }
        if (n == 0) closed = true;
        const auto error = got.find("no HEARTBEAT");
        return closed ||
               (error != std::string::npos && got.find('\x88', error) != std::string::npos);
      },
      milliseconds(5000), milliseconds(50)))
      << got.size();
  EXPECT_NE(got.find(std::string("\x8A\x06"
                                 "alive?")),
            std::string::npos)
      << "a pong";
  EXPECT_NE(got.find("HEARTBEAT"), std::string::npos);
  EXPECT_TRUE(Reaches("heartbeat_timeouts_total", 1));
}

TEST_F(WebSocketTest, StalledReaderIsDroppedAsSlowConsumer) {
  ASSERT_TRUE(StartWs({{"MAX_MSG_SIZE", "16384"},
                       {"MAX_PENDING_BYTES", "32768"},
                       {"SO_SNDBUF", "8192"},
                       {"WRITE_DEADLINE_MS", "1000"}}));
  const std::string topic = Topic();
  WsOptions small;
  small.rcvbuf = 4096;
  WsClient slow;
  ASSERT_TRUE(WsAuthed(slow, small));
  ASSERT_TRUE(slow.Subscribe(1, v1::MODE_TICK, {topic}));
  RawClient pub;
  ASSERT_TRUE(ConnectAuthed(pub));
  for (int f = 0; f < 100; ++f) {
    std::vector<v1::Tick> ticks;
    for (int i = 0; i < 100; ++i) ticks.push_back(MakeTick(topic, f * 100 + i, 1));
    ASSERT_TRUE(pub.PublishAcked(static_cast<std::uint32_t>(f + 1), ticks));
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        const auto m = Scrape();
        return Get(m, "slow_consumer_disconnects_total{reason=\"pending_bytes\"}") +
                   Get(m, "slow_consumer_disconnects_total{reason=\"write_deadline\"}") >=
               1;
      },
      milliseconds(5000)));
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"slow_consumer\"}", 1));
  EXPECT_TRUE(Reaches("active_connections_by_transport{transport=\"ws\"}", 0));
}

TEST_F(WebSocketTest, DrainSendsServerDrainingAndACloseFrame) {
  ASSERT_TRUE(StartWs());
  WsClient c;
  ASSERT_TRUE(WsAuthed(c));
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  v1::Error err;
  EXPECT_TRUE(c.ExpectFatal(v1::SERVER_DRAINING, &err));
  EXPECT_EQ(c.close_code(), 1001);
  EXPECT_EQ(c.close_reason(), err.message());
  EXPECT_EQ(server_->WaitForExit(milliseconds(10000)), 0);
}

TEST_F(WebSocketTest, ProxyHeaderComesBeforeTheUpgrade) {
  ASSERT_TRUE(StartWs({{"PROXY_PROTOCOL", "required"}, {"PROXY_TRUSTED_CIDRS", "127.0.0.1/32"}}));
  v1::Auth auth;
  auth.set_username(ServerProcess::kUser);
  auth.set_password(ServerProcess::kPass);
  RawClient c;
  ASSERT_TRUE(c.Connect(server_->ws_port()));
  ASSERT_TRUE(c.SendBytes("PROXY TCP4 192.0.2.7 127.0.0.1 50000 7879\r\n" + UpgradeRequest() +
                          MaskedFrame(0x2, protocol::EncodeFrame(FrameType::kAuth, auth))));
  std::string got;
  ASSERT_TRUE(WaitUntil(
      [&] {
        char buf[4096];
        const ssize_t n = recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        const auto end = got.find("\r\n\r\n");
        return end != std::string::npos && got.size() >= end + 4 + 2 + 5 &&
               static_cast<std::uint8_t>(got[end + 4 + 2 + 4]) ==
                   static_cast<std::uint8_t>(FrameType::kAuthOk);
      },
      milliseconds(3000)))
      << got;
  EXPECT_EQ(got.rfind("HTTP/1.1 101 ", 0), 0u);
  // Without the header the connection is refused before any HTTP is read.
  const std::string r = RawExchange(server_->ws_port(), UpgradeRequest());
  EXPECT_EQ(r, "");
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"proxy_header\"}", 1));
}

TEST_F(WebSocketTest, SecureWebSocketUsesTheTlsContextIncludingMutualTls) {
  TestPki pki;
  ASSERT_TRUE(pki.ok()) << pki.error();
  // A client certificate whose CN is the stream user: with TLS_CLIENT_CN_USER it is the
  // credential, over wss exactly as over TLS.
  ASSERT_TRUE(pki.MakeClientCert("test-user", ServerProcess::kUser)) << pki.Log();
  ASSERT_TRUE(StartWs({{"TLS_CERT_PATH", pki.Cert("server")},
                       {"TLS_KEY_PATH", pki.Key("server")},
                       {"TLS_CLIENT_CA_PATH", pki.Cert("ca")},
                       {"TLS_CLIENT_CN_USER", "true"}}));
  const std::string topic = Topic();
  WsOptions wss;
  wss.tls = true;
  wss.ca_file = pki.Cert("ca");
  wss.cert_file = pki.Cert("test-user");
  wss.key_file = pki.Key("test-user");
  WsClient c;
  ASSERT_TRUE(c.Connect(server_->ws_port(), wss)) << c.last_error();
  ASSERT_TRUE(c.Authenticate(ServerProcess::kUser, ""));
  ASSERT_TRUE(c.Subscribe(1, v1::MODE_TICK, {topic}));
  WsClient producer;
  ASSERT_TRUE(producer.Connect(server_->ws_port(), wss)) << producer.last_error();
  ASSERT_TRUE(producer.Authenticate(ServerProcess::kUser, ""));
  ASSERT_TRUE(producer.PublishAcked(1, {MakeTick(topic, 9.25, 1)}));
  std::vector<v1::Tick> ticks;
  ASSERT_TRUE(ReadWsTicks(c, 1, ticks));
  EXPECT_DOUBLE_EQ(ticks[0].price(), 9.25);
  // Without a client certificate the TLS handshake fails.
  WsOptions no_cert = wss;
  no_cert.cert_file.clear();
  no_cert.key_file.clear();
  WsClient refused;
  EXPECT_FALSE(refused.Connect(server_->ws_port(), no_cert));
  // Plain WebSocket on the TLS endpoint is no upgrade either.
  WsClient plain;
  EXPECT_FALSE(plain.Connect(server_->ws_port()));
  EXPECT_TRUE(Reaches("active_connections_by_transport{transport=\"ws\"}", 2));
}

}  // namespace
}  // namespace tickwire::testing
