#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "net/worker.h"

namespace tickwire::net {

// Accepts on one socket (on the first worker's loop) and hands each new connection to the next
// worker, round-robin, accepting straight into that worker's io_context.
class Listener {
 public:
  // `transport`: what the accepted connections speak (plain frames, or WebSocket); `setting`
  // names the address setting in error lines.
  Listener(Worker& home, std::vector<Worker*> workers, Transport transport = Transport::kTcp,
           std::string setting = "LISTEN_ADDR");

  // Binds and listens; returns an error line instead of throwing.
  std::string Open(const std::string& host, std::uint16_t port);
  std::uint16_t port() const { return port_; }
  // Starts accepting (posted onto the home worker).
  void Start();
  // Stops accepting (any thread; posted onto the home worker).
  void Stop();

 private:
  void Accept();

  Worker& home_;
  std::vector<Worker*> workers_;
  Transport transport_;
  std::string setting_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // back-off after accept errors such as EMFILE
  std::size_t next_ = 0;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_reject_log_{};
};

}  // namespace tickwire::net
