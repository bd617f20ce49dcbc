// The WebSocket upgrade request (net/ws_upgrade.h): the RFC 6455 example key, every refusal and
// its status, the size bound, bytes after the request, and requests that arrive byte by byte.
#include "net/ws_upgrade.h"

#include <gtest/gtest.h>

#include <string>

namespace tickwire::net::ws {
namespace {

using Status = UpgradeResult::Status;

std::string Request(std::string_view path = "/", std::string_view extra = {}) {
  std::string r = "GET " + std::string(path) +
                  " HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: keep-alive, "
                  "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n";
  r.append(extra);
  r.append("\r\n");
  return r;
}

UpgradeResult FeedAll(UpgradeParser& p, const std::string& bytes, std::size_t chunk = 0) {
  UpgradeResult r;
  const std::size_t step = chunk == 0 ? bytes.size() : chunk;
  for (std::size_t off = 0; off < bytes.size(); off += step) {
    const std::string_view part = std::string_view(bytes).substr(off, step);
    r = p.Feed(std::span(reinterpret_cast<const std::uint8_t*>(part.data()), part.size()));
    if (r.status != Status::kNeedMore) return r;
  }
  return r;
}

TEST(WsUpgrade, AcceptKeyIsTheRfcExample) {
  EXPECT_EQ(AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsUpgrade, AcceptsAValidRequestInAnyChunkingAndKeepsWhatFollows) {
  UpgradeSettings s;
  for (std::size_t chunk : {0u, 1u, 5u}) {
    UpgradeParser p(s);
    const UpgradeResult r = FeedAll(p, Request("/?token=x") + "\x82\x85", chunk);
    ASSERT_EQ(r.status, Status::kAccepted) << r.detail;
    EXPECT_EQ(r.response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
    EXPECT_NE(r.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
              std::string::npos);
    EXPECT_EQ(r.response.find("Sec-WebSocket-Protocol"), std::string::npos);
    // Bytes in the same chunk as the end of the head are the client's first frames.
    if (chunk == 0) {
      EXPECT_EQ(r.leftover, "\x82\x85");
    }
  }
  UpgradeParser p(s);
  const auto r = FeedAll(p, Request("/", "Sec-WebSocket-Protocol: other, tickwire.v1\r\n"));
  EXPECT_NE(r.response.find("Sec-WebSocket-Protocol: tickwire.v1\r\n"), std::string::npos);
}

TEST(WsUpgrade, RefusalsCarryTheirStatus) {
  UpgradeSettings s;
  s.path = "/stream";
  s.allowed_origins = {"https://app.example.com"};
  const auto status_of = [&](const std::string& req) {
    UpgradeParser p(s);
    const UpgradeResult r = FeedAll(p, req);
    EXPECT_EQ(r.status, Status::kRejected) << req;
    return std::make_pair(r.rejection, r.response.substr(0, 12));
  };
  EXPECT_EQ(status_of(Request("/")),
            std::make_pair(Rejection::kNotFound, std::string("HTTP/1.1 404")));
  EXPECT_EQ(status_of("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"),
            std::make_pair(Rejection::kNotUpgrade, std::string("HTTP/1.1 426")));
  std::string post = Request("/stream");
  post.replace(0, 3, "PUT");
  EXPECT_EQ(status_of(post).first, Rejection::kNotUpgrade);
  std::string v8 = Request("/stream");
  v8.replace(v8.find("Version: 13"), 11, "Version: 8");
  EXPECT_EQ(status_of(v8), std::make_pair(Rejection::kVersion, std::string("HTTP/1.1 426")));
  std::string bad_key = Request("/stream");
  bad_key.replace(bad_key.find("dGhl"), 4, "!!!!");
  EXPECT_EQ(status_of(bad_key),
            std::make_pair(Rejection::kNotUpgrade, std::string("HTTP/1.1 400")));
  EXPECT_EQ(status_of(Request("/stream", "Origin: https://evil.example\r\n")),
            std::make_pair(Rejection::kOrigin, std::string("HTTP/1.1 403")));
  EXPECT_EQ(status_of(Request("/stream", "Content-Length: 5\r\n")).first, Rejection::kMalformed);
  std::string http10 = Request("/stream");
  http10.replace(http10.find("HTTP/1.1"), 8, "HTTP/1.0");
  EXPECT_EQ(status_of(http10).first, Rejection::kMalformed);
  EXPECT_EQ(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n").first, Rejection::kMalformed);
  // Allowed origins compare without case; a request without Origin is not a browser's.
  UpgradeParser ok(s);
  EXPECT_EQ(FeedAll(ok, Request("/stream", "Origin: HTTPS://App.Example.com\r\n")).status,
            Status::kAccepted);
  UpgradeParser none(s);
  EXPECT_EQ(FeedAll(none, Request("/stream")).status, Status::kAccepted);
}

TEST(WsUpgrade, TheRequestHeadIsBounded) {
  UpgradeSettings s;
  {
    UpgradeParser p(s);
    const UpgradeResult r = FeedAll(p, Request("/", "X-Pad: " + std::string(9000, 'a') + "\r\n"));
    EXPECT_EQ(r.rejection, Rejection::kTooLarge);
    EXPECT_EQ(r.response.substr(0, 12), "HTTP/1.1 431");
  }
  {
    // A head that never ends, fed slowly: refused once it passes the bound.
    UpgradeParser p(s);
    std::string endless = "GET / HTTP/1.1\r\n";
    while (endless.size() < kMaxRequestBytes + 100) endless += "X-A: b\r\n";
    const UpgradeResult r = FeedAll(p, endless, 64);
    EXPECT_EQ(r.status, Status::kRejected);
    EXPECT_EQ(r.rejection, Rejection::kTooLarge);
  }
}

}  // namespace
}  // namespace tickwire::net::ws
