#include "observability/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <optional>

#include "observability/log.h"

namespace tickwire::obs {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kHeaderLimit = 8 * 1024;
using Clock = std::chrono::steady_clock;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding for query strings ('+' is a space); malformed escapes are kept as written.
std::string Decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

// One HTTP connection. Lives on the server's thread; handlers answer through HttpRespond,
// which posts back here. While it waits for a request it may be evicted to make room.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer& server, tcp::socket socket, asio::ip::address address)
      : server_(server), stream_(std::move(socket)), address_(std::move(address)) {}

  // Starts reading; `entry` is its place in the server's registry.
  void Start(Registry::iterator entry) {
    entry_ = entry;
    Read();
  }

  const asio::ip::address& address() const { return address_; }
  // Waiting for (the rest of) a request, not busy with one: may be evicted.
  bool waiting() const { return waiting_; }
  Clock::time_point waiting_since() const { return waiting_since_; }

  void Evict() {
    server_.counters_.evicted.fetch_add(1, std::memory_order_relaxed);
    Dropped("evicted");
    Close();
  }

  // Writes `response` (on the server's thread).
  void Write(HttpResponse response) {
    if (closed_) return;
    if (response.shared_body) {
      // The bytes stay where they are (a static file held for the process's life): every
      // connection sending them refers to the one copy.
      auto shared = std::move(response.shared_body);
      auto res = std::make_shared<http::response<http::span_body<const char>>>(
          static_cast<http::status>(response.status), version_);
      res->body() = http::span_body<const char>::value_type(shared->data(), shared->size());
      Send(std::move(res), response, std::move(shared));
      return;
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version_);
    res->body() = std::move(response.body);
    Send(std::move(res), response, nullptr);
  }

  HttpRespond Responder() {
    return [self = shared_from_this()](HttpResponse r) {
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    };
  }

 private:
  // Sets the common header fields and writes `res`; `keep` holds what its body refers to.
  template <typename Body>
  void Send(std::shared_ptr<http::response<Body>> res, const HttpResponse& response,
            std::shared_ptr<const std::string> keep) {
    res->set(http::field::server, "tickwire/" TICKWIRE_VERSION);
    res->set(http::field::content_type, response.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [field, value] : response.headers) res->set(field, value);
    res->keep_alive(keep_alive_);
    res->prepare_payload();  // Content-Length of the body, also for HEAD
    stream_.expires_after(server_.limits_.write_timeout);
    auto done = [self = shared_from_this(), res, keep](const beast::error_code& ec, std::size_t) {
      if (ec == beast::error::timeout) {
        self->server_.counters_.write_timeout.fetch_add(1, std::memory_order_relaxed);
      }
      if (ec || !self->keep_alive_) {
        self->Close();
        return;
      }
      self->Read();
    };
    if (head_) {
      // The header only: the serializer stops after it.
      auto sr = std::make_shared<http::response_serializer<Body>>(*res);
      http::async_write_header(
          stream_, *sr, [sr, done = std::move(done)](const beast::error_code& ec, std::size_t n) {
            done(ec, n);
          });
    } else {
      http::async_write(stream_, *res, std::move(done));
    }
  }

  // Waits for the first byte of the next request (it may be here already: pipelining).
  void Read() {
    if (closed_) return;
    waiting_ = true;
    waiting_since_ = Clock::now();
    if (buffer_.size() > 0) {
      ReadHeader();
      return;
    }
    stream_.expires_after(server_.limits_.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kHeaderLimit),
        [self = shared_from_this()](const beast::error_code& ec, std::size_t n) {
          if (ec) {
            if (ec == beast::error::timeout) {
              self->server_.counters_.idle_timeout.fetch_add(1, std::memory_order_relaxed);
            }
            self->Close();
            return;
          }
          self->buffer_.commit(n);
          self->ReadHeader();
        });
  }

  // Bytes of a request have arrived: the whole header must follow within header_timeout.
  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(0);
    stream_.expires_after(server_.limits_.header_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(const beast::error_code& ec) {
    if (ec) {
      if (ec == beast::error::timeout) {
        server_.counters_.header_timeout.fetch_add(1, std::memory_order_relaxed);
        Dropped("header_timeout");
      }
      Close();
      return;
    }
    waiting_ = false;
    const auto& req = parser_->get();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head_) {
      keep_alive_ = false;
      Write({405, "text/plain; charset=utf-8", "only GET and HEAD are served\n"});
      return;
    }
    HttpRequest request = ParseTarget(req.target());
    request.head = head_;
    server_.Dispatch(shared_from_this(), std::move(request));
  }

  void Dropped(std::string_view why) const {
    LogNoisy(Noisy::kHttp, Level::kInfo, "http_conn_dropped",
             "operations endpoint connection closed by the server",
             {{"remote", address_.to_string()}, {"reason", why}});
  }

  // Ends the connection and leaves the registry. Idempotent.
  void Close() {
    if (closed_) return;
    closed_ = true;
    waiting_ = false;
    server_.sessions_.erase(entry_);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  HttpServer& server_;
  beast::tcp_stream stream_;
  const asio::ip::address address_;
  Registry::iterator entry_;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::optional<http::request_parser<http::empty_body>> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool waiting_ = false;
  bool closed_ = false;
  Clock::time_point waiting_since_{};
};

HttpServer::HttpServer(HttpServerLimits limits)
    : limits_(limits), acceptor_(io_), retry_timer_(io_) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(std::string path, HttpHandler handler) {
  handlers_[std::move(path)] = std::move(handler);
}

void HttpServer::HandlePrefix(std::string prefix, HttpHandler handler) {
  prefix_handlers_[std::move(prefix)] = std::move(handler);
}

std::string HttpServer::Open(const std::string& host, std::uint16_t port,
                             std::string_view setting) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return std::string(setting) + ": '" + host + "' is not an IP address";
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return std::string(setting) + ": cannot listen on " + host + ":" + std::to_string(port) + ": " +
           ec.message();
  }
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void HttpServer::Start() {
  Accept();
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        Log(Level::kError, "http_exception", e.what());
      }
    }
  });
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    io_.stop();
  });
  thread_.join();
}

std::size_t HttpServer::open_sessions() {
  // A session destroyed without closing (its last owner was an unanswered responder) leaves an
  // expired entry: forget those first.
  std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
  return sessions_.size();
}

bool HttpServer::MakeRoom(const asio::ip::address& address) {
  const std::size_t open = open_sessions();
  std::map<asio::ip::address, std::size_t> per_address;
  for (const auto& w : sessions_) {
    if (auto s = w.lock()) ++per_address[s->address()];
  }
  const bool address_full = per_address[address] >= limits_.max_sessions_per_address;
  if (!address_full && open < limits_.max_sessions) return true;
  // Over the per-address cap, one of that address's connections makes room; over the total
  // cap, one of the address holding the most (an attacker's rather than a probe's), else any.
  asio::ip::address from = address;
  if (!address_full) {
    from =
        std::max_element(per_address.begin(), per_address.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        })->first;
  }
  auto oldest_waiting = [&](const asio::ip::address* only) {
    std::shared_ptr<Session> best;
    for (const auto& w : sessions_) {
      auto s = w.lock();
      if (!s || !s->waiting() || (only != nullptr && s->address() != *only)) continue;
      if (!best || s->waiting_since() < best->waiting_since()) best = std::move(s);
    }
    return best;
  };
  auto victim = oldest_waiting(&from);
  if (!victim && !address_full) victim = oldest_waiting(nullptr);
  if (!victim) return false;
  victim->Evict();
  return true;
}

void HttpServer::Accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      Log(Level::kWarn, "http_accept_error", ec.message());
      retry_timer_.expires_after(std::chrono::milliseconds(50));
      retry_timer_.async_wait([this](const boost::system::error_code& tec) {
        if (!tec) Accept();
      });
      return;
    }
    boost::system::error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else if (!MakeRoom(peer.address())) {
      counters_.refused.fetch_add(1, std::memory_order_relaxed);
      LogNoisy(Noisy::kHttp, Level::kInfo, "http_conn_dropped",
               "operations endpoint connection closed by the server",
               {{"remote", peer.address().to_string()}, {"reason", "refused"}});
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      auto session = std::make_shared<Session>(*this, std::move(socket), peer.address());
      sessions_.push_back(session);
      session->Start(std::prev(sessions_.end()));
    }
    Accept();
  });
}

void HttpServer::Dispatch(const std::shared_ptr<Session>& session, HttpRequest request) {
  if (auto it = handlers_.find(request.path); it != handlers_.end()) {
    it->second(request, session->Responder());
    return;
  }
  // In descending order a prefix comes after every longer path that starts with it.
  for (const auto& [prefix, handler] : prefix_handlers_) {
    if (request.path.starts_with(prefix)) {
      handler(request, session->Responder());
      return;
    }
  }
  std::string body = "not found; endpoints:";
  for (const auto& [path, h] : handlers_) body += " " + path;
  for (const auto& [prefix, h] : prefix_handlers_) body += " " + prefix;
  session->Write({404, "text/plain; charset=utf-8", body + "\n"});
}

HttpRequest HttpServer::ParseTarget(std::string_view target) {
  HttpRequest r;
  const auto q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return r;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    r.query[Decode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? std::string{} : Decode(pair.substr(eq + 1));
  }
  return r;
}

}  // namespace tickwire::obs
