#pragma once

// Shared by the bars integration tests: reading DATA_BATCH frames with batch_seq checked, and
// producers that publish random ticks over real connections.

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {

// Everything one connection received, decoded, with batch_seq continuity checked.
struct Received {
  std::vector<v1::Tick> ticks;
  std::vector<v1::Bar> bars;
  std::uint64_t next_batch_seq = 1;
};

// Decodes one DATA_BATCH into `got`.
inline ::testing::AssertionResult TakeBatch(const ReadResult& r, Received& got) {
  if (r.frame.frame_type() != protocol::FrameType::kDataBatch) {
    return ::testing::AssertionFailure() << "unexpected " << DescribeFrame(r.frame);
  }
  auto batch = DecodeBatch(r.frame);
  if (!batch) return ::testing::AssertionFailure() << "DATA_BATCH does not parse";
  if (batch->batch_seq != got.next_batch_seq++) {
    return ::testing::AssertionFailure() << "batch_seq gap at " << batch->batch_seq;
  }
  for (auto& t : batch->ticks) got.ticks.push_back(std::move(t));
  for (auto& b : batch->bars) got.bars.push_back(std::move(b));
  return ::testing::AssertionSuccess();
}

// Reads DATA_BATCH frames until `until` returns true or `timeout` passes.
template <typename Until>
::testing::AssertionResult ReadUntil(RawClient& c, Received& got, milliseconds timeout,
                                     Until until) {
  const auto deadline = steady_clock::now() + timeout;
  while (!until()) {
    const ReadResult r = c.ReadFrame(Remaining(deadline));
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "after " << got.ticks.size() << " ticks and " << got.bars.size()
             << " bars: " << ReadStatusName(r.status) << " " << r.detail;
    }
    if (auto ok = TakeBatch(r, got); !ok) return ok;
  }
  return ::testing::AssertionSuccess();
}

// Reads whatever arrives until no tick or bar has for `quiet` (nothing more expected after it).
// Frames of watermarks alone (PROTOCOL S8d: one a second on a SECOND subscription) do not count
// as traffic, so the wait ends even while they keep coming.
inline ::testing::AssertionResult Drain(RawClient& c, Received& got, milliseconds quiet) {
  auto deadline = steady_clock::now() + quiet;
  for (;;) {
    const ReadResult r = c.ReadFrame(Remaining(deadline));
    if (r.status == ReadStatus::kTimeout) return ::testing::AssertionSuccess();
    if (!r.ok()) {
      return ::testing::AssertionFailure() << "while draining: " << ReadStatusName(r.status);
    }
    const std::size_t before = got.ticks.size() + got.bars.size();
    if (auto ok = TakeBatch(r, got); !ok) return ok << " (while draining)";
    if (got.ticks.size() + got.bars.size() != before) deadline = steady_clock::now() + quiet;
  }
}

// Picks a tick's ts_ns; 0 lets the server stamp it.
using Stamp = std::function<std::int64_t(std::mt19937_64&)>;

// Producers publishing random ticks: each of `producers` connections sends acked frames of five
// ticks on random `topics`, stamped by `stamp`, every 2 ms for `duration`. Returns when all are
// done; false when one could not connect or publish.
struct RandomTickRun {
  bool ok = true;
  std::int64_t newest_ts_ns = 0;  // the largest ts_ns a producer set (0 when all were 0)
};
inline RandomTickRun PublishRandomTicks(std::uint16_t port, const std::vector<std::string>& topics,
                                        int producers, milliseconds duration, std::uint64_t seed,
                                        const Stamp& stamp) {
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  std::atomic<std::int64_t> newest{0};
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      RawClient c;
      if (!c.Connect(port) || !c.Authenticate(ServerProcess::kUser, ServerProcess::kPass)) {
        failed = true;
        return;
      }
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(p));
      const auto end = steady_clock::now() + duration;
      std::uint32_t rid = 0;
      while (steady_clock::now() < end) {
        std::vector<v1::Tick> frame;
        for (int i = 0; i < 5; ++i) {
          const std::int64_t ts = stamp(rng);
          std::int64_t prev = newest.load();
          while (ts > prev && !newest.compare_exchange_weak(prev, ts)) {
          }
          frame.push_back(MakeTick(topics[rng() % topics.size()],
                                   100 + static_cast<double>(rng() % 1000) / 100.0,
                                   static_cast<double>(rng() % 100) / 10.0, ts));
        }
        if (!c.PublishAcked(++rid, frame)) {
          failed = true;
          return;
        }
        std::this_thread::sleep_for(milliseconds(2));
      }
    });
  }
  for (auto& t : threads) t.join();
  return RandomTickRun{!failed, newest.load()};
}

// Producer-stamped out of order, from `behind_ms` behind the wall clock to `ahead_ms` ahead;
// one tick in eight server-stamped.
inline Stamp SkewedStamp(std::int64_t behind_ms, std::int64_t ahead_ms) {
  return [behind_ms, ahead_ms](std::mt19937_64& rng) -> std::int64_t {
    const std::int64_t span_us = (behind_ms + ahead_ms) * 1000;
    const std::int64_t skew =
        static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span_us)) * 1000 -
        behind_ms * 1'000'000;
    return rng() % 8 == 0 ? 0 : NowNs() + skew;
  };
}

}  // namespace tickwire::testing
