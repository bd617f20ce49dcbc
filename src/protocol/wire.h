#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"

namespace google::protobuf {
class MessageLite;
}

namespace tickwire::protocol {

// Hand-written encoders and scanners for the hot path (ticks and DATA_BATCH). Their output is
// byte-identical to protobuf's own serialization of the same message (tests check this), so any
// protobuf implementation parses it.

// Appends `v` as a base-128 varint.
void AppendVarint(std::string& out, std::uint64_t v);
// Bytes AppendVarint would write for `v`.
std::size_t VarintSize(std::uint64_t v);

// A tick as the engine holds it; topic is a view into storage the caller keeps alive.
struct TickFields {
  std::string_view topic;
  double price = 0;
  double size = 0;
  std::int64_t ts_ns = 0;
  std::uint64_t seq = 0;
  std::uint64_t prev_seq = 0;
  std::uint64_t topic_epoch = 0;  // Tick.topic_epoch (7)
};

// Appends one `DataBatch.records` entry (field 2) holding Record{tick: ...}. Batches are built
// by concatenating such entries after the batch_seq field. Returns the offset in `out` where the
// topic bytes were written (so a holder of the bytes can view the topic without a copy).
std::size_t AppendTickRecordEntry(std::string& out, const TickFields& tick);

// A bar as the engine holds it; topic is a view into storage the caller keeps alive. `mode` is
// the wire's Mode value (1 = SECOND, 2 = MINUTE).
struct BarFields {
  std::string_view topic;
  std::uint32_t interval = 0;
  std::int64_t start_ms = 0;
  double open = 0;
  double high = 0;
  double low = 0;
  double close = 0;
  double volume = 0;
  std::uint64_t count = 0;
  double vwap = 0;
};

// Appends one `DataBatch.records` entry holding Record{bar: ...}; returns the topic's offset in
// `out`, like AppendTickRecordEntry.
std::size_t AppendBarRecordEntry(std::string& out, const BarFields& bar);

// A completeness watermark (PROTOCOL S8d): every bar of `interval` (wire Mode: 1 = SECOND,
// 2 = MINUTE) with start_ms <= `start_ms` has been sent on the connection.
struct WatermarkFields {
  std::uint32_t interval = 0;
  std::int64_t start_ms = 0;
};

// Appends one `DataBatch.records` entry holding Record{watermark: ...}. Encoded once per
// worker per interval and shared by every connection that subscribes to bars of it.
void AppendWatermarkRecordEntry(std::string& out, const WatermarkFields& w);
// One range of ticks a replay did not send (LostRange, PROTOCOL S8c); topic is a view.
struct LostRangeFields {
  std::string_view topic;
  std::uint64_t from_seq = 0;
  std::uint64_t to_seq = 0;
  std::uint64_t topic_epoch = 0;
};

// The end of a subscription's history replay (HistoryEnd, PROTOCOL S8c).
struct HistoryEndFields {
  std::uint64_t subscription_id = 0;
  bool truncated = false;
  bool retention = false;
  bool backfill_limit = false;
  bool epoch_changed = false;
  std::span<const LostRangeFields> lost;
  std::uint32_t lost_omitted = 0;
};

// Appends one `DataBatch.records` entry holding Record{history_end: ...} (once per subscription
// with history, so not tuned). Byte-identical to protobuf's serialization.
void AppendHistoryEndRecordEntry(std::string& out, const HistoryEndFields& end);
// Bytes AppendHistoryEndRecordEntry adds for one more lost range (an upper bound).
std::size_t LostRangeEntryBound(std::string_view topic);

// Decodes a HistoryEnd message (Record field 4) from its bytes; nullopt when malformed. Topics
// of `lost_out` point into `bytes`; lost ranges are appended to it.
std::optional<HistoryEndFields> ParseHistoryEndFields(std::span<const std::uint8_t> bytes,
                                                      std::vector<LostRangeFields>& lost_out);

// Serializes `message` as a whole frame of `type` (header + payload).
std::string EncodeFrame(FrameType type, const google::protobuf::MessageLite& message);

// Record kinds inside a DataBatch, by Record's oneof field number.
enum class RecordKind : std::uint8_t {
  kUnknown = 0,
  kTick = 1,
  kBar = 2,
  kWatermark = 3,
  kHistoryEnd = 4,
};

// Reads a DataBatch payload without building protobuf objects: calls
// `on_record(RecordKind, std::span<const std::uint8_t> inner)` for every record, where `inner`
// is the Tick, Bar or Watermark message bytes (kUnknown: a kind this build does not know, which
// a reader skips). Returns the batch_seq, or nullopt if the payload is not a
// well-formed DataBatch.
template <typename OnRecord>
std::optional<std::uint64_t> ScanDataBatch(std::span<const std::uint8_t> payload,
                                           OnRecord&& on_record);

// Decodes a Tick message's fields from its bytes; nullopt when malformed. The topic view
// points into `bytes`. Inline (below): every consumer-side scan calls it once per record.
std::optional<TickFields> ParseTickFields(std::span<const std::uint8_t> bytes);

// Decodes a Bar message's fields from its bytes; nullopt when malformed. Inline (below).
std::optional<BarFields> ParseBarFields(std::span<const std::uint8_t> bytes);

// Decodes a Watermark message's fields from its bytes; nullopt when malformed.
std::optional<WatermarkFields> ParseWatermarkFields(std::span<const std::uint8_t> bytes);

namespace wire_detail {
// Minimal protobuf wire reader with bounds checks on every step.
struct Reader {
  const std::uint8_t* p;
  const std::uint8_t* end;
  bool ok = true;

  bool AtEnd() const { return p >= end; }
  // Consumes the one-byte tag `expected` if it comes next (and nothing failed so far).
  bool Expect(std::uint8_t expected) {
    if (!ok || AtEnd() || *p != expected) return false;
    ++p;
    return true;
  }
  // Inline fast paths (one-byte varints: every tag and most lengths; a whole fixed64); the
  // general case is out of line. On malformed input each sets ok = false and returns 0/empty.
  std::uint64_t Varint() {
    if (p < end && *p < 0x80) return *p++;
    if (end - p >= 10) return VarintUnchecked();
    return VarintSlow();
  }
  // At least 10 bytes remain, so no read can pass `end`. On little-endian hosts the first 8
  // bytes are read as one word: the first clear high bit marks the varint's end, and the 7-bit
  // groups are packed together in three shift-and-mask steps (no branch per byte).
  std::uint64_t VarintUnchecked() {
    if constexpr (std::endian::native == std::endian::little) {
      std::uint64_t x;
      std::memcpy(&x, p, sizeof x);
      const std::uint64_t stops = ~x & 0x8080808080808080ULL;
      if (stops != 0) {
        const int bits = std::countr_zero(stops) + 1;  // 8 x the varint's length
        if (bits < 64) x &= (std::uint64_t{1} << bits) - 1;
        p += bits / 8;
        return Pack7(x);
      }
      // 9 or 10 bytes: the first 8 give 56 bits.
      const std::uint64_t low = Pack7(x);
      const std::uint8_t b8 = p[8];
      if (b8 < 0x80) {
        p += 9;
        return low | (std::uint64_t{b8} << 56);
      }
      const std::uint8_t b9 = p[9];
      if (b9 >= 0x80) {
        ok = false;  // more than 10 bytes
        return 0;
      }
      p += 10;
      return low | (std::uint64_t{b8 & 0x7Fu} << 56) | (std::uint64_t{b9} << 63);
    } else {
      std::uint64_t v = 0;
      for (int shift = 0; shift < 70; shift += 7) {
        const std::uint8_t b = *p++;
        v |= std::uint64_t{b & 0x7Fu} << shift;
        if ((b & 0x80) == 0) return v;
      }
      ok = false;  // more than 10 bytes
      return 0;
    }
  }
  // The low 7 bits of each of x's 8 bytes, packed into 56 bits (byte 0 lowest).
  static std::uint64_t Pack7(std::uint64_t x) {
    x = ((x & 0x7F007F007F007F00ULL) >> 1) | (x & 0x007F007F007F007FULL);
    x = ((x & 0x3FFF00003FFF0000ULL) >> 2) | (x & 0x00003FFF00003FFFULL);
    return ((x & 0x0FFFFFFF00000000ULL) >> 4) | (x & 0x000000000FFFFFFFULL);
  }
  std::uint64_t VarintSlow();
  std::uint64_t Fixed64() {
    if (end - p < 8) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);  // one load when optimized
    p += 8;
    return v;
  }
  std::span<const std::uint8_t> Bytes() {
    const std::uint64_t len = Varint();
    if (!ok || len > static_cast<std::uint64_t>(end - p)) {
      ok = false;
      return {};
    }
    std::span<const std::uint8_t> s(p, static_cast<std::size_t>(len));
    p += len;
    return s;
  }
  // Skips a field of `wire_type`; false on a malformed or unsupported wire type.
  bool Skip(std::uint32_t wire_type);
};
}  // namespace wire_detail

template <typename OnRecord>
std::optional<std::uint64_t> ScanDataBatch(std::span<const std::uint8_t> payload,
                                           OnRecord&& on_record) {
  wire_detail::Reader r{payload.data(), payload.data() + payload.size()};
  std::uint64_t batch_seq = 0;
  while (r.ok && !r.AtEnd()) {
    const std::uint64_t tag = r.Varint();
    if (!r.ok) break;
    const auto field = tag >> 3;
    const auto wire_type = static_cast<std::uint32_t>(tag & 7);
    if (field == 1 && wire_type == 0) {
      batch_seq = r.Varint();
    } else if (field == 2 && wire_type == 2) {
      const auto record = r.Bytes();
      if (!r.ok) break;
      wire_detail::Reader rr{record.data(), record.data() + record.size()};
      RecordKind kind = RecordKind::kUnknown;
      std::span<const std::uint8_t> inner;
      while (rr.ok && !rr.AtEnd()) {
        const std::uint64_t rtag = rr.Varint();
        const auto rfield = rtag >> 3;
        const auto rwt = static_cast<std::uint32_t>(rtag & 7);
        if (rfield >= 1 && rfield <= 4 && rwt == 2) {
          inner = rr.Bytes();
          kind = static_cast<RecordKind>(rfield);
        } else if (!rr.Skip(rwt)) {
          rr.ok = false;
        }
      }
      if (!rr.ok) return std::nullopt;
      on_record(kind, inner);
    } else if (!r.Skip(wire_type)) {
      r.ok = false;
    }
  }
  if (!r.ok) return std::nullopt;
  return batch_seq;
}

namespace wire_detail {
// The layout AppendTickRecordEntry writes when every field is set: topic (1), price (2),
// size (3), ts_ns (4), seq (5), prev_seq (6), then topic_epoch (7) when set, each once and in
// that order. Read without a
// dispatch per field; false for any other layout (`t` is then partly written), which the general
// loop reads instead.
inline bool ParseCanonicalTick(std::span<const std::uint8_t> bytes, TickFields& t) {
  Reader r{bytes.data(), bytes.data() + bytes.size()};
  if (!r.Expect(0x0A)) return false;  // 1, length-delimited
  const auto topic = r.Bytes();
  t.topic = std::string_view(reinterpret_cast<const char*>(topic.data()), topic.size());
  if (!r.Expect(0x11)) return false;  // 2, fixed64
  t.price = std::bit_cast<double>(r.Fixed64());
  if (!r.Expect(0x19)) return false;  // 3, fixed64
  t.size = std::bit_cast<double>(r.Fixed64());
  if (!r.Expect(0x20)) return false;  // 4, varint
  t.ts_ns = static_cast<std::int64_t>(r.Varint());
  if (!r.Expect(0x28)) return false;  // 5, varint
  t.seq = r.Varint();
  if (!r.Expect(0x30)) return false;  // 6, varint
  t.prev_seq = r.Varint();
  if (r.ok && !r.AtEnd()) {
    if (!r.Expect(0x38)) return false;  // 7, varint
    t.topic_epoch = r.Varint();
  }
  return r.ok && r.AtEnd();
}
}  // namespace wire_detail

inline std::optional<TickFields> ParseTickFields(std::span<const std::uint8_t> bytes) {
  TickFields t;
  if (wire_detail::ParseCanonicalTick(bytes, t)) return t;
  t = TickFields{};
  wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
  while (r.ok && !r.AtEnd()) {
    const std::uint64_t tag = r.Varint();
    const auto wt = static_cast<std::uint32_t>(tag & 7);
    switch (tag >> 3) {
      case 1:
        if (wt != 2) return std::nullopt;
        {
          const auto s = r.Bytes();
          t.topic = std::string_view(reinterpret_cast<const char*>(s.data()), s.size());
        }
        break;
      case 2:
        if (wt != 1) return std::nullopt;
        t.price = std::bit_cast<double>(r.Fixed64());
        break;
      case 3:
        if (wt != 1) return std::nullopt;
        t.size = std::bit_cast<double>(r.Fixed64());
        break;
      case 4:
        if (wt != 0) return std::nullopt;
        t.ts_ns = static_cast<std::int64_t>(r.Varint());
        break;
      case 5:
        if (wt != 0) return std::nullopt;
        t.seq = r.Varint();
        break;
      case 6:
        if (wt != 0) return std::nullopt;
        t.prev_seq = r.Varint();
        break;
      case 7:
        if (wt != 0) return std::nullopt;
        t.topic_epoch = r.Varint();
        break;
      default:
        if (!r.Skip(wt)) return std::nullopt;
    }
  }
  if (!r.ok) return std::nullopt;
  return t;
}

namespace wire_detail {
// The layout AppendBarRecordEntry writes when every field is set: topic (1), interval (2),
// start_ms (3), open .. volume (4-8), count (9), vwap (10), each once and in that order; like
// ParseCanonicalTick, false for any other layout.
inline bool ParseCanonicalBar(std::span<const std::uint8_t> bytes, BarFields& b) {
  Reader r{bytes.data(), bytes.data() + bytes.size()};
  auto f64 = [&r] { return std::bit_cast<double>(r.Fixed64()); };
  if (!r.Expect(0x0A)) return false;  // 1, length-delimited
  const auto topic = r.Bytes();
  b.topic = std::string_view(reinterpret_cast<const char*>(topic.data()), topic.size());
  if (!r.Expect(0x10)) return false;  // 2, varint
  b.interval = static_cast<std::uint32_t>(r.Varint());
  if (!r.Expect(0x18)) return false;  // 3, varint
  b.start_ms = static_cast<std::int64_t>(r.Varint());
  if (!r.Expect(0x21)) return false;  // 4-8, fixed64
  b.open = f64();
  if (!r.Expect(0x29)) return false;
  b.high = f64();
  if (!r.Expect(0x31)) return false;
  b.low = f64();
  if (!r.Expect(0x39)) return false;
  b.close = f64();
  if (!r.Expect(0x41)) return false;
  b.volume = f64();
  if (!r.Expect(0x48)) return false;  // 9, varint
  b.count = r.Varint();
  if (!r.Expect(0x51)) return false;  // 10, fixed64
  b.vwap = f64();
  return r.ok && r.AtEnd();
}
}  // namespace wire_detail

inline std::optional<BarFields> ParseBarFields(std::span<const std::uint8_t> bytes) {
  BarFields b;
  if (wire_detail::ParseCanonicalBar(bytes, b)) return b;
  b = BarFields{};
  wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
  while (r.ok && !r.AtEnd()) {
    const std::uint64_t tag = r.Varint();
    const auto wt = static_cast<std::uint32_t>(tag & 7);
    const auto field = tag >> 3;
    if (field == 1) {
      if (wt != 2) return std::nullopt;
      const auto s = r.Bytes();
      b.topic = std::string_view(reinterpret_cast<const char*>(s.data()), s.size());
    } else if (field == 2 || field == 3 || field == 9) {
      if (wt != 0) return std::nullopt;
      const std::uint64_t v = r.Varint();
      if (field == 2) b.interval = static_cast<std::uint32_t>(v);
      if (field == 3) b.start_ms = static_cast<std::int64_t>(v);
      if (field == 9) b.count = v;
    } else if ((field >= 4 && field <= 8) || field == 10) {
      if (wt != 1) return std::nullopt;
      const double v = std::bit_cast<double>(r.Fixed64());
      double* slots[] = {&b.open, &b.high, &b.low, &b.close, &b.volume};
      if (field == 10) {
        b.vwap = v;
      } else {
        *slots[field - 4] = v;
      }
    } else if (!r.Skip(wt)) {
      return std::nullopt;
    }
  }
  if (!r.ok) return std::nullopt;
  return b;
}

}  // namespace tickwire::protocol
