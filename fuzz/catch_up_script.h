// A byte-coded script that drives an owner Shard and a subscriber's delivery::CatchUp the way
// two workers do, and checks what the subscriber is sent. Used by the fuzz_catch_up target and
// by tests/delivery/catch_up_test.cc (random scripts from a fixed seed).
//
// The model of the channel between the two: what the owner produces (records, slices) reaches
// the subscriber in the order it was produced, in batches (as Worker::EndOfTurn and
// HandleInbox pass record blocks and slices on); a batch may arrive at any later point. Before
// the subscription, history builds up; after it, ticks, bar closes, evictions (a small topic
// cap), slice requests and deliveries interleave at random; at the end the replay runs to
// completion.
//
// Oracles, per topic of the subscription:
//  - no record twice, and records in the order the shard produced them (across evictions too);
//  - every record produced after the subscription started is sent;
//  - for since_ms (unless the replay was cut by MAX_BACKFILL_RECORDS): every record retained and
//    selected when the subscription started that is still retained at the end is sent;
//  - the replay sends at most the budget; nothing stays held once the replay is complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "delivery/catch_up.h"
#include "engine/shard.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::fuzzing {

namespace catch_up_detail {

using namespace tickwire::engine;  // NOLINT: test code

constexpr std::int64_t kT0 = 1'699'999'980'000 * kNsPerMs;
inline const char* const kNames[] = {"A", "B", "C", "D", "E", "F"};
constexpr std::size_t kTopics = 6;

class Bytes {
 public:
  Bytes(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool more() const { return i_ < n_; }
  std::uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t i_ = 0;
};

// A record as the subscriber sees it: topic and identity (a tick's price is unique per script;
// a bar is its start), and the order in which the shard produced it per topic.
struct Seen {
  std::string topic;
  std::uint64_t id;
};

inline bool Parse(std::string_view entry, Seen& out) {
  v1::DataBatch b;
  if (!b.ParseFromArray(entry.data(), static_cast<int>(entry.size())) || b.records_size() != 1) {
    return false;
  }
  const v1::Record& r = b.records(0);
  if (r.has_tick()) {
    out = {r.tick().topic(), static_cast<std::uint64_t>(r.tick().price())};
  } else {
    out = {r.bar().topic(), static_cast<std::uint64_t>(r.bar().start_ms())};
  }
  return true;
}

struct Turn {
  RecordBlock records;
  std::vector<HistorySlice> slices;
};

}  // namespace catch_up_detail

// Runs one script; returns an empty string when every oracle held, else what failed.
inline std::string RunCatchUpScript(const std::uint8_t* data, std::size_t size) {
  using namespace catch_up_detail;  // NOLINT: test code
  Bytes in(data, size);
  ShardOptions o;
  o.close_delay_ns = (in.u8() % 3) * 100 * kNsPerMs;
  o.second_bars = 1 + in.u8() % 6;
  o.minute_bars = 1 + in.u8() % 3;
  o.ticks = 1 + in.u8() % 12;
  o.max_topics = 2 + in.u8() % 4;
  o.max_backfill_records = 1 + in.u8() % 64;
  const std::uint8_t sub = in.u8();
  const Mode mode = static_cast<Mode>(1 + sub % 3);
  const bool wildcard = (sub & 0x04) != 0;
  const std::uint32_t backfill = (sub & 0x08) != 0 ? 1 + in.u8() % 16u : 0;
  const std::int64_t since_back_ms = 1 + static_cast<std::int64_t>(in.u8()) * 100;
  // Exact: the topics subscribed; `*`: the topics another subscription already delivers.
  std::uint8_t mask = in.u8() & 0x3F;
  if (!wildcard && mask == 0) mask = 1;
  // Small slices, so that topics are often left half replayed between slices.
  SliceLimits limits{1 + (in.u8() % 64u) * 8u, 1 + in.u8() % 24u};

  Shard shard(0, o);
  shard.SetWildcardInterest(mode, 0, true);
  auto subscribed = [&](std::string_view t) {
    for (std::size_t i = 0; i < kTopics; ++i) {
      if (t == kNames[i]) return wildcard || (mask & (1u << i)) != 0;
    }
    return false;
  };
  auto replayed = [&](std::string_view t) {  // not live already through another subscription
    for (std::size_t i = 0; i < kTopics; ++i) {
      if (t == kNames[i]) return !wildcard || (mask & (1u << i)) == 0;
    }
    return false;
  };

  std::int64_t now = kT0;
  std::uint64_t next_price = 1;
  struct TickModel {
    std::uint64_t id;
    std::int64_t ts_ns;
  };
  std::map<std::string, std::deque<TickModel>> retained_ticks;  // the shard's tick rings
  auto note_evictions = [&] {
    for (auto& [topic, ring] : retained_ticks) {
      if (!ring.empty() && shard.LastSeq(topic) == 0) ring.clear();
    }
  };
  auto retained = [&](const std::string& topic) {  // identities the shard retains now
    std::set<std::uint64_t> ids;
    if (mode == Mode::kTick) {
      for (const auto& t : retained_ticks[topic]) ids.insert(t.id);
    } else {
      for (const auto& b : shard.RetainedBars(topic, mode)) {
        ids.insert(static_cast<std::uint64_t>(b.start_ms));
      }
    }
    return ids;
  };

  std::deque<Turn> in_transit;
  Turn current;
  auto seal = [&] {
    in_transit.push_back(std::move(current));
    current = Turn{};
  };

  bool started = false;
  bool abandoned = false;
  bool truncated = false;
  std::size_t replayed_records = 0;
  std::unique_ptr<delivery::CatchUp> catch_up;
  std::vector<Seen> sent;
  std::string failure;
  const delivery::CatchUp::Emit emit = [&](std::string_view entry) {
    Seen s;
    if (!Parse(entry, s)) {
      failure = "an emitted entry does not parse";
      return;
    }
    sent.push_back(std::move(s));
  };
  std::set<std::pair<std::string, std::uint64_t>> live_since_start;
  std::map<std::string, std::set<std::uint64_t>> selected_at_start;
  std::int64_t since_ms = 0;

  auto produced = [&](std::size_t from) {  // records the shard just encoded into `current`
    for (std::size_t i = from; i < current.records.entries.size(); ++i) {
      const auto& e = current.records.entries[i];
      Seen s;
      if (!Parse(current.records.EntryBytes(e), s)) failure = "a produced entry does not parse";
      if (started && subscribed(s.topic)) live_since_start.emplace(s.topic, s.id);
    }
  };
  auto deliver = [&](Turn& t) {
    if (!started || abandoned) return;
    for (const auto& e : t.records.entries) {
      const std::string_view topic = t.records.Topic(e);
      if (e.mode != mode || !subscribed(topic)) continue;
      if (catch_up && catch_up->Covers(topic, e.mode)) {
        catch_up->OnLive(topic, e.key, t.records.EntryBytes(e), emit);
      } else {
        emit(t.records.EntryBytes(e));
      }
    }
    for (const auto& slice : t.slices) {
      if (!catch_up) continue;
      if (catch_up->OnSlice(0, slice, emit)) {
        if (catch_up->held_bytes() != 0) failure = "held bytes left after the replay completed";
        catch_up.reset();
      }
    }
  };
  auto serve = [&] {
    delivery::CatchUp::SliceRequest req;
    if (!catch_up || !catch_up->NextRequest(req)) return;
    // What the turn produced so far goes first, what it produces later after the slice (as
    // Worker::ServeHistorySlices cuts the turn's block before reading).
    seal();
    HistorySlice slice = shard.NextHistorySlice(req.request, req.cursor, limits);
    replayed_records += slice.records.entries.size();
    if (slice.cursor.truncated) truncated = true;
    current.slices.push_back(std::move(slice));
    seal();
  };
  auto start = [&] {
    started = true;
    since_ms = std::max<std::int64_t>(1, now / kNsPerMs - since_back_ms);
    delivery::CatchUp::TopicSet topics;
    for (std::size_t i = 0; i < kTopics; ++i) {
      if ((mask & (1u << i)) != 0) topics.insert(kNames[i]);
    }
    catch_up = std::make_unique<delivery::CatchUp>(1, 1, mode, wildcard, std::move(topics),
                                                   backfill, backfill > 0 ? 0 : since_ms, 1);
    for (const char* topic : kNames) {
      if (!subscribed(topic) || !replayed(topic)) continue;
      auto& ids = selected_at_start[topic];
      if (mode == Mode::kTick) {
        for (const auto& t : retained_ticks[topic]) {
          if (t.ts_ns >= since_ms * kNsPerMs) ids.insert(t.id);
        }
      } else {
        for (const auto& b : shard.RetainedBars(topic, mode)) {
          if (b.start_ms >= since_ms) ids.insert(static_cast<std::uint64_t>(b.start_ms));
        }
      }
    }
  };

  int ops = 0;
  while (in.more() && ++ops < 3000 && failure.empty()) {
    const std::uint8_t op = in.u8();
    switch (op % 8) {
      case 0:
      case 1: {  // a tick
        IngestTick t;
        t.topic = kNames[(op / 8) % kTopics];
        t.price = static_cast<double>(next_price++);
        t.size = 1;
        // Event time from 2 s behind to 3 s ahead of the clock, in 10 ms steps.
        t.ts_ns = now + (static_cast<std::int64_t>(in.u8()) * 2 - 200) * 10 * kNsPerMs;
        t.accepted_ns = now;
        const std::size_t before = current.records.entries.size();
        const ApplyResult applied = shard.Apply(std::span(&t, 1), current.records);
        note_evictions();
        if (applied.applied == 0) break;  // refused: the topic cap had no room for a new topic
        auto& ring = retained_ticks[t.topic];
        ring.push_back({static_cast<std::uint64_t>(t.price), t.ts_ns});
        if (ring.size() > o.ticks) ring.pop_front();
        produced(before);
        break;
      }
      case 2: {  // the clock moves: bars close
        now += (1 + in.u8()) * 25 * kNsPerMs;
        const std::size_t before = current.records.entries.size();
        shard.AdvanceWatermark(now, current.records);
        note_evictions();
        produced(before);
        break;
      }
      case 3:
        seal();
        break;
      case 4:
        if (!in_transit.empty()) {
          deliver(in_transit.front());
          in_transit.pop_front();
        }
        break;
      case 5:
        serve();
        break;
      case 6:
        if (!started) start();
        break;
      case 7:
        if (started && !abandoned && catch_up && op >= 0xF0) {  // rarely: UNSUBSCRIBE
          catch_up->Abandon([](std::string_view) { return false; }, emit);
          if (catch_up->held_bytes() != 0) failure = "held bytes left after abandoning";
          catch_up.reset();
          abandoned = true;
        }
        break;
    }
  }
  if (!failure.empty()) return failure;
  if (!started) start();
  // The replay runs to completion; then everything in transit arrives.
  for (int guard = 0; catch_up && failure.empty(); ++guard) {
    if (guard > 100'000) return "the replay did not finish";
    serve();
    seal();
    while (!in_transit.empty()) {
      deliver(in_transit.front());
      in_transit.pop_front();
    }
  }
  seal();
  while (!in_transit.empty()) {
    deliver(in_transit.front());
    in_transit.pop_front();
  }
  if (!failure.empty()) return failure;

  // Once each, in the order produced (a tick's id is its production number; a bar's start
  // rises with every bar of its topic, evictions included).
  std::map<std::string, std::uint64_t> last;
  std::set<std::pair<std::string, std::uint64_t>> once;
  for (const auto& s : sent) {
    if (!subscribed(s.topic)) return "a record of a topic not subscribed: " + s.topic;
    if (!once.emplace(s.topic, s.id).second) {
      return "sent twice: " + s.topic + " " + std::to_string(s.id);
    }
    auto [it, first] = last.emplace(s.topic, s.id);
    if (!first) {
      if (s.id <= it->second) {
        return "out of order: " + s.topic + " " + std::to_string(s.id) + " after " +
               std::to_string(it->second);
      }
      it->second = s.id;
    }
  }
  if (replayed_records > o.max_backfill_records) return "the replay sent more than its budget";
  if (abandoned) return {};
  for (const auto& key : live_since_start) {
    if (!once.contains(key)) {
      return "a live record was lost: " + key.first + " " + std::to_string(key.second);
    }
  }
  if (backfill == 0 && !truncated) {
    for (const auto& [topic, ids] : selected_at_start) {
      const auto still = retained(topic);
      for (std::uint64_t id : ids) {
        if (still.contains(id) && !once.contains({topic, id})) {
          return "a retained record was not replayed: " + topic + " " + std::to_string(id);
        }
      }
    }
  }
  return {};
}

}  // namespace tickwire::fuzzing
