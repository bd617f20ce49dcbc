#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace tickwire::cli {

// Log-linear latency histogram in microseconds: exact below 64 µs, then 64 sub-buckets per
// power of two (under 1.6% relative error), up to 2^32 µs. Fixed size, no allocation on record.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr std::uint64_t kSub = 1u << kSubBits;
  static constexpr int kMaxExp = 32;
  static constexpr std::size_t kBuckets = (kMaxExp - kSubBits + 2) * kSub;

  void Record(std::int64_t latency_ns) {
    const std::uint64_t us = latency_ns <= 0 ? 0 : static_cast<std::uint64_t>(latency_ns) / 1000;
    ++counts_[Index(us)];
    ++total_;
  }

  void Merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
  }

  std::uint64_t total() const { return total_; }

  // Value (µs, bucket lower bound) at quantile q in [0, 1]; 0 when empty.
  std::uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return LowerBound(i);
    }
    return LowerBound(kBuckets - 1);
  }

  static std::size_t Index(std::uint64_t us) {
    if (us < kSub) return static_cast<std::size_t>(us);
    const int exp = std::min(static_cast<int>(std::bit_width(us)) - 1, kMaxExp);
    const std::uint64_t sub = (us >> (exp - kSubBits)) - kSub;
    return static_cast<std::size_t>(exp - kSubBits + 1) * kSub + std::min(sub, kSub - 1);
  }

  static std::uint64_t LowerBound(std::size_t index) {
    if (index < kSub) return index;
    const int exp = static_cast<int>(index / kSub) + kSubBits - 1;
    return (kSub + index % kSub) << (exp - kSubBits);
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
};

}  // namespace tickwire::cli
