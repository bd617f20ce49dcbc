#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "delivery/subscriber.h"
#include "engine/record_block.h"
#include "engine/topic.h"

namespace tickwire::delivery {

// One worker's subscriptions: which local subscribers want which topic in which mode. A
// subscriber with several subscriptions covering the same topic and mode gets each record
// once. Runs on its worker only.
class FanoutTable {
 public:
  // A change of this worker's interest that the topic's owner shard must learn about:
  // the first local subscriber for (topic, mode) appeared, or the last one left.
  struct InterestChange {
    std::string topic;  // empty for the wildcard
    bool wildcard;
    engine::Mode mode;
    bool interested;
  };

  void Add(Subscriber* s, engine::Mode mode, std::span<const std::string> topics, bool wildcard,
           std::vector<InterestChange>& changes);
  void Remove(Subscriber* s, engine::Mode mode, std::span<const std::string> topics, bool wildcard,
              std::vector<InterestChange>& changes);

  // Hands every entry of `block` addressed to `worker` to its local subscribers. Returns the
  // number of (record, subscriber) deliveries made.
  std::size_t Deliver(const engine::RecordBlockPtr& block, unsigned worker) const;

  std::size_t topic_count() const { return topics_.size(); }

 private:
  using SubList = std::vector<std::pair<Subscriber*, std::uint32_t>>;  // subscriber, refcount
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return engine::TopicHash(s); }
  };

  // Adds one reference; returns true if the list went from empty to non-empty.
  static bool AddRef(SubList& list, Subscriber* s);
  // Drops one reference; returns true if the list became empty.
  static bool DropRef(SubList& list, Subscriber* s);

  std::unordered_map<std::string, std::array<SubList, engine::kModeSlots>, Hash, std::equal_to<>>
      topics_;
  std::array<SubList, engine::kModeSlots> wildcard_;
};

}  // namespace tickwire::delivery
