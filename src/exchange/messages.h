#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "delivery/catch_up.h"
#include "delivery/fanout_table.h"
#include "engine/record_block.h"
#include "engine/shard.h"
#include "exchange/publish_tracker.h"

// What workers send each other. Every cross-worker call is one of the named operations in `Op`,
// posted through a Poster and handled by the destination's Exchange::Handle.
namespace tickwire::exchange {

// The receiving side of a history replay (a client connection's catch-up). Runs on its worker.
class SliceReceiver {
 public:
  virtual ~SliceReceiver() = default;
  // `owner`'s answer to the replay `catchup_id`'s last request; null when it was skipped.
  virtual void OnHistorySlice(std::uint64_t catchup_id, unsigned owner,
                              std::shared_ptr<const engine::HistorySlice> slice) = 0;
};

// Ticks for the topics one shard owns, from one PUBLISH frame, in frame order.
struct IngestBatch {
  std::vector<engine::IngestTick> ticks;
  std::shared_ptr<PublishTracker> tracker;  // null for log frames other instances accepted
  engine::UserId user = 0;                  // who published: creator of the topics it makes
  // Multi-instance mode: the shared log's topic cap decided these before the shard sees them.
  std::vector<std::string> forget;  // topics evicted, forgotten before the ticks are applied
  std::array<std::uint32_t, engine::kRefusalKinds> refused{};  // ticks refused (for metrics)
};

// A subscriber's request for the next slice of one of its history replays, on its way to (and
// queued at) the owner shard's worker.
struct HistorySliceRequest {
  engine::HistoryRequest request;
  engine::HistoryCursor cursor;
  engine::SliceLimits limits;
  std::shared_ptr<const delivery::ReplayCancel> cancel;  // set: skip it
  std::weak_ptr<SliceReceiver> receiver;
  std::uint64_t catchup_id = 0;
  unsigned from = 0;  // the subscriber's worker
};

// An owner shard's answer to a slice request, on its way to the subscriber's worker. It travels
// in the same ordered post as the owner's record blocks, behind every record the owner produced
// before it. A null slice says the request was skipped (its replay was cancelled).
struct HistoryDelivery {
  std::weak_ptr<SliceReceiver> receiver;
  std::uint64_t catchup_id = 0;
  unsigned owner = 0;
  std::shared_ptr<const engine::HistorySlice> slice;
};

// What an owner shard sends a worker, in the order it produced it: its record blocks and its
// answers to history slice requests.
using OwnerOutput = std::variant<engine::RecordBlockPtr, HistoryDelivery>;

// --- The operations (one struct per kind of cross-worker call) ---

// One worker's end-of-turn post to another: ticks for the destination's shard, the sender's
// record blocks and slice answers for the destination's subscribers, and the sender's bar mark
// (every tick the sender accepted before `mark` is in this post or an earlier one). It also
// carries how far the sender's shard has closed bars: every bar of a bucket starting before
// `closed_*_ms` is in this post's output or an earlier one (the completeness watermark).
struct InboxPost {
  unsigned from = 0;
  std::int64_t mark = 0;
  std::int64_t closed_second_ms = std::numeric_limits<std::int64_t>::min();
  std::int64_t closed_minute_ms = std::numeric_limits<std::int64_t>::min();
  std::vector<IngestBatch> ingest;
  std::vector<OwnerOutput> output;
};
// Worker `from`'s interest in (topic or wildcard, mode) changed.
struct InterestPost {
  unsigned from = 0;
  delivery::FanoutTable::InterestChange change;
};
// A slice request for the destination's shard (boxed: it is large and rare, and every Op is as
// big as its largest member).
struct SliceRequestPost {
  std::unique_ptr<HistorySliceRequest> request;
};
// The destination serves the next few queued slice requests.
struct ServeSlicesPost {};
// Every part of a PUBLISH has been applied: the destination (the origin's worker) reports.
struct PublishReportPost {
  std::shared_ptr<PublishTracker> tracker;
};
// Multi-instance mode: the bus did not take a PUBLISH frame.
struct PublishFailedPost {
  std::weak_ptr<PublishOrigin> origin;
  std::uint32_t request_id = 0;
  std::string message;
  std::uint32_t retry_after_ms = 0;
};
// Multi-instance mode: one frame of the shared log for the destination's shard, in log order,
// and the log's clock (the newest accept time in the log so far).
struct ReplicatedPost {
  IngestBatch batch;
  std::int64_t log_clock_ns = 0;
};
// The destination ends its loop turn (posted to itself; see Exchange::EndOfTurn).
struct EndOfTurnPost {};

using Op = std::variant<InboxPost, InterestPost, SliceRequestPost, ServeSlicesPost,
                        PublishReportPost, PublishFailedPost, ReplicatedPost, EndOfTurnPost>;
// Every post carries one Op: keep it about as small as the handlers it replaced.
static_assert(sizeof(Op) <= 112, "an Op grew: box the large member");

}  // namespace tickwire::exchange
