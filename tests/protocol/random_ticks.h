#pragma once

// Helpers shared by the protocol tests: reproducible random ticks (with the awkward values a
// hand-written encoder gets wrong) and byte-view conversions.

#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::protocol::testing {

inline std::span<const std::uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string_view View(std::span<const std::uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// A tick whose topic is owned (TickFields only holds a view).
struct OwnedTick {
  std::string topic;
  TickFields fields;  // fields.topic views `topic`; re-point after copying (see Fields()).

  TickFields Fields() const {
    TickFields f = fields;
    f.topic = topic;
    return f;
  }
};

class TickGenerator {
 public:
  explicit TickGenerator(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t Below(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
  }

  double AwkwardDouble() {
    switch (Below(10)) {
      case 0:
        return 0.0;
      case 1:
        return -0.0;
      case 2:
        return std::numeric_limits<double>::infinity();
      case 3:
        return std::numeric_limits<double>::denorm_min();
      case 4:
        return std::numeric_limits<double>::max();
      case 5:
        return std::bit_cast<double>(rng_());  // any bit pattern, NaNs included
      default:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
    }
  }

  std::uint64_t AwkwardU64() {
    switch (Below(8)) {
      case 0:
        return 0;
      case 1:
        return 1;
      case 2:
        return std::numeric_limits<std::uint64_t>::max();
      case 3:
        return std::uint64_t{1} << (Below(64));
      case 4:
        return (std::uint64_t{1} << (7 * (1 + Below(9)))) - 1;  // varint size boundary
      default:
        return rng_() >> Below(64);
    }
  }

  std::string Topic() {
    static constexpr std::string_view kChars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
    std::size_t len = 0;
    switch (Below(4)) {
      case 0:
        len = 0;
        break;  // empty: the field is omitted
      case 1:
        len = 127 + Below(3);
        break;  // topic length varint grows to 2 bytes
      default:
        len = 1 + Below(16);
    }
    std::string t;
    for (std::size_t i = 0; i < len; ++i) t.push_back(kChars[Below(kChars.size())]);
    return t;
  }

  OwnedTick Tick() {
    OwnedTick t;
    t.topic = Topic();
    t.fields.price = AwkwardDouble();
    t.fields.size = AwkwardDouble();
    std::uint64_t ts = AwkwardU64();
    t.fields.ts_ns = static_cast<std::int64_t>(ts);  // negative values included
    t.fields.seq = AwkwardU64();
    t.fields.prev_seq = AwkwardU64();
    t.fields.topic_epoch = AwkwardU64();
    return t;
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

inline void ToProto(const TickFields& t, v1::Tick& out) {
  out.set_topic(std::string(t.topic));
  out.set_price(t.price);
  out.set_size(t.size);
  out.set_ts_ns(t.ts_ns);
  out.set_seq(t.seq);
  out.set_prev_seq(t.prev_seq);
  out.set_topic_epoch(t.topic_epoch);
}

// Field-by-field equality; doubles compared by bit pattern (so -0.0 and NaN payloads count).
inline bool SameTick(const TickFields& a, const v1::Tick& b) {
  return a.topic == b.topic() &&
         std::bit_cast<std::uint64_t>(a.price) == std::bit_cast<std::uint64_t>(b.price()) &&
         std::bit_cast<std::uint64_t>(a.size) == std::bit_cast<std::uint64_t>(b.size()) &&
         a.ts_ns == b.ts_ns() && a.seq == b.seq() && a.prev_seq == b.prev_seq() &&
         a.topic_epoch == b.topic_epoch();
}

}  // namespace tickwire::protocol::testing
