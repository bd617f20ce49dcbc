// History replays against hostile clients (docs/SECURITY.md, "What a client can do at most"):
// a flood of SUBSCRIBE('*', since_ms) + UNSUBSCRIBE pairs against a server holding a lot of
// history keeps its memory bounded and other clients' heartbeats prompt, while a real replay
// of all that history still arrives whole, in order, without duplicates.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "integration/bars_support.h"
#include "integration/integration_test.h"
#include "protocol/frame.h"
#include "support/sanitizers.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

class HistoryLimitsTest : public IntegrationTest {};

std::string Encoded(FrameType type, const google::protobuf::MessageLite& m) {
  return protocol::MakeFrame(type, m.SerializeAsString());
}

v1::Subscribe AllSince1(std::uint32_t request_id) {
  v1::Subscribe s;
  s.set_request_id(request_id);
  s.set_mode(v1::MODE_TICK);
  s.add_topics("*");
  s.set_since_ms(1);
  return s;
}

// Publishes `ticks_per_topic` ticks on each topic, acked, in frames of about 400 ticks.
::testing::AssertionResult PublishHistory(RawClient& producer,
                                          const std::vector<std::string>& topics,
                                          int ticks_per_topic) {
  std::vector<v1::Tick> frame;
  std::uint32_t rid = 0;
  for (int n = 0; n < ticks_per_topic; ++n) {
    for (const auto& t : topics) frame.push_back(MakeTick(t, 100.0 + n, 1));
    if (frame.size() >= 400 || n + 1 == ticks_per_topic) {
      if (auto ok = producer.PublishAcked(++rid, frame); !ok) return ok;
      frame.clear();
    }
  }
  return ::testing::AssertionSuccess();
}

// Reads a replay of every topic until `total` ticks; then each topic must hold its ticks from
// seq 1 on, once each and in order.
::testing::AssertionResult ReadWholeReplay(RawClient& reader, std::size_t topics,
                                           std::size_t per_topic) {
  Received got;
  std::map<std::string, std::vector<v1::Tick>> by_topic;
  std::size_t total = 0;
  auto ok = ReadUntil(reader, got, milliseconds(60'000), [&] {
    for (auto& t : got.ticks) by_topic[t.topic()].push_back(std::move(t));
    total += got.ticks.size();
    got.ticks.clear();
    return total >= topics * per_topic;
  });
  if (!ok) return ok;
  if (auto drained = Drain(reader, got, milliseconds(200)); !drained) return drained;
  if (!got.ticks.empty()) return ::testing::AssertionFailure() << "more records than published";
  if (by_topic.size() != topics) {
    return ::testing::AssertionFailure() << by_topic.size() << " topics replayed";
  }
  for (const auto& [topic, list] : by_topic) {
    if (list.size() != per_topic) {
      return ::testing::AssertionFailure() << topic << ": " << list.size() << " ticks";
    }
    if (auto seq = CheckSequence(list, 1); !seq) return seq << " (" << topic << ")";
  }
  return ::testing::AssertionSuccess();
}

// Heartbeat round trips on two connections (one per worker: connections alternate between
// workers) every 5 ms until stopped; keeps the slowest.
class HeartbeatWatch {
 public:
  explicit HeartbeatWatch(std::uint16_t port) {
    thread_ = std::thread([this, port] {
      RawClient c[2];
      for (auto& client : c) {
        if (!client.Connect(port) ||
            !client.Authenticate(ServerProcess::kUser, ServerProcess::kPass)) {
          failed_ = true;
          return;
        }
      }
      ready_ = true;
      const auto deadline = steady_clock::now() + std::chrono::seconds(120);
      for (std::int64_t n = 1; !stop_ && steady_clock::now() < deadline; ++n) {
        for (auto& client : c) {
          const auto t0 = steady_clock::now();
          if (!client.HeartbeatRoundTrip(n)) {
            failed_ = true;
            return;
          }
          const auto us =
              std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - t0)
                  .count();
          slowest_us_ = std::max<std::int64_t>(slowest_us_, us);
        }
        std::this_thread::sleep_for(milliseconds(5));
      }
    });
  }
  ~HeartbeatWatch() { Stop(); }
  bool ready() const { return ready_; }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool failed() const { return failed_; }
  std::int64_t slowest_ms() const { return slowest_us_ / 1000; }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::atomic<bool> failed_{false};
  std::atomic<std::int64_t> slowest_us_{0};
};

// Before history was replayed in slices, about 1.5 KB of these pairs took a server from 19 MB to
// about 1 GB and stalled another worker for 816 ms, and 8 KB ran it out of memory.
TEST_F(HistoryLimitsTest, SubscribeUnsubscribeFloodKeepsMemoryBoundedAndHeartbeatsPrompt) {
  ASSERT_TRUE(Start({{"WORKERS", "2"}}));
  // History: 200 topics x 1024 ticks (HISTORY_TICKS), about 20 MB once encoded for a replay.
  constexpr int kTopics = 200;
  constexpr int kTicksPerTopic = 1024;
  std::vector<std::string> topics;
  for (int i = 0; i < kTopics; ++i) topics.push_back("hist." + std::to_string(1000 + i));
  {
    RawClient producer;
    ASSERT_TRUE(ConnectAuthed(producer));
    ASSERT_TRUE(PublishHistory(producer, topics, kTicksPerTopic));
  }
  const pid_t pid = server_->pid();
  const auto rss_before = ProcStatusKb(pid, "VmRSS");
  const auto peak_before = ProcStatusKb(pid, "VmHWM");
  ASSERT_TRUE(rss_before && peak_before);

  HeartbeatWatch watch(server_->port());
  ASSERT_TRUE(WaitUntil([&] { return watch.ready() || watch.failed(); }, milliseconds(5000)));
  ASSERT_FALSE(watch.failed());

  // A real replay of everything, read as fast as it comes, during the attack.
  RawClient reader;
  ASSERT_TRUE(ConnectAuthed(reader));
  ASSERT_TRUE(reader.SendFrame(FrameType::kSubscribe, AllSince1(1)));
  ASSERT_TRUE(reader.ReadMessage(FrameType::kSubscribeOk, static_cast<v1::SubscribeOk*>(nullptr)));

  // Four attackers, three rounds each of 100 pipelined pairs (about 2.6 KB per round),
  // subscription ids predicted (1, 2, 3, ... per connection).
  constexpr int kAttackers = 4;
  constexpr int kRounds = 3;
  constexpr int kPairs = 100;
  std::vector<RawClient> attackers(kAttackers);
  for (auto& a : attackers) ASSERT_TRUE(ConnectAuthed(a));
  std::uint64_t next_id = 1;
  for (int round = 0; round < kRounds; ++round) {
    std::string burst;
    for (int i = 0; i < kPairs; ++i, ++next_id) {
      const v1::Subscribe s = AllSince1(static_cast<std::uint32_t>(next_id));
      v1::Unsubscribe u;
      u.set_request_id(static_cast<std::uint32_t>(next_id));
      u.set_subscription_id(next_id);
      burst += Encoded(FrameType::kSubscribe, s) + Encoded(FrameType::kUnsubscribe, u);
    }
    for (auto& a : attackers) ASSERT_TRUE(a.SendBytes(burst));
    // Every SUBSCRIBE is answered (history data may come in between; no ERROR may).
    for (auto& a : attackers) {
      int oks = 0;
      const auto deadline = steady_clock::now() + milliseconds(20'000);
      while (oks < kPairs) {
        const ReadResult r = a.ReadFrame(Remaining(deadline));
        ASSERT_TRUE(r.ok()) << ReadStatusName(r.status) << " after " << oks << " SUBSCRIBE_OK";
        if (r.frame.frame_type() == FrameType::kSubscribeOk) {
          ++oks;
        } else {
          ASSERT_EQ(r.frame.frame_type(), FrameType::kDataBatch) << DescribeFrame(r.frame);
        }
      }
    }
  }

  // The replay: every retained tick of every topic once, in seq order.
  ASSERT_TRUE(ReadWholeReplay(reader, kTopics, kTicksPerTopic));
  for (auto& a : attackers) EXPECT_TRUE(a.HeartbeatRoundTrip(7));
  watch.Stop();
  ASSERT_FALSE(watch.failed());

  const auto peak_after = ProcStatusKb(pid, "VmHWM");
  ASSERT_TRUE(peak_after);
  const std::uint64_t growth_kb = *peak_after > std::max(*peak_before, *rss_before)
                                      ? *peak_after - std::max(*peak_before, *rss_before)
                                      : 0;
  std::printf(
      "[ history flood ] RSS %llu kB before, peak %llu kB before and %llu kB after; "
      "slowest heartbeat round trip %lld ms\n",
      static_cast<unsigned long long>(*rss_before), static_cast<unsigned long long>(*peak_before),
      static_cast<unsigned long long>(*peak_after), static_cast<long long>(watch.slowest_ms()));
  // Before slices, each pair made every owner copy its half of the ~20 MB history at once.
  // (Sanitizers' shadow memory and quarantine make RSS meaningless, and slow everything.)
  if (!kSanitized) {
    EXPECT_LT(growth_kb, 64u * 1024) << "peak RSS grew by " << growth_kb << " kB";
  }
  EXPECT_LT(watch.slowest_ms(), kSanitized ? 5000 : 1000) << "a heartbeat waited on a busy worker";
}

// A replay whose reader stops reading holds only what its queue and the slices on their way
// allow; it never turns into a slow consumer by history alone, and resumes when read again.
TEST_F(HistoryLimitsTest, AReplayIsPacedByItsReader) {
  ASSERT_TRUE(Start({{"WORKERS", "2"}, {"MAX_PENDING_BYTES", "1048576"}, {"SO_SNDBUF", "65536"}}));
  constexpr int kTopics = 50;
  constexpr int kTicksPerTopic = 1024;
  std::vector<std::string> topics;
  for (int i = 0; i < kTopics; ++i) topics.push_back("paced." + std::to_string(i));
  {
    RawClient producer;
    ASSERT_TRUE(ConnectAuthed(producer));
    ASSERT_TRUE(PublishHistory(producer, topics, kTicksPerTopic));
  }
  RawClient reader;
  reader.SetReceiveBuffer(4096);
  ASSERT_TRUE(ConnectAuthed(reader));
  ASSERT_TRUE(reader.SendFrame(FrameType::kSubscribe, AllSince1(1)));
  ASSERT_TRUE(reader.ReadMessage(FrameType::kSubscribeOk, static_cast<v1::SubscribeOk*>(nullptr)));
  // Not reading for a while: the replay (about 4 MB, four times MAX_PENDING_BYTES) waits.
  std::this_thread::sleep_for(milliseconds(500));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "slow_consumer_disconnects_total{reason=\"pending_bytes\"}"), 0);
  ASSERT_TRUE(ReadWholeReplay(reader, kTopics, kTicksPerTopic));
  EXPECT_TRUE(reader.HeartbeatRoundTrip(3));
}

}  // namespace
}  // namespace tickwire::testing
