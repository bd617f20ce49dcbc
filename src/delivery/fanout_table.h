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
//
// Three kinds of entry: exact topics (one hash lookup per stretch of a topic in a block), "*"
// (a list that takes whole runs, no lookup), and prefix patterns such as "FX.*" (one lookup
// per '.' of the topic's name, made only while the worker has any prefix subscriber).
class FanoutTable {
 public:
  // A change of this worker's interest that the topic's owner shard must learn about:
  // the first local subscriber for (topic, mode) appeared, or the last one left.
  struct InterestChange {
    std::string topic;  // wildcard: empty for "*", else a pattern's prefix ("FX.")
    bool wildcard;      // "*" or a prefix pattern: every owner shard must learn of it
    engine::Mode mode;
    bool interested;
  };

  // `topics` holds topic names and prefix patterns ("FX.*", engine::IsPrefixPattern), both
  // already validated.
  void Add(Subscriber* s, engine::Mode mode, std::span<const std::string> topics, bool wildcard,
           std::vector<InterestChange>& changes);
  void Remove(Subscriber* s, engine::Mode mode, std::span<const std::string> topics, bool wildcard,
              std::vector<InterestChange>& changes);

  // Hands every entry of `block` addressed to `worker` to its local subscribers. Returns the
  // number of (record, subscriber) deliveries made.
  std::size_t Deliver(const engine::RecordBlockPtr& block, unsigned worker) const;

  // Hands a watermark entry of `interval` to every local subscriber with a subscription in that
  // mode, once each. Returns the number of subscribers served.
  std::size_t DeliverWatermark(engine::Mode interval, std::string_view entry) const;
  // Subscribers with at least one subscription in `mode`.
  std::size_t mode_subscribers(engine::Mode mode) const {
    return by_mode_[static_cast<std::size_t>(mode)].size();
  }

  std::size_t topic_count() const { return topics_.size(); }
  std::size_t prefix_count() const { return prefixes_.size(); }

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

  using Table = std::unordered_map<std::string, std::array<SubList, engine::kModeSlots>, Hash,
                                   std::equal_to<>>;
  // Adds (removes) one reference of `s` under `key`; true when its list for `slot` went from
  // empty to non-empty (the reverse). Erases an entry left with no subscriber.
  static bool AddTo(Table& table, std::string_view key, std::size_t slot, Subscriber* s);
  static bool DropFrom(Table& table, std::string_view key, std::size_t slot, Subscriber* s);
  // Delivers one topic's stretch `run` of `block` to its exact and prefix subscribers, each once.
  std::size_t DeliverStretch(const engine::RecordBlockPtr& block, std::string_view topic,
                             std::size_t slot,
                             std::span<const engine::RecordBlock::Entry> run) const;

  Table topics_;
  Table prefixes_;  // keyed by a pattern's prefix ("FX." for "FX.*")
  std::array<SubList, engine::kModeSlots> wildcard_;
  // Subscribers with any subscription per mode (Subscriber::mode_index_ is the position).
  std::array<std::vector<Subscriber*>, engine::kModeSlots> by_mode_;
  // Marks the subscribers already served for the stretch being delivered when prefix lists
  // take part (a subscriber may be in the exact list and several prefix lists).
  mutable std::uint64_t stamp_ = 0;
};

}  // namespace tickwire::delivery
