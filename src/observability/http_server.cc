#include "observability/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <optional>

#include "observability/log.h"

namespace tickwire::obs {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int kMaxSessions = 64;
constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr auto kRequestDeadline = std::chrono::seconds(10);

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
// which posts back here.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {}
  ~Session() { server_.sessions_.fetch_sub(1, std::memory_order_relaxed); }

  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(0);
    stream_.expires_after(kRequestDeadline);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                       self->OnRead(ec);
                     });
  }

  // Writes `response` (on the server's thread).
  void Write(HttpResponse response) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version_);
    res->set(http::field::server, "tickwire/" TICKWIRE_VERSION);
    res->set(http::field::content_type, response.content_type);
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(keep_alive_);
    if (head_) {
      res->content_length(response.body.size());
    } else {
      res->body() = std::move(response.body);
      res->prepare_payload();
    }
    stream_.expires_after(kRequestDeadline);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](const beast::error_code& ec, std::size_t) {
                        if (ec || !self->keep_alive_) {
                          self->Close();
                          return;
                        }
                        self->Read();
                      });
  }

  HttpRespond Responder() {
    return [self = shared_from_this()](HttpResponse r) {
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    };
  }

 private:
  void OnRead(const beast::error_code& ec) {
    if (ec) {
      Close();
      return;
    }
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

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  HttpServer& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::optional<http::request_parser<http::empty_body>> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
};

HttpServer::HttpServer() : acceptor_(io_), retry_timer_(io_) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(std::string path, HttpHandler handler) {
  handlers_[std::move(path)] = std::move(handler);
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
    if (sessions_.load(std::memory_order_relaxed) >= kMaxSessions) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      sessions_.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(*this, std::move(socket))->Read();
    }
    Accept();
  });
}

void HttpServer::Dispatch(const std::shared_ptr<Session>& session, HttpRequest request) {
  auto it = handlers_.find(request.path);
  if (it == handlers_.end()) {
    std::string body = "not found; endpoints:";
    for (const auto& [path, h] : handlers_) body += " " + path;
    session->Write({404, "text/plain; charset=utf-8", body + "\n"});
    return;
  }
  it->second(request, session->Responder());
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
