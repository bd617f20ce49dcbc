#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/shard.h"
#include "engine/topic.h"

namespace tickwire::delivery {

// A subscription as the connection's session records it (for UNSUBSCRIBE and cleanup) and as
// its SubscriberStream reads it (which other subscription already delivers a topic).
struct Subscription {
  engine::Mode mode = engine::Mode::kTick;
  bool wildcard = false;
  // Exact topics and prefix patterns ("FX.*", engine::IsPrefixPattern), without "*", sorted
  // and deduplicated.
  std::vector<std::string> topics;
  std::size_t patterns = 0;    // how many of `topics` are prefix patterns
  std::uint32_t backfill = 0;  // history first: the N most recent per topic, or
  std::int64_t since_ms = 0;   // everything retained from this time on (PROTOCOL S8b)
  // TICK only (PROTOCOL S8c): per-topic positions to resume after, sorted by topic, each a
  // topic the subscription covers. They replace backfill/since_ms for their topics.
  std::vector<engine::ResumePoint> resume;
  // The positions were read under another stream epoch than the server's: they belong to a
  // gone numbering (what followed them is lost; the topics replay all that is retained).
  bool resume_stale = false;
  // TICK only (S8c): topics without a position also replay the ticks accepted at or after this
  // place in the accept order (Subscribe.resume_from_ns; 0: none).
  std::int64_t resume_from_ns = 0;

  // Whether it asked for history, and so gets a Record.history_end after it (S8c).
  bool WantsHistory() const {
    return backfill > 0 || since_ms > 0 || !resume.empty() || resume_from_ns > 0;
  }
};

// A connection's subscriptions by id. Entries stay where they are until erased, so a reference
// to one is valid while the subscription exists.
using Subscriptions = std::unordered_map<std::uint64_t, Subscription>;

}  // namespace tickwire::delivery
