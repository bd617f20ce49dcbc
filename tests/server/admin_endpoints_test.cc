// The operations endpoints wired to real workers: readiness follows the Readiness flags and the
// accept worker's responsiveness; /connz answers 503 rather than hang when a worker is stuck.
#include "server/admin_endpoints.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include <future>

#include "support/http_client.h"

namespace tickwire::server {
namespace {

using testing::HttpGet;

class AdminEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.config.stream_user = "u";
    ctx_.config.stream_pass = "p";
    worker_ = std::make_unique<net::Worker>(0, ctx_);
    ctx_.workers.push_back(worker_.get());
    worker_->Start();
    admin_ = std::make_unique<AdminEndpoints>(ctx_, readiness_, *worker_, snapshots_);
    ASSERT_EQ(admin_->Open("127.0.0.1", 0), "");
    admin_->Start();
  }
  void TearDown() override {
    admin_->Stop();
    worker_->Stop();
    worker_->Join();
  }

  net::ServerContext ctx_;
  Readiness readiness_;
  SnapshotStats snapshots_;  // DATA_DIR off: all zero
  std::unique_ptr<net::Worker> worker_;
  std::unique_ptr<AdminEndpoints> admin_;
};

TEST_F(AdminEndpointsTest, ReadyOnlyWhileAcceptingNotDrainingAndBackplaneUp) {
  const auto port = admin_->port();
  auto r = HttpGet(port, "/readyz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body, "not ready: not accepting connections\n");
  readiness_.SetAccepting(true);
  EXPECT_EQ(HttpGet(port, "/readyz").status, 200u);
  readiness_.SetBackplaneConnected(false);
  r = HttpGet(port, "/readyz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body,
            "not ready: backplane not ready (NATS connection, stream subscription or replay)\n");
  readiness_.SetBackplaneConnected(true);
  readiness_.SetDraining(true);
  r = HttpGet(port, "/readyz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body, "not ready: draining\n");
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200u);  // liveness is not readiness
}

TEST_F(AdminEndpointsTest, StuckAcceptWorkerMakesTheServerNotReadyButMetricsStillServe) {
  readiness_.SetAccepting(true);
  std::promise<void> release;
  auto released = release.get_future().share();
  boost::asio::post(worker_->io(), [released] { released.wait(); });
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = HttpGet(admin_->port(), "/readyz", std::chrono::seconds(5));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 503u) << r.error;
  EXPECT_EQ(r.body, "not ready: accept loop not responding\n");
  EXPECT_LT(waited, std::chrono::seconds(3));
  // Metrics are read without the workers' help.
  EXPECT_EQ(HttpGet(admin_->port(), "/metrics", std::chrono::seconds(2)).status, 200u);
  release.set_value();
  EXPECT_EQ(HttpGet(admin_->port(), "/readyz").status, 200u);
}

}  // namespace
}  // namespace tickwire::server
