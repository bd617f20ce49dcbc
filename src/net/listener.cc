#include "net/listener.h"

#include <boost/asio/post.hpp>

#include "observability/log.h"

namespace tickwire::net {

Listener::Listener(Worker& home, std::vector<Worker*> workers)
    : home_(home), workers_(std::move(workers)), acceptor_(home.io()), retry_timer_(home.io()) {}

std::string Listener::Open(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return "LISTEN_ADDR: '" + host + "' is not an IP address";
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "LISTEN_ADDR: cannot listen on " + host + ":" + std::to_string(port) + ": " +
           ec.message();
  }
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void Listener::Start() {
  asio::post(home_.io(), [this] { Accept(); });
}

void Listener::Stop() {
  asio::post(home_.io(), [this] {
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  });
}

void Listener::Accept() {
  if (stopped_) return;
  Worker* target = workers_[next_];
  next_ = (next_ + 1) % workers_.size();
  acceptor_.async_accept(target->io(), [this, target](const boost::system::error_code& ec,
                                                      asio::ip::tcp::socket socket) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      obs::Log(obs::Level::kWarn, "accept_error", ec.message());
      retry_timer_.expires_after(std::chrono::milliseconds(50));
      retry_timer_.async_wait([this](const boost::system::error_code& tec) {
        if (!tec) Accept();
      });
      return;
    }
    if (const int refused = home_.admission().TryAdmit(); refused >= 0) {
      ++home_.metrics().connections_rejected[static_cast<std::size_t>(refused)];
      // Over MAX_CONNECTIONS or MAX_UNAUTH_CONNECTIONS: accepted and closed at once, so a flood
      // costs neither file descriptors nor memory. Logged at most once a second.
      boost::system::error_code ignored;
      socket.close(ignored);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_reject_log_ >= std::chrono::seconds(1)) {
        last_reject_log_ = now;
        obs::Log(
            obs::Level::kWarn, "conn_rejected", "connection limit reached; closing new connections",
            {{"open", home_.admission().open()},
             {"unauthenticated", home_.admission().unauthenticated()},
             {"rejected_full_total", home_.admission().rejected_full()},
             {"rejected_unauthenticated_total", home_.admission().rejected_unauthenticated()}});
      }
      Accept();
      return;
    }
    asio::post(target->io(),
               [target, s = std::move(socket)]() mutable { target->Adopt(std::move(s)); });
    Accept();
  });
}

}  // namespace tickwire::net
