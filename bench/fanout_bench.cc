// Micro-benchmarks of a worker's fan-out (delivery::FanoutTable::Deliver): one block of 1,000
// ticks over 1,000 topics ("FX.T0".."FX.T999", one tick each) handed to 100 subscribers, each
// subscribed to 10 of the topics exactly, or to "*", or to "FX.*". The "exact + prefixes" case
// is the exact one on a worker that also has prefix subscribers for other prefixes, which makes
// every topic pay the prefix lookup (one per '.' in its name) without a match.

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "delivery/fanout_table.h"
#include "engine/shard.h"

namespace {

using tickwire::delivery::FanoutTable;
using tickwire::delivery::Subscriber;
using tickwire::engine::Mode;

constexpr int kTopics = 1000;
constexpr int kSubscribers = 100;

struct Counter : Subscriber {
  std::size_t records = 0;
  void DeliverRecord(const tickwire::engine::RecordBlock&,
                     const tickwire::engine::RecordBlock::Entry&) override {
    ++records;
  }
  void DeliverRun(const tickwire::engine::RecordBlockPtr&,
                  std::span<const tickwire::engine::RecordBlock::Entry> run) override {
    records += run.size();
  }
};

std::string TopicName(int i) { return "FX.T" + std::to_string(i); }

tickwire::engine::RecordBlockPtr MakeBlock() {
  tickwire::engine::Shard shard(0);
  shard.SetWildcardInterest(Mode::kTick, 0, true);
  std::vector<tickwire::engine::IngestTick> ticks;
  for (int i = 0; i < kTopics; ++i) ticks.push_back({TopicName(i), 1.0, 1.0, 1});
  tickwire::engine::RecordBlock block;
  shard.Apply(ticks, block);
  return std::make_shared<const tickwire::engine::RecordBlock>(std::move(block));
}

enum Kind { kExact = 0, kWildcard = 1, kPrefix = 2, kExactWithPrefixes = 3 };

void BM_FanoutDeliver(benchmark::State& state) {
  const auto kind = static_cast<Kind>(state.range(0));
  FanoutTable table;
  std::vector<Counter> subs(kSubscribers);
  std::vector<FanoutTable::InterestChange> changes;
  for (int s = 0; s < kSubscribers; ++s) {
    std::vector<std::string> topics;
    if (kind == kExact || kind == kExactWithPrefixes) {
      for (int k = 0; k < 10; ++k) topics.push_back(TopicName(s * 10 + k));
    } else if (kind == kPrefix) {
      topics.push_back("FX.*");
    }
    table.Add(&subs[static_cast<std::size_t>(s)], Mode::kTick, topics, kind == kWildcard, changes);
    if (kind == kExactWithPrefixes) {
      table.Add(&subs[static_cast<std::size_t>(s)], Mode::kTick,
                std::vector<std::string>{"EQ" + std::to_string(s) + ".*"}, false, changes);
    }
  }
  const auto block = MakeBlock();
  std::size_t delivered = 0;
  for (auto _ : state) {
    delivered += table.Deliver(block, 0);
    benchmark::DoNotOptimize(delivered);
  }
  state.counters["deliveries_per_block"] =
      static_cast<double>(delivered) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * kTopics);  // records of the block examined
  static const char* kNames[] = {"exact", "wildcard", "prefix", "exact+prefixes"};
  state.SetLabel(kNames[kind]);
}
BENCHMARK(BM_FanoutDeliver)->Arg(kExact)->Arg(kWildcard)->Arg(kPrefix)->Arg(kExactWithPrefixes);

}  // namespace
