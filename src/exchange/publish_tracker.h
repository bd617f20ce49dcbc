#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "engine/shard.h"
#include "session/session.h"

namespace tickwire::exchange {

// The publishing side of a PUBLISH frame (a client connection). Runs on the origin's worker.
class PublishOrigin {
 public:
  virtual ~PublishOrigin() = default;
  // Every tick of the frame that was not refused has been applied (PUBLISH_ACK); `late` of them
  // were too late for their bars (PROTOCOL S8a).
  virtual void OnPublishApplied(std::uint32_t request_id, std::uint32_t accepted,
                                std::uint32_t late) = 0;
  // Owner shards refused ticks of the frame (ERROR TOPIC_LIMIT); always before OnPublishApplied.
  virtual void OnPublishRefused(std::uint32_t request_id,
                                const session::PublishRefusal& refusal) = 0;
  // Multi-instance mode: the bus did not take the frame (ERROR UNAVAILABLE, non-fatal).
  virtual void OnPublishFailed(std::uint32_t request_id, std::string_view message,
                               std::uint32_t retry_after_ms) = 0;
};

// The outcome of one PUBLISH frame whose ticks may go to several owner shards: each shard adds
// what it refused, and the last one to apply its part reports back to the publishing worker
// (OnPublishRefused when ticks were refused, then OnPublishApplied when asked for). Refusals are
// decided by the owners, so the route back exists with or without ack. Made only by
// MakePublishTracker.
struct PublishTracker {
  std::weak_ptr<PublishOrigin> origin;
  unsigned worker = 0;  // the origin's worker
  std::uint32_t request_id = 0;
  std::uint32_t total = 0;  // ticks in the frame
  bool ack = false;
  // Parts not yet applied (plus references held while they are being handed out).
  std::atomic<unsigned> remaining{0};
  // Applied ticks that were late for their bars (PUBLISH_ACK `late`): each owner shard adds its
  // own, the last one reads the sum after its acq_rel Release.
  std::atomic<std::uint32_t> late{0};
  // Written by the owner shards that refuse ticks (rare), read by the last one.
  std::mutex mu;
  std::uint32_t refused = 0;
  session::PublishRefusal first;  // the refused tick with the lowest position in the frame

  // Adds `n` refused ticks, the first of them at `index` (any thread).
  void AddRefused(std::uint32_t n, std::uint32_t index, std::string_view topic,
                  engine::Refusal reason);
  // Drops one reference (acq_rel); true for the last one, which then sees every AddRefused.
  bool Release() { return remaining.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  // Something to tell the origin once the last part is applied.
  bool HasReport() const { return ack || refused > 0; }
};

// The one construction point: a tracker for `total` ticks whose `references` are handed out by
// the caller (one per part, plus any the caller holds while splitting).
std::shared_ptr<PublishTracker> MakePublishTracker(std::weak_ptr<PublishOrigin> origin,
                                                   unsigned worker, std::uint32_t request_id,
                                                   std::uint32_t total, bool ack,
                                                   unsigned references);

// Tells the origin what `tracker` has to say: refusals first, then the ack (on the origin's
// worker, once every part has been applied).
void ReportPublish(const PublishTracker& tracker);

}  // namespace tickwire::exchange
