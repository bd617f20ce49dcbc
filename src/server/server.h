#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/listener.h"
#include "net/worker.h"

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

 private:
  net::ServerContext ctx_;
  std::vector<std::unique_ptr<net::Worker>> workers_;
  std::unique_ptr<net::Listener> listener_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace tickwire::server
