#include "server/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <future>
#include <thread>

#include "observability/log.h"

namespace tickwire::server {

Server::Server(config::Config config) {
  ctx_.config = std::move(config);
  ctx_.admission.Configure(ctx_.config.max_connections, ctx_.config.max_unauth_connections);
  ctx_.authenticator =
      std::make_unique<auth::Authenticator>(ctx_.config.stream_user, ctx_.config.stream_pass);
  const unsigned n = ctx_.config.EffectiveWorkers();
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<net::Worker>(i, ctx_));
    ctx_.workers.push_back(workers_.back().get());
  }
}

Server::~Server() {
  if (admin_) admin_->Stop();
  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) w->Join();
}

std::string Server::Open() {
  listener_ = std::make_unique<net::Listener>(*workers_[0], ctx_.workers);
  if (auto err = listener_->Open(ctx_.config.listen_host, ctx_.config.listen_port); !err.empty()) {
    return err;
  }
  if (ctx_.config.metrics_host.empty()) return {};
  admin_ = std::make_unique<AdminEndpoints>(ctx_, readiness_, *workers_[0]);
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

int Server::Run() {
  const auto& c = ctx_.config;
  // SIGINT and SIGTERM are blocked in this thread before any other thread starts, so every
  // thread inherits the mask and the signals stay pending until sigtimedwait() below takes
  // them: no asynchronous handler, and a SIGTERM right after startup is never lost.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  for (auto& w : workers_) w->Start();
  if (admin_) admin_->Start();
  listener_->Start();
  readiness_.SetAccepting(true);
  // The metrics port first: whoever waits for PORT_FILE finds both.
  WritePortFile(c.metrics_port_file, metrics_port());
  WritePortFile(c.port_file, listener_->port());
  obs::Log(obs::Level::kInfo, "server_start", "listening",
           {{"listen", c.listen_host + ":" + std::to_string(listener_->port())},
            {"metrics", admin_ ? c.metrics_host + ":" + std::to_string(metrics_port()) : "off"},
            {"workers", static_cast<unsigned>(workers_.size())},
            {"batch_window_ms", c.batch_window_ms},
            {"max_msg_size", c.max_msg_size},
            {"heartbeat_timeout_ms", c.heartbeat_timeout.count()},
            {"version", TICKWIRE_VERSION}});

  for (int ticks = 1; !stop_requested_.load(); ++ticks) {
    const timespec tick{0, 100'000'000};  // also notices Shutdown() within 100 ms
    const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (ticks % 10 == 0) obs::FlushSuppressedLogs();
    if (sig > 0) {
      obs::Log(obs::Level::kInfo, "server_stop", "signal received, shutting down",
               {{"signal", sig}});
      break;
    }
  }

  // Stop accepting, tell every client, give queued output a moment to leave, then stop.
  readiness_.SetAccepting(false);
  listener_->Stop();
  for (auto& w : workers_) {
    net::Worker* worker = w.get();
    boost::asio::post(worker->io(), [worker] { worker->CloseAll(); });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& w : workers_) {
    while (std::chrono::steady_clock::now() < deadline) {
      auto count = std::make_shared<std::promise<std::size_t>>();
      auto fut = count->get_future();
      net::Worker* worker = w.get();
      boost::asio::post(worker->io(),
                        [worker, count] { count->set_value(worker->connection_count()); });
      if (fut.wait_until(deadline) != std::future_status::ready || fut.get() == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (admin_) admin_->Stop();
  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) w->Join();
  obs::FlushSuppressedLogs();
  obs::Log(obs::Level::kInfo, "server_exit", "stopped");
  return 0;
}

}  // namespace tickwire::server
