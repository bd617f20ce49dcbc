// DATA_DIR restore without a server process: which generation is chosen, what a crash during a
// run's first round leaves, leftover temp files, and refusals (start empty, files kept aside).
#include "server/snapshots.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/snapshot.h"
#include "support/temp_dir.h"

namespace tickwire::server {
namespace {

namespace fs = std::filesystem;
using tickwire::testing::TempDir;

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'000LL * kSec;

// Writes shard-<generation>-<index>.snap holding `topics` (one tick each, numbered `seq`).
void WriteFile(const std::string& dir, std::uint64_t generation, unsigned index, unsigned count,
               const std::vector<std::string>& topics, std::uint64_t seq, bool final = true) {
  std::string body;
  for (const auto& name : topics) {
    engine::TopicImage t;
    t.name = name;
    t.last_seq = seq;
    t.last_publish_ns = kT0;
    t.ticks = {{1.5, 2, kT0, seq, seq - 1}};
    engine::AppendTopicImage(body, t);
  }
  engine::AppendTombstones(body, std::vector<engine::Tombstone>{}, 0);
  engine::SnapshotHeader h;
  h.generation = generation;
  h.shard_index = index;
  h.shard_count = count;
  h.stream_epoch = 99;
  h.topics = topics.size();
  h.body_length = body.size();
  h.body_crc = engine::Crc32c(0, body);
  h.flags = final ? engine::kSnapshotFinal : 0;
  std::ofstream out(
      dir + "/shard-" + std::to_string(generation) + "-" + std::to_string(index) + ".snap",
      std::ios::binary);
  out << engine::EncodeSnapshotHeader(h) << body;
}

struct Shards {
  explicit Shards(unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      owned.push_back(std::make_unique<engine::Shard>(i));
      ptrs.push_back(owned.back().get());
    }
  }
  std::uint64_t LastSeq(const std::string& topic) const {
    std::uint64_t seq = 0;
    for (const auto* s : ptrs) seq += s->LastSeq(topic);
    return seq;
  }
  std::vector<std::unique_ptr<engine::Shard>> owned;
  std::vector<engine::Shard*> ptrs;
};

TEST(RestoreSnapshots, EmptyOrMissingDirectoryStartsEmptyAtGenerationOne) {
  TempDir tmp;
  Shards shards(2);
  SnapshotStats stats;
  const RestoreResult r = RestoreSnapshots(tmp.path() + "/new/dir", shards.ptrs, stats);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.generation, 1u);
  EXPECT_FALSE(r.stream_epoch.has_value());
  EXPECT_TRUE(fs::is_directory(tmp.path() + "/new/dir"));
}

TEST(RestoreSnapshots, NewestCompleteGenerationWinsAndAnIncompleteNewerOneIsSkipped) {
  TempDir tmp;
  WriteFile(tmp.path(), 4, 0, 2, {"A", "B"}, 5);
  WriteFile(tmp.path(), 4, 1, 2, {"C"}, 6);
  WriteFile(tmp.path(), 3, 0, 1, {"A", "B", "C"}, 2);  // older, complete
  WriteFile(tmp.path(), 5, 0, 2, {"A"}, 9);            // newer, its second file missing
  { std::ofstream(tmp.path() + "/shard-5-1.snap.tmp") << "partial"; }
  Shards shards(3);
  SnapshotStats stats;
  const RestoreResult r = RestoreSnapshots(tmp.path(), shards.ptrs, stats);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.generation, 6u);  // above every generation present
  EXPECT_EQ(r.topics, 3u);
  EXPECT_EQ(r.stream_epoch, 99u);
  EXPECT_TRUE(r.clean);
  EXPECT_EQ(shards.LastSeq("A"), 5u);
  EXPECT_EQ(shards.LastSeq("C"), 6u);
  EXPECT_EQ(stats.topics_restored.load(), 3u);
  EXPECT_EQ(stats.files_refused.load(), 0u);
  EXPECT_FALSE(fs::exists(tmp.path() + "/shard-5-1.snap.tmp"));
  for (const auto* s : shards.ptrs) {
    EXPECT_EQ(s->LastSeq("B") != 0, engine::ShardOf("B", 3) == s->index());
  }
}

TEST(RestoreSnapshots, APeriodicRoundIsNotClean) {
  TempDir tmp;
  WriteFile(tmp.path(), 1, 0, 2, {"A"}, 3, /*final=*/true);
  WriteFile(tmp.path(), 1, 1, 2, {"B"}, 3, /*final=*/false);
  Shards shards(1);
  SnapshotStats stats;
  const RestoreResult r = RestoreSnapshots(tmp.path(), shards.ptrs, stats);
  EXPECT_EQ(r.topics, 2u);
  EXPECT_FALSE(r.clean);
}

TEST(RestoreSnapshots, ADamagedFileMeansNoHistoryAndIsKeptAside) {
  TempDir tmp;
  WriteFile(tmp.path(), 2, 0, 2, {"A"}, 3);
  WriteFile(tmp.path(), 2, 1, 2, {"B"}, 3);
  const std::string victim = tmp.path() + "/shard-2-1.snap";
  fs::resize_file(victim, fs::file_size(victim) - 1);
  Shards shards(2);
  SnapshotStats stats;
  const RestoreResult r = RestoreSnapshots(tmp.path(), shards.ptrs, stats);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.topics, 0u);
  EXPECT_FALSE(r.stream_epoch.has_value());
  EXPECT_EQ(shards.LastSeq("A"), 0u);
  EXPECT_EQ(stats.files_refused.load(), 1u);
  EXPECT_TRUE(fs::exists(victim + ".refused"));
  EXPECT_TRUE(fs::exists(tmp.path() + "/shard-2-0.snap"));  // not removed: a later round does
  EXPECT_EQ(r.generation, 3u);
}

TEST(RestoreSnapshots, AFileWhoseHeaderDisagreesWithItsNameIsRefused) {
  TempDir tmp;
  WriteFile(tmp.path(), 1, 0, 1, {"A"}, 3);
  fs::rename(tmp.path() + "/shard-1-0.snap", tmp.path() + "/shard-7-0.snap");
  Shards shards(1);
  SnapshotStats stats;
  const RestoreResult r = RestoreSnapshots(tmp.path(), shards.ptrs, stats);
  EXPECT_EQ(r.topics, 0u);
  EXPECT_EQ(stats.files_refused.load(), 1u);
  EXPECT_EQ(r.generation, 8u);
}

TEST(RestoreSnapshots, RestoresWithinTheShardsCap) {
  TempDir tmp;
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back("T" + std::to_string(i));
  std::sort(names.begin(), names.end());  // a shard writes its topics in name order
  WriteFile(tmp.path(), 1, 0, 1, names, 1);
  engine::ShardOptions small;
  small.max_topics = 10;
  engine::Shard one(0, small);
  SnapshotStats stats;
  const RestoreResult r = RestoreSnapshots(tmp.path(), {&one}, stats);
  EXPECT_EQ(r.topics, 10u);
  EXPECT_EQ(one.topic_count(), 10u);
  EXPECT_EQ(stats.topics_dropped.load(), 40u);
  EXPECT_EQ(stats.files_refused.load(), 0u);
}

}  // namespace
}  // namespace tickwire::server
