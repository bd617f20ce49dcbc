#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/shard.h"
#include "engine/topic_cap.h"

namespace tickwire::cluster {

// Multi-instance mode's topic cap (MAX_TOPICS, MAX_TOPICS_PER_USER), decided once per instance
// in log order instead of per shard, so that every instance that applies the same log refuses
// and evicts the same topics whatever its WORKERS or its hash key: their ticks, seq numbers and
// bars stay identical under the cap.
//
// It follows the shards' rule with what the log alone says: a topic may be evicted only once
// the log clock (the newest accept time applied) has passed the end + BAR_CLOSE_DELAY_MS of
// every MINUTE bucket a tick of it may have opened, which is when every shard has closed those
// bars, and never by a tick of the frame that last published to it. The shards are told to
// forget an evicted topic ahead of the frame's ticks (IngestBatch::forget).
//
// Memory: one entry (name, a few words) per topic the instance holds, at most MAX_TOPICS, and
// one per user name seen in the log. Runs on the log's apply thread only.
class TopicDirectory {
 public:
  TopicDirectory(std::size_t max_topics, std::size_t max_topics_per_user,
                 std::int64_t close_delay_ns);
  TopicDirectory(const TopicDirectory&) = delete;
  TopicDirectory& operator=(const TopicDirectory&) = delete;

  // Decides one tick of the log message at stream sequence `frame`, applied while the log clock
  // stood at `clock_ns` (its value before this message). Known topic: kNone. New topic: kNone
  // when it fits, after appending to `evicted` the topics it displaced; otherwise the refusal.
  engine::Refusal Admit(const engine::IngestTick& tick, std::string_view user, std::uint64_t frame,
                        std::int64_t clock_ns, std::vector<std::string>& evicted);

  std::size_t size() const { return entries_.size(); }
  bool Contains(std::string_view topic) const { return entries_.contains(topic); }
  // Topics `user` created and still held (0 without a per-user cap).
  std::size_t CountOf(std::string_view user) const;

 private:
  struct Entry {
    const std::string* name = nullptr;  // the map key
    std::int64_t open_until_ns = 0;     // log clock from which its bars are all closed
    std::uint64_t last_frame = 0;       // stream sequence of the last message that published
    engine::CapLinks<Entry> cap;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return engine::TopicHash(s); }
  };

  engine::UserId UserIdOf(std::string_view user);

  std::int64_t close_delay_ns_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  engine::TopicCap<Entry, &Entry::cap> cap_;
  std::unordered_map<std::string, engine::UserId, Hash, std::equal_to<>> users_;
};

}  // namespace tickwire::cluster
