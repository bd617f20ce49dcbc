#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "support/child_process.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace tickwire::testing {

// A multi-instance deployment on loopback, all real processes: one nats-server with JetStream
// (its store in a private temp dir), N tickwire-server instances with NATS_URL set and PROXY
// protocol required, and haproxy in front (deploy/haproxy/render.sh's configuration: leastconn,
// PROXY v2, /readyz checks) with one extra frontend per instance so a test can reach a chosen
// instance through the balancer too. Instances keep their ports across restarts.
class Cluster {
 public:
  explicit Cluster(int instances, EnvOverrides extra_env = {});
  ~Cluster();

  // Starts nats-server, every instance (waits until each is ready) and haproxy (waits until it
  // routes to every instance). Returns an empty string or what failed.
  std::string Start();

  bool StartNats();
  void StopNats();  // SIGTERM; the store stays for the restart
  // Starts instance i (again) on its ports; waits for it to listen (not for readiness).
  bool StartInstance(int i);
  void KillInstance(int i);  // SIGKILL
  int StopInstance(int i);   // SIGTERM: graceful drain; returns the exit code
  bool Ready(int i);         // GET /readyz answered 200
  bool WaitReady(int i, bool ready, std::chrono::milliseconds timeout);
  // haproxy's view: true while it considers instance i up (its stats page).
  bool BalancerRoutesTo(int i);

  std::uint16_t balancer_port() const { return lb_port_; }
  std::uint16_t instance_frontend_port(int i) const {
    return lb_instance_ports_[static_cast<std::size_t>(i)];
  }
  std::uint16_t metrics_port(int i) const { return metrics_ports_[static_cast<std::size_t>(i)]; }
  ServerProcess& instance(int i) { return *instances_[static_cast<std::size_t>(i)]; }
  int size() const { return static_cast<int>(instances_.size()); }
  std::string Describe();

 private:
  std::string WriteBalancerConfig();

  TempDir dir_;
  EnvOverrides extra_env_;
  std::uint16_t nats_port_ = 0;
  std::unique_ptr<ChildProcess> nats_;
  std::vector<std::uint16_t> listen_ports_;
  std::vector<std::uint16_t> metrics_ports_;
  std::vector<std::uint16_t> lb_instance_ports_;
  std::uint16_t lb_port_ = 0;
  std::uint16_t stats_port_ = 0;  // haproxy's stats page
  std::vector<std::unique_ptr<ServerProcess>> instances_;
  std::unique_ptr<ChildProcess> haproxy_;
};

// Client options for the test user through `port` (a balancer frontend).
client::ClientOptions ClusterClientOptions(std::uint16_t port, const std::string& name,
                                           bool reconnect);

// Collects every record a client receives (its on_batch callback), thread-safe.
class RecordLog {
 public:
  // A watermark and how many bars had arrived before it.
  struct Mark {
    client::Watermark watermark;
    std::size_t bars_before = 0;
  };
  void Add(const client::Batch& batch);
  std::vector<Mark> Watermarks() const;
  std::vector<client::Tick> Ticks() const;
  std::vector<client::Bar> Bars() const;
  std::size_t tick_count() const;

 private:
  mutable std::mutex mu_;
  std::vector<client::Tick> ticks_;
  std::vector<client::Bar> bars_;
  std::vector<Mark> watermarks_;
};

// A connected client plus the log its batches go to.
struct Consumer {
  std::shared_ptr<RecordLog> log = std::make_shared<RecordLog>();
  std::unique_ptr<client::Client> client;
};
// Connects a consumer through `port` and subscribes; empty `error` on success.
Consumer Subscribe(std::uint16_t port, const std::string& name, client::Mode mode,
                   const std::vector<std::string>& topics, bool reconnect, std::string& error,
                   std::int64_t since_ms = 0);

}  // namespace tickwire::testing
