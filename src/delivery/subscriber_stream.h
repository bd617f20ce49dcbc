#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/batcher.h"
#include "delivery/catch_up.h"
#include "delivery/outbound_queue.h"
#include "delivery/subscriber.h"
#include "delivery/subscription.h"
#include "engine/record_block.h"
#include "engine/shard.h"

namespace tickwire::delivery {

// What a SubscriberStream needs from its connection: the bounded output queue, the batch
// window's timers and the route to the owner shards. Runs on the owning worker only. The
// connection implements it; tests fake it.
class StreamHost {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~StreamHost() = default;
  // Queues a finished frame within the pending-output limit. False when it did not fit: the
  // host has then dropped the subscriber as a slow consumer and stopped the stream (Stop), or
  // had stopped it already.
  virtual bool QueueFrame(std::string frame, FrameTag tag) = 0;
  // The same for a frame made of `head` followed by `tail`, bytes of `block` that every other
  // subscriber of them shares (OutboundQueue::PushShared).
  virtual bool QueueSharedFrame(std::string head, engine::RecordBlockPtr block,
                                std::string_view tail, FrameTag tag) = 0;
  // Starts writing what is queued, unless a write is in flight.
  virtual void StartOutput() = 0;
  // What the queued output costs against MAX_PENDING_BYTES (OutboundQueue::charged_bytes()).
  virtual std::uint64_t QueuedBytes() const = 0;
  // Held live records and queued output together went over MAX_PENDING_BYTES: the host drops
  // the subscriber as a slow consumer (and stops the stream).
  virtual void PendingLimitExceeded() = 0;
  // BATCH_WINDOW_MS as it is now (a reload may change it).
  virtual std::uint32_t BatchWindowMs() const = 0;
  // The open DATA_BATCH is to be flushed (SubscriberStream::FlushBatch) at `deadline`, or, with
  // a window of 0, at the end of the current loop turn.
  virtual void FlushAt(TimePoint deadline) = 0;
  virtual void FlushAtEndOfTurn() = 0;
  // Sends `request` for the next history slice of catch-up `catch_up_id` to owner shard
  // `request.shard`; the answer comes back through SubscriberStream::OnHistorySlice (on this
  // worker). `cancel` set means the owner may skip it.
  virtual void RequestHistorySlice(std::uint64_t catch_up_id, CatchUp::SliceRequest request,
                                   engine::SliceLimits limits,
                                   std::shared_ptr<const ReplayCancel> cancel) = 0;
};

// What a stream is configured with (fixed for its life).
struct StreamParams {
  std::uint32_t max_msg_size = 65536;          // MAX_MSG_SIZE: a DATA_BATCH's payload at most
  std::uint64_t max_pending_bytes = 4u << 20;  // MAX_PENDING_BYTES: output plus held records
  unsigned shards = 1;                         // owner shards (one per worker)
  std::uint32_t history_ticks = 1024;          // HISTORY_TICKS: 0 = a TICK replay has nothing
  std::uint32_t history_second_bars = 3600;    // HISTORY_SECOND_BARS
  std::uint32_t history_minute_bars = 1440;    // HISTORY_MINUTE_BARS
};

// One connection's stream of records to its client, without the socket: which records go out
// and in what order, and how they are batched. It is the connection's delivery::Subscriber in
// its worker's fan-out table, and it owns
//   - the Batcher (the open DATA_BATCH and its window, through the host's timers), and long
//     runs of records sent straight from the shared record block;
//   - the catch-ups of subscriptions that ask for history (delivery::CatchUp): while one runs,
//     live records of its topics are held and joined with the replay, each once and in order;
//     the held bytes count against MAX_PENDING_BYTES with the queued output;
//   - the pacing of the replays: the next slice is requested only while the output queued plus
//     the slices on their way stay under CatchUpThreshold(), with at most kMaxSlicesInFlight
//     requests out, so the consumer's reading paces its replay.
// Runs on the owning worker only; no locks, no I/O.
class SubscriberStream final : public Subscriber {
 public:
  using TimePoint = StreamHost::TimePoint;

  // At most this many slice requests out per connection (cancelled ones included).
  static constexpr unsigned kMaxSlicesInFlight = 4;
  // Steps (topics visited plus records examined) an owner takes for one slice at most.
  static constexpr std::size_t kSliceSteps = 4096;
  // Runs of at least this many bytes go out from the shared record block (gather write)
  // instead of being copied into the open frame.
  static constexpr std::size_t kShareRunBytes = 4096;

  // `subscriptions`: the session's records, read only; they outlive the stream, and a
  // subscription is in them from before OnSubscribed until after OnUnsubscribed.
  SubscriberStream(StreamHost& host, const Subscriptions& subscriptions, StreamParams params);
  SubscriberStream(const SubscriberStream&) = delete;
  SubscriberStream& operator=(const SubscriberStream&) = delete;

  // delivery::Subscriber
  void DeliverRecord(const engine::RecordBlock& block,
                     const engine::RecordBlock::Entry& e) override;
  void DeliverRun(const engine::RecordBlockPtr& block,
                  std::span<const engine::RecordBlock::Entry> run) override;
  // Sent at once, or, while a catch-up of `interval` holds live bars, kept (the newest only)
  // until the last such catch-up ends: it must follow every bar it covers.
  void DeliverWatermark(engine::Mode interval, std::string_view entry) override;

  // Subscription `id` is live in the fan-out table (and its interest published): starts its
  // catch-up when it asks for history that is not live already through another subscription.
  void OnSubscribed(std::uint64_t id, const Subscription& sub);
  // Subscription `id` is about to be removed: its catch-up, if one runs, is dropped (held
  // records of topics another subscription delivers go out now, the rest are discarded).
  void OnUnsubscribed(std::uint64_t id);
  // An owner shard's answer to one of this stream's slice requests (null: skipped, its replay
  // was cancelled). Requests more when there is room.
  void OnHistorySlice(std::uint64_t catch_up_id, unsigned owner,
                      std::shared_ptr<const engine::HistorySlice> slice);
  // The host finished a write: there may be room for more history.
  void OnOutputWritten();
  // Finishes the open DATA_BATCH if its window has ended (or at once when `force`); its records
  // count as ready when the window ended (or `now`, if sooner).
  void FlushBatch(TimePoint now, bool force);
  // Server drain: queues the open DATA_BATCH now, ahead of the final ERROR.
  void FlushForDrain();
  // The connection is closing: nothing more is delivered, batched or requested. Idempotent.
  void Stop();
  // The connection is gone: cancels every replay (owner shards skip their queued requests) and
  // drops what is held.
  void CancelCatchUps();

  // Whether another subscription than `except` already delivers `topic` in `mode`.
  bool Covered(std::string_view topic, engine::Mode mode, std::uint64_t except) const;
  // Output queued below which history slices are requested, and the size of one slice.
  std::uint64_t CatchUpThreshold() const;
  std::size_t SliceBytes() const;

  bool stopped() const { return stopped_; }
  std::size_t catch_ups() const { return catchups_.size(); }
  std::uint64_t held_bytes() const { return held_bytes_; }
  unsigned slices_in_flight() const { return slices_in_flight_; }
  // Records in the open DATA_BATCH.
  std::size_t open_records() const { return batcher_.records(); }
  // Record.history_end markers sent (PROTOCOL S8c).
  std::uint64_t history_ends() const { return history_ends_; }

 private:
  // Appends an encoded record to the open DATA_BATCH (arming its window).
  void Append(std::string_view entry);
  // A record opened a new frame: arm its batch window (or flush at the end of the turn).
  void OnFrameOpened();
  // Queues the frame the batcher just finished; its records were ready at `ready`.
  void QueueBatch(std::string frame, TimePoint ready);
  // Asks owner shards for the next history slices while the output has room for them.
  void PumpCatchUps();
  void DropCatchUp(std::size_t index, std::uint64_t removed_subscription);
  // A catch-up of `mode` ended: sends the watermark held for it once no other one runs.
  void ReleaseWatermark(engine::Mode mode);
  // Appends subscription `subscription_id`'s Record.history_end (PROTOCOL S8c).
  void EmitHistoryEnd(std::uint64_t subscription_id, const CatchUp::EndReport& report);
  // Runs `fn(catch_up, emit)` and keeps held_bytes_ in step with what it holds.
  template <typename Fn>
  void WithCatchUp(CatchUp& c, Fn&& fn);

  StreamHost& host_;
  const Subscriptions& subscriptions_;
  const StreamParams params_;
  Batcher batcher_;
  TimePoint batch_deadline_{};  // the open DATA_BATCH's flush time
  bool flush_marked_ = false;   // in the worker's end-of-turn flush list
  bool stopped_ = false;
  std::vector<std::unique_ptr<CatchUp>> catchups_;  // oldest first
  std::uint64_t next_catchup_ = 1;
  std::uint64_t held_bytes_ = 0;   // held live records, counted against MAX_PENDING_BYTES
  unsigned slices_in_flight_ = 0;  // slice requests out (cancelled ones included)
  // Per mode, the newest watermark entry held back while a catch-up of that mode runs (empty:
  // none). At most one small entry per mode.
  std::array<std::string, engine::kModeSlots> held_watermark_;
  std::uint64_t history_ends_ = 0;
};

}  // namespace tickwire::delivery
