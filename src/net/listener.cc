#include "net/listener.h"

#include <boost/asio/post.hpp>

#include "auth/rate_limiter.h"
#include "observability/log.h"

namespace tickwire::net {
namespace {

// The client's source as the connection limits count it: its address, IPv6 cut to its /64.
std::string SourceKey(const asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return {};
  auto address = ep.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return auth::AuthRateLimiter::AddressKey(address.to_string());
}

}  // namespace

Listener::Listener(Worker& home, std::vector<Worker*> workers, Transport transport,
                   std::string setting)
    : home_(home),
      workers_(std::move(workers)),
      transport_(transport),
      setting_(std::move(setting)),
      acceptor_(home.io()),
      retry_timer_(home.io()) {}

std::string Listener::Open(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return setting_ + ": '" + host + "' is not an IP address";
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return setting_ + ": cannot listen on " + host + ":" + std::to_string(port) + ": " +
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
    // Behind a PROXY balancer the source is the balancer; the real one is counted once the
    // connection has read its header.
    const bool proxied = home_.context().config.proxy_protocol == config::ProxyMode::kRequired;
    const auto decision =
        home_.admission().Admit(proxied ? std::string() : SourceKey(socket), target->index());
    if (decision.evicted) home_.EvictWaiting(decision.evicted);
    if (!decision.ticket) {
      ++home_.metrics().connections_rejected[static_cast<std::size_t>(decision.why)];
      // Over MAX_CONNECTIONS: accepted and closed at once, so a flood costs neither file
      // descriptors nor memory. Logged at most once a second.
      boost::system::error_code ignored;
      socket.close(ignored);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_reject_log_ >= std::chrono::seconds(1)) {
        last_reject_log_ = now;
        auto& a = home_.admission();
        obs::Log(obs::Level::kWarn, "conn_rejected",
                 "connection limit reached; closing new connections",
                 {{"open", a.open()},
                  {"unauthenticated", a.unauthenticated()},
                  {"rejected_full_total", a.refused_full()}});
      }
      Accept();
      return;
    }
    asio::post(target->io(),
               [target, s = std::move(socket), t = decision.ticket, tr = transport_]() mutable {
                 target->Adopt(std::move(s), std::move(t), tr);
               });
    Accept();
  });
}

}  // namespace tickwire::net
