#pragma once

// Thousands of idle, authenticated connections held open by one io thread, for measuring what a
// connection costs a server (`tickwire bench conns` and the peers' conns scenario). What is sent
// and how replies are read is the server's protocol (IdleProtocol); the pool does the rest:
// nonblocking sockets, a bounded number of handshakes in flight, a keepalive to every
// connection each period, and counts of who is ready and who was closed.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_report.h"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tickwire::cli {

// Where a connection's reader stands in the current frame or line: the few bytes that classify
// it and how many bytes of it are still to skip. 16 bytes per connection.
struct IdleParseState {
  std::uint32_t skip = 0;          // bytes of the current frame still to pass over
  std::uint8_t held = 0;           // bytes in `head`
  std::array<char, 11> head = {};  // start of the current frame header or line
};

// What one read of a connection's input showed.
struct IdleReplies {
  int replies = 0;      // handshake replies completed (AUTH_OK, SUBSCRIBE_OK, PONG, ...)
  bool error = false;   // the server refused something or is closing the connection
  int answers_due = 0;  // server pings that want an answer (Answer())
};

// How a server is spoken to by an idle connection.
class IdleProtocol {
 public:
  virtual ~IdleProtocol() = default;
  // Sent once connected: authentication, perhaps one subscription. `index` numbers connections.
  virtual std::string Hello(std::size_t index) const = 0;
  // Replies to Hello() after which the connection is ready.
  virtual int RepliesToReady() const = 0;
  // Sent to every ready connection once a keepalive period.
  virtual std::string Keepalive() const = 0;
  // Sent once for each server ping that wants an answer.
  virtual std::string Answer() const { return {}; }
  // Reads `data`, the next bytes of a connection's input (split anywhere).
  virtual IdleReplies Feed(IdleParseState& state, std::string_view data) const = 0;
};

// tickwire (PROTOCOL.md): AUTH and, with a non-empty topic, one TICK SUBSCRIBE; HEARTBEAT as
// the keepalive.
class TickwireIdleProtocol : public IdleProtocol {
 public:
  TickwireIdleProtocol(std::string user, std::string pass, std::string topic)
      : user_(std::move(user)), pass_(std::move(pass)), topic_(std::move(topic)) {}
  std::string Hello(std::size_t index) const override;
  int RepliesToReady() const override { return topic_.empty() ? 1 : 2; }
  std::string Keepalive() const override;
  IdleReplies Feed(IdleParseState& state, std::string_view data) const override;

 private:
  std::string user_, pass_, topic_;
};

// Counters of the pool, readable from any thread while it runs.
struct IdleCounts {
  std::atomic<std::uint64_t> connected{0};
  std::atomic<std::uint64_t> ready{0};
  std::atomic<std::uint64_t> failed{0};  // closed, refused or broken (before or after ready)
  std::atomic<std::uint64_t> keepalives{0};
};

class IdleConnectionPool {
 public:
  // Keepalives go to every ready connection each `keepalive` period.
  IdleConnectionPool(const IdleProtocol& protocol, std::chrono::milliseconds keepalive);
  ~IdleConnectionPool();
  IdleConnectionPool(const IdleConnectionPool&) = delete;
  IdleConnectionPool& operator=(const IdleConnectionPool&) = delete;

  // Opens `n` connections to host:port, at most `concurrency` handshakes at once, on the pool's
  // own io thread. Returns at once; watch counts().
  void Start(const std::string& host, std::uint16_t port, std::size_t n, std::size_t concurrency);
  const IdleCounts& counts() const { return counts_; }
  // Connections ready and not closed since. Stops the io thread first; call once, at the end.
  std::uint64_t StopAndCountAlive();
  std::string first_error() const;

 private:
  struct Conn;
  void Launch();
  void OnConnected(Conn& c);
  void WaitRead(Conn& c);
  void OnReadable(Conn& c);
  void Fail(Conn& c, const std::string& why);
  bool Write(Conn& c, std::string_view bytes);
  void ArmKeepalive();

  const IdleProtocol& protocol_;
  const std::chrono::milliseconds keepalive_;
  const std::string keepalive_bytes_;
  const std::string answer_bytes_;
  boost::asio::io_context io_;
  boost::asio::steady_timer timer_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::size_t next_ = 0;          // next connection to open
  std::size_t in_handshake_ = 0;  // connecting or waiting for its replies
  std::size_t concurrency_ = 0;
  std::array<char, 65536> scratch_{};  // every read lands here (one io thread)
  IdleCounts counts_;
  std::string first_error_;  // io thread until stopped
  std::thread thread_;
  bool stopped_ = false;
};

// The conns scenario, for any IdleProtocol: opens `connections` to host:port, waits (at most
// `setup_timeout`) until all are ready, holds them for `hold` with a keepalive every `keepalive`,
// and reports the server's RSS (VmRSS of `server_pid`) before and after. Progress on stderr once
// a second. Sets `interrupted` when a stop signal cut it short.
struct ConnsOptions {
  std::size_t connections = 10000;
  std::size_t concurrency = 200;  // handshakes in flight
  std::chrono::milliseconds keepalive{15000};
  std::chrono::milliseconds hold{20000};
  std::chrono::milliseconds setup_timeout{60000};
};
// The flags that set ConnsOptions, plus --json and --server-pid.
struct ConnsFlags {
  std::size_t connections = 10000;
  std::size_t concurrency = 200;
  std::string keepalive = "15s";
  std::string hold = "20s";
  std::string setup_timeout = "60s";
  bool json = false;
  int server_pid = 0;
  // nullopt (with the message printed) when a duration does not parse.
  std::optional<ConnsOptions> Options() const;
};
void AddConnsFlags(CLI::App& cmd, ConnsFlags& flags);

BenchReport RunIdleConnections(const IdleProtocol& protocol, const std::string& host,
                               std::uint16_t port, const ConnsOptions& options,
                               std::optional<int> server_pid, bool& interrupted);

}  // namespace tickwire::cli
