// Micro-benchmarks of a shard's own work: closing the SECOND bars of many topics (what a
// second's boundary costs the topic owner before a single byte is written), and reading one
// slice of a history replay (what one slice request costs the owner's event loop).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
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

}  // namespace
