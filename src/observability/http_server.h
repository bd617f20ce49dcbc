#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

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
  // More header fields (Location, Content-Security-Policy, ...), written as given.
  std::vector<std::pair<std::string, std::string>> headers = {};
  // Instead of `body`: bytes that outlive the response (kept alive until it is written) and are
  // sent without a copy per request.
  std::shared_ptr<const std::string> shared_body = nullptr;
};

// Completes a request. Call exactly once, from any thread: the response is handed back to the
// server's own thread before it is written.
using HttpRespond = std::function<void(HttpResponse)>;
// Handles one request; may answer at once or later (after gathering from other threads).
using HttpHandler = std::function<void(const HttpRequest&, HttpRespond)>;

// Bounds on the connections of an HttpServer. The defaults are the server's; tests shorten the
// timeouts.
struct HttpServerLimits {
  std::size_t max_sessions = 512;                   // connections open at a time
  std::size_t max_sessions_per_address = 32;        // from one client address
  std::chrono::milliseconds idle_timeout{30'000};   // to the first byte of a request
  std::chrono::milliseconds header_timeout{5'000};  // from its first byte to the end of its header
  std::chrono::milliseconds write_timeout{10'000};  // to write a response
};

// Connections the server closed on its own, by why. Any thread may read them.
struct HttpServerCounters {
  std::atomic<std::uint64_t> idle_timeout{0};    // no request within idle_timeout
  std::atomic<std::uint64_t> header_timeout{0};  // a request header not complete in time
  std::atomic<std::uint64_t> write_timeout{0};   // a response not taken in time
  std::atomic<std::uint64_t> evicted{0};         // made room for a new connection
  std::atomic<std::uint64_t> refused{0};         // closed on accept: no room, nothing to evict
};

// A small HTTP/1.1 server for operations endpoints (/metrics, /healthz, /readyz, /connz) on its
// own thread and io_context, built on Boost.Beast. GET and HEAD only; keep-alive; request
// headers limited to 8 KiB, no request bodies.
//
// Connections cannot starve the probes. Each one waiting for a request is bounded in time
// (idle_timeout to its first byte, header_timeout to the end of its header), and a new
// connection always finds room while some connection is only waiting: over the per-address cap
// the address's connection that has waited longest is closed for it, over the total cap the
// longest-waiting one of the address holding the most. A new connection is refused only when
// every connection it could displace is busy with a request (bounded by the handlers' own
// deadlines and write_timeout).
class HttpServer {
 public:
  explicit HttpServer(HttpServerLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers `handler` for the exact `path`. Before Start() only.
  void Handle(std::string path, HttpHandler handler);
  // Registers `handler` for every path that starts with `prefix` (e.g. "/chart/") and has no
  // exact handler; the longest matching prefix wins. Before Start() only.
  void HandlePrefix(std::string prefix, HttpHandler handler);
  // Binds and listens; returns an error line instead of throwing. `setting` names the setting
  // in the error line.
  std::string Open(const std::string& host, std::uint16_t port, std::string_view setting);
  std::uint16_t port() const { return port_; }
  // Starts the thread (accepting). Stop() stops and joins it; the io_context lives until the
  // destructor, so responses posted after Stop() are discarded safely.
  void Start();
  void Stop();

  boost::asio::io_context& io() { return io_; }
  const HttpServerCounters& counters() const { return counters_; }
  // Connections open now. On the server's thread only (handlers run there).
  std::size_t open_sessions();

  // Splits "/path?a=1&b=x%20y" into path and decoded parameters. Exposed for tests.
  static HttpRequest ParseTarget(std::string_view target);

 private:
  class Session;
  using Registry = std::list<std::weak_ptr<Session>>;
  void Accept();
  // Registers a new connection, first closing one that only waits if a cap is reached; false
  // when there is no room.
  bool MakeRoom(const boost::asio::ip::address& address);
  void Dispatch(const std::shared_ptr<Session>& session, HttpRequest request);

  const HttpServerLimits limits_;
  HttpServerCounters counters_;
  // Declared before io_: sessions still queued in io_ are destroyed with it and touch these.
  std::map<std::string, HttpHandler, std::less<>> handlers_;
  std::map<std::string, HttpHandler, std::greater<>> prefix_handlers_;  // longest first on ties
  Registry sessions_;  // every open connection; the server's thread only
  std::uint16_t port_ = 0;
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;  // back-off after accept errors such as EMFILE
  std::thread thread_;
};

}  // namespace tickwire::obs
