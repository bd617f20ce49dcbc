#pragma once

// The load generators for nats-server and redis-server: the same scenarios as `tickwire bench`
// (fanout, ingest, latency, conns), the same pacing, checks and report (apps/cli/bench_*.h), so
// that scripts/bench-compare.sh runs all three systems the same way and joins their JSON.
//
// Messages are --payload bytes (64 by default) whose first 16 bytes are the publisher's sequence
// number (1, 2, 3, ...) and its CLOCK_REALTIME send time, both little-endian; every subscriber
// checks that it receives every message once and in order, and records the latency.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "idle_connections.h"

namespace tickwire::peers {

// Called for every message a subscriber receives, on a thread of the system's client: messages
// of one subscriber are never delivered concurrently.
using MessageHandler = std::function<void(int subscriber, std::span<const char> payload)>;
// Called for an asynchronous client error (slow consumer, lost connection, ...).
using ErrorHandler = std::function<void(int subscriber, const std::string& what)>;

struct PeerAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string user;
  std::string pass;
};

// A publish/subscribe system under test, as its own client library speaks to it.
class PubSubSystem {
 public:
  virtual ~PubSubSystem() = default;
  // Connects `n` subscribers of `subject`, each on its own connection, on `io_threads` threads
  // (0 = the client's default). Returns once the server has confirmed every subscription; an
  // error line on failure.
  virtual std::string OpenSubscribers(int n, const std::string& subject, unsigned io_threads,
                                      MessageHandler on_message, ErrorHandler on_error) = 0;
  // Connects the publisher. Returns an error line.
  virtual std::string OpenPublisher() = 0;
  // Publishes `count` messages of `payload_size` bytes each, laid end to end in `payloads`.
  // Returns an error line.
  virtual std::string Publish(const std::string& subject, std::span<const char> payloads,
                              std::size_t payload_size, std::size_t count) = 0;
  // Closes every connection; no handler runs after it returns.
  virtual void Close() = 0;
  // How an idle connection speaks to this system (conns scenario).
  virtual std::unique_ptr<cli::IdleProtocol> MakeIdleProtocol() const = 0;
};

// An idle connection of a line-based text protocol (NATS, RESP): lines are told apart by their
// first few bytes only.
class LineIdleProtocol : public cli::IdleProtocol {
 public:
  struct Spec {
    std::string hello;
    std::string keepalive;
    std::vector<std::string> ready_lines;  // each seen line counts as one reply
    int replies_to_ready = 1;
    std::string error_prefix;  // a line starting with it is an error
    std::string ping_line;     // a server ping ...
    std::string answer;        // ... answered with this
  };
  explicit LineIdleProtocol(Spec spec) : spec_(std::move(spec)) {}
  std::string Hello(std::size_t) const override { return spec_.hello; }
  int RepliesToReady() const override { return spec_.replies_to_ready; }
  std::string Keepalive() const override { return spec_.keepalive; }
  std::string Answer() const override { return spec_.answer; }
  cli::IdleReplies Feed(cli::IdleParseState& state, std::string_view data) const override;

 private:
  Spec spec_;
};

// main() of a peer load generator: `tool` is its name, `system` ("nats", "redis") the report's
// system, `default_port` the server's usual port, `make` builds the system for an address.
int PeerMain(int argc, char** argv, const std::string& tool, const std::string& system,
             std::uint16_t default_port,
             const std::function<std::unique_ptr<PubSubSystem>(const PeerAddress&)>& make);

}  // namespace tickwire::peers
