#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/listener.h"
#include "net/worker.h"
#include "server/admin_endpoints.h"

namespace tickwire::server {

// The whole embedded server: workers, listener, signals. One per process.
class Server {
 public:
  explicit Server(config::Config config);
  ~Server();

  // Binds the listener; returns an error line on failure.
  std::string Open();
  std::uint16_t port() const { return listener_ ? listener_->port() : 0; }
  // Runs until SIGINT/SIGTERM (or Shutdown()), then drains and stops. Returns the exit code.
  // Blocks SIGINT/SIGTERM in the calling thread (and so in every thread it starts).
  int Run();
  // Asks a running server to stop (any thread).
  void Shutdown();
  // Readiness hooks (any thread): a graceful drain marks the server not ready; a cluster
  // backplane reports its connection state.
  void SetDraining(bool draining) { readiness_.SetDraining(draining); }
  Readiness& readiness() { return readiness_; }
  // Bound port of the operations endpoint (0 when METRICS_ADDR is empty).
  std::uint16_t metrics_port() const { return admin_ ? admin_->port() : 0; }

 private:
  net::ServerContext ctx_;
  Readiness readiness_;
  // Declared before the workers so that it is destroyed after them: answers the workers still
  // owe it are dropped while its io_context exists.
  std::unique_ptr<AdminEndpoints> admin_;
  std::vector<std::unique_ptr<net::Worker>> workers_;
  std::unique_ptr<net::Listener> listener_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace tickwire::server
