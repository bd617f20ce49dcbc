#pragma once

// The reference SECOND- and MINUTE-bar fold (PROTOCOL S8a) that tests compare the server's bars
// with, and the comparison itself. Header-only; shared by the bars integration tests and the
// soak.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::testing {

using BarKey = std::tuple<std::string, std::int64_t>;  // topic, start_ms

// Bars of one interval folded tick by tick. Ticks of one topic must be added in the order the
// server accepted them (seq order); topics may interleave. Late ticks must not be added.
class ReferenceBarFold {
 public:
  explicit ReferenceBarFold(tickwire::v1::Mode interval = tickwire::v1::MODE_SECOND)
      : interval_(interval) {}

  void Add(const tickwire::v1::Tick& t) {
    const std::int64_t bucket_ns =
        interval_ == tickwire::v1::MODE_MINUTE ? 60'000'000'000 : 1'000'000'000;
    const std::int64_t start = t.ts_ns() / bucket_ns * (bucket_ns / 1'000'000);
    Bucket& b = buckets_[BarKey{t.topic(), start}];
    if (b.count == 0) {
      b.open = b.high = b.low = b.close = t.price();
      b.open_ts = b.close_ts = t.ts_ns();
    } else {
      if (t.ts_ns() < b.open_ts) b.open = t.price(), b.open_ts = t.ts_ns();
      if (t.ts_ns() >= b.close_ts) b.close = t.price(), b.close_ts = t.ts_ns();
      b.high = std::max(b.high, t.price());
      b.low = std::min(b.low, t.price());
    }
    b.volume += t.size();
    b.pv += t.price() * t.size();
    ++b.count;
  }

  // Number of bars the folded ticks make.
  std::size_t size() const { return buckets_.size(); }

  std::map<BarKey, tickwire::v1::Bar> Bars() const {
    std::map<BarKey, tickwire::v1::Bar> bars;
    for (const auto& [key, b] : buckets_) {
      tickwire::v1::Bar& bar = bars[key];
      bar.set_topic(std::get<0>(key));
      bar.set_interval(interval_);
      bar.set_start_ms(std::get<1>(key));
      bar.set_open(b.open);
      bar.set_high(b.high);
      bar.set_low(b.low);
      bar.set_close(b.close);
      bar.set_volume(b.volume);
      bar.set_count(b.count);
      bar.set_vwap(b.volume != 0 ? b.pv / b.volume : 0);
    }
    return bars;
  }

 private:
  struct Bucket {
    double open = 0, high = 0, low = 0, close = 0, volume = 0, pv = 0;
    std::int64_t open_ts = 0, close_ts = 0;
    std::uint64_t count = 0;
  };
  tickwire::v1::Mode interval_;
  std::map<BarKey, Bucket> buckets_;
};

// The plain reference: bars of `interval` folded from ticks in the order the server accepted
// them (per topic, seq order), whatever order `ticks` arrived in.
inline std::map<BarKey, tickwire::v1::Bar> ReferenceBars(std::vector<tickwire::v1::Tick> ticks,
                                                         tickwire::v1::Mode interval) {
  std::stable_sort(ticks.begin(), ticks.end(),
                   [](const tickwire::v1::Tick& a, const tickwire::v1::Tick& b) {
                     return a.topic() != b.topic() ? a.topic() < b.topic() : a.seq() < b.seq();
                   });
  ReferenceBarFold fold(interval);
  for (const auto& t : ticks) fold.Add(t);
  return fold.Bars();
}

inline std::map<BarKey, tickwire::v1::Bar> ReferenceSecondBars(
    std::vector<tickwire::v1::Tick> ticks) {
  return ReferenceBars(std::move(ticks), tickwire::v1::MODE_SECOND);
}

// MINUTE bars folded from closed SECOND bars: open of the earliest second, close of the latest,
// extremes, sums, and vwap from the seconds' vwap x volume.
inline std::map<BarKey, tickwire::v1::Bar> MinuteBarsFromSeconds(
    const std::vector<tickwire::v1::Bar>& seconds) {
  std::map<BarKey, tickwire::v1::Bar> ordered;  // by topic, then start_ms
  for (const auto& b : seconds) ordered[BarKey{b.topic(), b.start_ms()}] = b;
  std::map<BarKey, tickwire::v1::Bar> minutes;
  std::map<BarKey, double> pv;
  for (const auto& [key, s] : ordered) {
    const BarKey mkey{s.topic(), s.start_ms() / 60'000 * 60'000};
    auto [it, fresh] = minutes.try_emplace(mkey);
    tickwire::v1::Bar& m = it->second;
    if (fresh) {
      m.set_topic(s.topic());
      m.set_interval(tickwire::v1::MODE_MINUTE);
      m.set_start_ms(std::get<1>(mkey));
      m.set_open(s.open());
      m.set_high(s.high());
      m.set_low(s.low());
    }
    m.set_high(std::max(m.high(), s.high()));
    m.set_low(std::min(m.low(), s.low()));
    m.set_close(s.close());
    m.set_volume(m.volume() + s.volume());
    m.set_count(m.count() + s.count());
    pv[mkey] += s.vwap() * s.volume();
  }
  for (auto& [key, m] : minutes) m.set_vwap(m.volume() != 0 ? pv[key] / m.volume() : 0);
  return minutes;
}

// `got` holds exactly the bars of `want`, once each: interval, OHLC and count exact, volume and
// vwap within 1e-9 relative.
inline ::testing::AssertionResult SameBars(const std::vector<tickwire::v1::Bar>& got,
                                           const std::map<BarKey, tickwire::v1::Bar>& want) {
  std::set<BarKey> seen;
  for (const auto& b : got) {
    const BarKey key{b.topic(), b.start_ms()};
    if (!seen.insert(key).second) {
      return ::testing::AssertionFailure() << "duplicate bar " << b.topic() << " " << b.start_ms();
    }
    auto it = want.find(key);
    if (it == want.end()) {
      return ::testing::AssertionFailure() << "extra bar " << b.topic() << " " << b.start_ms();
    }
    const tickwire::v1::Bar& w = it->second;
    const double tol = 1e-9 * std::max(1.0, std::abs(w.volume()));
    if (b.interval() != w.interval() || b.open() != w.open() || b.high() != w.high() ||
        b.low() != w.low() || b.close() != w.close() || b.count() != w.count() ||
        std::abs(b.volume() - w.volume()) > tol ||
        std::abs(b.vwap() - w.vwap()) > 1e-9 * std::max(1.0, std::abs(w.vwap()))) {
      return ::testing::AssertionFailure()
             << "bar " << b.topic() << " " << b.start_ms() << " differs:\n got  "
             << b.ShortDebugString() << "\n want " << w.ShortDebugString();
    }
  }
  if (seen.size() != want.size()) {
    return ::testing::AssertionFailure() << "got " << seen.size() << " bars, want " << want.size();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tickwire::testing
