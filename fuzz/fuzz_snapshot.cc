// Fuzzes the snapshot file parser (DATA_DIR, engine/snapshot.h): the input is a whole file.
// Properties: the parser never reads out of bounds or trips UBSan whatever the bytes; a file it
// accepts has valid, strictly ascending topic names, every indexed record decodes, encodes back
// to exactly its bytes, and restores into a shard (and, planned over 1-7 shards, into the shard
// its name hashes to) whose own snapshot of the topic is the same record again (with the topic
// epoch this build does not keep set to 0).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "engine/shard.h"
#include "engine/snapshot.h"

namespace {

using namespace tickwire::engine;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  (void)ParseSnapshotHeader(file);
  auto parsed = ParseSnapshot(file);
  if (std::holds_alternative<SnapshotError>(parsed)) {
    Check(!std::get<SnapshotError>(parsed).reason.empty());
    return 0;
  }
  const ParsedSnapshot& p = std::get<ParsedSnapshot>(parsed);
  Check(p.topics.size() == p.header.topics);
  // Rings and cap large enough for anything the input can hold, so nothing is trimmed.
  ShardOptions options;
  options.ticks = options.second_bars = options.minute_bars = options.max_topics = size / 40 + 1;
  Shard shard(0, options);
  std::string expected;           // the records as this build's shard writes them
  std::uint64_t fresh_epoch = 1;  // shard 0 numbers topics without one 1, 65, 129, ...
  for (std::size_t i = 0; i < p.topics.size(); ++i) {
    const TopicRef& ref = p.topics[i];
    Check(IsValidTopic(ref.name));
    Check(i == 0 || p.topics[i - 1].name < ref.name);
    auto image = DecodeTopic(file, ref);
    Check(image.has_value());
    Check(image->name == ref.name && image->last_seq == ref.last_seq);
    std::string again;
    AppendTopicImage(again, *image);
    Check(p.header.version < 2 ||
          again == file.substr(ref.offset, ref.length));  // v1: 40-byte ticks
    Check(shard.Restore(*image));
    Check(!shard.Restore(*image));
    if (image->topic_epoch == 0) {
      image->topic_epoch = fresh_epoch;
      fresh_epoch += 64;
    }
    AppendTopicImage(expected, *image);
  }
  Check(shard.topic_count() == p.topics.size());
  // The tombstone section ends the body, and encodes back to the same bytes.
  const std::size_t trailer =
      p.topics.empty() ? kSnapshotHeaderSize : p.topics.back().offset + p.topics.back().length;
  std::string buried;
  AppendTombstones(buried, p.tombstones, p.tombstones_dropped_order_ns);
  Check(p.header.version < 2 || file.substr(trailer) == buried);
  AppendTombstones(expected, std::vector<Tombstone>{},
                   0);  // the shard below was given none of them
  // The restored shard writes back the same records (the rings hold all of a small input).
  SnapshotCursor cursor;
  std::string body;
  while (!cursor.finished) shard.SnapshotSlice(cursor, body, 1 + size % 512);
  Check(cursor.topics == p.topics.size());
  Check(body == expected);
  const unsigned shards = 1 + static_cast<unsigned>(p.header.generation % 7);
  const RestorePlan plan = PlanRestore({p}, shards, 1'000'000);
  std::size_t placed = 0;
  for (unsigned s = 0; s < shards; ++s) {
    for (const PlannedTopic& t : plan.shards[s]) {
      Check(ShardOf(p.topics[t.topic].name, shards) == s);
      ++placed;
    }
  }
  Check(placed == p.topics.size() && plan.dropped == 0 && plan.duplicates == 0);
  return 0;
}
