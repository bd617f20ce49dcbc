#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/nats_bus.h"
#include "config/config.h"
#include "net/listener.h"
#include "net/worker.h"
#include "server/admin_endpoints.h"
#include "server/snapshots.h"

namespace tickwire::server {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and returns that set. Call it first
// in main(), before any thread exists: threads inherit the mask, so the signals wait for
// Server::Run's sigtimedwait() instead of killing a process that is still starting.
sigset_t BlockControlSignals();

// The whole embedded server: workers, listener, signals. One per process.
class Server {
 public:
  // Produces the configuration again for a reload (SIGHUP): the same flags and environment,
  // and CONFIG_FILE re-read. Null: SIGHUP reloads files (users, TLS) with the current settings.
  using ConfigSource = std::function<config::ParseResult()>;

  explicit Server(config::Config config, ConfigSource reload_source = nullptr);
  ~Server();

  // Loads credentials and TLS material and binds the listener; returns an error line on
  // failure.
  std::string Open();
  std::uint16_t port() const { return listener_ ? listener_->port() : 0; }
  std::uint16_t ws_port() const { return ws_listener_ ? ws_listener_->port() : 0; }
  // Runs until SIGINT/SIGTERM (or Shutdown()), then drains and stops. Returns the exit code.
  // SIGHUP reloads (see Reload). Blocks SIGINT/SIGTERM/SIGHUP in the calling thread (and so in
  // every thread it starts).
  int Run();
  // Asks a running server to stop (any thread).
  void Shutdown();
  // Readiness hooks (any thread): a graceful drain marks the server not ready; a cluster
  // backplane reports its connection state.
  void SetDraining(bool draining) { readiness_.SetDraining(draining); }
  Readiness& readiness() { return readiness_; }
  // Bound port of the operations endpoint (0 when METRICS_ADDR is empty).
  std::uint16_t metrics_port() const { return admin_ ? admin_->port() : 0; }
  // True from SIGTERM on: the server is not ready for new clients (for /readyz).
  bool draining() const { return ctx_.draining.load(); }
  // After Open(): the stream epoch of the history restored from DATA_DIR (nullopt: nothing
  // restored, or the files carry none). A restored history continues its stream epoch.
  std::optional<std::uint64_t> restored_stream_epoch() const { return restored_stream_epoch_; }
  // Whether that history was written on drain (true) or by a periodic round before a crash.
  bool restored_clean() const { return restored_clean_; }

 private:
  // Applies what can change at runtime: every kind of config::kReloadKinds (the settings
  // table in config says which settings are of which kind). A file that fails to load keeps
  // the old one. Changed settings that need a restart are named in a warning.
  void Reload();
  // Applies one kind of reloadable setting from `next`; may put back what failed to load and
  // add to the settings that need a restart.
  void ApplyReload(config::Reload kind, config::Config& next, std::vector<std::string>& restart);
  // Builds the credentials from `c` and swaps them in; returns an error line on failure.
  std::string LoadCredentials(const config::Config& c);
  // Builds the TLS context from `c` and swaps it in; returns an error line on failure.
  std::string LoadTls(const config::Config& c);
  // Graceful drain (SIGTERM): not ready, stop accepting, SERVER_DRAINING spread over
  // DRAIN_PERIOD, wait for connections to finish until DRAIN_DEADLINE.
  void Drain(const sigset_t& signals);
  // Connections open on all workers; waits for their answers until `until` at the latest
  // (a worker that does not answer in time counts as having one).
  std::size_t ConnectionCount(std::chrono::steady_clock::time_point until);
  // Runs an empty operation on every worker and waits for all (until `until` at the latest):
  // what each had queued before, its end-of-turn posts to the others included, has run.
  bool WorkerBarrier(std::chrono::steady_clock::time_point until);
  // DATA_DIR: the final snapshot on drain, once no connection can publish and every tick
  // accepted has reached its owner shard.
  void FinalSnapshot();

  net::ServerContext ctx_;
  Readiness readiness_;
  // Declared before the workers so that it is destroyed after them: answers the workers still
  // owe it are dropped while its io_context exists.
  std::unique_ptr<AdminEndpoints> admin_;
  config::Config current_;  // the settings last applied (main thread only)
  ConfigSource reload_source_;
  std::vector<std::unique_ptr<net::Worker>> workers_;
  // Multi-instance mode only; stopped before the workers it posts to.
  std::unique_ptr<cluster::NatsBus> nats_bus_;
  std::unique_ptr<net::Listener> listener_;
  // DATA_DIR (embedded mode only): restored in Open(), written by the snapshotter while running
  // and once more on drain. Stopped before the workers it reads.
  SnapshotStats snapshot_stats_;
  std::optional<std::uint64_t> restored_stream_epoch_;
  bool restored_clean_ = false;
  std::uint64_t snapshot_generation_ = 1;
  std::unique_ptr<Snapshotter> snapshotter_;
  std::unique_ptr<net::Listener> ws_listener_;  // WS_LISTEN_ADDR (null when off)
  std::atomic<bool> stop_requested_{false};
};

}  // namespace tickwire::server
