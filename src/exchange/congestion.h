#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace tickwire::exchange {

// Ingest back-pressure: per worker, the ticks posted to it and not yet applied. When any worker
// is over the high-water mark, producers stop being read until every worker is below half of it.
// Written by whoever posts ticks (adds) and by the applying worker (subtracts); read anywhere.
class IngestBacklog {
 public:
  static constexpr std::int64_t kHighWater = 65'536;
  static constexpr unsigned kMaxWorkers = 64;  // one bit per worker in engine::WorkerMask

  void Add(unsigned worker, std::int64_t ticks) {
    slots_[worker].ticks.fetch_add(ticks, std::memory_order_relaxed);
  }
  void Applied(unsigned worker, std::int64_t ticks) {
    slots_[worker].ticks.fetch_sub(ticks, std::memory_order_relaxed);
  }
  std::int64_t ticks(unsigned worker) const {
    return slots_[worker].ticks.load(std::memory_order_relaxed);
  }
  // Some worker among the first `workers` is over `limit`.
  bool Over(unsigned workers, std::int64_t limit) const {
    for (unsigned w = 0; w < workers; ++w) {
      if (ticks(w) > limit) return true;
    }
    return false;
  }

 private:
  // One cache line each: every worker writes its own.
  struct alignas(64) Slot {
    std::atomic<std::int64_t> ticks{0};
  };
  std::array<Slot, kMaxWorkers> slots_{};
};

}  // namespace tickwire::exchange
