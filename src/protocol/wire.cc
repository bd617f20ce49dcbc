#include "protocol/wire.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <google/protobuf/message_lite.h>

namespace tickwire::protocol {
namespace {

constexpr std::uint8_t kTagBatchRecords = (2 << 3) | 2;  // DataBatch.records
constexpr std::uint8_t kTagRecordTick = (1 << 3) | 2;    // Record.tick
constexpr std::uint8_t kTagTopic = (1 << 3) | 2;         // Tick.topic
constexpr std::uint8_t kTagPrice = (2 << 3) | 1;         // Tick.price (fixed64)
constexpr std::uint8_t kTagSize = (3 << 3) | 1;          // Tick.size (fixed64)
constexpr std::uint8_t kTagTsNs = (4 << 3) | 0;          // Tick.ts_ns
constexpr std::uint8_t kTagSeq = (5 << 3) | 0;           // Tick.seq
constexpr std::uint8_t kTagPrevSeq = (6 << 3) | 0;       // Tick.prev_seq
constexpr std::uint8_t kTagTopicEpoch = (7 << 3) | 0;    // Tick.topic_epoch
constexpr std::uint8_t kTagRecordBar = (2 << 3) | 2;     // Record.bar
// Bar: topic = 1 (bytes), interval = 2 (varint), start_ms = 3 (varint), open..volume = 4..8
// (fixed64), count = 9 (varint), vwap = 10 (fixed64).
constexpr std::uint8_t kTagBarInterval = (2 << 3) | 0;
constexpr std::uint8_t kTagBarStart = (3 << 3) | 0;
constexpr std::uint8_t kTagBarCount = (9 << 3) | 0;
constexpr std::uint8_t DoubleTag(int field) { return static_cast<std::uint8_t>((field << 3) | 1); }

// proto3 omits a double whose bit pattern is zero (so -0.0 is still written).
bool DoublePresent(double v) { return std::bit_cast<std::uint64_t>(v) != 0; }

std::size_t TickBodySize(const TickFields& t) {
  std::size_t n = 0;
  if (!t.topic.empty()) n += 1 + VarintSize(t.topic.size()) + t.topic.size();
  if (DoublePresent(t.price)) n += 9;
  if (DoublePresent(t.size)) n += 9;
  if (t.ts_ns != 0) n += 1 + VarintSize(static_cast<std::uint64_t>(t.ts_ns));
  if (t.seq != 0) n += 1 + VarintSize(t.seq);
  if (t.prev_seq != 0) n += 1 + VarintSize(t.prev_seq);
  if (t.topic_epoch != 0) n += 1 + VarintSize(t.topic_epoch);
  return n;
}

std::size_t BarBodySize(const BarFields& b) {
  std::size_t n = 0;
  if (!b.topic.empty()) n += 1 + VarintSize(b.topic.size()) + b.topic.size();
  if (b.interval != 0) n += 1 + VarintSize(b.interval);
  if (b.start_ms != 0) n += 1 + VarintSize(static_cast<std::uint64_t>(b.start_ms));
  for (double v : {b.open, b.high, b.low, b.close, b.volume, b.vwap}) {
    if (DoublePresent(v)) n += 9;
  }
  if (b.count != 0) n += 1 + VarintSize(b.count);
  return n;
}

}  // namespace

std::size_t VarintSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void AppendVarint(std::string& out, std::uint64_t v) {
  char b[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out.append(b, n);
}

namespace {

// Writes into memory the caller has already sized: no capacity check per byte.
char* PutVarint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

char* PutFixed64(char* p, std::uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, 8);
  } else {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
  }
  return p + 8;
}

}  // namespace

namespace {

char* PutVarintField(char* p, std::uint8_t tag, std::uint64_t v) {
  if (v == 0) return p;  // proto3 omits zero
  *p++ = static_cast<char>(tag);
  return PutVarint(p, v);
}

char* PutDoubleField(char* p, std::uint8_t tag, double v) {
  if (!DoublePresent(v)) return p;
  *p++ = static_cast<char>(tag);
  return PutFixed64(p, std::bit_cast<std::uint64_t>(v));
}

// Appends one DataBatch.records entry (Record{tick} or Record{bar}) whose message body is `body`
// bytes. The tags, lengths and topic are written through a pointer into a stack buffer (no
// capacity check per byte, no zeroing); `fields(char* p) -> char*` writes the other fields after
// them; then the entry goes into `out` in one copy. Returns the topic bytes' offset in `out`.
// Topics are at most 128 bytes, so the stack buffer always fits in practice; a longer one goes
// through a heap buffer.
template <typename Fields>
std::size_t AppendEntry(std::string& out, std::uint8_t record_tag, std::size_t body,
                        std::string_view topic, Fields&& fields) {
  const std::size_t record = 1 + VarintSize(body) + body;
  const std::size_t total = 1 + VarintSize(record) + record;
  char local[256];
  std::string heap;
  char* base = local;
  if (total > sizeof(local)) {
    heap.resize(total);
    base = heap.data();
  }
  char* p = base;
  *p++ = static_cast<char>(kTagBatchRecords);
  p = PutVarint(p, record);
  *p++ = static_cast<char>(record_tag);
  p = PutVarint(p, body);
  std::size_t topic_offset = static_cast<std::size_t>(p - base);
  if (!topic.empty()) {
    *p++ = static_cast<char>(kTagTopic);
    p = PutVarint(p, topic.size());
    topic_offset = static_cast<std::size_t>(p - base);
    std::memcpy(p, topic.data(), topic.size());
    p += topic.size();
  }
  p = fields(p);
  const std::size_t start = out.size();
  out.append(base, static_cast<std::size_t>(p - base));
  return start + topic_offset;
}

}  // namespace

std::size_t AppendTickRecordEntry(std::string& out, const TickFields& t) {
  // The hot encoder: once per published tick.
  return AppendEntry(out, kTagRecordTick, TickBodySize(t), t.topic, [&t](char* p) {
    p = PutDoubleField(p, kTagPrice, t.price);
    p = PutDoubleField(p, kTagSize, t.size);
    p = PutVarintField(p, kTagTsNs, static_cast<std::uint64_t>(t.ts_ns));
    p = PutVarintField(p, kTagSeq, t.seq);
    p = PutVarintField(p, kTagPrevSeq, t.prev_seq);
    return PutVarintField(p, kTagTopicEpoch, t.topic_epoch);
  });
}

std::size_t AppendBarRecordEntry(std::string& out, const BarFields& b) {
  // Once per topic at every second's close.
  return AppendEntry(out, kTagRecordBar, BarBodySize(b), b.topic, [&b](char* p) {
    p = PutVarintField(p, kTagBarInterval, b.interval);
    p = PutVarintField(p, kTagBarStart, static_cast<std::uint64_t>(b.start_ms));
    p = PutDoubleField(p, DoubleTag(4), b.open);
    p = PutDoubleField(p, DoubleTag(5), b.high);
    p = PutDoubleField(p, DoubleTag(6), b.low);
    p = PutDoubleField(p, DoubleTag(7), b.close);
    p = PutDoubleField(p, DoubleTag(8), b.volume);
    p = PutVarintField(p, kTagBarCount, b.count);
    return PutDoubleField(p, DoubleTag(10), b.vwap);
  });
}

void AppendWatermarkRecordEntry(std::string& out, const WatermarkFields& w) {
  // Once per worker per closed interval: no need for the stack-buffer path above.
  constexpr std::uint8_t kTagRecordWatermark = (3 << 3) | 2;  // Record.watermark
  constexpr std::uint8_t kTagInterval = (1 << 3) | 0;         // Watermark.interval
  constexpr std::uint8_t kTagStart = (2 << 3) | 0;            // Watermark.start_ms
  const auto start = static_cast<std::uint64_t>(w.start_ms);
  std::size_t body = 0;
  if (w.interval != 0) body += 1 + VarintSize(w.interval);
  if (start != 0) body += 1 + VarintSize(start);
  const std::size_t record = 1 + VarintSize(body) + body;
  out.push_back(static_cast<char>(kTagBatchRecords));
  AppendVarint(out, record);
  out.push_back(static_cast<char>(kTagRecordWatermark));
  AppendVarint(out, body);
  if (w.interval != 0) {
    out.push_back(static_cast<char>(kTagInterval));
    AppendVarint(out, w.interval);
  }
  if (start != 0) {
    out.push_back(static_cast<char>(kTagStart));
    AppendVarint(out, start);
  }
}

std::optional<WatermarkFields> ParseWatermarkFields(std::span<const std::uint8_t> bytes) {
  WatermarkFields w;
  wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
  while (r.ok && !r.AtEnd()) {
    const std::uint64_t tag = r.Varint();
    const auto wt = static_cast<std::uint32_t>(tag & 7);
    const auto field = tag >> 3;
    if (field == 1 || field == 2) {
      if (wt != 0) return std::nullopt;
      const std::uint64_t v = r.Varint();
      // protobuf keeps the low 32 bits of an over-long enum varint.
      if (field == 1) w.interval = static_cast<std::uint32_t>(v);
      if (field == 2) w.start_ms = static_cast<std::int64_t>(v);
    } else if (!r.Skip(wt)) {
      return std::nullopt;
    }
  }
  if (!r.ok) return std::nullopt;
  return w;
}

namespace {

void AppendTag(std::string& out, std::uint32_t field, std::uint32_t wire_type) {
  AppendVarint(out, (std::uint64_t{field} << 3) | wire_type);
}

void AppendVarintField(std::string& out, std::uint32_t field, std::uint64_t v) {
  if (v == 0) return;  // proto3 omits defaults
  AppendTag(out, field, 0);
  AppendVarint(out, v);
}

void AppendBytesField(std::string& out, std::uint32_t field, std::string_view bytes) {
  AppendTag(out, field, 2);
  AppendVarint(out, bytes.size());
  out.append(bytes);
}

}  // namespace

std::size_t LostRangeEntryBound(std::string_view topic) {
  // Field tag and length, then topic (tag, length, bytes) and three varints of 10 bytes at most.
  return 1 + 2 + 1 + VarintSize(topic.size()) + topic.size() + 3 * 11;
}

void AppendHistoryEndRecordEntry(std::string& out, const HistoryEndFields& e) {
  std::string body;
  AppendVarintField(body, 1, e.subscription_id);
  AppendVarintField(body, 2, e.truncated ? 1 : 0);
  AppendVarintField(body, 3, e.retention ? 1 : 0);
  AppendVarintField(body, 4, e.backfill_limit ? 1 : 0);
  AppendVarintField(body, 5, e.epoch_changed ? 1 : 0);
  std::string range;
  for (const auto& r : e.lost) {
    range.clear();
    if (!r.topic.empty()) AppendBytesField(range, 1, r.topic);
    AppendVarintField(range, 2, r.from_seq);
    AppendVarintField(range, 3, r.to_seq);
    AppendVarintField(range, 4, r.topic_epoch);
    AppendBytesField(body, 6, range);
  }
  AppendVarintField(body, 7, e.lost_omitted);
  std::string record;
  AppendBytesField(record, 4, body);  // Record.history_end
  AppendBytesField(out, 2, record);   // DataBatch.records
}

std::optional<HistoryEndFields> ParseHistoryEndFields(std::span<const std::uint8_t> bytes,
                                                      std::vector<LostRangeFields>& lost_out) {
  HistoryEndFields e;
  wire_detail::Reader r{bytes.data(), bytes.data() + bytes.size()};
  const std::size_t first_lost = lost_out.size();
  while (r.ok && !r.AtEnd()) {
    const std::uint64_t tag = r.Varint();
    if (!r.ok) break;
    const auto field = tag >> 3;
    const auto wt = static_cast<std::uint32_t>(tag & 7);
    if (field >= 1 && field <= 5 && wt == 0) {
      const std::uint64_t v = r.Varint();
      switch (field) {
        case 1:
          e.subscription_id = v;
          break;
        case 2:
          e.truncated = v != 0;
          break;
        case 3:
          e.retention = v != 0;
          break;
        case 4:
          e.backfill_limit = v != 0;
          break;
        default:
          e.epoch_changed = v != 0;
      }
    } else if (field == 6 && wt == 2) {
      const auto inner = r.Bytes();
      if (!r.ok) break;
      wire_detail::Reader rr{inner.data(), inner.data() + inner.size()};
      LostRangeFields l;
      while (rr.ok && !rr.AtEnd()) {
        const std::uint64_t itag = rr.Varint();
        const auto ifield = itag >> 3;
        const auto iwt = static_cast<std::uint32_t>(itag & 7);
        if (ifield == 1 && iwt == 2) {
          const auto t = rr.Bytes();
          l.topic = std::string_view(reinterpret_cast<const char*>(t.data()), t.size());
        } else if (ifield >= 2 && ifield <= 4 && iwt == 0) {
          const std::uint64_t v = rr.Varint();
          (ifield == 2 ? l.from_seq : ifield == 3 ? l.to_seq : l.topic_epoch) = v;
        } else if ((ifield >= 1 && ifield <= 4) || !rr.Skip(iwt)) {
          rr.ok = false;  // a known field with the wrong wire type, or a malformed one
        }
      }
      if (!rr.ok) return std::nullopt;
      lost_out.push_back(l);
    } else if (field == 7 && wt == 0) {
      e.lost_omitted = static_cast<std::uint32_t>(r.Varint());
    } else if ((field >= 1 && field <= 7) || !r.Skip(wt)) {
      r.ok = false;
    }
  }
  if (!r.ok) {
    lost_out.resize(first_lost);
    return std::nullopt;
  }
  e.lost =
      std::span<const LostRangeFields>(lost_out.data() + first_lost, lost_out.size() - first_lost);
  return e;
}

std::string EncodeFrame(FrameType type, const google::protobuf::MessageLite& message) {
  const std::size_t size = message.ByteSizeLong();
  std::string out(kHeaderSize + size, '\0');
  auto* data = reinterpret_cast<std::uint8_t*>(out.data());
  EncodeHeader(type, size, data);
  message.SerializeWithCachedSizesToArray(data + kHeaderSize);
  return out;
}

namespace wire_detail {

std::uint64_t Reader::VarintSlow() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p >= end) {
      ok = false;
      return 0;
    }
    const std::uint8_t b = *p++;
    v |= std::uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) return v;
  }
  ok = false;  // more than 10 bytes
  return 0;
}

bool Reader::Skip(std::uint32_t wire_type) {
  switch (wire_type) {
    case 0:
      Varint();
      return ok;
    case 1:
      Fixed64();
      return ok;
    case 2:
      Bytes();
      return ok;
    case 5:
      if (end - p < 4) return ok = false;
      p += 4;
      return true;
    default:
      return ok = false;
  }
}

}  // namespace wire_detail

}  // namespace tickwire::protocol
