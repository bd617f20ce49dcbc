#pragma once

// The reference SECOND-bar fold (PROTOCOL rule 5) that tests compare the server's bars with,
// and the comparison itself. Header-only; shared by the bars integration test and the soak.

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

// SECOND bars folded tick by tick. Ticks of one topic must be added in the order the server
// accepted them (seq order); topics may interleave. Late ticks must not be added.
class ReferenceBarFold {
 public:
  void Add(const tickwire::v1::Tick& t) {
    const std::int64_t start = t.ts_ns() / 1'000'000'000 * 1000;
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
      bar.set_interval(tickwire::v1::MODE_SECOND);
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
  std::map<BarKey, Bucket> buckets_;
};

// The plain reference: SECOND bars folded from ticks in the order the server accepted them
// (per topic, seq order), whatever order `ticks` arrived in.
inline std::map<BarKey, tickwire::v1::Bar> ReferenceSecondBars(
    std::vector<tickwire::v1::Tick> ticks) {
  std::stable_sort(ticks.begin(), ticks.end(),
                   [](const tickwire::v1::Tick& a, const tickwire::v1::Tick& b) {
                     return a.topic() != b.topic() ? a.topic() < b.topic() : a.seq() < b.seq();
                   });
  ReferenceBarFold fold;
  for (const auto& t : ticks) fold.Add(t);
  return fold.Bars();
}

// `got` holds exactly the bars of `want`, once each: OHLC and count exact, volume and vwap
// within 1e-9 relative.
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
    if (b.interval() != tickwire::v1::MODE_SECOND || b.open() != w.open() || b.high() != w.high() ||
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
