#include "cluster/cluster_harness.h"

#include <signal.h>

#include <fstream>

#include "support/http_client.h"
#include "support/loopback.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using namespace std::chrono_literals;

}  // namespace

Cluster::Cluster(int instances, EnvOverrides extra_env) : extra_env_(std::move(extra_env)) {
  nats_port_ = FreePort();
  lb_port_ = FreePort();
  for (int i = 0; i < instances; ++i) {
    listen_ports_.push_back(FreePort());
    metrics_ports_.push_back(FreePort());
    lb_instance_ports_.push_back(FreePort());
    instances_.push_back(nullptr);
  }
  stats_port_ = FreePort();
}

Cluster::~Cluster() {
  if (haproxy_) haproxy_->Stop(2s);
  for (auto& s : instances_) {
    if (s) s->Stop(std::chrono::seconds(3));
  }
  StopNats();
}

bool Cluster::StartNats() {
  nats_ = std::make_unique<ChildProcess>(std::vector<std::string>{
      "nats-server", "-js", "-sd", dir_.File("jetstream"), "-a", "127.0.0.1", "-p",
      std::to_string(nats_port_), "--name", "tickwire-test"});
  if (!nats_->Start()) return false;
  return WaitForListener(nats_port_, 10s);
}

void Cluster::StopNats() {
  if (nats_) nats_->Stop(std::chrono::seconds(5));
  nats_.reset();
}

bool Cluster::StartInstance(int i) {
  const auto idx = static_cast<std::size_t>(i);
  EnvOverrides env = {
      {"NATS_URL", "nats://127.0.0.1:" + std::to_string(nats_port_)},
      {"INSTANCE_ID", "i" + std::to_string(i)},
      {"LISTEN_ADDR", "127.0.0.1:" + std::to_string(listen_ports_[idx])},
      {"METRICS_ADDR", "127.0.0.1:" + std::to_string(metrics_ports_[idx])},
      {"PROXY_PROTOCOL", "required"},
      {"PROXY_TRUSTED_CIDRS", "127.0.0.1/32"},
      {"DRAIN_PERIOD", "300ms"},
      {"DRAIN_DEADLINE", "3s"},
  };
  for (const auto& [k, v] : extra_env_) env[k] = v;
  if (instances_[idx]) instances_[idx]->Stop(std::chrono::seconds(1));
  instances_[idx] = std::make_unique<ServerProcess>(env);
  return instances_[idx]->Start(std::chrono::seconds(15));
}

void Cluster::KillInstance(int i) {
  auto& s = instances_[static_cast<std::size_t>(i)];
  if (s && s->Running()) ::kill(s->pid(), SIGKILL);
  if (s) s->WaitForExit(5s);
}

int Cluster::StopInstance(int i) {
  return instances_[static_cast<std::size_t>(i)]->Stop(std::chrono::seconds(10));
}

bool Cluster::Ready(int i) {
  return HttpGet(metrics_ports_[static_cast<std::size_t>(i)], "/readyz", 1s).status == 200;
}

bool Cluster::WaitReady(int i, bool ready, std::chrono::milliseconds timeout) {
  return WaitUntil([&] { return Ready(i) == ready; }, timeout, 20ms);
}

bool Cluster::BalancerRoutesTo(int i) {
  return HaproxyServers(stats_port_, "tickwire")["tickwire-" + std::to_string(i + 1)]["status"] ==
         "UP";
}

std::string Cluster::WriteBalancerConfig() {
  // The shipped configuration for these instances, plus a frontend per instance for tests.
  std::vector<std::string> args = {std::string(TICKWIRE_SOURCE_DIR) + "/deploy/haproxy/render.sh",
                                   "--bind",
                                   "127.0.0.1:" + std::to_string(lb_port_),
                                   "--stats",
                                   "127.0.0.1:" + std::to_string(stats_port_),
                                   "--check-inter",
                                   "200ms",
                                   "--maxconn",
                                   "4096",
                                   "--server-maxconn",
                                   "4096"};
  for (std::size_t i = 0; i < instances_.size(); ++i) {
    args.push_back("127.0.0.1:" + std::to_string(listen_ports_[i]) + ":" +
                   std::to_string(metrics_ports_[i]));
  }
  const std::string path = dir_.File("haproxy.cfg");
  args.push_back("-o");
  args.push_back(path);
  if (RunCommand(args, {}, 10s).exit_code != 0) return {};
  std::string cfg;
  for (std::size_t i = 0; i < instances_.size(); ++i) {
    const std::string n = "i" + std::to_string(i);
    cfg += "\nfrontend only_" + n + "\n  bind 127.0.0.1:" + std::to_string(lb_instance_ports_[i]) +
           "\n  default_backend only_" + n + "\n\nbackend only_" + n +
           "\n  option httpchk GET /readyz\n  server " + n +
           " 127.0.0.1:" + std::to_string(listen_ports_[i]) + " send-proxy-v2 check port " +
           std::to_string(metrics_ports_[i]) + " inter 200ms fall 1 rise 1\n";
  }
  std::ofstream(path, std::ios::app) << cfg;
  return path;
}

std::string Cluster::Start() {
  if (!StartNats()) return "nats-server did not start: " + (nats_ ? nats_->Output() : "");
  for (int i = 0; i < size(); ++i) {
    if (!StartInstance(i)) return "instance " + std::to_string(i) + ": " + instance(i).Describe();
  }
  for (int i = 0; i < size(); ++i) {
    if (!WaitReady(i, true, 15s)) {
      return "instance " + std::to_string(i) + " not ready: " + instance(i).Describe();
    }
  }
  const std::string cfg = WriteBalancerConfig();
  if (cfg.empty()) return "deploy/haproxy/render.sh failed";
  const CommandResult check = RunCommand({"haproxy", "-c", "-f", cfg}, {}, 10s);
  if (check.exit_code != 0) return "haproxy -c rejected the configuration:\n" + check.output;
  haproxy_ = std::make_unique<ChildProcess>(std::vector<std::string>{"haproxy", "-db", "-f", cfg});
  if (!haproxy_->Start()) return "haproxy did not start: " + haproxy_->error();
  for (int i = 0; i < size(); ++i) {
    if (!WaitUntil([&] { return BalancerRoutesTo(i); }, 10s, 20ms)) {
      return "haproxy does not route to instance " + std::to_string(i) + ":\n" + haproxy_->Output();
    }
  }
  return {};
}

std::string Cluster::Describe() {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    if (instances_[static_cast<std::size_t>(i)]) {
      out += "--- instance " + std::to_string(i) + ": " + instance(i).Describe() + "\n";
    }
  }
  if (nats_) out += "--- nats-server:\n" + nats_->Output().substr(0, 4000) + "\n";
  if (haproxy_) out += "--- haproxy:\n" + haproxy_->Output().substr(0, 4000) + "\n";
  return out;
}

client::ClientOptions ClusterClientOptions(std::uint16_t port, const std::string& name,
                                           bool reconnect) {
  client::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.username = "test";
  o.password = "secret";
  o.client_name = name;
  o.queue_capacity = 1 << 20;
  o.watermarks = true;
  o.reconnect.enabled = reconnect;
  o.reconnect.initial_backoff = std::chrono::milliseconds(50);
  o.reconnect.max_backoff = std::chrono::milliseconds(500);
  return o;
}

void RecordLog::Add(const client::Batch& batch) {
  std::lock_guard lock(mu_);
  for (const auto& r : batch.records) {
    if (const auto* t = std::get_if<client::Tick>(&r)) {
      ticks_.push_back(*t);
    } else if (const auto* w = std::get_if<client::Watermark>(&r)) {
      // Where it fell among the bars: every bar of its interval must come before it.
      watermarks_.push_back({*w, bars_.size()});
    } else {
      bars_.push_back(std::get<client::Bar>(r));
    }
  }
}

std::vector<RecordLog::Mark> RecordLog::Watermarks() const {
  std::lock_guard lock(mu_);
  return watermarks_;
}

std::vector<client::Tick> RecordLog::Ticks() const {
  std::lock_guard lock(mu_);
  return ticks_;
}

std::vector<client::Bar> RecordLog::Bars() const {
  std::lock_guard lock(mu_);
  return bars_;
}

std::size_t RecordLog::tick_count() const {
  std::lock_guard lock(mu_);
  return ticks_.size();
}

Consumer Subscribe(std::uint16_t port, const std::string& name, client::Mode mode,
                   const std::vector<std::string>& topics, bool reconnect, std::string& error,
                   std::int64_t since_ms) {
  Consumer c;
  auto options = ClusterClientOptions(port, name, reconnect);
  options.on_batch = [log = c.log](const client::Batch& b) { log->Add(b); };
  options.on_error = [](const client::Error&) {};
  auto connected = client::Client::Connect(std::move(options));
  if (!connected.ok()) {
    error = connected.error().ToString();
    return c;
  }
  c.client = std::move(connected.value());
  auto sub = c.client->Subscribe(mode, topics, 0, since_ms);
  if (!sub.ok()) error = sub.error().ToString();
  return c;
}

}  // namespace tickwire::testing
