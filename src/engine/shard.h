#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/bar.h"
#include "engine/history_ring.h"
#include "engine/record_block.h"
#include "engine/snapshot.h"
#include "engine/topic.h"
#include "engine/topic_cap.h"

namespace tickwire::engine {

// A validated tick on its way to the topic's owner shard.
struct IngestTick {
  std::string topic;
  double price = 0;
  double size = 0;
  std::int64_t ts_ns = 0;        // event time, already stamped (never 0 here)
  std::int64_t accepted_ns = 0;  // server wall clock when the PUBLISH was accepted
  // 0: the shard numbers the tick (last seq + 1). Multi-instance mode: the number the shared
  // log gives it, above every earlier one (PROTOCOL S7: numbers may skip).
  std::uint64_t seq = 0;
  std::uint32_t index = 0;  // position in its PUBLISH frame (names a refused tick to its producer)
};

// Largest |price| and size a tick may carry (PROTOCOL S6). With both bounds, a bar's sums stay
// finite whatever its tick count: |price * size| <= 1e30, so the sum of price * size over even
// 2^64 (about 1.8e19) ticks is at most 1.8e49 and the sum of sizes at most 1.8e34, both far below
// the largest double (1.8e308); no sum of finite terms that small can reach infinity or NaN.
// vwap divides the first by the second only when the second is not 0, and
// |sum(price * size)| <= max|price| * sum(size), so vwap stays within about the price bound.
inline constexpr double kMaxAbsPrice = 1e15;
inline constexpr double kMaxSize = 1e15;

// Sizes and delays of one shard, from the server configuration.
struct ShardOptions {
  // A bucket closes once every tick accepted before its end + close_delay has been applied.
  std::int64_t close_delay_ns = 100 * kNsPerMs;
  std::size_t second_bars = 3600;                // retained closed SECOND bars per topic
  std::size_t minute_bars = 1440;                // retained closed MINUTE bars per topic
  std::size_t ticks = 1024;                      // retained ticks per topic
  std::size_t max_topics = 100'000;              // this shard's share of MAX_TOPICS
  std::size_t max_topics_per_user = 0;           // its share of MAX_TOPICS_PER_USER (0: none)
  std::size_t max_backfill_records = 1'000'000;  // this shard's share of one backfill
};

// Counters a shard keeps (read by its worker only).
struct ShardStats {
  std::uint64_t ticks = 0;
  // Late ticks (PROTOCOL S8a): too late for their SECOND bar, so folded into no bar. Lateness is
  // decided once per tick, against its SECOND bucket, so a MINUTE bar is always the fold of its
  // SECOND bars. late_minute counts the late ticks whose MINUTE bucket had closed too.
  std::uint64_t late_second = 0;
  std::uint64_t late_minute = 0;
  std::uint64_t bars_second = 0;
  std::uint64_t bars_minute = 0;
  std::uint64_t topics_evicted = 0;
  std::uint64_t backfills_truncated = 0;
  std::array<std::uint64_t, kRefusalKinds> ticks_refused{};  // by Refusal
};

// What Apply did with a run of ticks.
struct ApplyResult {
  std::size_t applied = 0;
  std::size_t late = 0;             // applied ticks folded into no bar (PROTOCOL S8a)
  std::size_t refused = 0;          // ticks for new topics the topic cap had no room for
  std::size_t first_refused = 0;    // index in the run of the first refused tick
  Refusal reason = Refusal::kNone;  // why that one was refused
};

// A client's position in one topic's tick numbering (Subscribe.resume_after, PROTOCOL S8c).
struct ResumePoint {
  std::string topic;
  std::uint64_t after_seq = 0;    // replay ticks with seq above it
  std::uint64_t topic_epoch = 0;  // the numbering after_seq belongs to; 0: not known
};

// Ticks a replay knows it did not send (HistoryEnd.lost): seqs from_seq..to_seq of `topic` in
// its numbering `topic_epoch`; to_seq 0: up to the end of that numbering (the topic was
// forgotten, or the position belonged to another stream).
struct LostRange {
  std::string topic;
  std::uint64_t from_seq = 0;
  std::uint64_t to_seq = 0;
  std::uint64_t topic_epoch = 0;
};

// What a subscriber asks an owner shard for before it goes live (PROTOCOL S8b). The same
// request is sent for every slice of one replay; only the cursor changes.
struct HistoryRequest {
  Mode mode = Mode::kTick;
  bool wildcard = false;
  // The exact topics this shard owns, sorted by name (unused for wildcard). Shared: the
  // subscriber sends it with every slice request and never copies it.
  std::shared_ptr<const std::vector<std::string>> topics;
  // Prefix subscriptions (unused for wildcard): prefixes ("FX." for "FX.*"), sorted, none a
  // prefix of another. Every topic of this shard that starts with one is replayed, merged in
  // name order with `topics`.
  std::shared_ptr<const std::vector<std::string>> prefixes;
  std::uint32_t backfill = 0;  // the N most recent per topic, or
  std::int64_t since_ms = 0;   // everything from this time on (0 .. kMaxSinceMs)
  // TICK only (PROTOCOL S8c): positions of this shard's topics, sorted by topic. A listed topic
  // replays its ticks with seq above after_seq instead of backfill/since_ms; with neither of
  // those, unlisted topics replay nothing.
  std::shared_ptr<const std::vector<ResumePoint>> resume;
  // TICK only (S8c): topics not in `resume` also replay every tick accepted at or after this
  // place in the accept order (0: none), besides what backfill/since_ms select.
  std::int64_t resume_from_ns = 0;
};

// Where a sliced replay stands on one shard. The subscriber keeps it between slices and sends
// it back with the next request; the shard keeps no state of its own for a replay, so a
// cancelled or abandoned replay costs it nothing.
//
// Topics are replayed in name order (for `*`: the shard's topics at the time each slice is
// read). `after` divides them: every topic named at or before it is complete. The topic being
// replayed when a slice filled up is `partial`; its next slice continues after the last key
// examined, up to `partial_cap`, the topic's newest key when its replay began (newer records
// reach the subscriber live).
struct HistoryCursor {
  bool started = false;
  bool finished = false;             // nothing more to send from this shard
  bool truncated = false;            // the share of MAX_BACKFILL_RECORDS cut something
  bool retention_cut = false;        // the rings no longer held records asked for (S8c)
  bool epoch_changed = false;        // a resume position's numbering is gone (S8c)
  std::string after;                 // "" before the first topic (topic names are never empty)
  std::string partial;               // empty: no topic in progress
  std::uint64_t partial_serial = 0;  // its incarnation: an evicted topic created again differs
  std::uint64_t partial_key = 0;     // last key examined
  std::uint64_t partial_cap = 0;
  std::uint64_t partial_quota = 0;  // records it may still send
  std::uint64_t budget = 0;         // records the replay may still send from this shard
  std::uint64_t topics_left = 0;    // topics not yet begun (for the fair share of `budget`)
};

// One slice of a replay: records oldest first per topic, topics in name order, and the cursor
// after it. The topics named in (previous cursor's `after`, this cursor's `after`] are
// complete (all of them once `finished`); `partial` is not.
struct HistorySlice {
  RecordBlock records;
  HistoryCursor cursor;
  std::vector<LostRange> lost;  // what this slice knows it did not send (resume positions)
  // Forgotten numberings the shard can no longer name (more than kMaxTombstones since the
  // request's resume_from_ns): counted as omitted ranges.
  std::uint32_t lost_unnamed = 0;
};

// Bounds on the work of one slice.
struct SliceLimits {
  std::size_t max_bytes = 64 * 1024;  // encoded records (the slice ends after the one past it)
  std::size_t max_steps = 4096;       // topics visited plus retained records examined
};

// Where a snapshot of a shard stands between slices (Shard::SnapshotSlice). Topics are written
// in name order; every topic named at or before `after` has been written.
struct SnapshotCursor {
  std::string after;  // "" before the first topic (topic names are never empty)
  bool finished = false;
  std::uint64_t topics = 0;  // topic records written so far
};

// The state of the topics one worker owns: sequence numbers, open bars, history rings and
// which workers have subscribers. Runs on its owning worker only; no locks, no I/O.
class Shard {
 public:
  explicit Shard(unsigned index, ShardOptions options = {});
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Assigns seq/prev_seq to each tick in order, folds it into its open SECOND and MINUTE bars
  // (unless late for its SECOND bucket: then into neither), keeps it in the tick history, and
  // appends an encoded TICK record for every tick that some worker subscribes to. A tick for a
  // topic the shard does not hold creates it (as `user`'s), in place of the least recently
  // published topic when the cap is reached and that one has no open bar; when it has, the tick is
  // refused: not applied, not kept, counted.
  ApplyResult Apply(std::span<const IngestTick> ticks, RecordBlock& out, UserId user = 0);
  // The accept order (PROTOCOL S8c resume_from_ns): ticks applied from now on take at least
  // `ns` as their place in it; it never moves back. The caller advances it before Apply: the
  // wall clock in the embedded mode, the log's clock in multi-instance mode.
  void AdvanceOrderClock(std::int64_t ns) { order_ns_ = std::max(order_ns_, ns); }
  std::int64_t order_clock_ns() const { return order_ns_; }

  // Multi-instance mode: forgets a topic with its history because the shared log's topic cap
  // evicted it (its bars are closed by then). False if the shard did not hold it.
  bool Forget(std::string_view topic);
  // Multi-instance mode: ticks the shared log's topic cap refused before they reached a shard.
  void CountRefused(Refusal reason, std::uint64_t ticks) {
    stats_.ticks_refused[static_cast<std::size_t>(reason)] += ticks;
  }

  // Every tick accepted before `watermark_ns` (server wall clock) has been applied: closes the
  // buckets whose end + close delay is at or before it, in order, appending an encoded BAR
  // record for each bar some worker subscribes to. Returns the number of bars closed.
  std::size_t AdvanceWatermark(std::int64_t watermark_ns, RecordBlock& out);

  // The next slice of a replay for a subscriber that starts with backfill or since_ms: what
  // `cursor` has not covered yet, within `limits`. Each topic sends its newest selected records
  // up to a fair share of the replay's budget (this shard's share of MAX_BACKFILL_RECORDS):
  // a topic begun with B records left and T topics to go may send ceil(B / T).
  HistorySlice NextHistorySlice(const HistoryRequest& request, HistoryCursor cursor,
                                SliceLimits limits = {});

  // Worker `worker` gained (first subscriber) or lost (last subscriber) interest in a topic.
  // Interest lives in its own table, whether or not the topic exists: it creates no topic, does
  // not count against the cap and keeps no topic from being evicted; a topic created later
  // takes its masks from there.
  void SetInterest(std::string_view topic, Mode mode, unsigned worker, bool interested);
  // Same for the "*" wildcard, which covers every topic this shard owns, present and future,
  // or with a `prefix` ("FX."), for the pattern "FX.*": every topic whose name starts with it.
  void SetWildcardInterest(Mode mode, unsigned worker, bool interested,
                           std::string_view prefix = {});

  // Appends the next topic records of a snapshot (snapshot.h) to `out`, in name order after
  // `cursor`, until `out` has grown by `max_bytes` or every topic is written (a topic is never
  // split, so one slice may exceed `max_bytes` by one topic's record). Each topic is written
  // as it stands when its record is made; topics created after the cursor passed their name
  // are in the next snapshot.
  void SnapshotSlice(SnapshotCursor& cursor, std::string& out, std::size_t max_bytes) const;
  // Restores one topic from a snapshot, as it was (seq state, open bars, rings; the rings keep
  // their newest entries up to this shard's limits). The topic belongs to no user (user 0). False,
  // and nothing changes, when the shard holds the topic already or is at its cap: the caller
  // restores the most recently published topics last, having kept only as many as fit.
  bool Restore(const TopicImage& topic);
  // Restores forgotten numberings (snapshot tombstones) of topics this shard owns, oldest first;
  // `dropped_order_ns`: the newest one the writer no longer kept.
  void RestoreTombstones(std::vector<Tombstone> tombstones, std::int64_t dropped_order_ns);
  std::size_t tombstone_count() const { return tombstones_.size(); }
  // After every shard restored its topics: moves this shard's next topic epoch past `epoch` (the
  // largest restored on any shard, max_restored_epoch()), so no numbering is handed out twice.
  void AdvanceTopicEpochsPast(std::uint64_t epoch);
  std::uint64_t max_restored_epoch() const { return max_restored_epoch_; }
  // Gives every topic a new epoch: the restored numbering may repeat seqs clients have seen (a
  // snapshot older than the last tick, after a crash), so it must not look continuous (S7a).
  void RenewTopicEpochs();

  // Grows whenever what a snapshot holds may have changed (a tick applied, a bar closed, a topic
  // forgotten or restored): equal counts mean an equal snapshot.
  std::uint64_t ChangeCount() const {
    return stats_.ticks + stats_.bars_second + stats_.bars_minute + stats_.topics_evicted +
           restored_;
  }

  // Every SECOND (MINUTE) bucket starting before this has been closed, and its bars are in the
  // RecordBlocks AdvanceWatermark filled (INT64_MIN before the first close).
  std::int64_t second_closed_before_ms() const { return second_closed_before_ms_; }
  std::int64_t minute_closed_before_ms() const { return minute_closed_before_ms_; }

  std::size_t topic_count() const { return topics_.size(); }
  // Topics some worker has exact subscribers for (existing or not).
  std::size_t interest_count() const { return interest_.size(); }
  // Prefix patterns some worker has subscribers for.
  std::size_t prefix_interest_count() const { return prefix_interest_.size(); }
  std::uint64_t LastSeq(std::string_view topic) const;
  // The topic's current topic_epoch (0: not held).
  std::uint64_t TopicEpoch(std::string_view topic) const;
  // Shards step their topic epochs by this, each from its own index + 1, so no two shards of a
  // process hand out the same one (a restart may move a topic to another shard).
  static constexpr std::uint64_t kEpochStride = 64;
  unsigned index() const { return index_; }
  const ShardStats& stats() const { return stats_; }
  const ShardOptions& options() const { return options_; }
  // Bytes held by history rings and open bars (walks every topic: for tests and tooling).
  std::size_t HistoryBytes() const;
  // Retained closed bars of `interval` for a topic, oldest first (for tests and tooling).
  std::vector<Bar> RetainedBars(std::string_view topic, Mode interval) const;

 private:
  // A retained tick: 40 bytes. Its own seq and accept-order place (PROTOCOL S8c
  // resume_from_ns) are its successor's prev_seq and prev_order_ns, or the topic's last_seq and
  // last_order_ns for the newest (SeqOf, OrderOf): every tick of a topic passes through its
  // ring, so the chain is exact. Applying a tick then writes its slot without reading the one
  // it overwrites (a cold line with thousands of topics), and the oldest record's fields name
  // the newest tick the ring dropped.
  struct TickRecord {
    double price;
    double size;
    std::int64_t ts_ns;
    std::uint64_t prev_seq;      // the topic's previous tick (0: none)
    std::int64_t prev_order_ns;  // that tick's accept-order place (0: none or unknown)
  };
  struct TopicState {
    explicit TopicState(const ShardOptions& o)
        : seconds(o.second_bars), minutes(o.minute_bars), ticks(o.ticks) {}
    const std::string* name = nullptr;  // the map key
    std::uint64_t serial = 0;           // creation order in this shard: tells incarnations apart
    std::uint64_t last_seq = 0;
    std::int64_t last_publish_ns = 0;  // accept time of its newest tick (for snapshots)
    std::int64_t last_order_ns = 0;    // accept-order place of its newest tick (0: none)
    // The incarnation of its numbering, sent with every tick (Tick.topic_epoch, PROTOCOL S7a).
    std::uint64_t epoch = 0;
    std::array<WorkerMask, kModeSlots> interest{};
    // Workers with prefix subscribers matching this topic, as of `prefix_epoch` (recomputed
    // the first time the topic emits a record after the shard's prefix interest changed).
    std::array<WorkerMask, kModeSlots> prefix_interest{};
    std::uint64_t prefix_epoch = 0;
    // Open buckets, ascending start (several only while ticks straddle a boundary).
    std::vector<BarAccumulator> open_seconds;
    std::vector<BarAccumulator> open_minutes;
    std::int64_t last_second_start = -1;  // newest closed bar per interval (-1: none)
    std::int64_t last_minute_start = -1;
    HistoryRing<Bar> seconds;
    HistoryRing<Bar> minutes;
    HistoryRing<TickRecord> ticks;
    CapLinks<TopicState> cap;  // place in the least-recently-published lists
    bool in_open_list = false;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return TopicHash(s); }
  };
  using TopicMap = std::unordered_map<std::string, TopicState, Hash, std::equal_to<>>;
  using Masks = std::array<WorkerMask, kModeSlots>;
  using InterestMap = std::unordered_map<std::string, Masks, Hash, std::equal_to<>>;

  // Applies one tick to its topic's state (`found`, or null: create it). Returns kNone when
  // applied (and sets `late`), else why the new topic was refused.
  Refusal ApplyOne(const IngestTick& t, TopicState* found, UserId user, RecordBlock& out,
                   bool& late);
  // Whether a tick accepted at `accepted_ns` is too late for the bucket of `interval` that holds
  // `ts_ns`: accepted after its end + close delay, or that bucket already closed (the second
  // condition only adds cases when the wall clock stepped back).
  bool LateFor(Mode interval, std::int64_t ts_ns, std::int64_t accepted_ns) const;
  // Creates a topic for `user` within the cap, evicting to make room; null when refused.
  TopicState* Create(std::string_view topic, UserId user, Refusal& refusal);
  const TopicState* Find(std::string_view topic) const;
  TopicState* Find(std::string_view topic);
  void Fold(TopicState& st, Mode interval, const IngestTick& t);
  void EmitBar(TopicState& st, Mode interval, const Bar& bar, RecordBlock& out);
  // The workers a record of `st` in `slot` goes to: exact, "*" and prefix interest.
  WorkerMask Destinations(TopicState& st, std::size_t slot) {
    if (st.prefix_epoch != prefix_epoch_) RefreshPrefixInterest(st);
    return st.interest[slot] | wildcard_[slot] | st.prefix_interest[slot];
  }
  void RefreshPrefixInterest(TopicState& st) const;
  // The next topic of a prefix or exact-list replay in name order: the first after `after`, or
  // with `inclusive` the first at or after it. Null name when there is none.
  struct NextTopic {
    std::string_view name;
    const TopicState* st = nullptr;
  };
  NextTopic NextListedTopic(const HistoryRequest& req, std::string_view from, bool inclusive,
                            std::size_t& steps) const;
  // Topics of this shard a prefix request covers (exact list included), for the fair share.
  std::uint64_t CountListedTopics(const HistoryRequest& req) const;
  void Erase(TopicState& st);
  std::uint64_t LastKey(const TopicState& st, Mode mode) const;
  // Replays what it may of one topic into `out`; true when the topic is complete.
  struct SliceState;
  bool ReplayTopic(const TopicState& st, bool resume, SliceState& s);
  // The resume position `req` gives `topic` (null: none).
  static const ResumePoint* FindResume(const HistoryRequest& req, std::string_view topic);
  // `topic` has a resume position but the shard no longer holds it: reports what was lost.
  static void ReportForgotten(const HistoryRequest& req, std::string_view topic, SliceState& s);
  // resume_from_ns (S8c): the forgotten numberings the request covers whose newest tick was
  // accepted at or after it, as lost ranges (the marker's epoch_changed).
  // At most kMaxBuriedRangesPerReply are listed (about what one marker can hold); the rest are
  // counted in lost_unnamed, so a request costs the shard bounded memory.
  void ReportBuried(const HistoryRequest& req, HistorySlice& slice) const;
  // Remembers a forgotten numbering, the oldest making room at kMaxTombstones.
  void Bury(Tombstone t);
  // Whether the request's topics (exact, prefixes, `*`) include `topic`.
  static bool Covers(const HistoryRequest& req, std::string_view topic);
  // The seq and the accept-order place of the i-th retained tick of `st` (0 = oldest).
  static std::uint64_t SeqOf(const TopicState& st, std::size_t i) {
    return i + 1 < st.ticks.size() ? st.ticks[i + 1].prev_seq : st.last_seq;
  }
  static std::int64_t OrderOf(const TopicState& st, std::size_t i) {
    return i + 1 < st.ticks.size() ? st.ticks[i + 1].prev_order_ns : st.last_order_ns;
  }
  // Accept-order place of the newest tick `st`'s ring dropped (0: none dropped). An empty ring
  // (HISTORY_TICKS=0, or restored without ticks) retains none: its newest tick is the one.
  static std::int64_t DroppedOrder(const TopicState& st) {
    return st.ticks.empty() ? st.last_order_ns : st.ticks[0].prev_order_ns;
  }

  unsigned index_;
  ShardOptions options_;
  ShardStats stats_;
  TopicMap topics_;
  // The same topics in name order, for history replays that resume where they stopped.
  std::map<std::string_view, TopicState*> by_name_;
  std::uint64_t next_serial_ = 1;
  std::uint64_t restored_ = 0;  // topics restored from a snapshot (for ChangeCount)
  std::uint64_t max_restored_epoch_ = 0;
  std::int64_t order_ns_ = 0;  // AdvanceOrderClock
  // Numberings forgotten with their topics (eviction, S6b), oldest first, at most
  // kMaxTombstones: a resume_from_ns replay reports those whose newest tick it would have sent.
  std::deque<Tombstone> tombstones_;
  std::int64_t tombstones_dropped_order_ns_ = 0;  // newest last_order_ns pushed out of it
  // The next standalone topic epoch (index + 1, stepped by kEpochStride).
  std::uint64_t next_epoch_;
  TopicCap<TopicState, &TopicState::cap> cap_;
  // Workers with exact subscribers per topic, for topics that exist or not; bounded by the
  // subscriptions that name this shard's topics (see docs/ARCHITECTURE.md).
  InterestMap interest_;
  Masks wildcard_{};
  // Workers with prefix subscribers per prefix ("FX." for "FX.*"); bounded like interest_ by
  // the subscriptions (a connection holds at most kMaxPrefixPatterns patterns). A change bumps
  // the epoch; each topic picks it up lazily, so a change costs O(1) however many topics match.
  InterestMap prefix_interest_;
  std::uint64_t prefix_epoch_ = 1;
  std::vector<TopicState*> open_topics_;  // topics with at least one open bucket
  std::int64_t second_closed_before_ms_;  // SECOND buckets starting before this are closed
  std::int64_t minute_closed_before_ms_;
};

}  // namespace tickwire::engine
