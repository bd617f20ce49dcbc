#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/topic.h"

namespace tickwire::delivery {

// A subscription as the connection's session records it (for UNSUBSCRIBE and cleanup) and as
// its SubscriberStream reads it (which other subscription already delivers a topic).
struct Subscription {
  engine::Mode mode;
  bool wildcard = false;
  // Exact topics and prefix patterns ("FX.*", engine::IsPrefixPattern), without "*", sorted
  // and deduplicated.
  std::vector<std::string> topics;
  std::size_t patterns = 0;    // how many of `topics` are prefix patterns
  std::uint32_t backfill = 0;  // history first: the N most recent per topic, or
  std::int64_t since_ms = 0;   // everything retained from this time on (PROTOCOL S8b)
};

// A connection's subscriptions by id. Entries stay where they are until erased, so a reference
// to one is valid while the subscription exists.
using Subscriptions = std::unordered_map<std::uint64_t, Subscription>;

}  // namespace tickwire::delivery
