// Micro-benchmarks of a shard's work: applying ticks (a topic lookup, seq, history, bars and the
// encoded record per tick), closing the SECOND bars of many topics (what a second's boundary
// costs the topic owner before a single byte is written), the topic hash itself, and reading one
// slice of a history replay (what one slice request costs the owner's event loop).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/record_block.h"
#include "engine/shard.h"

namespace {

using tickwire::engine::HistoryCursor;
using tickwire::engine::HistoryRequest;
using tickwire::engine::IngestTick;
using tickwire::engine::kNsPerMs;
using tickwire::engine::Mode;
using tickwire::engine::RecordBlock;
using tickwire::engine::Shard;
using tickwire::engine::SnapshotCursor;
using tickwire::engine::TopicHash;

constexpr std::int64_t kSecondNs = 1000 * kNsPerMs;
constexpr std::int64_t kStart = 1'700'000'000 * kSecondNs;

// `topics` topics with `ticks` ticks each in every second; every iteration folds one second of
// ticks (untimed) and then times the close of that second's bars, encoded for a '*' subscriber.
void BM_ShardCloseSecond(benchmark::State& state) {
  const auto topics = static_cast<std::size_t>(state.range(0));
  constexpr int kTicksPerTopic = 10;
  Shard shard(0);
  shard.SetWildcardInterest(Mode::kSecond, 0, true);
  std::vector<IngestTick> ticks;
  ticks.reserve(topics * kTicksPerTopic);
  RecordBlock out;
  std::int64_t second = kStart;
  std::size_t bars = 0;
  for (auto _ : state) {
    state.PauseTiming();
    ticks.clear();
    for (int k = 0; k < kTicksPerTopic; ++k) {
      for (std::size_t i = 0; i < topics; ++i) {
        const std::int64_t ts = second + (k * 97 + static_cast<std::int64_t>(i % 89)) * kNsPerMs;
        ticks.push_back(IngestTick{"bars." + std::to_string(i), 100.0 + static_cast<double>(k), 1.0,
                                   ts, ts, 0});
      }
    }
    shard.Apply(ticks, out);
    out.bytes.clear();
    out.entries.clear();
    state.ResumeTiming();
    bars += shard.AdvanceWatermark(second + kSecondNs + shard.options().close_delay_ns, out);
    second += kSecondNs;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(bars));
}
BENCHMARK(BM_ShardCloseSecond)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

// Frames of 100 ticks round-robin over `topics` topics, every tick encoded for a '*' TICK
// subscriber: the owner shard's per-tick cost (a hash lookup of the topic, seq, the tick ring,
// two bar folds, the record). Each simulated second (1000 frames) its bars close, untimed.
void BM_ShardApply(benchmark::State& state) {
  const auto topics = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t kBatch = 100;
  Shard shard(0);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  std::vector<std::string> names(topics);
  for (std::size_t i = 0; i < topics; ++i) names[i] = "sym." + std::to_string(i);
  std::vector<IngestTick> frame(kBatch);
  RecordBlock out;
  std::size_t next = 0;
  std::int64_t now = kStart;
  std::uint64_t frames = 0;
  for (auto _ : state) {
    for (auto& t : frame) {
      t.topic = names[next];
      t.price = 100.0;
      t.size = 1.0;
      t.ts_ns = t.accepted_ns = now;
      next = next + 1 == topics ? 0 : next + 1;
    }
    shard.AdvanceOrderClock(now);  // what the worker does before each batch (S8c accept order)
    shard.Apply(frame, out);
    out.bytes.clear();
    out.entries.clear();
    now += kNsPerMs;
    if (++frames % 1000 == 0) {
      state.PauseTiming();
      shard.AdvanceWatermark(now + shard.options().close_delay_ns + kSecondNs, out);
      out.bytes.clear();
      out.entries.clear();
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames * kBatch));
}
BENCHMARK(BM_ShardApply)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// The topic hash on names of `len` bytes (SipHash-1-3 under the process key), and FNV-1a 64,
// the unkeyed hash the tables used before, for comparison.
std::vector<std::string> HashInputs(std::size_t len) {
  std::vector<std::string> v;
  for (int i = 0; i < 1024; ++i) {
    std::string s = "T" + std::to_string(i * 7919);
    s.resize(len, 'x');
    v.push_back(std::move(s));
  }
  return v;
}

void BM_TopicHashSipHash13(benchmark::State& state) {
  const auto inputs = HashInputs(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(TopicHash(inputs[i++ & 1023]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopicHashSipHash13)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Arg(128);

std::uint64_t Fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

void BM_TopicHashFnv1a(benchmark::State& state) {
  const auto inputs = HashInputs(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Fnv1a(inputs[i++ & 1023]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopicHashFnv1a)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Arg(128);

// Hash flooding: 2,000 topic names chosen (by brute force, as a client could) so that FNV-1a
// puts them all in one bucket of a table of their size, then one lookup of each. Arg 0: the
// table hashes with FNV-1a (as the topic tables did); arg 1: with the keyed topic hash, which
// the client cannot aim at without the key. Same names, same table, same lookups.
template <typename H>
struct ByName {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return H{}(s); }
};
struct FnvHash {
  std::size_t operator()(std::string_view s) const { return Fnv1a(s); }
};
struct KeyedHash {
  std::size_t operator()(std::string_view s) const { return TopicHash(s); }
};

template <typename H>
void ChosenNamesLookup(benchmark::State& state) {
  constexpr std::size_t kNames = 2000;
  std::unordered_map<std::string, int, ByName<H>, std::equal_to<>> table;
  table.reserve(kNames);
  const std::size_t buckets = table.bucket_count();
  std::vector<std::string> names;
  const std::uint64_t target = Fnv1a("x") % buckets;
  for (std::uint64_t i = 0; names.size() < kNames; ++i) {
    std::string s = "AAPL." + std::to_string(i);
    if (Fnv1a(s) % buckets == target) names.push_back(std::move(s));
  }
  for (const auto& n : names) table.emplace(n, 0);
  std::size_t longest = 0;
  for (std::size_t b = 0; b < table.bucket_count(); ++b) {
    longest = std::max(longest, table.bucket_size(b));
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.find(std::string_view(names[i++ % kNames])));
  }
  state.counters["longest_chain"] = static_cast<double>(longest);
  state.SetItemsProcessed(state.iterations());
}
void BM_ChosenNamesLookupFnv1a(benchmark::State& state) { ChosenNamesLookup<FnvHash>(state); }
void BM_ChosenNamesLookupSipHash13(benchmark::State& state) { ChosenNamesLookup<KeyedHash>(state); }
BENCHMARK(BM_ChosenNamesLookupFnv1a);
BENCHMARK(BM_ChosenNamesLookupSipHash13);

// A '*' TICK replay since the start of `topics` topics of 1,024 retained ticks each, one slice
// (default limits: 64 KiB, 4,096 steps) per iteration, round after round.
void BM_HistorySlice(benchmark::State& state) {
  const auto topics = static_cast<std::size_t>(state.range(0));
  Shard shard(0);
  RecordBlock out;
  std::vector<IngestTick> ticks;
  for (int k = 0; k < 1024; ++k) {
    ticks.clear();
    for (std::size_t i = 0; i < topics; ++i) {
      const std::int64_t ts = kStart + k * kNsPerMs;
      ticks.push_back(IngestTick{"hist." + std::to_string(i), 100.0 + k, 1.0, ts, ts, 0});
    }
    shard.Apply(ticks, out);
  }
  HistoryRequest req;
  req.mode = Mode::kTick;
  req.wildcard = true;
  req.since_ms = 1;
  HistoryCursor cursor;
  std::size_t records = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto slice = shard.NextHistorySlice(req, cursor);
    records += slice.records.entries.size();
    bytes += slice.records.bytes.size();
    cursor = slice.cursor.finished ? HistoryCursor{} : std::move(slice.cursor);
    benchmark::DoNotOptimize(slice);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_HistorySlice)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

// One DATA_DIR snapshot slice (Snapshotter::kSliceBytes, 256 KiB, plus one topic) of a shard of
// `topics` topics whose rings are all full (3,600 SECOND bars, 1,024 ticks, MINUTE bars of an
// hour), round after round: what a worker's loop spends on one snapshot step.
void BM_SnapshotSlice(benchmark::State& state) {
  const auto topics = static_cast<std::size_t>(state.range(0));
  Shard shard(0);
  RecordBlock out;
  std::vector<IngestTick> ticks;
  for (int s = 0; s < 3700; ++s) {
    ticks.clear();
    for (std::size_t i = 0; i < topics; ++i) {
      const std::int64_t ts = kStart + s * 1000 * kNsPerMs + static_cast<std::int64_t>(i);
      ticks.push_back(IngestTick{"snap." + std::to_string(i), 100.0 + s, 1.0, ts, ts, 0});
    }
    shard.Apply(ticks, out);
    out = RecordBlock{};
    shard.AdvanceWatermark(kStart + (s + 1) * 1000 * kNsPerMs + 200 * kNsPerMs, out);
    out = RecordBlock{};
  }
  SnapshotCursor cursor;
  std::string bytes;
  bytes.reserve(512 * 1024);
  std::size_t total = 0;
  for (auto _ : state) {
    bytes.clear();
    shard.SnapshotSlice(cursor, bytes, 256 * 1024);
    total += bytes.size();
    if (cursor.finished) cursor = SnapshotCursor{};
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_SnapshotSlice)->Arg(100)->Unit(benchmark::kMicrosecond);

}  // namespace
