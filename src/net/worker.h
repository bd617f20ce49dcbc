#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "auth/authenticator.h"
#include "auth/hash_pool.h"
#include "auth/rate_limiter.h"
#include "config/config.h"
#include "delivery/catch_up.h"
#include "delivery/fanout_table.h"
#include "engine/record_block.h"
#include "engine/shard.h"
#include "net/admission.h"
#include "net/backplane.h"
#include "net/connz.h"
#include "net/metrics.h"
#include "net/tls_context.h"
#include "net/user_ids.h"
#include "session/session.h"

namespace tickwire::net {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Connection;
class Worker;
using ConnectionPtr = std::shared_ptr<Connection>;

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
  // Multi-instance mode (NATS_URL set): accepted ticks go through it; null in the embedded mode.
  // Set before the workers start, outlives them.
  Backplane* backplane = nullptr;

  std::uint32_t batch_window() const { return batch_window_ms.load(std::memory_order_relaxed); }
};

// The outcome of one PUBLISH frame whose ticks may go to several owner shards: each shard adds
// what it refused, and the last one to apply its part reports back to the publishing
// connection's worker (ERROR TOPIC_LIMIT when ticks were refused, then PUBLISH_ACK when asked
// for). Refusals are decided by the owners, so the route back exists with or without ack.
struct PublishTracker {
  std::weak_ptr<Connection> connection;
  unsigned worker = 0;  // the publishing connection's worker
  std::uint32_t request_id = 0;
  std::uint32_t total = 0;  // ticks in the frame
  bool ack = false;
  std::atomic<unsigned> remaining{0};
  // Written by the owner shards that refuse ticks (rare), read by the last one.
  std::mutex mu;
  std::uint32_t refused = 0;
  session::PublishRefusal first;  // the refused tick with the lowest position in the frame

  // Adds `n` refused ticks, the first of them at `index` (any thread).
  void AddRefused(std::uint32_t n, std::uint32_t index, std::string_view topic,
                  engine::Refusal reason);
};

// Sends what `tracker` has to tell its connection (on that connection's worker).
void ReportPublish(const PublishTracker& tracker);

// Ticks for the topics one shard owns, from one PUBLISH frame, in frame order.
struct IngestBatch {
  std::vector<engine::IngestTick> ticks;
  std::shared_ptr<PublishTracker> tracker;  // null for log frames other instances accepted
  engine::UserId user = 0;                  // who published: creator of the topics it makes
  // Multi-instance mode: the shared log's topic cap decided these before the shard sees them.
  std::vector<std::string> forget;  // topics evicted, forgotten before the ticks are applied
  std::array<std::uint32_t, engine::kRefusalKinds> refused{};  // ticks refused (for metrics)
};

// A subscriber's request for the next slice of one of its history replays, on its way to
// (and queued at) the owner shard's worker.
struct HistorySliceRequest {
  engine::HistoryRequest request;
  engine::HistoryCursor cursor;
  engine::SliceLimits limits;
  std::shared_ptr<const delivery::ReplayCancel> cancel;  // set: skip it
  std::weak_ptr<Connection> connection;
  std::uint64_t catchup_id = 0;
  unsigned from = 0;  // the subscriber's worker
};

// An owner shard's answer to a slice request, on its way to the subscriber's worker. It travels
// in the same ordered post as the owner's record blocks, behind every record the owner produced
// before it. A null slice says the request was skipped (its replay was cancelled).
struct HistoryDelivery {
  std::weak_ptr<Connection> connection;
  std::uint64_t catchup_id;
  unsigned owner;
  std::shared_ptr<const engine::HistorySlice> slice;
};

// What an owner shard sends a worker, in the order it produced it: its record blocks and its
// answers to history slice requests.
using OwnerOutput = std::variant<engine::RecordBlockPtr, HistoryDelivery>;

// One event loop on one thread. It owns its connections, the topics of its shard, and a
// fan-out table of its connections' subscriptions. Other threads reach it only by posting to
// its io_context; everything below runs on the owning thread unless marked otherwise.
class Worker {
 public:
  Worker(unsigned index, ServerContext& ctx);
  ~Worker();
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
  void Adopt(asio::ip::tcp::socket socket, TicketPtr ticket);
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

  // Routes validated ticks of one PUBLISH by `user` to their owner shards (in order per topic).
  void Ingest(const ConnectionPtr& from, engine::UserId user, std::string_view user_name,
              std::uint32_t request_id, bool ack, std::vector<engine::IngestTick> ticks);
  // Multi-instance mode: applies one frame of the shared log to this worker's shard (posted
  // here by the backplane, in log order), then closes the bar buckets that `log_clock_ns` (the
  // newest accept time in the log so far) has passed. The log, not this host's clock, decides
  // which ticks are late and when a bucket closes, so every instance decides the same.
  void ApplyReplicated(IngestBatch batch, std::int64_t log_clock_ns);
  // Ticks posted here and not yet applied (any thread; the backplane adds before posting).
  void AddIngestBacklog(std::int64_t ticks) {
    ingest_backlog_.fetch_add(ticks, std::memory_order_relaxed);
  }
  std::int64_t ingest_backlog() const { return ingest_backlog_.load(std::memory_order_relaxed); }
  // This worker's interest in (topic or wildcard, mode) changed; tells the owner shard(s).
  void PublishInterest(const std::vector<delivery::FanoutTable::InterestChange>& changes);
  // Asks `owner`'s shard for the next slice of a replay; the answer reaches the connection's
  // OnHistorySlice on this worker. The first request of a replay follows PublishInterest for
  // its subscription (the owner sees both in order).
  void RequestHistorySlice(unsigned owner, HistorySliceRequest request);
  // Bounds on the history one owner serves per pass of its event loop, so that replays never
  // stall its other work: slices served, and cancelled requests skipped.
  static constexpr std::size_t kSlicesPerPass = 4;
  static constexpr std::size_t kSkipsPerPass = 1024;
  // An exception escaped a handler on worker `worker`'s loop: writes one `worker_fault` error
  // line (to stdout and stderr, at once) and aborts the process (docs/RELIABILITY.md).
  [[noreturn]] static void Fatal(unsigned worker, std::string_view what) noexcept;
  const engine::Shard& shard() const { return shard_; }

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

  // Ingest back-pressure: ticks posted to a worker and not yet applied. When any worker is
  // over the high-water mark, producers stop being read until every worker is below half of it
  // (any thread may read; see Connection::OnReadable).
  static constexpr std::int64_t kIngestHighWater = 65'536;
  bool IngestCongested() const;
  // A producer's reads wait for the congestion to clear (owning thread).
  void PauseUntilUncongested(const ConnectionPtr& c);

  // The connection's DATA_BATCH opened a frame: flush it when the window expires.
  void ScheduleBatchFlush(const ConnectionPtr& c, Clock::time_point deadline);
  // BATCH_WINDOW_MS=0: flush at the end of this loop turn.
  void MarkDirty(const ConnectionPtr& c);

 private:
  void Run();
  // Runs once after the handlers queued now: publishes this turn's records, flushes dirty
  // connections and cross-worker outboxes. Scheduled on demand.
  void ScheduleEndOfTurn();
  void EndOfTurn();
  void ApplyIngest(IngestBatch& batch);
  // Drops one reference to a PUBLISH's tracker; the last one reports to the publisher.
  void ReleasePublish(std::shared_ptr<PublishTracker> tracker);
  // Runs `fn(Shard&)` on `owner`'s shard: here and now if that is this worker, else posted.
  template <typename Fn>
  void OnShard(Worker* owner, Fn fn);
  void HandleInbox(unsigned from, std::int64_t mark, std::vector<IngestBatch>& ingest,
                   std::vector<OwnerOutput>& output);
  // Hands the records this shard produced so far this turn to the workers interested in them
  // (queued in their outboxes, behind what is queued already).
  void ShareCurrentBlock();
  void DeliverOwnerOutput(std::vector<OwnerOutput>& output);
  // Serves queued slice requests in order, within kSlicesPerPass and kSkipsPerPass; posts
  // itself again when some are left.
  void ServeHistorySlices();
  // Closes the bar buckets that every worker's mark has passed (see docs/ARCHITECTURE.md).
  void AdvanceBars();
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

  engine::Shard shard_;
  delivery::FanoutTable fanout_;
  engine::RecordBlock current_block_;  // records this shard produced during this turn
  std::shared_ptr<engine::RecordBlockPool> block_pool_ =
      std::make_shared<engine::RecordBlockPool>();

  // Outboxes to other workers, posted once per destination per turn.
  std::vector<std::vector<IngestBatch>> outbox_ingest_;
  // Record blocks and slices for each worker, in the order they were produced, so that a slice
  // arrives after every record produced before it was read and before every record produced
  // after ([index_]: this worker's own, delivered at the end of the turn).
  std::vector<std::vector<OwnerOutput>> outbox_output_;
  std::deque<HistorySliceRequest> history_queue_;  // slice requests for this shard, in order
  bool history_scheduled_ = false;                 // a ServeHistorySlices pass is posted
  bool end_of_turn_scheduled_ = false;
  // The bar clock: marks_[w] is the newest wall-clock mark received from worker w; every tick w
  // accepted before it has been applied here. Each post carries the sender's mark, and the bar
  // clock sends one to every worker (force_marks_) after each bucket boundary + close delay.
  std::vector<std::int64_t> marks_;
  bool force_marks_ = false;
  std::int64_t log_clock_ns_ = 0;  // multi-instance mode: replaces the marks (ApplyReplicated)
  asio::steady_timer bar_timer_;

  std::vector<std::weak_ptr<Connection>> dirty_;
  // Batch windows: deadlines are (nearly) monotone in insertion order, so a FIFO and one timer
  // replace a timer per connection.
  std::deque<std::pair<Clock::time_point, std::weak_ptr<Connection>>> windows_;
  asio::steady_timer window_timer_;
  bool window_timer_armed_ = false;

  asio::steady_timer sweep_timer_;
  Clock::duration sweep_interval_;

  std::atomic<std::int64_t> ingest_backlog_{0};  // ticks posted here, not yet applied
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
