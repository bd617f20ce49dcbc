#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tickwire::obs {

// A counter with one writer (the thread that owns it) and any number of readers. An increment
// is a relaxed load and store, which compiles to a plain add (no lock prefix, no fence); a
// scrape reads it with a relaxed load. Never decreases.
class Counter {
 public:
  void Add(std::uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void operator++() { Add(1); }
  void operator++(int) { Add(1); }
  void operator+=(std::uint64_t n) { Add(n); }
  std::uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A gauge with one writer and any number of readers (see Counter).
class Gauge {
 public:
  void Add(std::int64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void operator++() { Add(1); }
  void operator--() { Add(-1); }
  void Set(std::int64_t v) { v_.store(v, std::memory_order_relaxed); }
  std::int64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

// A histogram with fixed integer bucket bounds and one writer (see Counter). Bounds are upper
// bounds in the histogram's own integer unit (e.g. microseconds); the exposition scales them.
// Observe is a short linear scan and two adds: no lock, no allocation.
template <std::size_t N>
class Histogram {
 public:
  using Bounds = std::array<std::uint64_t, N>;
  explicit constexpr Histogram(const Bounds& bounds) : bounds_(bounds) {}

  void Observe(std::uint64_t v) {
    std::size_t i = 0;
    while (i < N && v > bounds_[i]) ++i;
    ++buckets_[i];
    sum_ += v;
  }

  const Bounds& bounds() const { return bounds_; }
  // Count in bucket i alone (not cumulative); i == N is the +Inf overflow bucket.
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].Get(); }
  std::uint64_t sum() const { return sum_.Get(); }

 private:
  const Bounds& bounds_;
  std::array<Counter, N + 1> buckets_;
  Counter sum_;
};

// A histogram summed over several writers at scrape time.
struct HistogramSnapshot {
  std::vector<double> upper_bounds;       // scaled, +Inf excluded
  std::vector<std::uint64_t> cumulative;  // one per bound, then the +Inf bucket (= count)
  double sum = 0;
};

// Adds `h` into `snap`, scaling bounds and sum by 1/`divisor` (e.g. 1000 for us -> ms).
template <std::size_t N>
void Accumulate(const Histogram<N>& h, double divisor, HistogramSnapshot& snap) {
  if (snap.cumulative.empty()) {
    snap.cumulative.assign(N + 1, 0);
    for (std::uint64_t b : h.bounds())
      snap.upper_bounds.push_back(static_cast<double>(b) / divisor);
  }
  // Cumulative from per-bucket counts read once each, so the result is monotone even while
  // the writer keeps observing; the count is the +Inf bucket, never less than any bucket.
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= N; ++i) {
    running += h.bucket(i);
    snap.cumulative[i] += running;
  }
  snap.sum += static_cast<double>(h.sum()) / divisor;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Builds a Prometheus text exposition (format 0.0.4), one family at a time. Families are
// rendered by prometheus-cpp's serializer, so names, HELP text and label values are escaped
// the way Prometheus expects. Not thread-safe: build one per scrape.
class Exposition {
 public:
  // `prefix` goes before every family name (METRICS_PREFIX; the caller has validated it).
  explicit Exposition(std::string prefix = {});
  ~Exposition();
  Exposition(const Exposition&) = delete;
  Exposition& operator=(const Exposition&) = delete;

  // Starts a family; the samples below belong to it until the next Family call.
  void CounterFamily(std::string name, std::string help);
  void GaugeFamily(std::string name, std::string help);
  void HistogramFamily(std::string name, std::string help);

  void Sample(double value, Labels labels = {});
  void Sample(const HistogramSnapshot& h, Labels labels = {});

  std::string Render() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace tickwire::obs
