#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "delivery/fanout_table.h"
#include "engine/record_block.h"
#include "engine/shard.h"
#include "exchange/bus.h"
#include "exchange/congestion.h"
#include "exchange/messages.h"
#include "exchange/owner_thread.h"
#include "exchange/poster.h"
#include "exchange/publish_tracker.h"

namespace tickwire::exchange {

// What an Exchange needs from the worker it runs on.
class Host {
 public:
  virtual ~Host() = default;
  // Hands one of the owner shards' record blocks to this worker's subscribers.
  virtual void DeliverRecords(const engine::RecordBlockPtr& block) = 0;
  // The end of this loop turn, after this worker's own records and slices have been delivered
  // and before the posts to other workers (BATCH_WINDOW_MS=0: flush what the turn added).
  virtual void FlushTurn() = 0;
  // Bars of `interval` (SECOND or MINUTE) are final on this worker through the interval that
  // starts at `start_ms`: every shard has closed it, and each bar of it (and of every earlier
  // interval) addressed to this worker has been handed to DeliverRecords already. Called once
  // per advance (several intervals at once after a stall), never backwards.
  virtual void DeliverWatermark(engine::Mode interval, std::int64_t start_ms) = 0;
};

// Wall clock in ns since the Unix epoch (injected, so that tests can drive it).
using WallClock = std::int64_t (*)();

// The socket-free heart of one worker: its shard of the topics, the ingest split, publish
// tracking, interest and history slice routing, the bar marks, and the end-of-turn ordering of
// what it sends other workers. One per worker; every member function runs on that worker's
// thread unless marked otherwise (checked by OwnerThread in debug builds).
//
// The two invariants it keeps (docs/ARCHITECTURE.md, checked directly by tests/exchange/):
// - A bar bucket closes only when every worker's mark has passed its end + BAR_CLOSE_DELAY_MS,
//   and a mark travels behind every tick accepted before it; so no tick accepted before a mark
//   is left out of a bar that closes after that mark.
// - A history slice leaves the owner in the same ordered stream as the owner's record blocks,
//   behind every record produced before it was read; so replay + live is every record once.
class Exchange {
 public:
  Exchange(unsigned index, const engine::ShardOptions& shard_options, Poster& poster, Bus& bus,
           Host& host, IngestBacklog& backlog, WallClock wall_clock);
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Sizes the per-worker state once every worker exists (before any operation reaches it).
  void Start();
  // Makes the calling thread this exchange's owner (the worker's thread, first thing).
  void BindThread() { owner_.Bind(); }
  // Runs one operation another worker (or the bus) posted here.
  void Handle(Op&& op);

  // One validated PUBLISH frame from a connection of this worker: through the bus.
  void Publish(const std::shared_ptr<PublishOrigin>& origin, engine::UserId user,
               std::string_view user_name, std::uint32_t request_id, bool ack,
               std::vector<engine::IngestTick> ticks) {
    bus_.Publish(*this, origin, user, user_name, request_id, ack, std::move(ticks));
  }
  // LocalBus: routes the frame's ticks to their owner shards, in frame order per shard (this
  // shard's part now, the others' in this turn's outboxes).
  void IngestLocal(const std::shared_ptr<PublishOrigin>& origin, engine::UserId user,
                   std::uint32_t request_id, bool ack, std::vector<engine::IngestTick> ticks);
  // This worker's interest in (topic or wildcard, mode) changed; tells the owner shard(s) at
  // once (not batched: a SUBSCRIBE_OK may follow, and the owner must see the interest before any
  // tick published in reply to it).
  void PublishInterest(const std::vector<delivery::FanoutTable::InterestChange>& changes);
  // Asks `owner`'s shard for the next slice of a replay; the answer reaches the receiver on this
  // worker. The first request of a replay follows PublishInterest for its subscription (the
  // owner sees both in order).
  void RequestHistorySlice(unsigned owner, HistorySliceRequest request);
  // The bar clock fired (just after a second boundary + close delay): tell every worker how far
  // this one has got, even when idle, and close what can be closed.
  void OnBarClock();
  // When the bar clock should fire next after `now_ns` (any thread).
  static std::int64_t NextBarClockNs(std::int64_t now_ns, std::int64_t close_delay_ns);
  // Requests an EndOfTurn after the operations queued on this worker now.
  void ScheduleEndOfTurn();
  // Completeness watermarks (on by default): off, no Host::DeliverWatermark and no post made
  // only to carry the closed intervals (the bench's baseline). Before Start.
  void set_watermarks(bool on) { watermarks_ = on; }
  // The start of the newest `interval` (SECOND or MINUTE) whose bars are final on this worker
  // (the last Host::DeliverWatermark), or 0 before the first one.
  std::int64_t WatermarkMs(engine::Mode interval) const;
  // SubscribeOk.resume_from_ns for an interest this worker registers next (Bus::ResumeFrom).
  std::int64_t ResumeFromNs() const { return bus_.ResumeFrom(*this); }

  // Ingest back-pressure (any thread): some worker is over the high-water mark or the bus is
  // congested; and its opposite with hysteresis (every worker below half, bus not congested).
  bool IngestCongested() const;
  bool IngestCleared() const;

  // Bounds on the history one owner serves per pass of its event loop, so that replays never
  // stall its other work: slices served, and cancelled requests skipped.
  static constexpr std::size_t kSlicesPerPass = 4;
  static constexpr std::size_t kSkipsPerPass = 1024;

  unsigned index() const { return index_; }
  unsigned workers() const { return poster_.workers(); }
  // The shard (read by the worker's metrics sweep; tests).
  const engine::Shard& shard() const { return shard_; }
  // The shard, to restore a snapshot into before the worker's thread starts (or on it).
  engine::Shard& shard_for_restore() {
    TICKWIRE_ASSERT_OWNER(owner_);
    return shard_;
  }
  // marks()[w]: the newest mark received from worker w (Bus::Watermark).
  const std::vector<std::int64_t>& marks() const { return marks_; }
  // Multi-instance mode: the newest log clock applied here (Bus::Watermark).
  std::int64_t log_clock_ns() const { return log_clock_ns_; }
  std::int64_t WallNow() const { return wall_clock_(); }

 private:
  void HandleInbox(InboxPost& post);
  void ApplyReplicated(ReplicatedPost& post);
  // Applies with the shard's accept order at least `order_ns` (Shard::AdvanceOrderClock).
  void ApplyIngest(IngestBatch& batch, std::int64_t order_ns);
  // Drops one reference to a PUBLISH's tracker; the last one reports to the origin's worker.
  void ReleasePublish(std::shared_ptr<PublishTracker> tracker);
  void ApplyInterest(unsigned from, const delivery::FanoutTable::InterestChange& change);
  void QueueSliceRequest(HistorySliceRequest&& request);
  // Serves queued slice requests in order, within kSlicesPerPass and kSkipsPerPass; posts
  // itself again when some are left.
  void ServeHistorySlices();
  // Hands the records this shard produced so far this turn to the workers interested in them
  // (queued in their outboxes, behind what is queued already).
  void ShareCurrentBlock();
  void DeliverOwnerOutput(std::vector<OwnerOutput>& output);
  // Closes the bar buckets the bus's watermark has passed.
  void AdvanceBars();
  // 1. share this turn's records; 2. deliver this worker's own share and slices, in order,
  // then this worker's watermarks; 3. Host::FlushTurn; 4. one post per destination with its
  // outboxes, this worker's mark and how far its shard has closed bars.
  void EndOfTurn();
  // Shard `from` has closed every bucket before `second_ms` / `minute_ms`, and its bars for this
  // worker have been delivered: advances this worker's watermarks (Host::DeliverWatermark) when
  // the oldest shard's has moved.
  void OnShardClosed(unsigned from, std::int64_t second_ms, std::int64_t minute_ms);

  unsigned index_;
  Poster& poster_;
  Bus& bus_;
  Host& host_;
  IngestBacklog& backlog_;
  WallClock wall_clock_;
  OwnerThread owner_;

  engine::Shard shard_;
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
  bool history_scheduled_ = false;                 // a ServeSlicesPost is on its way here
  bool end_of_turn_scheduled_ = false;
  // The bar clock: marks_[w] is the newest wall-clock mark received from worker w; every tick w
  // accepted before it has been applied here. Each post carries the sender's mark, and the bar
  // clock sends one to every worker (force_marks_) after each bucket boundary + close delay.
  std::vector<std::int64_t> marks_;
  bool force_marks_ = false;
  std::int64_t log_clock_ns_ = 0;  // multi-instance mode: the log's clock (ReplicatedPost)
  // Completeness watermarks: closed_*_[s] is how far shard s has closed bars, as far as its
  // bars have reached this worker; delivered_*_ the minimum over every shard as last handed to
  // the host (all "closed before" values: bucket starts, INT64_MIN for none). sent_*_ is what
  // this shard's posts last told the other workers; a change forces a post to each of them.
  bool watermarks_ = true;
  std::vector<std::int64_t> closed_second_;
  std::vector<std::int64_t> closed_minute_;
  std::int64_t delivered_second_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t delivered_minute_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t sent_second_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t sent_minute_ = std::numeric_limits<std::int64_t>::min();
};

}  // namespace tickwire::exchange
