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
  std::unique_ptr<net::Listener> ws_listener_;  // WS_LISTEN_ADDR (null when off)
  std::atomic<bool> stop_requested_{false};
};

}  // namespace tickwire::server
