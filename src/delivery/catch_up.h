#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "engine/record_block.h"
#include "engine/shard.h"
#include "engine/topic.h"

namespace tickwire::delivery {

// Set when a replay is abandoned (UNSUBSCRIBE, the connection closing). Owner shards read it on
// their own threads and skip the replay's slice requests instead of serving them.
struct ReplayCancel {
  std::atomic<bool> cancelled{false};
};

// One subscription with backfill or since_ms that is not fully live yet (PROTOCOL S8b), on the
// subscriber's side. Runs on the subscriber's worker only; no locks, no I/O: what it sends
// goes to an `Emit` callback (the connection's open DATA_BATCH).
//
// Its history comes from every owner shard in slices, one request per shard at a time
// (engine::Shard::NextHistorySlice); the caller asks for the next slice only when it has room
// for it, so the consumer's reading paces the replay. Meanwhile live records of the covered
// topics arrive from the fan-out table. The two are joined per topic, in key order:
//
//   - Interest was registered before the first slice request, and an owner's slice travels
//     behind every record it produced before reading it. So when a topic's replay is read,
//     every live record of that topic produced before that moment has already arrived here.
//   - Until a topic's replay is complete, its live records are held (in key order). Each slice
//     is merged with them: held records older than a replayed one go first, a held record equal
//     to a replayed one is a duplicate and is dropped, the rest wait. When the topic completes,
//     what is still held follows its last replayed record, and from then on its live records
//     are passed straight through.
//   - So the subscriber gets, per topic and in key order, the union of the replay and every
//     live record since the subscription, each once: no gap at the seam, no duplicate.
//
// A topic is complete once its owner's cursor has passed its name (topics replay in name
// order); a topic created behind the cursor had nothing before the subscription, so all of it
// arrives live. Ticks of a topic that was evicted and created again restart at seq 1: what is
// held of the older incarnation is sent at once (no replay of it can still come; the new one
// is replayed from its beginning).
class CatchUp {
 public:
  using Emit = std::function<void(std::string_view entry)>;
  struct TopicHasher {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return engine::TopicHash(s); }
  };
  using TopicSet = std::unordered_set<std::string, TopicHasher, std::equal_to<>>;

  // A request for the next slice of this replay from one owner shard.
  struct SliceRequest {
    unsigned shard = 0;
    engine::HistoryRequest request;
    engine::HistoryCursor cursor;
  };

  // Accounting for held records: payload plus this much per record and per held topic
  // (allocations and bookkeeping), so the charge is what the memory costs.
  static constexpr std::size_t kHeldRecordOverhead = 72;
  static constexpr std::size_t kHeldTopicOverhead = 128;

  // What a replay covers: `*`, or exact topics and prefix patterns, less what other
  // subscriptions of the connection already deliver live in the same mode (those get no
  // history: it would arrive after their live records).
  struct Scope {
    bool wildcard = false;
    TopicSet topics;                    // exact topics it replays (not with wildcard)
    std::vector<std::string> prefixes;  // prefixes ("FX." for "FX.*") it replays (not wildcard)
    TopicSet excluded;                  // topics "*" or a prefix covers that it does not replay
    std::vector<std::string> excluded_prefixes;  // the same for whole prefixes
    // TICK only: resume positions (PROTOCOL S8c), sorted by topic; those of topics it does not
    // replay are ignored.
    std::vector<engine::ResumePoint> resume;
    // TICK only: Subscribe.resume_from_ns (0: none), for the topics without a position.
    std::int64_t resume_from_ns = 0;
  };

  // What the subscription's history end marker says (PROTOCOL S8c), gathered from the slices.
  struct EndReport {
    bool retention = false;
    bool backfill_limit = false;
    bool epoch_changed = false;
    std::vector<engine::LostRange> lost;  // at most kMaxLostRanges; the rest are counted
    std::uint32_t lost_omitted = 0;
    bool truncated() const { return retention || backfill_limit || epoch_changed; }
    void AddLost(engine::LostRange range);
  };
  static constexpr std::size_t kMaxLostRanges = 1024;

  CatchUp(std::uint64_t id, std::uint64_t subscription_id, engine::Mode mode, Scope scope,
          std::uint32_t backfill, std::int64_t since_ms, unsigned shards);
  // Without prefixes. `topics`: for an exact subscription the topics it replays; for `*` the
  // topics it does not.
  CatchUp(std::uint64_t id, std::uint64_t subscription_id, engine::Mode mode, bool wildcard,
          TopicSet topics, std::uint32_t backfill, std::int64_t since_ms, unsigned shards)
      : CatchUp(id, subscription_id, mode, ScopeOf(wildcard, std::move(topics)), backfill, since_ms,
                shards) {}
  CatchUp(const CatchUp&) = delete;
  CatchUp& operator=(const CatchUp&) = delete;

  std::uint64_t id() const { return id_; }
  std::uint64_t subscription_id() const { return subscription_id_; }
  engine::Mode mode() const { return mode_; }
  const std::shared_ptr<ReplayCancel>& cancel() const { return cancel_; }
  // Whether a live record of (topic, mode) belongs to this replay.
  bool Covers(std::string_view topic, engine::Mode mode) const {
    return mode == mode_ && CoversTopic(topic);
  }
  // Every owner shard has finished and nothing is held: the subscription is live.
  bool complete() const { return unfinished_ == 0; }
  // Bytes charged for held records (see the overheads above).
  std::uint64_t held_bytes() const { return held_bytes_; }
  // What the replay left out so far (complete once complete()).
  EndReport& end_report() { return end_; }

  // The next slice request to send, if a shard has no request out and is not finished.
  bool NextRequest(SliceRequest& out);
  // A live record of a covered topic: passed to `emit` now, or held until its topic's replay
  // is complete.
  void OnLive(std::string_view topic, std::uint64_t key, std::string_view entry, const Emit& emit);
  // `shard`'s answer to the request NextRequest made for it: emits the replayed records merged
  // with the held ones. Returns complete().
  bool OnSlice(unsigned shard, const engine::HistorySlice& slice, const Emit& emit);
  // The replay is abandoned: cancels it, emits the held records of topics for which `keep`
  // holds (another subscription delivers them) and drops the rest.
  void Abandon(const std::function<bool(std::string_view topic)>& keep, const Emit& emit);

 private:
  struct Held {
    std::string bytes;
    std::uint64_t key;
  };
  using HeldList = std::vector<Held>;
  struct Owner {
    unsigned shard = 0;
    bool active = true;  // not finished
    bool in_flight = false;
    engine::HistoryRequest request;
    engine::HistoryCursor cursor;
    std::map<std::string, HeldList, std::less<>> held;  // topics not yet complete, by name
  };
  void Flush(HeldList& list, std::size_t from, const Emit& emit);
  void Release(const std::string& topic, const HeldList& list);

  bool CoversTopic(std::string_view topic) const {
    if (!wildcard_) {
      if (topics_.contains(topic)) return true;
      if (prefixes_.empty() || !MatchesPrefix(prefixes_, topic)) return false;
    }
    return !excluded_.contains(topic) &&
           (excluded_prefixes_.empty() || !MatchesPrefix(excluded_prefixes_, topic));
  }
  static bool MatchesPrefix(const TopicSet& prefixes, std::string_view topic);
  static Scope ScopeOf(bool wildcard, TopicSet topics) {
    Scope s;
    s.wildcard = wildcard;
    (wildcard ? s.excluded : s.topics) = std::move(topics);
    return s;
  }

  std::uint64_t id_;
  std::uint64_t subscription_id_;
  engine::Mode mode_;
  bool wildcard_;
  TopicSet topics_;
  TopicSet prefixes_;
  TopicSet excluded_;
  TopicSet excluded_prefixes_;
  unsigned shards_;
  bool all_shards_;  // "*" or a prefix: every shard has topics to replay
  // The owner shards with topics to replay: every shard for `*` or a prefix (index = shard),
  // only those of its topics for an exact subscription.
  std::vector<Owner> owners_;
  Owner& OwnerOf(unsigned shard);
  unsigned unfinished_ = 0;
  unsigned next_owner_ = 0;  // round robin over owners for requests
  std::uint64_t held_bytes_ = 0;
  EndReport end_;
  std::shared_ptr<ReplayCancel> cancel_ = std::make_shared<ReplayCancel>();
};

}  // namespace tickwire::delivery
