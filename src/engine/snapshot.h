#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/bar.h"

// The on-disk format of a shard snapshot (DATA_DIR, docs/RELIABILITY.md): what one owner shard
// holds (per topic: seq state, open bars, the three history rings), so that an embedded server
// restarted with the same DATA_DIR continues the stream where it stopped. Encoding and parsing
// only; files, threads and the choice of a snapshot set live in server/.
//
// File layout, every integer little-endian, doubles as their IEEE-754 bits:
//   header (kSnapshotHeaderSize bytes)
//     magic "TWSNAP\r\n" | u32 version | u32 header_crc (CRC32C of the header, this field 0)
//     u64 generation | u32 shard_index | u32 shard_count | u64 stream_epoch | i64 written_ns
//     u64 topics | u64 body_length | u32 body_crc (CRC32C of the body) | u32 flags
//   body: `topics` topic records, back to back, exactly body_length bytes
//     u32 record_length (bytes after this field)
//     u16 name_length | name | u64 last_seq | u64 topic_epoch | i64 last_publish_ns
//     i64 dropped_order_ns (version 2 on) | i64 last_second_start | i64 last_minute_start
//     u32 open_seconds | u32 open_minutes | u32 seconds | u32 minutes | u32 ticks
//     open buckets (80 bytes each: bar, i64 open_ts_ns, i64 close_ts_ns), SECOND first
//     closed bars (64 bytes each: i64 start_ms, f64 open/high/low/close/volume/pv, u64 count),
//       SECOND then MINUTE, oldest first
//     ticks (48 bytes each: f64 price, f64 size, i64 ts_ns, u64 seq, u64 prev_seq, i64 order_ns;
//       version 1: 40 bytes, without order_ns), oldest first; each tick's prev_seq is the seq
//       before it and the newest's seq is last_seq (the shard keeps only that chain)
//   version 2 on, after the topic records: the forgotten numberings (Shard tombstones)
//     u32 count | i64 dropped_order_ns | per tombstone: u16 name_length | name | u64 topic_epoch
//       | u64 last_seq | i64 last_order_ns
// Version 2 added the accept order (PROTOCOL S8c resume_from_ns) and the tombstones; version 1
// files are still read, their ticks with accept order 0 (before any resume_from_ns).
// A reader refuses any file whose magic, version, checksums, lengths or counts do not agree;
// it never trusts a count before checking that the bytes for it are there.
namespace tickwire::engine {

inline constexpr std::string_view kSnapshotMagic{"TWSNAP\r\n", 8};
inline constexpr std::uint32_t kSnapshotVersion = 2;
inline constexpr std::uint32_t kSnapshotOldestVersion = 1;  // the oldest this server reads
inline constexpr std::size_t kSnapshotHeaderSize = 72;
// Open buckets per interval a topic can have: ticks may be stamped up to 5 s ahead, so a topic
// holds at most a handful; a file claiming more is refused.
inline constexpr std::uint32_t kMaxSnapshotOpenBuckets = 64;
inline constexpr std::size_t kSnapshotBarBytes = 64;
inline constexpr std::size_t kSnapshotOpenBytes = 80;
inline constexpr std::size_t kSnapshotTickBytes = 48;
inline constexpr std::size_t kSnapshotTickBytesV1 = 40;
// Header flags. kSnapshotFinal: written by the final round on drain, after the last tick was
// applied (nothing the server acknowledged is missing from it). Other bits are refused.
inline constexpr std::uint32_t kSnapshotFinal = 1;

// CRC32C (Castagnoli), continuing from `crc` (0 to start).
std::uint32_t Crc32c(std::uint32_t crc, std::string_view bytes);

struct SnapshotHeader {
  std::uint32_t version = kSnapshotVersion;
  std::uint64_t generation = 0;  // the run that wrote it (a restore continues with a higher one)
  std::uint32_t shard_index = 0;
  std::uint32_t shard_count = 0;  // WORKERS of the run that wrote it
  // The stream epoch (PROTOCOL S7a) the history belongs to; kept across a restore. 0: none.
  std::uint64_t stream_epoch = 0;
  std::int64_t written_ns = 0;  // wall clock when the file was finished
  std::uint64_t topics = 0;
  std::uint64_t body_length = 0;
  std::uint32_t body_crc = 0;
  std::uint32_t flags = 0;
};

// The header's bytes (kSnapshotHeaderSize), header checksum included.
std::string EncodeSnapshotHeader(const SnapshotHeader& header);

// A retained tick as the history ring keeps it.
struct TickImage {
  double price = 0;
  double size = 0;
  std::int64_t ts_ns = 0;
  std::uint64_t seq = 0;
  std::uint64_t prev_seq = 0;
  std::int64_t order_ns = 0;  // place in the accept order (PROTOCOL S8c)
};

// A numbering the shard forgot (its topic evicted, S6b): what a resume_from_ns replay reports
// as lost when its newest tick was accepted at or after the position (PROTOCOL S8c).
struct Tombstone {
  std::string name;
  std::uint64_t topic_epoch = 0;
  std::uint64_t last_seq = 0;
  std::int64_t last_order_ns = 0;
};
// At most this many per shard (the newest); and per snapshot file.
inline constexpr std::size_t kMaxTombstones = 4096;
// Forgotten numberings one shard lists in reply to one history request (the rest are counted).
inline constexpr std::size_t kMaxBuriedRangesPerReply = 512;

// The tombstone section that ends a version 2 body: its head, then each of `count` tombstones.
void AppendTombstonesHead(std::string& out, std::size_t count, std::int64_t dropped_order_ns);
void AppendTombstone(std::string& out, const Tombstone& t);
// The whole section from any range of at most kMaxTombstones tombstones (the shard's deque, a
// parsed file's vector), without copying them.
template <typename Range>
void AppendTombstones(std::string& out, const Range& tombstones, std::int64_t dropped_order_ns) {
  AppendTombstonesHead(out, std::size(tombstones), dropped_order_ns);
  for (const Tombstone& t : tombstones) AppendTombstone(out, t);
}

// Everything a shard keeps about one topic, as a snapshot stores it.
struct TopicImage {
  std::string name;
  std::uint64_t last_seq = 0;
  // Tick.topic_epoch of the topic's numbering where the server has one (0: none).
  std::uint64_t topic_epoch = 0;
  // Accept time of its newest tick: the order a restore re-creates (least recently published
  // first) and what it keeps when a shard's cap cannot hold every topic.
  std::int64_t last_publish_ns = 0;
  std::int64_t dropped_order_ns = 0;    // accept order of the newest tick the ring dropped
  std::int64_t last_second_start = -1;  // newest closed bar per interval (-1: none)
  std::int64_t last_minute_start = -1;
  std::vector<BarAccumulator> open_seconds;  // ascending start
  std::vector<BarAccumulator> open_minutes;
  std::vector<Bar> seconds;  // closed, oldest first
  std::vector<Bar> minutes;
  std::vector<TickImage> ticks;  // oldest first
};

// Appends one topic record to a snapshot body. The shard streams its rings through the
// callbacks instead of copying them into a TopicImage first.
class TopicRecordWriter {
 public:
  // Starts the record of `name` with the counts of everything that follows.
  TopicRecordWriter(std::string& out, std::string_view name, std::uint64_t last_seq,
                    std::uint64_t topic_epoch, std::int64_t last_publish_ns,
                    std::int64_t dropped_order_ns, std::int64_t last_second_start,
                    std::int64_t last_minute_start, std::uint32_t open_seconds,
                    std::uint32_t open_minutes, std::uint32_t seconds, std::uint32_t minutes,
                    std::uint32_t ticks);
  // In this order: open SECOND buckets, open MINUTE buckets, SECOND bars, MINUTE bars, ticks.
  void Open(const BarAccumulator& a);
  void ClosedBar(const Bar& b);
  void Tick(const TickImage& t);
  // Writes the record's length; the writer must not be used after.
  void Finish();

 private:
  std::string& out_;
  std::size_t start_;
};

void AppendTopicImage(std::string& out, const TopicImage& topic);

// Where one topic record sits in a file, and what a restore decides with before decoding it.
struct TopicRef {
  std::string_view name;  // points into the file's bytes
  std::uint64_t last_seq = 0;
  std::int64_t last_publish_ns = 0;
  std::size_t offset = 0;                    // of the record (its length field) in the file
  std::size_t length = 0;                    // of the whole record, length field included
  std::uint32_t version = kSnapshotVersion;  // of the file it is in
};

// A file that passed every check: its header and the index of its topic records.
struct ParsedSnapshot {
  SnapshotHeader header;
  std::vector<TopicRef> topics;
  std::vector<Tombstone> tombstones;
  std::int64_t tombstones_dropped_order_ns = 0;  // newest of those no longer kept
};

// Why a file was refused (the reason goes into the snapshot_refused log line).
struct SnapshotError {
  std::string reason;
};

// Checks a whole file: magic, version, header checksum, body length, body checksum, and every
// topic record's structure (names valid topic names, counts that fit their record, open
// buckets in ascending order, at most kMaxSnapshotOpenBuckets). Refuses anything else.
std::variant<ParsedSnapshot, SnapshotError> ParseSnapshot(std::string_view file);
// Only the header (for listing files without reading them whole).
std::variant<SnapshotHeader, SnapshotError> ParseSnapshotHeader(std::string_view bytes);

// Decodes a record ParseSnapshot indexed (in the same file's bytes). Never fails on a record
// ParseSnapshot accepted; returns nullopt for anything else.
std::optional<TopicImage> DecodeTopic(std::string_view file, const TopicRef& ref);

// Which topic records of a snapshot set go to which shard of this process, in the order to
// restore them. Topic names are hashed with this process's key (ShardOf), so the set may come
// from any number of shards. A topic found in several files keeps the record with the higher
// last_seq (then the later last_publish_ns). Each shard gets its topics least recently
// published first, at most `max_topics_per_shard` of them (the most recently published).
struct PlannedTopic {
  std::size_t file = 0;   // index in the files given
  std::size_t topic = 0;  // index in that file's topics
};
struct RestorePlan {
  std::vector<std::vector<PlannedTopic>> shards;
  std::size_t dropped = 0;     // over a shard's cap: not restored
  std::size_t duplicates = 0;  // older records of a topic found twice
};
RestorePlan PlanRestore(const std::vector<ParsedSnapshot>& files, unsigned shards,
                        std::size_t max_topics_per_shard);

}  // namespace tickwire::engine
