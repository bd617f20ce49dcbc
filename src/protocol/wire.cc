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

std::size_t AppendTickRecordEntry(std::string& out, const TickFields& t) {
  // The hot encoder (once per published tick): size everything first, grow `out` once, then
  // write through a pointer.
  const std::size_t body = TickBodySize(t);
  const std::size_t record = 1 + VarintSize(body) + body;
  const std::size_t total = 1 + VarintSize(record) + record;
  // Written into a stack buffer and appended in one copy (resizing `out` first would zero the
  // bytes only to overwrite them). Topics are at most 128 bytes, so this always fits in
  // practice; a longer one goes through a heap buffer.
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
  *p++ = static_cast<char>(kTagRecordTick);
  p = PutVarint(p, body);
  std::size_t topic_offset = static_cast<std::size_t>(p - base);
  if (!t.topic.empty()) {
    *p++ = static_cast<char>(kTagTopic);
    p = PutVarint(p, t.topic.size());
    topic_offset = static_cast<std::size_t>(p - base);
    std::memcpy(p, t.topic.data(), t.topic.size());
    p += t.topic.size();
  }
  if (DoublePresent(t.price)) {
    *p++ = static_cast<char>(kTagPrice);
    p = PutFixed64(p, std::bit_cast<std::uint64_t>(t.price));
  }
  if (DoublePresent(t.size)) {
    *p++ = static_cast<char>(kTagSize);
    p = PutFixed64(p, std::bit_cast<std::uint64_t>(t.size));
  }
  if (t.ts_ns != 0) {
    *p++ = static_cast<char>(kTagTsNs);
    p = PutVarint(p, static_cast<std::uint64_t>(t.ts_ns));
  }
  if (t.seq != 0) {
    *p++ = static_cast<char>(kTagSeq);
    p = PutVarint(p, t.seq);
  }
  if (t.prev_seq != 0) {
    *p++ = static_cast<char>(kTagPrevSeq);
    p = PutVarint(p, t.prev_seq);
  }
  const std::size_t start = out.size();
  out.append(base, static_cast<std::size_t>(p - base));
  return start + topic_offset;
}

std::size_t AppendBarRecordEntry(std::string& out, const BarFields& b) {
  // Like AppendTickRecordEntry: sized first, written through a pointer into a stack buffer
  // (a heap one for a topic too long for it), appended in one copy. Every second's close
  // encodes one of these per topic.
  const std::size_t body = BarBodySize(b);
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
  *p++ = static_cast<char>(kTagRecordBar);
  p = PutVarint(p, body);
  std::size_t topic_offset = static_cast<std::size_t>(p - base);
  if (!b.topic.empty()) {
    *p++ = static_cast<char>(kTagTopic);
    p = PutVarint(p, b.topic.size());
    topic_offset = static_cast<std::size_t>(p - base);
    std::memcpy(p, b.topic.data(), b.topic.size());
    p += b.topic.size();
  }
  if (b.interval != 0) {
    *p++ = static_cast<char>(kTagBarInterval);
    p = PutVarint(p, b.interval);
  }
  if (b.start_ms != 0) {
    *p++ = static_cast<char>(kTagBarStart);
    p = PutVarint(p, static_cast<std::uint64_t>(b.start_ms));
  }
  auto put_double = [&p](int field, double v) {
    if (!DoublePresent(v)) return;
    *p++ = static_cast<char>(DoubleTag(field));
    p = PutFixed64(p, std::bit_cast<std::uint64_t>(v));
  };
  put_double(4, b.open);
  put_double(5, b.high);
  put_double(6, b.low);
  put_double(7, b.close);
  put_double(8, b.volume);
  if (b.count != 0) {
    *p++ = static_cast<char>(kTagBarCount);
    p = PutVarint(p, b.count);
  }
  put_double(10, b.vwap);
  const std::size_t start = out.size();
  out.append(base, static_cast<std::size_t>(p - base));
  return start + topic_offset;
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
