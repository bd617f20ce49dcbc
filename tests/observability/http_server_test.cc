// The operations HTTP server under connections that never finish a request: idle and slow
// connections are closed by their timeouts, and a new connection always finds room (probes keep
// answering) by displacing one that only waits; busy ones are never displaced.
#include "observability/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/http_client.h"
#include "support/wait.h"

namespace tickwire::obs {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using testing::HttpGet;
using testing::WaitUntil;

// A blocking client socket from a chosen loopback address.
class Peer {
 public:
  Peer(std::uint16_t port, const std::string& from = "127.0.0.1") : socket_(io_) {
    socket_.open(tcp::v4());
    socket_.bind({asio::ip::make_address(from), 0});
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void Send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // True once the server has closed the connection (EOF or reset), polling for `timeout`.
  bool ClosedWithin(milliseconds timeout) {
    socket_.non_blocking(true);
    return WaitUntil(
        [&] {
          char buf[4096];
          boost::system::error_code ec;
          socket_.read_some(asio::buffer(buf), ec);
          return ec && ec != asio::error::would_block;
        },
        timeout);
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerLimits limits) {
    server_ = std::make_unique<HttpServer>(limits);
    server_->Handle("/healthz", [](const HttpRequest&, HttpRespond respond) {
      respond({200, "text/plain", "ok\n"});
    });
    server_->Handle("/hang", [this](const HttpRequest&, HttpRespond respond) {
      std::lock_guard lock(mu_);
      held_.push_back(std::move(respond));
    });
    ASSERT_EQ(server_->Open("127.0.0.1", 0, "TEST"), "");
    server_->Start();
  }
  void TearDown() override {
    std::lock_guard lock(mu_);
    for (auto& r : held_) r({200, "text/plain", "late\n"});
    held_.clear();
  }
  std::uint16_t port() const { return server_->port(); }
  std::size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }

  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::vector<HttpRespond> held_;
};

TEST_F(HttpServerTest, IdleAndSlowConnectionsAreClosedByTheirTimeouts) {
  HttpServerLimits limits;
  limits.idle_timeout = milliseconds(200);
  limits.header_timeout = milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(StartServer(limits));
  Peer idle(port());
  Peer slow(port());
  slow.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // never the blank line
  EXPECT_TRUE(idle.ClosedWithin(milliseconds(3000)));
  EXPECT_TRUE(slow.ClosedWithin(milliseconds(3000)));
  // The timer closes the socket before the read's handler counts the timeout: wait for it.
  EXPECT_TRUE(
      WaitUntil([&] { return server_->counters().idle_timeout.load() == 1; }, milliseconds(2000)));
  EXPECT_TRUE(WaitUntil([&] { return server_->counters().header_timeout.load() == 1; },
                        milliseconds(2000)));
  // A slow client that keeps trickling bytes is still cut at the header timeout.
  Peer trickle(port());
  const auto start = std::chrono::steady_clock::now();
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    try {
      trickle.Send(request.substr(static_cast<std::size_t>(i) % request.size(), 1));
    } catch (const boost::system::system_error&) {
      closed = true;
    }
    closed = closed || trickle.ClosedWithin(milliseconds(50));
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(WaitUntil([&] { return server_->counters().header_timeout.load() == 2; },
                        milliseconds(2000)));
  // A complete request is answered as before.
  EXPECT_EQ(HttpGet(port(), "/healthz").status, 200u);
}

TEST_F(HttpServerTest, ANewConnectionDisplacesTheOldestIdleOneOfItsAddress) {
  HttpServerLimits limits;
  limits.max_sessions = 64;
  limits.max_sessions_per_address = 4;
  ASSERT_NO_FATAL_FAILURE(StartServer(limits));
  std::vector<std::unique_ptr<Peer>> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(std::make_unique<Peer>(port()));
  const auto start = std::chrono::steady_clock::now();
  const auto r = HttpGet(port(), "/healthz", milliseconds(1000));
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  // The first 16 made room for later ones; the last of them is still open.
  EXPECT_TRUE(idle.front()->ClosedWithin(milliseconds(2000)));
  EXPECT_TRUE(
      WaitUntil([&] { return server_->counters().evicted.load() >= 17; }, milliseconds(2000)));
  EXPECT_FALSE(idle.back()->ClosedWithin(milliseconds(100)));
  EXPECT_EQ(server_->counters().refused.load(), 0u);
}

TEST_F(HttpServerTest, AtTheTotalCapTheAddressHoldingTheMostMakesRoom) {
  HttpServerLimits limits;
  limits.max_sessions = 8;
  limits.max_sessions_per_address = 6;
  ASSERT_NO_FATAL_FAILURE(StartServer(limits));
  std::vector<std::unique_ptr<Peer>> few;
  std::vector<std::unique_ptr<Peer>> most;
  for (int i = 0; i < 2; ++i) few.push_back(std::make_unique<Peer>(port(), "127.0.0.2"));
  for (int i = 0; i < 6; ++i) most.push_back(std::make_unique<Peer>(port(), "127.0.0.3"));
  const auto r = HttpGet(port(), "/healthz", milliseconds(1000));
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_TRUE(most.front()->ClosedWithin(milliseconds(2000)));
  for (auto& p : few) EXPECT_FALSE(p->ClosedWithin(milliseconds(50)));
}

TEST_F(HttpServerTest, BusyConnectionsAreNeverDisplacedSoANewOneIsRefused) {
  HttpServerLimits limits;
  limits.max_sessions_per_address = 2;
  ASSERT_NO_FATAL_FAILURE(StartServer(limits));
  Peer a(port());
  Peer b(port());
  a.Send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
  b.Send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(WaitUntil([&] { return held() == 2; }, milliseconds(2000)));
  const auto r = HttpGet(port(), "/healthz", milliseconds(1000));
  EXPECT_EQ(r.status, 0u);
  EXPECT_TRUE(
      WaitUntil([&] { return server_->counters().refused.load() == 1; }, milliseconds(2000)));
  EXPECT_EQ(server_->counters().evicted.load(), 0u);
  EXPECT_FALSE(a.ClosedWithin(milliseconds(50)));
}

// Exact paths first, then the longest registered prefix; extra header fields reach the client.
TEST(HttpServerRoutes, ExactThenLongestPrefix) {
  HttpServer server;
  auto answer = [](std::string what) {
    return [what](const HttpRequest& r, HttpRespond respond) {
      HttpResponse res{200, "text/plain", what + " " + r.path};
      res.headers.emplace_back("X-Route", what);
      respond(std::move(res));
    };
  };
  server.Handle("/chart", answer("exact"));
  server.HandlePrefix("/chart/", answer("chart"));
  server.HandlePrefix("/chart/deep/", answer("deep"));
  ASSERT_EQ(server.Open("127.0.0.1", 0, "TEST"), "");
  server.Start();
  const auto exact = HttpGet(server.port(), "/chart");
  EXPECT_EQ(exact.body, "exact /chart");
  EXPECT_EQ(exact.headers.at("x-route"), "exact");
  EXPECT_EQ(HttpGet(server.port(), "/chart/").body, "chart /chart/");
  EXPECT_EQ(HttpGet(server.port(), "/chart/a.js?x=1").body, "chart /chart/a.js");
  EXPECT_EQ(HttpGet(server.port(), "/chart/deep/b.js").body, "deep /chart/deep/b.js");
  EXPECT_EQ(HttpGet(server.port(), "/chart/deeper").body, "chart /chart/deeper");
  const auto missing = HttpGet(server.port(), "/chartx");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_NE(missing.body.find("/chart/deep/"), std::string::npos) << missing.body;
  server.Stop();
}

}  // namespace
}  // namespace tickwire::obs
