#include "engine/snapshot.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <unordered_map>

#include "engine/topic.h"

namespace tickwire::engine {
namespace {

static_assert(std::endian::native == std::endian::little, "the format is written as stored");

// Slicing-by-8 tables for CRC32C (reflected polynomial 0x82F63B78).
constexpr std::array<std::array<std::uint32_t, 256>, 8> MakeCrcTables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t i = 0; i < 256; ++i) {
    for (std::size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}
constexpr auto kCrc = MakeCrcTables();

template <typename T>
void Put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
void PutF(std::string& out, double v) { Put(out, std::bit_cast<std::uint64_t>(v)); }

void PutBar(std::string& out, const Bar& b) {
  Put(out, b.start_ms);
  PutF(out, b.open);
  PutF(out, b.high);
  PutF(out, b.low);
  PutF(out, b.close);
  PutF(out, b.volume);
  PutF(out, b.pv);
  Put(out, b.count);
}

// Reads fixed-size fields from a byte range; every read checks the bytes are there.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : b_(bytes) {}
  template <typename T>
  bool Get(T& v) {
    if (b_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetF(double& v) {
    std::uint64_t u = 0;
    if (!Get(u)) return false;
    v = std::bit_cast<double>(u);
    return true;
  }
  bool GetBar(Bar& b) {
    return Get(b.start_ms) && GetF(b.open) && GetF(b.high) && GetF(b.low) && GetF(b.close) &&
           GetF(b.volume) && GetF(b.pv) && Get(b.count);
  }
  bool GetOpen(BarAccumulator& a) {
    return GetBar(a.bar) && Get(a.open_ts_ns) && Get(a.close_ts_ns);
  }
  bool GetTick(TickImage& t, std::uint32_t version) {
    return GetF(t.price) && GetF(t.size) && Get(t.ts_ns) && Get(t.seq) && Get(t.prev_seq) &&
           (version < 2 || Get(t.order_ns));
  }
  bool Skip(std::size_t n) {
    if (b_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  bool View(std::size_t n, std::string_view& v) {
    if (b_.size() - pos_ < n) return false;
    v = b_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return b_.size() - pos_; }

 private:
  std::string_view b_;
  std::size_t pos_ = 0;
};

// The fixed part of a topic record after its name.
struct RecordHead {
  std::string_view name;
  std::uint64_t last_seq = 0;
  std::uint64_t topic_epoch = 0;
  std::int64_t last_publish_ns = 0;
  std::int64_t dropped_order_ns = 0;
  std::int64_t last_second_start = -1;
  std::int64_t last_minute_start = -1;
  std::uint32_t open_seconds = 0;
  std::uint32_t open_minutes = 0;
  std::uint32_t seconds = 0;
  std::uint32_t minutes = 0;
  std::uint32_t ticks = 0;
};

// Reads a record's head from `r` (positioned after the length field) and checks that the
// counts describe exactly `body` bytes.
std::string ReadHead(Reader& r, std::size_t body, std::uint32_t version, RecordHead& h) {
  std::uint16_t name_length = 0;
  if (!r.Get(name_length) || !r.View(name_length, h.name)) return "topic record cut short";
  if (!IsValidTopic(h.name)) return "invalid topic name";
  if (!r.Get(h.last_seq) || !r.Get(h.topic_epoch) || !r.Get(h.last_publish_ns) ||
      (version >= 2 && !r.Get(h.dropped_order_ns)) || !r.Get(h.last_second_start) ||
      !r.Get(h.last_minute_start) || !r.Get(h.open_seconds) || !r.Get(h.open_minutes) ||
      !r.Get(h.seconds) || !r.Get(h.minutes) || !r.Get(h.ticks)) {
    return "topic record cut short";
  }
  if (h.open_seconds > kMaxSnapshotOpenBuckets || h.open_minutes > kMaxSnapshotOpenBuckets) {
    return "too many open bars in a topic record";
  }
  const std::uint64_t fixed = 2 + std::uint64_t{name_length} + (version >= 2 ? 6 : 5) * 8 + 5 * 4;
  const std::uint64_t tick_bytes = version >= 2 ? kSnapshotTickBytes : kSnapshotTickBytesV1;
  const std::uint64_t want = fixed +
                             (std::uint64_t{h.open_seconds} + h.open_minutes) * kSnapshotOpenBytes +
                             (std::uint64_t{h.seconds} + h.minutes) * kSnapshotBarBytes +
                             std::uint64_t{h.ticks} * tick_bytes;
  if (want != body) return "topic record length does not match its counts";
  return {};
}

}  // namespace

std::uint32_t Crc32c(std::uint32_t crc, std::string_view bytes) {
  crc = ~crc;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  while (n >= 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    w ^= crc;
    crc = kCrc[7][w & 0xff] ^ kCrc[6][(w >> 8) & 0xff] ^ kCrc[5][(w >> 16) & 0xff] ^
          kCrc[4][(w >> 24) & 0xff] ^ kCrc[3][(w >> 32) & 0xff] ^ kCrc[2][(w >> 40) & 0xff] ^
          kCrc[1][(w >> 48) & 0xff] ^ kCrc[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kCrc[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

std::string EncodeSnapshotHeader(const SnapshotHeader& h) {
  std::string out;
  out.reserve(kSnapshotHeaderSize);
  out.append(kSnapshotMagic);
  Put(out, h.version);
  Put(out, std::uint32_t{0});  // header_crc, filled below
  Put(out, h.generation);
  Put(out, h.shard_index);
  Put(out, h.shard_count);
  Put(out, h.stream_epoch);
  Put(out, h.written_ns);
  Put(out, h.topics);
  Put(out, h.body_length);
  Put(out, h.body_crc);
  Put(out, h.flags);
  const std::uint32_t crc = Crc32c(0, out);
  std::memcpy(out.data() + 12, &crc, sizeof crc);
  return out;
}

std::variant<SnapshotHeader, SnapshotError> ParseSnapshotHeader(std::string_view bytes) {
  if (bytes.size() < kSnapshotHeaderSize) return SnapshotError{"shorter than its header"};
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return SnapshotError{"not a snapshot file (bad magic)"};
  }
  Reader r(bytes.substr(kSnapshotMagic.size(), kSnapshotHeaderSize - kSnapshotMagic.size()));
  SnapshotHeader h;
  std::uint32_t header_crc = 0;
  r.Get(h.version);
  r.Get(header_crc);
  r.Get(h.generation);
  r.Get(h.shard_index);
  r.Get(h.shard_count);
  r.Get(h.stream_epoch);
  r.Get(h.written_ns);
  r.Get(h.topics);
  r.Get(h.body_length);
  r.Get(h.body_crc);
  r.Get(h.flags);
  if (h.version < kSnapshotOldestVersion || h.version > kSnapshotVersion) {
    return SnapshotError{"format version " + std::to_string(h.version) + ", this server reads " +
                         std::to_string(kSnapshotOldestVersion) + " to " +
                         std::to_string(kSnapshotVersion)};
  }
  std::string copy(bytes.substr(0, kSnapshotHeaderSize));
  std::memset(copy.data() + 12, 0, 4);
  if (Crc32c(0, copy) != header_crc) return SnapshotError{"header checksum mismatch"};
  if ((h.flags & ~kSnapshotFinal) != 0) return SnapshotError{"unknown header flags"};
  if (h.shard_count == 0 || h.shard_count > 64 || h.shard_index >= h.shard_count) {
    return SnapshotError{"shard index or count out of range"};
  }
  return h;
}

std::variant<ParsedSnapshot, SnapshotError> ParseSnapshot(std::string_view file) {
  auto header = ParseSnapshotHeader(file);
  if (auto* err = std::get_if<SnapshotError>(&header)) return *err;
  ParsedSnapshot parsed;
  parsed.header = std::get<SnapshotHeader>(header);
  const SnapshotHeader& h = parsed.header;
  const std::size_t available = file.size() - kSnapshotHeaderSize;
  if (h.body_length != available) {
    return SnapshotError{h.body_length > available ? "truncated (body shorter than its header says)"
                                                   : "trailing bytes after the body"};
  }
  const std::string_view body = file.substr(kSnapshotHeaderSize);
  if (Crc32c(0, body) != h.body_crc) return SnapshotError{"body checksum mismatch"};
  // Every record takes more than 48 bytes, so the count is bounded by the bytes present.
  if (h.topics > body.size() / 48) return SnapshotError{"topic count larger than the body"};
  parsed.topics.reserve(static_cast<std::size_t>(h.topics));
  Reader r(body);
  std::string_view previous;
  for (std::uint64_t i = 0; i < h.topics; ++i) {
    const std::size_t offset = kSnapshotHeaderSize + r.pos();
    std::uint32_t length = 0;
    std::string_view record;
    if (!r.Get(length) || !r.View(length, record)) {
      return SnapshotError{"topic record cut short"};
    }
    Reader rr(record);
    RecordHead head;
    if (auto err = ReadHead(rr, record.size(), h.version, head); !err.empty()) {
      return SnapshotError{err};
    }
    // Records are written in name order; a repeated or unordered name is not what a shard wrote.
    if (i > 0 && head.name <= previous) return SnapshotError{"topic records out of name order"};
    previous = head.name;
    // Open buckets ascend by start; a bar's start is a multiple of its interval.
    std::int64_t last_start = 0;
    for (std::uint32_t k = 0; k < head.open_seconds + head.open_minutes; ++k) {
      BarAccumulator a;
      rr.GetOpen(a);
      const bool first = k == 0 || k == head.open_seconds;
      const Mode interval = k < head.open_seconds ? Mode::kSecond : Mode::kMinute;
      if (a.bar.start_ms % IntervalMs(interval) != 0 || a.bar.count == 0 ||
          (!first && a.bar.start_ms <= last_start)) {
        return SnapshotError{"open bars out of order or empty"};
      }
      last_start = a.bar.start_ms;
    }
    // Closed bars ascend by start and ticks by seq (replays binary-search them), none past the
    // topic's newest.
    for (std::uint32_t k = 0; k < head.seconds + head.minutes; ++k) {
      Bar b;
      rr.GetBar(b);
      const bool second = k < head.seconds;
      const bool first = k == 0 || k == head.seconds;
      const std::int64_t newest = second ? head.last_second_start : head.last_minute_start;
      if (b.start_ms % IntervalMs(second ? Mode::kSecond : Mode::kMinute) != 0 ||
          (!first && b.start_ms <= last_start) || b.start_ms > newest) {
        return SnapshotError{"closed bars out of order"};
      }
      last_start = b.start_ms;
    }
    std::uint64_t last_tick = 0;
    for (std::uint32_t k = 0; k < head.ticks; ++k) {
      TickImage t;
      rr.GetTick(t, h.version);
      if ((k > 0 && t.seq <= last_tick) || t.seq > head.last_seq || t.prev_seq >= t.seq) {
        return SnapshotError{"ticks out of order"};
      }
      // A ring holds every tick of its topic from its oldest on: each names the one before,
      // and the newest is the topic's last (the shard keeps only that chain, Shard::TickRecord).
      if ((k > 0 && t.prev_seq != last_tick) || (k + 1 == head.ticks && t.seq != head.last_seq)) {
        return SnapshotError{"ticks do not follow each other"};
      }
      last_tick = t.seq;
    }
    parsed.topics.push_back(TopicRef{head.name, head.last_seq, head.last_publish_ns, offset,
                                     std::size_t{length} + 4, h.version});
  }
  if (h.version >= 2) {
    std::uint32_t count = 0;
    if (!r.Get(count) || !r.Get(parsed.tombstones_dropped_order_ns)) {
      return SnapshotError{"tombstone section cut short"};
    }
    if (count > kMaxTombstones) return SnapshotError{"too many tombstones"};
    parsed.tombstones.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      std::uint16_t name_length = 0;
      std::string_view name;
      Tombstone t;
      if (!r.Get(name_length) || !r.View(name_length, name) || !r.Get(t.topic_epoch) ||
          !r.Get(t.last_seq) || !r.Get(t.last_order_ns)) {
        return SnapshotError{"tombstone section cut short"};
      }
      if (!IsValidTopic(name)) return SnapshotError{"invalid topic name in a tombstone"};
      t.name = std::string(name);
      parsed.tombstones.push_back(std::move(t));
    }
  }
  if (r.left() != 0) return SnapshotError{"bytes after the last topic record"};
  return parsed;
}

std::optional<TopicImage> DecodeTopic(std::string_view file, const TopicRef& ref) {
  if (ref.offset > file.size() || file.size() - ref.offset < ref.length || ref.length < 4) {
    return std::nullopt;
  }
  Reader r(file.substr(ref.offset + 4, ref.length - 4));
  RecordHead h;
  if (!ReadHead(r, ref.length - 4, ref.version, h).empty()) return std::nullopt;
  TopicImage t;
  t.name = std::string(h.name);
  t.last_seq = h.last_seq;
  t.topic_epoch = h.topic_epoch;
  t.last_publish_ns = h.last_publish_ns;
  t.dropped_order_ns = h.dropped_order_ns;
  t.last_second_start = h.last_second_start;
  t.last_minute_start = h.last_minute_start;
  // ReadHead checked that the record holds exactly these counts.
  t.open_seconds.resize(h.open_seconds);
  t.open_minutes.resize(h.open_minutes);
  t.seconds.resize(h.seconds);
  t.minutes.resize(h.minutes);
  t.ticks.resize(h.ticks);
  for (auto& a : t.open_seconds) r.GetOpen(a);
  for (auto& a : t.open_minutes) r.GetOpen(a);
  for (auto& b : t.seconds) r.GetBar(b);
  for (auto& b : t.minutes) r.GetBar(b);
  for (auto& k : t.ticks) r.GetTick(k, ref.version);
  return t;
}

TopicRecordWriter::TopicRecordWriter(std::string& out, std::string_view name,
                                     std::uint64_t last_seq, std::uint64_t topic_epoch,
                                     std::int64_t last_publish_ns, std::int64_t dropped_order_ns,
                                     std::int64_t last_second_start, std::int64_t last_minute_start,
                                     std::uint32_t open_seconds, std::uint32_t open_minutes,
                                     std::uint32_t seconds, std::uint32_t minutes,
                                     std::uint32_t ticks)
    : out_(out), start_(out.size()) {
  Put(out_, std::uint32_t{0});  // the length, written by Finish
  Put(out_, static_cast<std::uint16_t>(name.size()));
  out_.append(name);
  Put(out_, last_seq);
  Put(out_, topic_epoch);
  Put(out_, last_publish_ns);
  Put(out_, dropped_order_ns);
  Put(out_, last_second_start);
  Put(out_, last_minute_start);
  Put(out_, open_seconds);
  Put(out_, open_minutes);
  Put(out_, seconds);
  Put(out_, minutes);
  Put(out_, ticks);
}

void TopicRecordWriter::Open(const BarAccumulator& a) {
  PutBar(out_, a.bar);
  Put(out_, a.open_ts_ns);
  Put(out_, a.close_ts_ns);
}

void TopicRecordWriter::ClosedBar(const Bar& b) { PutBar(out_, b); }

void TopicRecordWriter::Tick(const TickImage& t) {
  PutF(out_, t.price);
  PutF(out_, t.size);
  Put(out_, t.ts_ns);
  Put(out_, t.seq);
  Put(out_, t.prev_seq);
  Put(out_, t.order_ns);
}

void TopicRecordWriter::Finish() {
  const auto length = static_cast<std::uint32_t>(out_.size() - start_ - 4);
  std::memcpy(out_.data() + start_, &length, sizeof length);
}

void AppendTombstonesHead(std::string& out, std::size_t count, std::int64_t dropped_order_ns) {
  Put(out, static_cast<std::uint32_t>(count));
  Put(out, dropped_order_ns);
}

void AppendTombstone(std::string& out, const Tombstone& t) {
  Put(out, static_cast<std::uint16_t>(t.name.size()));
  out.append(t.name);
  Put(out, t.topic_epoch);
  Put(out, t.last_seq);
  Put(out, t.last_order_ns);
}

void AppendTopicImage(std::string& out, const TopicImage& t) {
  TopicRecordWriter w(
      out, t.name, t.last_seq, t.topic_epoch, t.last_publish_ns, t.dropped_order_ns,
      t.last_second_start, t.last_minute_start, static_cast<std::uint32_t>(t.open_seconds.size()),
      static_cast<std::uint32_t>(t.open_minutes.size()),
      static_cast<std::uint32_t>(t.seconds.size()), static_cast<std::uint32_t>(t.minutes.size()),
      static_cast<std::uint32_t>(t.ticks.size()));
  for (const auto& a : t.open_seconds) w.Open(a);
  for (const auto& a : t.open_minutes) w.Open(a);
  for (const auto& b : t.seconds) w.ClosedBar(b);
  for (const auto& b : t.minutes) w.ClosedBar(b);
  for (const auto& k : t.ticks) w.Tick(k);
  w.Finish();
}

RestorePlan PlanRestore(const std::vector<ParsedSnapshot>& files, unsigned shards,
                        std::size_t max_topics_per_shard) {
  RestorePlan plan;
  plan.shards.resize(shards);
  if (shards == 0) return plan;
  std::unordered_map<std::string_view, PlannedTopic> best;
  for (std::size_t f = 0; f < files.size(); ++f) {
    for (std::size_t t = 0; t < files[f].topics.size(); ++t) {
      const TopicRef& ref = files[f].topics[t];
      auto [it, added] = best.try_emplace(ref.name, PlannedTopic{f, t});
      if (added) continue;
      ++plan.duplicates;
      const TopicRef& held = files[it->second.file].topics[it->second.topic];
      if (ref.last_seq > held.last_seq ||
          (ref.last_seq == held.last_seq && ref.last_publish_ns > held.last_publish_ns)) {
        it->second = PlannedTopic{f, t};
      }
    }
  }
  for (const auto& [name, at] : best) plan.shards[ShardOf(name, shards)].push_back(at);
  for (auto& list : plan.shards) {
    auto ref = [&files](const PlannedTopic& p) -> const TopicRef& {
      return files[p.file].topics[p.topic];
    };
    std::sort(list.begin(), list.end(), [&](const PlannedTopic& a, const PlannedTopic& b) {
      const TopicRef& x = ref(a);
      const TopicRef& y = ref(b);
      return x.last_publish_ns != y.last_publish_ns ? x.last_publish_ns < y.last_publish_ns
                                                    : x.name < y.name;
    });
    if (list.size() > max_topics_per_shard) {
      const std::size_t drop = list.size() - max_topics_per_shard;
      plan.dropped += drop;
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(drop));
    }
  }
  return plan;
}

}  // namespace tickwire::engine
