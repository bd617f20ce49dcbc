#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cluster/topic_directory.h"
#include "config/config.h"
#include "exchange/bus.h"
#include "exchange/congestion.h"
#include "exchange/poster.h"
#include "observability/log.h"

// libnats types (C); only pointers are held here.
typedef struct __natsConnection natsConnection;
typedef struct __natsSubscription natsSubscription;
typedef struct __natsMsg natsMsg;
typedef struct __jsCtx jsCtx;
typedef struct jsPubAck jsPubAck;
typedef struct jsPubAckErr jsPubAckErr;

namespace tickwire::cluster {

// The multi-instance bus on NATS JetStream (docs/CLUSTER.md): the exchange::Bus of a process
// that runs as one of several instances behind a load balancer.
//
// Every accepted PUBLISH frame becomes one message on one subject of one stream; every instance
// consumes the whole stream in order (an ordered push consumer) and applies each message to its
// shards, so all of them fold the same bars and give each tick the same seq: stream sequence
// * 65536 + the tick's position in its frame. Which bucket a tick lands in, whether it is late and
// when a bucket closes depend only on the accept times written in the log, never on the
// consuming host's clock. Each instance also writes a clock mark (a frame without ticks) just
// after every second boundary + BAR_CLOSE_DELAY_MS, so buckets close on a quiet stream too.
//
// Bars close on the log's clock: Watermark is the newest accept time a worker has applied from
// the log (Exchange::log_clock_ns), never the host's clock.
//
// Threads: Publish runs on connection workers; the consumer callback on libnats' delivery
// thread(s), serialized by apply_mu_ (and waiting for busy shards before taking it, never while
// holding it); the control thread creates the stream and the subscription once connected,
// checks that the instance has caught up after a reconnect, writes the clock marks and fails
// frames the stream did not confirm in time. It reaches the workers only through `poster`
// (named exchange operations); the workers must outlive Stop().
class NatsBus final : public exchange::Bus {
 public:
  // `on_ready` is called (from any thread) whenever readiness changes: connected, subscribed,
  // and caught up with the stream as it was when the subscription started.
  NatsBus(const config::Config& config, exchange::Poster& poster, exchange::IngestBacklog& backlog,
          std::function<void(bool)> on_ready);
  ~NatsBus() override;
  NatsBus(const NatsBus&) = delete;
  NatsBus& operator=(const NatsBus&) = delete;

  // Starts connecting in the background: a NATS server that cannot be reached yet is retried
  // with back-off, like one that is lost later. Returns an error line for unusable settings.
  std::string Start();
  // Stops consuming and publishing: waits a little for outstanding publishes, answers the rest
  // with ERROR UNAVAILABLE, closes the connection. Call before the workers stop.
  void Stop();

  void Publish(exchange::Exchange& at, const std::shared_ptr<exchange::PublishOrigin>& origin,
               engine::UserId user, std::string_view user_name, std::uint32_t request_id, bool ack,
               std::vector<engine::IngestTick> ticks) override;
  std::int64_t Watermark(const exchange::Exchange& at) const override;
  // The oldest log clock any shard has applied: each shard applies the log in order, so every
  // tick it applies later carries that clock or a newer one.
  std::int64_t ResumeFrom(const exchange::Exchange& at) const override;
  void LogClockApplied(unsigned shard, std::int64_t ns) override;
  bool Congested() const override;
  void AppendMetrics(obs::Exposition& out) const override;

  bool ready() const { return ready_.load(); }
  const std::string& origin() const { return origin_; }
  // Frames published and not yet confirmed/applied (for tests and metrics).
  std::size_t pending_frames() const;

  // Frames published but not confirmed above this stall producers (Exchange::IngestCongested).
  static constexpr std::size_t kMaxPendingFrames = 4096;

 private:
  struct PendingFrame {
    std::weak_ptr<exchange::PublishOrigin> origin;
    unsigned worker = 0;
    std::uint32_t request_id = 0;
    std::uint32_t count = 0;
    bool ack = false;
    std::chrono::steady_clock::time_point deadline;
  };
  enum FailReason : std::size_t { kUnavailable = 0, kRejected, kTimeout, kFailReasons };

  static void OnMessage(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);
  static void OnPubAck(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self);
  static void OnConnected(natsConnection* nc, void* self);
  static void OnDisconnected(natsConnection* nc, void* self);
  static void OnReconnected(natsConnection* nc, void* self);

  void Apply(natsMsg* msg);
  void ControlLoop();
  // Creates or updates the stream, then subscribes from the first unapplied sequence (once:
  // the ordered consumer survives reconnects).
  bool SetUp();
  void PublishClockMark();
  // True once everything the stream holds has been applied (asks the stream for its last
  // sequence); marks this instance caught up.
  bool CaughtUpWithStream();
  void ExpireOverdue();
  void UpdateReadiness();
  // Shards busy applying (a worker over the ingest high-water mark): the consumer waits, outside
  // apply_mu_, so that the control thread is never held up by it.
  void WaitForShards();
  // Answers a frame with ERROR UNAVAILABLE on its connection's worker.
  void Fail(PendingFrame frame, FailReason reason, std::string message);
  void Wake();

  config::Config config_;
  exchange::Poster& poster_;
  exchange::IngestBacklog& backlog_;
  std::function<void(bool)> on_ready_;
  std::string origin_;
  std::string subject_;

  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;  // control thread only

  std::atomic<bool> connected_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<bool> caught_up_{false};
  std::atomic<bool> ready_{false};
  std::atomic<bool> need_setup_{false};  // connected, no subscription yet: stream + subscription
  std::atomic<bool> need_catchup_check_{false};  // reconnected: ready once caught up again
  std::atomic<bool> has_subscription_{false};    // set once; libnats keeps it across reconnects
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> next_nonce_{0};

  mutable std::mutex pending_mu_;
  std::unordered_map<std::uint64_t, PendingFrame> pending_;

  // The consumer side, under apply_mu_ (delivery threads).
  std::mutex apply_mu_;
  std::uint64_t applied_seq_ = 0;  // stream sequence of the last message applied
  std::int64_t log_clock_ns_ = 0;  // newest accept time seen in the log
  TopicDirectory directory_;       // the topic cap, decided in log order
  // Per shard, the log clock it has applied (ResumeFrom); written by that shard's worker.
  std::unique_ptr<std::atomic<std::int64_t>[]> shard_clock_;

  std::mutex control_mu_;
  std::condition_variable control_cv_;
  std::thread control_;

  obs::LogLimiter error_log_{5};
  // Metrics: written by several threads, read by the scrape thread.
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> applied_frames_{0};
  std::atomic<std::uint64_t> applied_ticks_{0};
  std::atomic<std::uint64_t> clock_marks_{0};
  std::atomic<std::uint64_t> disconnects_{0};
  std::array<std::atomic<std::uint64_t>, kFailReasons> failures_{};
  std::atomic<std::uint64_t> consumer_pending_{0};  // messages the stream still holds for us
  std::atomic<std::uint64_t> applied_seq_metric_{0};
};

}  // namespace tickwire::cluster
