// deploy/haproxy against real processes: two tickwire-server instances with the PROXY protocol
// required, the configuration deploy/haproxy/render.sh writes for them (checked with
// `haproxy -c`), and HAProxy itself in the foreground. Clients connect through HAProxy,
// authenticate, publish and receive; each instance sees the client's own address (PROXY v2);
// and an instance that drains on SIGTERM fails /readyz and leaves the rotation while it is still
// running, so new clients go to the other one.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "deploy/deploy_support.h"
#include "support/child_process.h"
#include "support/http_client.h"
#include "support/loopback.h"
#include "support/raw_client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Clients connect from this loopback address; HAProxy connects to the instances from
// 127.0.0.1, the only address the instances trust to send PROXY headers.
constexpr const char* kClientAddress = "127.0.0.2";
constexpr std::size_t kInstances = 2;
constexpr std::size_t kNowhere = kInstances;  // InstanceOf() for a client no instance lists

// One row of HAProxy's CSV statistics, by column name.
class HaproxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InPath("haproxy")) << "haproxy missing: run scripts/setup.sh";
    for (auto& server : servers_) {
      // A drain long enough that the instance is still running, and failing /readyz, when
      // HAProxy's next check comes (every 200 ms here).
      server = std::make_unique<ServerProcess>(EnvOverrides{{"PROXY_PROTOCOL", "required"},
                                                            {"PROXY_TRUSTED_CIDRS", "127.0.0.1/32"},
                                                            {"DRAIN_PERIOD", "4s"},
                                                            {"DRAIN_DEADLINE", "8s"}});
      ASSERT_TRUE(server->Start()) << server->error();
    }
    // The ports are free when picked; should another process take one first, try again.
    for (int attempt = 0; attempt < 3 && !haproxy_; ++attempt) {
      const std::uint16_t port = FreePort();
      const std::uint16_t stats = FreePort();
      const std::string cfg = dir_.File("haproxy-" + std::to_string(attempt) + ".cfg");
      std::vector<std::string> render = {DeployDir() + "/haproxy/render.sh",
                                         "-o",
                                         cfg,
                                         "--bind",
                                         "127.0.0.1:" + std::to_string(port),
                                         "--stats",
                                         "127.0.0.1:" + std::to_string(stats),
                                         "--maxconn",
                                         "1000",
                                         "--server-maxconn",
                                         "500",
                                         "--check-inter",
                                         "200ms",
                                         "--fall",
                                         "1",
                                         "--rise",
                                         "1"};
      for (const auto& s : servers_) {
        render.push_back("127.0.0.1:" + std::to_string(s->port()) + ":" +
                         std::to_string(s->metrics_port()));
      }
      const CommandResult rendered = RunCommand(render, {}, seconds(10));
      ASSERT_EQ(rendered.exit_code, 0) << rendered.output;
      const CommandResult check = RunCommand({"haproxy", "-c", "-f", cfg}, {}, seconds(10));
      ASSERT_EQ(check.exit_code, 0) << check.output;
      EXPECT_EQ(check.output.find("[WARNING]"), std::string::npos) << check.output;

      auto p =
          std::make_unique<ChildProcess>(std::vector<std::string>{"haproxy", "-db", "-f", cfg});
      ASSERT_TRUE(p->Start()) << p->error();
      stats_port_ = stats;
      if (WaitUntil(
              [&] {
                return ServerStatus("tickwire-1") == "UP" && ServerStatus("tickwire-2") == "UP";
              },
              seconds(10), milliseconds(50))) {
        port_ = port;
        haproxy_ = std::move(p);
      } else {
        std::cerr << "haproxy attempt " << attempt << ":\n" << p->Output();
      }
    }
    ASSERT_TRUE(haproxy_) << "haproxy did not report both instances UP";
  }

  void TearDown() override {
    if (HasFailure() && haproxy_) std::cerr << "haproxy output:\n" << haproxy_->Output();
    if (haproxy_) haproxy_->Stop();
    for (auto& s : servers_) {
      if (s && s->Running()) {
        EXPECT_EQ(s->Stop(seconds(10)), 0) << s->Describe();
      }
    }
  }

  // The backend's servers from HAProxy's CSV statistics, by server name.
  std::map<std::string, HaproxyStatsRow> Stats() { return HaproxyServers(stats_port_, "tickwire"); }
  std::string ServerStatus(const std::string& name) { return Stats()[name]["status"]; }

  // Connects through HAProxy from kClientAddress and authenticates.
  ::testing::AssertionResult Connect(RawClient& c) {
    c.SetSourceAddress(kClientAddress);
    if (!c.Connect(port_)) return ::testing::AssertionFailure() << "connect: " << c.last_error();
    return c.Authenticate(ServerProcess::kUser, ServerProcess::kPass);
  }

  // The instance (index into servers_) whose /connz lists `c`'s own address, or kNowhere.
  std::size_t InstanceOf(const RawClient& c) {
    const std::string me = std::string(kClientAddress) + ":" + std::to_string(LocalPort(c.fd()));
    for (std::size_t i = 0; i < kInstances; ++i) {
      const auto remotes = ConnzRemotes(servers_[i]->metrics_port());
      if (std::find(remotes.begin(), remotes.end(), me) != remotes.end()) return i;
    }
    return kNowhere;
  }

  // `consumer` (subscribed to `topic`) receives the tick `producer` publishes.
  ::testing::AssertionResult PublishAndReceive(RawClient& producer, RawClient& consumer,
                                               const std::string& topic, double price) {
    if (auto r = producer.PublishAcked(7, {MakeTick(topic, price, 3)}); !r) return r;
    const auto deadline = std::chrono::steady_clock::now() + seconds(5);
    while (true) {
      const ReadResult r = consumer.ReadFrame(Remaining(deadline));
      if (!r.ok()) {
        return ::testing::AssertionFailure()
               << "no tick: " << ReadStatusName(r.status) << " " << r.detail;
      }
      const auto batch = DecodeBatch(r.frame);
      if (!batch) return ::testing::AssertionFailure() << "got " << DescribeFrame(r.frame);
      for (const auto& t : batch->ticks) {
        if (t.topic() == topic && t.price() == price) return ::testing::AssertionSuccess();
      }
    }
  }

  TempDir dir_;
  std::array<std::unique_ptr<ServerProcess>, kInstances> servers_;
  std::unique_ptr<ChildProcess> haproxy_;
  std::uint16_t port_ = 0;
  std::uint16_t stats_port_ = 0;
};

TEST_F(HaproxyTest, BalancesClientsPassesTheirAddressAndDeliversTicks) {
  // leastconn puts one consumer on each instance.
  std::array<RawClient, kInstances> consumers;
  std::array<std::size_t, kInstances> placed{};
  for (std::size_t i = 0; i < kInstances; ++i) {
    ASSERT_TRUE(Connect(consumers[i]));
    ASSERT_TRUE(consumers[i].Subscribe(1, v1::MODE_TICK, {"HAPX"}));
    placed[i] = InstanceOf(consumers[i]);
    ASSERT_NE(placed[i], kNowhere) << "no instance lists the client's own address on /connz";
  }
  EXPECT_NE(placed[0], placed[1]) << "leastconn should spread the first two clients";

  // A producer reaches the consumer on its own instance.
  RawClient producer;
  ASSERT_TRUE(Connect(producer));
  const std::size_t at = InstanceOf(producer);
  ASSERT_NE(at, kNowhere);
  const std::size_t consumer = placed[0] == at ? 0 : 1;
  ASSERT_EQ(placed[consumer], at);
  EXPECT_TRUE(PublishAndReceive(producer, consumers[consumer], "HAPX", 101.25));

  // The instance logs the client's address, not HAProxy's.
  const std::string want = "\"remote\":\"" + std::string(kClientAddress) + ":" +
                           std::to_string(LocalPort(producer.fd()));
  EXPECT_NE(servers_[at]->Logs().find(want), std::string::npos) << servers_[at]->Logs();
}

TEST_F(HaproxyTest, AnInstanceThatDrainsLeavesTheRotationWhileStillRunning) {
  // Six clients: three on each instance.
  std::vector<RawClient> old(6);
  std::vector<std::size_t> old_at;
  std::array<int, kInstances> per_instance{};
  for (auto& c : old) {
    ASSERT_TRUE(Connect(c));
    old_at.push_back(InstanceOf(c));
    ASSERT_NE(old_at.back(), kNowhere);
    ++per_instance[old_at.back()];
  }
  EXPECT_EQ(per_instance[0], 3);
  EXPECT_EQ(per_instance[1], 3);

  // SIGTERM to the first instance: it drains (SERVER_DRAINING spread over 4 s) and /readyz
  // fails at once; HAProxy's next check takes it out while the process is still running.
  ASSERT_EQ(kill(servers_[0]->pid(), SIGTERM), 0);
  const bool down =
      WaitUntil([&] { return ServerStatus("tickwire-1") == "DOWN"; }, seconds(3), milliseconds(20));
  ASSERT_TRUE(down) << "tickwire-1 is " << ServerStatus("tickwire-1");
  EXPECT_TRUE(servers_[0]->Running()) << "the instance must still be draining";
  auto row = Stats()["tickwire-1"];
  EXPECT_EQ(row["check_status"], "L7STS") << "taken out by its /readyz answer";
  EXPECT_EQ(row["check_code"], "503");
  EXPECT_EQ(HttpGet(servers_[0]->metrics_port(), "/readyz").status, 503u);
  EXPECT_EQ(ServerStatus("tickwire-2"), "UP");

  // New clients all go to the second instance, and ticks flow there.
  std::vector<RawClient> fresh(4);
  for (auto& c : fresh) {
    ASSERT_TRUE(Connect(c));
    EXPECT_EQ(InstanceOf(c), 1u);
  }
  ASSERT_TRUE(fresh[0].Subscribe(1, v1::MODE_TICK, {"AFTER"}));
  EXPECT_TRUE(PublishAndReceive(fresh[1], fresh[0], "AFTER", 55.5));

  // The first instance's clients are told to go, and it exits 0.
  for (std::size_t i = 0; i < old.size(); ++i) {
    if (old_at[i] == 0) {
      EXPECT_TRUE(old[i].ExpectFatal(v1::SERVER_DRAINING, nullptr, seconds(8)));
    }
  }
  EXPECT_EQ(servers_[0]->WaitForExit(seconds(10)), 0) << servers_[0]->Describe();
}

}  // namespace
}  // namespace tickwire::testing
