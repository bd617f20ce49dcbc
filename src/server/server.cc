#include "server/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "auth/users_file.h"
#include "observability/log.h"

namespace tickwire::server {
namespace {

// A random, non-zero stream epoch from the kernel's random source. 53 bits, so that it survives
// a trip through JSON numbers (the CLI's --json) unchanged.
std::uint64_t NewStreamEpoch() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = ((std::uint64_t{rd()} << 32) | rd()) & ((std::uint64_t{1} << 53) - 1);
  return v;
}

using Clock = std::chrono::steady_clock;

obs::Level ToLogLevel(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kDebug:
      return obs::Level::kDebug;
    case config::LogLevel::kInfo:
      return obs::Level::kInfo;
    case config::LogLevel::kWarn:
      return obs::Level::kWarn;
    case config::LogLevel::kError:
      return obs::Level::kError;
  }
  return obs::Level::kInfo;
}

auth::RateLimitSettings RateLimits(const config::Config& c) {
  return auth::RateLimitSettings{c.auth_fail_budget_addr, c.auth_fail_budget_user,
                                 c.auth_backoff_min,      c.auth_backoff_max,
                                 c.auth_user_delay_max,   c.auth_rate_table_size};
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

}  // namespace

Server::Server(config::Config config, ConfigSource reload_source)
    : reload_source_(std::move(reload_source)) {
  ctx_.config = std::move(config);
  current_ = ctx_.config;
  ctx_.batch_window_ms.store(ctx_.config.batch_window_ms);
  ctx_.ws_upgrade.path = ctx_.config.ws_path;
  ctx_.ws_upgrade.allowed_origins = ctx_.config.ws_allowed_origins;
  ctx_.rate_limiter.Configure(RateLimits(ctx_.config));
  ctx_.admission.Configure(ctx_.config.max_connections, ctx_.config.max_unauth_connections,
                           ctx_.config.max_unauth_per_source);
  ctx_.hash_pool = std::make_unique<auth::HashPool>(ctx_.config.EffectiveAuthHashThreads(),
                                                    ctx_.config.auth_hash_queue);
  // The bus first: every worker's exchange holds it.
  if (ctx_.config.clustered()) {
    readiness_.SetBackplaneConnected(false);
    nats_bus_ = std::make_unique<cluster::NatsBus>(
        ctx_.config, ctx_.poster, ctx_.ingest_backlog,
        [this](bool ready) { readiness_.SetBackplaneConnected(ready); });
    ctx_.bus = nats_bus_.get();
  }
  const unsigned n = ctx_.config.EffectiveWorkers();
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<net::Worker>(i, ctx_));
    ctx_.workers.push_back(workers_.back().get());
  }
  // A new stream epoch: the history and the topics' numbering start empty (PROTOCOL S7a).
  // Multi-instance mode has none: its numbers are positions in the shared log.
  if (!ctx_.config.clustered()) ctx_.stream_epoch = NewStreamEpoch();
}

Server::~Server() {
  // First: the hashing threads post verdicts to the workers' event loops, and the snapshotter
  // posts slice requests to them.
  if (snapshotter_) snapshotter_->Stop();
  ctx_.hash_pool->Stop();
  if (admin_) admin_->Stop();
  if (nats_bus_) nats_bus_->Stop();
  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) w->Join();
}

std::string Server::LoadCredentials(const config::Config& c) {
  std::vector<auth::UserEntry> users;
  if (!c.users_file.empty()) {
    auto loaded = auth::LoadUsersFile(c.users_file);
    if (auto* err = std::get_if<std::string>(&loaded)) return "USERS_FILE: " + *err;
    users = std::move(std::get<std::vector<auth::UserEntry>>(loaded));
  }
  auto created = auth::Authenticator::Create(c.stream_user, c.stream_pass, std::move(users));
  if (auto* err = std::get_if<std::string>(&created)) return "USERS_FILE: " + *err;
  auto a = std::get<std::shared_ptr<const auth::Authenticator>>(std::move(created));
  const auto count = a->user_count();
  // What every failed AUTH costs the hashing threads: the users file's highest count.
  const auto iterations = a->check_iterations();
  ctx_.credentials.Set(std::move(a));
  obs::Log(obs::Level::kInfo, "credentials_loaded", "credentials loaded",
           {{"users", count}, {"users_file", c.users_file}, {"check_iterations", iterations}});
  return {};
}

std::string Server::LoadTls(const config::Config& c) {
  auto made = net::MakeServerTlsContext(c);
  if (auto* err = std::get_if<std::string>(&made)) return *err;
  ctx_.tls.Set(std::get<net::TlsContextPtr>(std::move(made)));
  obs::Log(obs::Level::kInfo, "tls_loaded", "TLS certificate and key loaded",
           {{"cert", c.tls_cert_path}, {"mtls", !c.tls_client_ca_path.empty()}});
  return {};
}

std::string Server::Open() {
  if (auto err = LoadCredentials(ctx_.config); !err.empty()) return err;
  if (ctx_.config.tls_enabled()) {
    if (auto err = LoadTls(ctx_.config); !err.empty()) return err;
  }
  // Durable history: restored before any worker runs (Validate refuses DATA_DIR in the
  // multi-instance mode).
  if (!ctx_.config.data_dir.empty() && !ctx_.config.clustered()) {
    std::vector<engine::Shard*> shards;
    for (auto& w : workers_) shards.push_back(&w->exchange().shard_for_restore());
    RestoreResult restored = RestoreSnapshots(ctx_.config.data_dir, shards, snapshot_stats_);
    if (!restored.error.empty()) return restored.error;
    restored_stream_epoch_ = restored.stream_epoch;
    restored_clean_ = restored.clean;
    snapshot_generation_ = restored.generation;
    std::uint64_t max_epoch = 0;
    for (auto* s : shards) max_epoch = std::max(max_epoch, s->max_restored_epoch());
    for (auto* s : shards) s->AdvanceTopicEpochsPast(max_epoch);
    // Written on drain: the history and the numbering continue, and so does the epoch. Written
    // periodically (the last run crashed): ticks after that snapshot were lost and their seqs
    // will be handed out again, so the stream and every topic get new epochs (PROTOCOL S7a).
    if (restored.stream_epoch && restored.clean) {
      ctx_.stream_epoch = *restored.stream_epoch;
    } else {
      for (auto* s : shards) s->RenewTopicEpochs();
    }
  }
  listener_ = std::make_unique<net::Listener>(*workers_[0], ctx_.workers);
  if (auto err = listener_->Open(ctx_.config.listen_host, ctx_.config.listen_port); !err.empty()) {
    return err;
  }
  if (ctx_.config.ws_enabled()) {
    ws_listener_ = std::make_unique<net::Listener>(*workers_[0], ctx_.workers,
                                                   net::Transport::kWebSocket, "WS_LISTEN_ADDR");
    if (auto err = ws_listener_->Open(ctx_.config.ws_host, ctx_.config.ws_port); !err.empty()) {
      return err;
    }
  }
  if (nats_bus_) {
    if (auto err = nats_bus_->Start(); !err.empty()) return err;
  }
  if (ctx_.config.metrics_host.empty()) return {};
  admin_ = std::make_unique<AdminEndpoints>(ctx_, readiness_, *workers_[0], snapshot_stats_);
  return admin_->Open(ctx_.config.metrics_host, ctx_.config.metrics_port);
}

namespace {

// Written to a temporary name and renamed, so a reader never sees a partial port.
void WritePortFile(const std::string& path, std::uint16_t port) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

void Server::Shutdown() { stop_requested_.store(true); }

void Server::Reload() {
  config::Config next = current_;
  if (reload_source_) {
    auto parsed = reload_source_();
    if (auto* err = std::get_if<config::ParseError>(&parsed)) {
      obs::Log(obs::Level::kError, "reload_failed", "reload refused; nothing changed",
               {{"reason", err->message}});
      return;
    }
    if (auto* cfg = std::get_if<config::Config>(&parsed)) next = std::move(*cfg);
  }
  const auto changed = config::ChangedSettings(current_, next);
  std::vector<std::string> restart;
  for (const auto& name : changed) {
    if (!config::ReloadsOnSighup(name)) restart.push_back(name);
  }
  for (const config::Reload kind : config::kReloadKinds) ApplyReload(kind, next, restart);
  if (!restart.empty()) {
    obs::Log(obs::Level::kWarn, "reload_needs_restart",
             "changed settings that only a restart applies", {{"settings", Join(restart)}});
  }
  current_ = std::move(next);
  obs::Log(obs::Level::kInfo, "reload", "configuration reloaded",
           {{"changed", Join(changed)},
            {"batch_window_ms", current_.batch_window_ms},
            {"log_level", config::LogLevelName(current_.log_level)}});
}

void Server::ApplyReload(config::Reload kind, config::Config& next,
                         std::vector<std::string>& restart) {
  switch (kind) {
    case config::Reload::kRestart:
      return;
    case config::Reload::kLogLevel:
      obs::SetLogLevel(ToLogLevel(next.log_level));
      return;
    case config::Reload::kBatchWindow:
      ctx_.batch_window_ms.store(next.batch_window_ms);
      return;
    case config::Reload::kAuthLimits:
      ctx_.rate_limiter.Configure(RateLimits(next));
      return;
    case config::Reload::kCredentials:
      // Files are re-read even when their paths did not change: that is how they rotate.
      if (auto err = LoadCredentials(next); !err.empty()) {
        obs::Log(obs::Level::kError, "reload_credentials_failed",
                 "keeping the previous credentials", {{"reason", err}});
        next.users_file = current_.users_file;
        next.stream_user = current_.stream_user;
        next.stream_pass = current_.stream_pass;
      }
      return;
    case config::Reload::kTls:
      if (next.tls_enabled() != ctx_.config.tls_enabled()) {
        restart.emplace_back("TLS_CERT_PATH");  // turning TLS on or off changes the protocol
      } else if (next.tls_enabled()) {
        if (auto err = LoadTls(next); !err.empty()) {
          obs::Log(obs::Level::kError, "reload_tls_failed",
                   "keeping the previous certificate and key", {{"reason", err}});
        }
      }
      return;
    case config::Reload::kDrain:       // Drain reads current_, which the reload replaces
    case config::Reload::kConfigFile:  // reload_source_ has just re-read it
      return;
  }
}

std::size_t Server::ConnectionCount(Clock::time_point until) {
  std::vector<std::future<std::size_t>> answers;
  for (auto& w : workers_) {
    auto count = std::make_shared<std::promise<std::size_t>>();
    answers.push_back(count->get_future());
    net::Worker* worker = w.get();
    boost::asio::post(worker->io(),
                      [worker, count] { count->set_value(worker->connection_count()); });
  }
  std::size_t total = 0;
  for (auto& a : answers) {
    total += a.wait_until(until) == std::future_status::ready ? a.get() : 1;
  }
  return total;
}

bool Server::WorkerBarrier(Clock::time_point until) {
  std::vector<std::future<void>> answers;
  for (auto& w : workers_) {
    auto done = std::make_shared<std::promise<void>>();
    answers.push_back(done->get_future());
    boost::asio::post(w->io(), [done] { done->set_value(); });
  }
  bool all = true;
  for (auto& a : answers) all = a.wait_until(until) == std::future_status::ready && all;
  return all;
}

void Server::FinalSnapshot() {
  if (!snapshotter_) return;
  snapshotter_->Stop();  // no periodic round from now on (one in progress is finished)
  // The connections are closed, so nothing is accepted any more. A tick accepted on worker W
  // for another owner waits in W's outbox for W's end of turn, which is queued on W before the
  // barrier's operation; so once the barrier has run everywhere, every such post is queued at
  // its owner, ahead of the snapshot's slice requests posted after it.
  if (!WorkerBarrier(Clock::now() + std::chrono::seconds(5))) {
    obs::Log(obs::Level::kWarn, "snapshot_barrier_timeout",
             "a worker did not answer before the final snapshot; writing it anyway");
  }
  snapshotter_->WriteRound("drain", true);
}

void Server::Drain(const sigset_t& signals) {
  const auto start = Clock::now();
  const auto period = current_.drain_period;
  auto deadline = start + current_.drain_deadline;
  ctx_.draining.store(true);
  listener_->Stop();
  if (ws_listener_) ws_listener_->Stop();
  for (auto& w : workers_) {
    net::Worker* worker = w.get();
    boost::asio::post(worker->io(), [worker, period] { worker->BeginDrain(period); });
  }
  obs::Log(obs::Level::kInfo, "server_drain", "draining: not accepting, telling clients",
           {{"drain_period_ms", period.count()},
            {"drain_deadline_ms", current_.drain_deadline.count()}});
  bool hurried = false;
  while (Clock::now() < deadline) {
    if (ConnectionCount(deadline) == 0) break;
    const timespec tick{0, 20'000'000};
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if ((sig == SIGTERM || sig == SIGINT) && !hurried) {
      // A second stop signal: tell everyone now and give output one more second.
      hurried = true;
      obs::Log(obs::Level::kInfo, "server_drain_hurry", "second signal: draining everyone now");
      for (auto& w : workers_) {
        net::Worker* worker = w.get();
        boost::asio::post(worker->io(), [worker] { worker->CloseAll(); });
      }
      deadline = std::min(deadline, Clock::now() + std::chrono::seconds(1));
    }
  }
  const auto left = ConnectionCount(Clock::now() + std::chrono::milliseconds(100));
  obs::Log(left == 0 ? obs::Level::kInfo : obs::Level::kWarn, "server_drained",
           left == 0 ? "every connection closed" : "drain deadline reached; closing the rest",
           {{"connections_left", left},
            {"drain_ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()}});
}

sigset_t BlockControlSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int Server::Run() {
  const auto& c = ctx_.config;
  // Blocked already by main() before any thread started (BlockControlSignals); blocking again
  // here covers a caller that did not, for the threads started from now on.
  const sigset_t signals = BlockControlSignals();
  for (auto& w : workers_) w->Start();
  if (admin_) admin_->Start();
  if (!c.data_dir.empty() && !c.clustered()) {
    std::vector<net::Worker*> workers;
    for (auto& w : workers_) workers.push_back(w.get());
    snapshotter_ =
        std::make_unique<Snapshotter>(c.data_dir, c.snapshot_interval, std::move(workers),
                                      snapshot_generation_, ctx_.stream_epoch, snapshot_stats_);
    snapshotter_->Start();
  }
  listener_->Start();
  if (ws_listener_) ws_listener_->Start();
  readiness_.SetAccepting(true);
  // The metrics and WebSocket ports first: whoever waits for PORT_FILE finds all three.
  WritePortFile(c.metrics_port_file, metrics_port());
  if (ws_listener_) WritePortFile(c.ws_port_file, ws_listener_->port());
  WritePortFile(c.port_file, listener_->port());
  obs::Log(obs::Level::kInfo, "server_start", "listening",
           {{"listen", c.listen_host + ":" + std::to_string(listener_->port())},
            {"ws", ws_listener_ ? c.ws_host + ":" + std::to_string(ws_listener_->port()) + c.ws_path
                                : std::string("off")},
            {"metrics", admin_ ? c.metrics_host + ":" + std::to_string(metrics_port()) : "off"},
            {"workers", static_cast<unsigned>(workers_.size())},
            {"batch_window_ms", c.batch_window_ms},
            {"max_msg_size", c.max_msg_size},
            {"heartbeat_timeout_ms", c.heartbeat_timeout.count()},
            {"tls", c.tls_enabled()},
            {"mtls", !c.tls_client_ca_path.empty()},
            {"proxy_protocol", c.proxy_protocol == config::ProxyMode::kRequired},
            {"mode", c.clustered() ? "multi-instance" : "embedded"},
            {"data_dir", c.data_dir.empty() || c.clustered() ? "off" : c.data_dir},
            {"version", TICKWIRE_VERSION}});

  for (int ticks = 1; !stop_requested_.load(); ++ticks) {
    const timespec tick{0, 100'000'000};  // also notices Shutdown() within 100 ms
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (ticks % 10 == 0) obs::FlushSuppressedLogs();
    if (sig == SIGHUP) {
      obs::Log(obs::Level::kInfo, "server_reload", "SIGHUP received, reloading");
      Reload();
      continue;
    }
    if (sig > 0) {
      obs::Log(obs::Level::kInfo, "server_stop", "signal received, shutting down",
               {{"signal", sig}});
      break;
    }
  }

  // Not ready from now on; stop accepting, tell every client spread over DRAIN_PERIOD, let
  // queued output leave, then stop.
  readiness_.SetDraining(true);
  readiness_.SetAccepting(false);
  Drain(signals);
  FinalSnapshot();
  ctx_.hash_pool->Stop();
  if (nats_bus_) nats_bus_->Stop();
  if (admin_) admin_->Stop();
  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) w->Join();
  obs::FlushSuppressedLogs();
  const auto& k = ctx_.counters;
  obs::Log(obs::Level::kInfo, "server_exit", "stopped",
           {{"auth_failures", ctx_.rate_limiter.failures_total()},
            {"auth_rate_limited", ctx_.rate_limiter.throttled_total()},
            {"proxy_rejected", k.proxy_rejected.load()},
            {"proxy_untrusted", k.proxy_untrusted.load()},
            {"proxy_local", k.proxy_local.load()},
            {"tls_handshake_failed", k.tls_handshake_failed.load()},
            {"log_lines_dropped", obs::LogLinesDropped()}});
  return 0;
}

}  // namespace tickwire::server
