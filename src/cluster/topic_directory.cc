#include "cluster/topic_directory.h"

#include <algorithm>

#include "engine/bar.h"

namespace tickwire::cluster {

TopicDirectory::TopicDirectory(std::size_t max_topics, std::size_t max_topics_per_user,
                               std::int64_t close_delay_ns)
    : close_delay_ns_(close_delay_ns), cap_(max_topics, max_topics_per_user) {}

engine::UserId TopicDirectory::UserIdOf(std::string_view user) {
  auto it = users_.find(user);
  if (it == users_.end()) {
    it = users_.emplace(std::string(user), static_cast<engine::UserId>(users_.size())).first;
  }
  return it->second;
}

std::size_t TopicDirectory::CountOf(std::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? 0 : cap_.CountOf(it->second);
}

engine::Refusal TopicDirectory::Admit(const engine::IngestTick& tick, std::string_view user,
                                      std::uint64_t frame, std::int64_t clock_ns,
                                      std::vector<std::string>& evicted) {
  auto it = entries_.find(tick.topic);
  if (it != entries_.end()) {
    cap_.Touch(it->second);
  } else {
    const engine::Refusal refusal = cap_.MakeRoom(
        UserIdOf(user),
        [frame, clock_ns](const Entry& e) {
          return e.last_frame != frame && clock_ns >= e.open_until_ns;
        },
        [this, &evicted](Entry& e) {
          evicted.push_back(*e.name);
          cap_.Remove(e);
          entries_.erase(entries_.find(*e.name));
        });
    if (refusal != engine::Refusal::kNone) return refusal;
    it = entries_.emplace(tick.topic, Entry{}).first;
    it->second.name = &it->first;
    cap_.Insert(it->second, UserIdOf(user));
  }
  Entry& e = it->second;
  e.last_frame = frame;
  // The MINUTE bucket this tick may open (the SECOND bucket ends no later) closes on every shard
  // once the log clock reaches its end + delay; a tick accepted after that is late and opens
  // nothing, and counting it anyway only asks for a clock the log has already passed.
  const std::int64_t end_ns =
      (engine::BucketStartMs(tick.ts_ns, engine::Mode::kMinute) + 60'000) * engine::kNsPerMs;
  e.open_until_ns = std::max(e.open_until_ns, end_ns + close_delay_ns_);
  return engine::Refusal::kNone;
}

}  // namespace tickwire::cluster
