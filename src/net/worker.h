#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "auth/authenticator.h"
#include "auth/hash_pool.h"
#include "auth/rate_limiter.h"
#include "config/config.h"
#include "delivery/catch_up.h"
#include "delivery/fanout_table.h"
#include "engine/shard.h"
#include "exchange/bus.h"
#include "exchange/congestion.h"
#include "exchange/exchange.h"
#include "exchange/poster.h"
#include "net/admission.h"
#include "net/connz.h"
#include "net/metrics.h"
#include "net/tls_context.h"
#include "net/user_ids.h"
#include "net/ws_settings.h"
#include "session/session.h"

namespace tickwire::net {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Connection;
class Worker;
using ConnectionPtr = std::shared_ptr<Connection>;
using HistorySliceRequest = exchange::HistorySliceRequest;

// Cross-worker operations on Asio: each is posted to the destination worker's io_context and run
// there by its Exchange (per source and destination, in the order posted).
class AsioPoster final : public exchange::Poster {
 public:
  explicit AsioPoster(const std::vector<Worker*>& workers) : workers_(workers) {}
  unsigned workers() const override { return static_cast<unsigned>(workers_.size()); }
  void Post(unsigned to, exchange::Op op) override;

 private:
  const std::vector<Worker*>& workers_;
};

// Security events, counted on any thread. Exposed as proxy_header_rejections_total,
// proxy_local_total and tls_handshake_failures_total (server/admin_endpoints.cc) and summed
// on the server_exit log line.
struct SecurityCounters {
  std::atomic<std::uint64_t> proxy_rejected{0};   // PROXY header missing/malformed/late
  std::atomic<std::uint64_t> proxy_untrusted{0};  // connection from outside PROXY_TRUSTED_CIDRS
  std::atomic<std::uint64_t> proxy_local{0};      // LOCAL (health check) headers
  std::atomic<std::uint64_t> tls_handshake_failed{0};
};

// What every worker shares. `config` is read-only after start; the members that a reload
// (SIGHUP) changes are internally synchronized and marked so.
struct ServerContext {
  config::Config config;
  // What a WebSocket upgrade request must look like (from config; read-only after start).
  ws::UpgradeSettings ws_upgrade;
  std::vector<Worker*> workers;  // index = worker index = shard index
  Admission admission;           // connection budget
  // Reloadable: credentials (STREAM_USER/PASS + USERS_FILE), TLS material, batch window.
  mutable auth::CredentialStore credentials;
  mutable TlsContextStore tls;  // holds null when TLS is off
  std::atomic<std::uint32_t> batch_window_ms{5};
  mutable auth::AuthRateLimiter rate_limiter;
  // Runs PBKDF2 password checks off the event loops (set before the workers start; stopped
  // before they are destroyed).
  std::unique_ptr<auth::HashPool> hash_pool;
  mutable SecurityCounters counters;
  mutable UserIds user_ids;           // authenticated user names -> small ids (topic cap per user)
  std::atomic<bool> draining{false};  // SIGTERM received: not ready, no new connections
  // Where accepted ticks go: this process's shards (the default), or in the multi-instance mode
  // (NATS_URL set) a cluster::NatsBus set before the workers start, which outlives them.
  exchange::LocalBus local_bus;
  exchange::Bus* bus = &local_bus;
  // Ticks posted to each worker and not yet applied (ingest back-pressure; any thread).
  exchange::IngestBacklog ingest_backlog;
  // Cross-worker operations (posted to the workers above).
  AsioPoster poster{workers};
  // The stream epoch every AUTH_OK carries (PROTOCOL S7a): new at each start, unless the history
  // was restored from DATA_DIR; 0 in multi-instance mode. Set before the workers start.
  std::uint64_t stream_epoch = 0;

  std::uint32_t batch_window() const { return batch_window_ms.load(std::memory_order_relaxed); }
};

// One event loop on one thread. It owns its connections, the topics of its shard, and a
// fan-out table of its connections' subscriptions. Other threads reach it only by posting to
// its io_context; everything below runs on the owning thread unless marked otherwise.
class Worker final : private exchange::Host {
 public:
  Worker(unsigned index, ServerContext& ctx);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread (any thread). Stop() makes run() return; Join() waits for the thread.
  void Start();
  void Stop();
  void Join();

  asio::io_context& io() { return io_; }
  unsigned index() const { return index_; }
  const ServerContext& context() const { return ctx_; }
  Admission& admission() { return ctx_.admission; }
  std::uint8_t* read_scratch() { return read_scratch_.data(); }
  std::size_t read_scratch_size() const { return read_scratch_.size(); }

  // Takes ownership of a freshly accepted socket and its place in the connection budget (posted
  // here by the listener).
  void Adopt(asio::ip::tcp::socket socket, TicketPtr ticket, Transport transport = Transport::kTcp);
  // Closes the connection of `ticket` if it has still not authenticated: Admission chose it to
  // make room (any thread; posted to the ticket's worker).
  void EvictWaiting(const TicketPtr& ticket);
  // Drops a connection from this worker's registry (after it has closed).
  void Forget(std::uint64_t connection_id);
  // Closes every connection with ERROR{SERVER_DRAINING} (posted here at shutdown).
  void CloseAll();
  // Drain: sends ERROR{SERVER_DRAINING} to this worker's connections in random order, spread
  // evenly over `period` (posted here on SIGTERM); connections adopted after it are refused.
  void BeginDrain(Clock::duration period);
  std::size_t connection_count() const { return connections_.size(); }

  // Hands validated ticks of one PUBLISH by `user` to the bus (Exchange::Publish).
  void Ingest(const ConnectionPtr& from, engine::UserId user, std::string_view user_name,
              std::uint32_t request_id, bool ack, std::vector<engine::IngestTick> ticks);
  // This worker's interest in (topic or wildcard, mode) changed; tells the owner shard(s).
  void PublishInterest(const std::vector<delivery::FanoutTable::InterestChange>& changes) {
    exchange_.PublishInterest(changes);
  }
  // Asks `owner`'s shard for the next slice of a replay; the answer reaches the connection's
  // OnHistorySlice on this worker. The first request of a replay follows PublishInterest for
  // its subscription (the owner sees both in order).
  void RequestHistorySlice(unsigned owner, HistorySliceRequest request) {
    exchange_.RequestHistorySlice(owner, std::move(request));
  }
  exchange::Exchange& exchange() { return exchange_; }
  // An exception escaped a handler on worker `worker`'s loop: writes one `worker_fault` error
  // line (to stdout and stderr, at once) and aborts the process (docs/RELIABILITY.md).
  [[noreturn]] static void Fatal(unsigned worker, std::string_view what) noexcept;
  const engine::Shard& shard() const { return exchange_.shard(); }

  delivery::FanoutTable& fanout() { return fanout_; }
  // This worker's counters: written here only, read by the metrics endpoint from its thread.
  WorkerMetrics& metrics() { return metrics_; }
  const WorkerMetrics& metrics() const { return metrics_; }
  // The connection listing, in two steps: every connection's sort key, then the full
  // description of the connections of one page (those still open).
  void CollectConnectionKeys(Clock::time_point now, ConnzQuery::Sort sort,
                             std::vector<ConnectionKey>& out) const;
  void CollectConnections(const std::vector<std::uint64_t>& ids, Clock::time_point now,
                          const ConnzQuery& query, std::vector<ConnectionInfo>& out) const;

  // Ingest back-pressure (exchange::IngestBacklog, Bus::Congested): producers stop being read
  // while it holds (any thread may read; see Connection::OnReadable).
  bool IngestCongested() const { return exchange_.IngestCongested(); }
  // A producer's reads wait for the congestion to clear (owning thread).
  void PauseUntilUncongested(const ConnectionPtr& c);

  // The connection's DATA_BATCH opened a frame: flush it when the window expires.
  void ScheduleBatchFlush(const ConnectionPtr& c, Clock::time_point deadline);
  // BATCH_WINDOW_MS=0: flush at the end of this loop turn.
  void MarkDirty(const ConnectionPtr& c);

 private:
  void Run();
  // exchange::Host: fan-out of an owner's records to this worker's subscribers; the end of a
  // loop turn (BATCH_WINDOW_MS=0: flush the connections this turn touched).
  void DeliverRecords(const engine::RecordBlockPtr& block) override;
  void FlushTurn() override;
  // exchange::Host: a completeness watermark for this worker's subscribers of `interval`.
  void DeliverWatermark(engine::Mode interval, std::int64_t start_ms) override;
  void ArmBarClock();
  void ArmWindowTimer();
  void OnWindowTimer();
  void ArmSweep();
  void Sweep();
  void DrainDue();

  unsigned index_;
  ServerContext& ctx_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::vector<std::uint8_t> read_scratch_;  // shared by this worker's connections for reads

  std::unordered_map<std::uint64_t, ConnectionPtr> connections_;
  std::uint64_t next_connection_ = 1;
  std::mt19937_64 rng_;

  delivery::FanoutTable fanout_;
  exchange::Exchange exchange_;  // the shard and everything that crosses workers
  asio::steady_timer bar_timer_;
  exchange::OwnerThread owner_;  // this worker's thread (checked builds)

  std::vector<std::weak_ptr<Connection>> dirty_;
  // Batch windows: deadlines are (nearly) monotone in insertion order, so a FIFO and one timer
  // replace a timer per connection.
  std::deque<std::pair<Clock::time_point, std::weak_ptr<Connection>>> windows_;
  asio::steady_timer window_timer_;
  bool window_timer_armed_ = false;

  asio::steady_timer sweep_timer_;
  Clock::duration sweep_interval_;

  std::vector<std::weak_ptr<Connection>> paused_;
  asio::steady_timer resume_timer_;
  bool resume_timer_armed_ = false;
  WorkerMetrics metrics_;

  // Drain: connections still to be told, in order, and when each is due.
  bool draining_ = false;
  std::vector<std::weak_ptr<Connection>> drain_order_;
  std::size_t drain_next_ = 0;
  Clock::time_point drain_start_{};
  Clock::duration drain_period_{};
  asio::steady_timer drain_timer_;
};

}  // namespace tickwire::net
