#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/record_block.h"
#include "engine/topic.h"

namespace tickwire::engine {

// A validated tick on its way to the topic's owner shard.
struct IngestTick {
  std::string topic;
  double price = 0;
  double size = 0;
  std::int64_t ts_ns = 0;  // already stamped (never 0 here)
};

// The state of the topics one worker owns: per-topic sequence numbers and which workers have
// subscribers. Runs on its owning worker only; no locks, no I/O.
class Shard {
 public:
  explicit Shard(unsigned index) : index_(index) {}

  // Assigns seq/prev_seq to each tick in order and appends an encoded TICK record for every
  // tick that some worker subscribes to. Returns the number of ticks applied.
  std::size_t Apply(std::span<const IngestTick> ticks, RecordBlock& out);

  // Worker `worker` gained (first subscriber) or lost (last subscriber) interest in a topic.
  void SetInterest(std::string_view topic, Mode mode, unsigned worker, bool interested);
  // Same for the "*" wildcard, which covers every topic this shard owns, present and future.
  void SetWildcardInterest(Mode mode, unsigned worker, bool interested);

  std::size_t topic_count() const { return topics_.size(); }
  std::uint64_t LastSeq(std::string_view topic) const;
  unsigned index() const { return index_; }

 private:
  struct TopicState {
    std::uint64_t last_seq = 0;
    std::array<WorkerMask, kModeSlots> interest{};
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return TopicHash(s); }
  };

  TopicState& Lookup(std::string_view topic);

  unsigned index_;
  std::unordered_map<std::string, TopicState, Hash, std::equal_to<>> topics_;
  std::array<WorkerMask, kModeSlots> wildcard_{};
};

}  // namespace tickwire::engine
