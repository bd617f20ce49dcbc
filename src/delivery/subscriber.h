#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/record_block.h"
#include "engine/topic.h"

namespace tickwire::delivery {

// Something that receives encoded records on its worker (a client connection). The FanoutTable
// holds raw pointers; a Subscriber removes all its subscriptions before it is destroyed.
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // One record of `block` for this subscriber (its bytes are block.EntryBytes(e): an encoded
  // DataBatch.records entry). Runs on the owning worker only.
  virtual void DeliverRecord(const engine::RecordBlock& block,
                             const engine::RecordBlock::Entry& e) = 0;
  // Consecutive records of one mode whose bytes lie end to end in `block` (one topic's ticks
  // from a PUBLISH; for a "*" subscriber also runs across topics, such as a second's bars).
  // The default delivers them one by one; a connection copies a short run into its frame in
  // one go and sends a long one straight from the block.
  virtual void DeliverRun(const engine::RecordBlockPtr& block,
                          std::span<const engine::RecordBlock::Entry> run) {
    for (const auto& e : run) DeliverRecord(*block, e);
  }
  // A completeness watermark for `interval` (PROTOCOL S8d): `entry` is an encoded
  // DataBatch.records entry, shared by every subscriber of the worker. It must reach the client
  // after every bar of `interval` delivered before it. Runs on the owning worker only.
  virtual void DeliverWatermark(engine::Mode /*interval*/, std::string_view /*entry*/) {}

 private:
  friend class FanoutTable;
  // Subscriptions this subscriber holds per mode, and its place in the FanoutTable's list of
  // subscribers of that mode (for watermarks: O(1) to join and leave).
  std::array<std::uint32_t, engine::kModeSlots> mode_refs_{};
  std::array<std::uint32_t, engine::kModeSlots> mode_index_{};
  // How many of this subscriber's subscriptions are "*" for each mode; while non-zero, records
  // reach it through the wildcard list only, so it never gets the same record twice.
  std::array<std::uint32_t, engine::kModeSlots> wildcard_refs_{};
  // The FanoutTable's mark for the stretch it last served this subscriber while prefix lists
  // took part: a subscriber in several of the lists that match a topic gets its records once.
  std::uint64_t fanout_stamp_ = 0;
};

}  // namespace tickwire::delivery
