// Durable embedded history (DATA_DIR, docs/RELIABILITY.md): the real server restarted with the
// same DATA_DIR serves the same history and continues every topic's seq, after SIGTERM (final
// snapshot on drain) and after kill -9 (the last periodic snapshot), also with another worker
// count; a corrupted or truncated snapshot file is refused with a log line and a metric, and
// the server starts empty and serves.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"
#include "support/temp_dir.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;
namespace fs = std::filesystem;

class DurableTest : public IntegrationTest {
 protected:
  ::testing::AssertionResult StartWith(const std::string& workers, const std::string& interval) {
    return Start({{"DATA_DIR", data_.path() + "/data"},
                  {"WORKERS", workers},
                  {"SNAPSHOT_INTERVAL", interval}});
  }

  // Publishes `n` server-stamped ticks on each topic, acked.
  void PublishTicks(RawClient& producer, const std::vector<std::string>& topics, int n,
                    double base) {
    std::vector<v1::Tick> frame;
    for (int i = 0; i < n; ++i) {
      for (const auto& t : topics) frame.push_back(MakeTick(t, base + i, 1 + i));
    }
    ASSERT_TRUE(producer.PublishAcked(++rid_, frame));
  }

  // A replay of everything retained (backfill) of `topics` in `mode`: exactly `want` records
  // (ticks or bars), and nothing more within a short quiet period.
  Received Backfill(v1::Mode mode, const std::vector<std::string>& topics, std::size_t want) {
    RawClient c;
    Received got;
    EXPECT_TRUE(ConnectAuthed(c));
    v1::Subscribe sub;
    sub.set_request_id(1);
    sub.set_mode(mode);
    for (const auto& t : topics) sub.add_topics(t);
    sub.set_backfill(100'000);
    EXPECT_TRUE(c.SendFrame(FrameType::kSubscribe, sub));
    v1::SubscribeOk ok;
    EXPECT_TRUE(c.ReadMessage(FrameType::kSubscribeOk, &ok));
    auto count = [&] { return mode == v1::MODE_TICK ? got.ticks.size() : got.bars.size(); };
    EXPECT_TRUE(ReadUntil(c, got, milliseconds(10'000), [&] { return count() >= want; }));
    EXPECT_TRUE(Drain(c, got, milliseconds(300)));
    EXPECT_EQ(count(), want);
    return got;
  }

  // The log lines of the running (or last) server with this event.
  std::vector<std::string> LogLines(const std::string& event) const {
    std::vector<std::string> out;
    std::istringstream lines(server_->Logs());
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"event\":\"" + event + "\"") != std::string::npos) out.push_back(line);
    }
    return out;
  }

  std::vector<fs::path> SnapshotFiles() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(data_.path() + "/data")) {
      if (e.path().extension() == ".snap") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // File name -> inode of every snapshot file.
  std::map<std::string, ino_t> Inodes() const {
    std::map<std::string, ino_t> out;
    for (const auto& p : SnapshotFiles()) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0) out[p.filename().string()] = st.st_ino;
    }
    return out;
  }

  TempDir data_;
  std::uint32_t rid_ = 0;
};

std::string Key(const v1::Tick& t) {
  return t.topic() + "/" + std::to_string(t.seq()) + "/" + std::to_string(t.prev_seq()) + "/" +
         std::to_string(t.price()) + "/" + std::to_string(t.size()) + "/" +
         std::to_string(t.ts_ns());
}
std::string Key(const v1::Bar& b) { return b.SerializeAsString(); }
// Records as comparable keys, sorted: a replay's order across topics depends on which shard
// owns which topic, and the owners change with every start (the topic hash is keyed per
// process). Within a topic the order is checked by seq (ticks) and start (bars) in the keys.
template <typename T>
std::vector<std::string> Keys(const std::vector<T>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(Key(x));
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(DurableTest, SigtermRestartServesTheSameHistoryAndContinuesSeq) {
  ASSERT_TRUE(StartWith("2", "1h"));  // no periodic snapshot: only the one on drain
  const std::vector<std::string> topics = {Topic("a"), Topic("b"), Topic("c")};
  RawClient producer;
  v1::AuthOk first_ok;
  ASSERT_TRUE(ConnectAuthed(producer, &first_ok));
  PublishTicks(producer, topics, 20, 100);
  // Wait for some SECOND bars to close (the ticks are stamped now; bars leave about 0.1 s
  // after their second ends).
  const Received before = Backfill(v1::MODE_TICK, topics, 60);
  std::vector<v1::Bar> bars;
  auto closed_bars = [&] {
    RawClient c;
    if (!ConnectAuthed(c)) return false;
    v1::Subscribe sub;
    sub.set_request_id(1);
    sub.set_mode(v1::MODE_SECOND);
    for (const auto& t : topics) sub.add_topics(t);
    sub.set_backfill(1000);
    v1::SubscribeOk ok;
    Received got;
    if (!c.SendFrame(FrameType::kSubscribe, sub) || !c.ReadMessage(FrameType::kSubscribeOk, &ok) ||
        !Drain(c, got, milliseconds(300))) {
      return false;
    }
    bars = got.bars;
    return !bars.empty();
  };
  ASSERT_TRUE(WaitUntil(closed_bars, milliseconds(5000), milliseconds(100)));
  ASSERT_FALSE(bars.empty()) << "no SECOND bar closed";
  producer.Close();
  ASSERT_EQ(server_->Stop(milliseconds(10'000)), 0);
  const auto written = LogLines("snapshot_written");
  ASSERT_EQ(written.size(), 1u) << server_->Logs();
  EXPECT_NE(written[0].find("\"trigger\":\"drain\""), std::string::npos) << written[0];
  EXPECT_EQ(SnapshotFiles().size(), 2u);

  // Another worker count: topics are re-sharded by this process's hash.
  ASSERT_TRUE(StartWith("3", "1h"));
  const auto restored = LogLines("snapshot_restored");
  ASSERT_EQ(restored.size(), 1u) << server_->Logs();
  EXPECT_NE(restored[0].find("\"topics\":3,"), std::string::npos) << restored[0];
  EXPECT_NE(restored[0].find("\"clean\":true"), std::string::npos) << restored[0];
  const Received after = Backfill(v1::MODE_TICK, topics, 60);
  EXPECT_EQ(Keys(after.ticks), Keys(before.ticks));
  for (const auto& t : topics) EXPECT_TRUE(CheckSequence(TicksOf(after.ticks, t), 1)) << t;
  // Every bar seen before is still there (the bars open at shutdown close after the restart).
  Received bars_after = Backfill(v1::MODE_SECOND, topics, bars.size());
  EXPECT_EQ(Keys(bars_after.bars), Keys(bars));
  // seq continues, in the same stream and topic epochs (PROTOCOL S7a).
  RawClient sub;
  v1::AuthOk restored_ok;
  ASSERT_TRUE(ConnectAuthed(sub, &restored_ok));
  EXPECT_EQ(restored_ok.stream_epoch(), first_ok.stream_epoch());
  ASSERT_FALSE(after.ticks.empty());
  for (const auto& t : after.ticks) {
    const auto was = std::find_if(before.ticks.begin(), before.ticks.end(), [&](const auto& b) {
      return b.topic() == t.topic() && b.seq() == t.seq();
    });
    ASSERT_NE(was, before.ticks.end());
    EXPECT_EQ(t.topic_epoch(), was->topic_epoch()) << t.topic();
  }
  ASSERT_TRUE(sub.Subscribe(7, v1::MODE_TICK, {topics[0]}));
  RawClient producer2;
  ASSERT_TRUE(ConnectAuthed(producer2));
  ASSERT_TRUE(producer2.PublishAcked(1, {MakeTick(topics[0], 1, 1)}));
  Delivery live;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(5000), live));
  EXPECT_EQ(live.ticks[0].seq(), 21u);
  EXPECT_EQ(live.ticks[0].prev_seq(), 20u);
  // After this run's final snapshot only its own generation's files remain.
  producer2.Close();
  sub.Close();
  ASSERT_EQ(server_->Stop(milliseconds(10'000)), 0);
  EXPECT_EQ(SnapshotFiles().size(), 3u);
}

TEST_F(DurableTest, KillNineLosesAtMostTheSnapshotInterval) {
  ASSERT_TRUE(StartWith("2", "200ms"));
  const std::string written = "snapshots_total{result=\"written\"}";
  // While nothing changes, rounds leave the files alone (same inodes: not replaced).
  ASSERT_TRUE(WaitUntil([&] { return Get(Scrape(), written) >= 1; }, milliseconds(10'000),
                        milliseconds(50)));
  const auto inodes = Inodes();
  ASSERT_EQ(inodes.size(), 2u);
  ASSERT_TRUE(WaitUntil([&] { return Get(Scrape(), written) >= 3; }, milliseconds(10'000),
                        milliseconds(50)));
  EXPECT_EQ(Inodes(), inodes) << "an idle server rewrote its snapshot files";
  const std::vector<std::string> topics = {Topic("a"), Topic("b")};
  RawClient producer;
  v1::AuthOk first_ok;
  ASSERT_TRUE(ConnectAuthed(producer, &first_ok));
  PublishTicks(producer, topics, 10, 50);
  // A round that started after the ack has finished once two more rounds are counted.
  const double rounds = Get(Scrape(), written);
  ASSERT_TRUE(WaitUntil([&] { return Get(Scrape(), written) >= rounds + 2; }, milliseconds(10'000),
                        milliseconds(50)))
      << "no snapshot round finished";
  EXPECT_GE(Get(Scrape(), "snapshot_bytes"), 100);
  const Received before = Backfill(v1::MODE_TICK, topics, 20);
  ASSERT_EQ(::kill(server_->pid(), SIGKILL), 0);
  ASSERT_TRUE(server_->WaitForExit(milliseconds(5000)).has_value());

  ASSERT_TRUE(StartWith("2", "200ms"));
  EXPECT_EQ(Get(Scrape(), "snapshot_restored_topics"), 2);
  const auto restored = LogLines("snapshot_restored");
  ASSERT_EQ(restored.size(), 1u) << server_->Logs();
  EXPECT_NE(restored[0].find("\"clean\":false"), std::string::npos) << restored[0];
  const Received after = Backfill(v1::MODE_TICK, topics, 20);
  EXPECT_EQ(Keys(after.ticks), Keys(before.ticks));
  // The ticks after the last snapshot are gone and their seqs will be handed out again: a new
  // stream epoch, and new topic epochs, tell a resuming client (PROTOCOL S7a).
  RawClient sub;
  v1::AuthOk restored_ok;
  ASSERT_TRUE(ConnectAuthed(sub, &restored_ok));
  EXPECT_NE(restored_ok.stream_epoch(), 0u);
  EXPECT_NE(restored_ok.stream_epoch(), first_ok.stream_epoch());
  for (const auto& t : after.ticks) {
    for (const auto& b : before.ticks) {
      if (b.topic() == t.topic()) {
        EXPECT_NE(t.topic_epoch(), b.topic_epoch()) << t.topic();
      }
    }
  }
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {topics[1]}));
  RawClient producer2;
  ASSERT_TRUE(ConnectAuthed(producer2));
  ASSERT_TRUE(producer2.PublishAcked(1, {MakeTick(topics[1], 1, 1)}));
  Delivery live;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(5000), live));
  EXPECT_EQ(live.ticks[0].seq(), 11u);
}

enum class Damage { kFlipBodyByte, kTruncate, kOtherVersion };

class DurableDamageTest : public DurableTest, public ::testing::WithParamInterface<Damage> {};

TEST_P(DurableDamageTest, DamagedFileIsRefusedLoggedCountedAndTheServerStartsEmpty) {
  ASSERT_TRUE(StartWith("2", "1h"));
  const std::string topic = Topic();
  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(producer));
  PublishTicks(producer, {topic}, 5, 10);
  producer.Close();
  ASSERT_EQ(server_->Stop(milliseconds(10'000)), 0);
  const auto files = SnapshotFiles();
  ASSERT_EQ(files.size(), 2u);
  // Damage the file holding the topic (the larger one).
  const fs::path victim = fs::file_size(files[0]) > fs::file_size(files[1]) ? files[0] : files[1];
  std::string bytes;
  {
    std::ifstream in(victim, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 100u);
  std::string reason;
  switch (GetParam()) {
    case Damage::kFlipBodyByte:
      bytes[bytes.size() - 7] = static_cast<char>(bytes[bytes.size() - 7] ^ 0x40);
      reason = "body checksum mismatch";
      break;
    case Damage::kTruncate:
      bytes.resize(bytes.size() - 10);
      reason = "truncated";
      break;
    case Damage::kOtherVersion:
      bytes[8] = 9;  // the version field (the header checksum no longer matches either)
      reason = "format version 9";
      break;
  }
  {
    std::ofstream out(victim, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  // A temp file a crash left behind is removed at start.
  { std::ofstream(data_.path() + "/data/shard-1-0.snap.tmp") << "partial"; }

  ASSERT_TRUE(StartWith("2", "1h"));
  const auto refused = LogLines("snapshot_refused");
  ASSERT_EQ(refused.size(), 1u) << server_->Logs();
  EXPECT_NE(refused[0].find(victim.filename().string()), std::string::npos) << refused[0];
  EXPECT_NE(refused[0].find(reason), std::string::npos) << refused[0];
  EXPECT_NE(refused[0].find("\"level\":\"error\""), std::string::npos) << refused[0];
  EXPECT_TRUE(LogLines("snapshot_restored").empty());
  EXPECT_EQ(Get(Scrape(), "snapshot_files_refused_total"), 1);
  EXPECT_TRUE(fs::exists(victim.string() + ".refused"));
  EXPECT_FALSE(fs::exists(data_.path() + "/data/shard-1-0.snap.tmp"));
  // The server starts empty and serves: the topic starts over at seq 1.
  RawClient sub;
  ASSERT_TRUE(ConnectAuthed(sub));
  ASSERT_TRUE(sub.Subscribe(1, v1::MODE_TICK, {topic}));
  RawClient producer2;
  ASSERT_TRUE(ConnectAuthed(producer2));
  ASSERT_TRUE(producer2.PublishAcked(1, {MakeTick(topic, 1, 1)}));
  Delivery live;
  ASSERT_TRUE(ReadTicks(sub, 1, milliseconds(5000), live));
  EXPECT_EQ(live.ticks[0].seq(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Damage, DurableDamageTest,
                         ::testing::Values(Damage::kFlipBodyByte, Damage::kTruncate,
                                           Damage::kOtherVersion),
                         [](const auto& p) {
                           switch (p.param) {
                             case Damage::kFlipBodyByte:
                               return std::string("FlippedByte");
                             case Damage::kTruncate:
                               return std::string("Truncated");
                             case Damage::kOtherVersion:
                               return std::string("OtherVersion");
                           }
                           return std::string("Unknown");
                         });

TEST_F(DurableTest, DataDirThatIsAFileFailsStartup) {
  { std::ofstream(data_.path() + "/data") << "not a directory"; }
  EnvOverrides env = DefaultIntegrationEnv();
  env["DATA_DIR"] = data_.path() + "/data";
  ServerProcess server(env);
  ASSERT_TRUE(server.Spawn()) << server.error();
  const auto code = server.WaitForExit(milliseconds(10'000));
  ASSERT_TRUE(code.has_value()) << server.Describe();
  EXPECT_NE(*code, 0);
  EXPECT_LT(*code, 128) << "exited by a signal rather than failing cleanly";
  EXPECT_NE(server.Stderr().find("DATA_DIR: '" + data_.path() + "/data' is not a directory"),
            std::string::npos)
      << server.Stderr();
}

}  // namespace
}  // namespace tickwire::testing
