#pragma once

#include <cstdint>

#include "engine/topic.h"

namespace tickwire::engine {

inline constexpr std::int64_t kNsPerMs = 1'000'000;
// The largest time in ms whose ns count fits an int64 (2262-04-11): a since_ms above it cannot
// be compared with tick times, so SUBSCRIBE refuses it (PROTOCOL S4).
inline constexpr std::int64_t kMaxSinceMs = INT64_MAX / kNsPerMs;

// Bucket length of a bar interval in milliseconds (SECOND: 1000, MINUTE: 60000).
inline constexpr std::int64_t IntervalMs(Mode interval) {
  return interval == Mode::kMinute ? 60'000 : 1'000;
}

// Floor division (ts may be negative only in tests; the wire forbids it for ticks).
inline constexpr std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// Start (ms since the epoch) of the bucket of `interval` that holds `ts_ns` (PROTOCOL S8a:
// start_ms*1e6 <= ts_ns < (start_ms + length)*1e6).
inline constexpr std::int64_t BucketStartMs(std::int64_t ts_ns, Mode interval) {
  const std::int64_t len = IntervalMs(interval);
  return FloorDiv(ts_ns, len * kNsPerMs) * len;
}

// A closed (or closing) bar: OHLC, volume and count of one topic's ticks in one bucket.
// vwap is derived from `pv` (sum of price*size) when the bar is sent.
struct Bar {
  std::int64_t start_ms = 0;
  double open = 0;
  double high = 0;
  double low = 0;
  double close = 0;
  double volume = 0;  // sum of sizes
  double pv = 0;      // sum of price*size
  std::uint64_t count = 0;

  double vwap() const { return volume != 0 ? pv / volume : 0.0; }
};
static_assert(sizeof(Bar) == 64, "history rings store bars densely");

// An open bucket: the bar so far plus the event times that decide open and close.
struct BarAccumulator {
  Bar bar;
  std::int64_t open_ts_ns = 0;
  std::int64_t close_ts_ns = 0;

  // Folds one tick in. `open` is the price of the earliest tick by ts_ns and `close` of the
  // latest; among equal ts_ns the first accepted opens and the last accepted closes.
  void Fold(double price, double size, std::int64_t ts_ns) {
    if (bar.count == 0) {
      bar.open = bar.high = bar.low = bar.close = price;
      open_ts_ns = close_ts_ns = ts_ns;
    } else {
      if (ts_ns < open_ts_ns) {
        bar.open = price;
        open_ts_ns = ts_ns;
      }
      if (ts_ns >= close_ts_ns) {
        bar.close = price;
        close_ts_ns = ts_ns;
      }
      if (price > bar.high) bar.high = price;
      if (price < bar.low) bar.low = price;
    }
    bar.volume += size;
    bar.pv += price * size;
    ++bar.count;
  }
};

}  // namespace tickwire::engine
