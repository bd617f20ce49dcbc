#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace tickwire::obs {

// A parsed request: path and decoded query parameters.
struct HttpRequest {
  std::string path;
  std::map<std::string, std::string> query;  // last value wins for repeated keys
  bool head = false;                         // HEAD: the response body is not sent
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Completes a request. Call exactly once, from any thread: the response is handed back to the
// server's own thread before it is written.
using HttpRespond = std::function<void(HttpResponse)>;
// Handles one request; may answer at once or later (after gathering from other threads).
using HttpHandler = std::function<void(const HttpRequest&, HttpRespond)>;

// A small HTTP/1.1 server for operations endpoints (/metrics, /healthz, /readyz, /connz) on its
// own thread and io_context, built on Boost.Beast. GET and HEAD only; keep-alive; request
// headers limited to 8 KiB, no request bodies; every connection has a 10 s deadline per
// request; at most 64 connections at a time (more are closed on accept).
class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers `handler` for the exact `path`. Before Start() only.
  void Handle(std::string path, HttpHandler handler);
  // Binds and listens; returns an error line instead of throwing. `setting` names the setting
  // in the error line.
  std::string Open(const std::string& host, std::uint16_t port, std::string_view setting);
  std::uint16_t port() const { return port_; }
  // Starts the thread (accepting). Stop() stops and joins it; the io_context lives until the
  // destructor, so responses posted after Stop() are discarded safely.
  void Start();
  void Stop();

  boost::asio::io_context& io() { return io_; }

  // Splits "/path?a=1&b=x%20y" into path and decoded parameters. Exposed for tests.
  static HttpRequest ParseTarget(std::string_view target);

 private:
  class Session;
  void Accept();
  void Dispatch(const std::shared_ptr<Session>& session, HttpRequest request);

  // Declared before io_: sessions still queued in io_ are destroyed with it and touch these.
  std::map<std::string, HttpHandler, std::less<>> handlers_;
  std::atomic<int> sessions_{0};
  std::uint16_t port_ = 0;
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;  // back-off after accept errors such as EMFILE
  std::thread thread_;
};

}  // namespace tickwire::obs
