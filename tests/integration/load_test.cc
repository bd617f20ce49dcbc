// One producer, 50 TICK consumers spread over 4 workers: every consumer sees every tick of every
// topic exactly once, in order, with consecutive seq/prev_seq and batch_seq.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/integration_test.h"
#include "protocol/wire.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;

constexpr int kConsumers = 50;
constexpr int kTopics = 4;
constexpr int kTicks = 20'000;
constexpr int kTicksPerPublish = 100;
constexpr milliseconds kDeliveryTimeout{30'000};

// What one consumer saw; checked on the main thread after all readers finish.
struct ConsumerResult {
  std::uint64_t ticks = 0;
  std::uint64_t frames = 0;
  std::map<std::string, std::uint64_t> last_seq;  // per topic
  std::string failure;                            // first problem found, empty when none
};

// Reads until `expected` ticks arrived, the deadline passes, or a check fails. Uses the
// hand-written scanner (no protobuf objects) so 50 readers keep up with the server. Tick i of
// the run has price i and topic i % kTopics, so its seq in that topic is i / kTopics + 1.
void Consume(RawClient& client, std::uint64_t expected, steady_clock::time_point deadline,
             const std::atomic<bool>& stop, ConsumerResult& out) {
  std::uint64_t next_batch_seq = 1;
  while (out.ticks < expected && out.failure.empty()) {
    // Short reads so an aborted test (stop) does not wait for the whole deadline.
    const ReadResult r = client.ReadFrame(std::min(Remaining(deadline), milliseconds(200)));
    if (r.status == ReadStatus::kTimeout && !stop && steady_clock::now() < deadline) continue;
    if (!r.ok()) {
      std::ostringstream msg;
      msg << "after " << out.ticks << " of " << expected << " ticks: " << ReadStatusName(r.status)
          << " " << r.detail;
      out.failure = msg.str();
      return;
    }
    if (r.frame.frame_type() != FrameType::kDataBatch) {
      out.failure = "unexpected " + DescribeFrame(r.frame);
      return;
    }
    ++out.frames;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(r.frame.payload.data());
    const auto batch_seq = protocol::ScanDataBatch(
        std::span<const std::uint8_t>(bytes, r.frame.payload.size()),
        [&](protocol::RecordKind kind, std::span<const std::uint8_t> inner) {
          if (!out.failure.empty()) return;
          if (kind != protocol::RecordKind::kTick) {
            out.failure = "a record that is not a tick";
            return;
          }
          const auto tick = protocol::ParseTickFields(inner);
          if (!tick) {
            out.failure = "a tick that does not parse";
            return;
          }
          auto& last = out.last_seq[std::string(tick->topic)];
          const auto price_index = static_cast<std::uint64_t>(tick->price);
          const std::uint64_t want_seq = price_index / kTopics + 1;
          if (tick->seq != last + 1 || tick->prev_seq != last || tick->seq != want_seq) {
            std::ostringstream msg;
            msg << "topic " << tick->topic << ": got seq=" << tick->seq
                << " prev_seq=" << tick->prev_seq << " (price " << tick->price << ") after seq "
                << last;
            out.failure = msg.str();
            return;
          }
          last = tick->seq;
          ++out.ticks;
        });
    if (!batch_seq) {
      out.failure = "DATA_BATCH does not parse";
    } else if (*batch_seq != next_batch_seq) {
      out.failure = "batch_seq " + std::to_string(*batch_seq) + ", expected " +
                    std::to_string(next_batch_seq);
    }
    ++next_batch_seq;
  }
}

class LoadTest : public IntegrationTest {};

TEST_F(LoadTest, FiftyConsumersSeeEveryTickInOrder) {
  ASSERT_TRUE(Start({{"WORKERS", "4"},
                     {"BATCH_WINDOW_MS", "5"},
                     {"HEARTBEAT_INTERVAL", "30s"},
                     {"HEARTBEAT_TIMEOUT", "60s"},
                     {"LOG_LEVEL", "info"}}));
  std::vector<std::string> topics;
  for (int t = 0; t < kTopics; ++t) topics.push_back(Topic("topic" + std::to_string(t)));

  // Connect and subscribe everyone first. Every fifth consumer uses "*", which on this fresh
  // server covers exactly the same topics.
  std::vector<RawClient> consumers(kConsumers);
  for (int i = 0; i < kConsumers; ++i) {
    ASSERT_TRUE(ConnectAuthed(consumers[static_cast<std::size_t>(i)])) << "consumer " << i;
    const std::vector<std::string> subscribe = i % 5 == 0 ? std::vector<std::string>{"*"} : topics;
    ASSERT_TRUE(consumers[static_cast<std::size_t>(i)].Subscribe(1, v1::MODE_TICK, subscribe))
        << "consumer " << i;
  }

  const auto deadline = steady_clock::now() + kDeliveryTimeout;
  std::vector<ConsumerResult> results(kConsumers);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  // Joins the readers on every way out of the test, including a failed ASSERT.
  struct JoinAll {
    std::vector<std::thread>& to_join;
    std::atomic<bool>& stop_flag;
    ~JoinAll() {
      stop_flag = true;
      for (auto& t : to_join) {
        if (t.joinable()) t.join();
      }
    }
  } join_all{readers, stop};
  readers.reserve(kConsumers);
  for (std::size_t i = 0; i < consumers.size(); ++i) {
    readers.emplace_back([&, i] { Consume(consumers[i], kTicks, deadline, stop, results[i]); });
  }

  RawClient producer;
  ASSERT_TRUE(ConnectAuthed(producer));
  const auto publish_start = steady_clock::now();
  const std::int64_t base_ts = NowNs() - 1'000'000'000;
  std::uint32_t request_id = 0;
  bool producer_ok = true;
  for (int first = 0; first < kTicks && producer_ok; first += kTicksPerPublish) {
    std::vector<v1::Tick> ticks;
    ticks.reserve(kTicksPerPublish);
    for (int i = first; i < first + kTicksPerPublish; ++i) {
      ticks.push_back(
          MakeTick(topics[static_cast<std::size_t>(i % kTopics)], i, 1 + i % 7, base_ts + i));
    }
    auto acked = producer.PublishAcked(++request_id, ticks);
    EXPECT_TRUE(acked) << "PUBLISH " << request_id;
    producer_ok = static_cast<bool>(acked);
  }
  const auto publish_ms =
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - publish_start).count();

  if (!producer_ok) stop = true;
  for (auto& t : readers) t.join();
  const auto total_ms =
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - publish_start).count();
  std::uint64_t frames = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    frames += r.frames;
    EXPECT_TRUE(r.failure.empty()) << "consumer " << i << ": " << r.failure;
    EXPECT_EQ(r.ticks, static_cast<std::uint64_t>(kTicks)) << "consumer " << i;
    for (const auto& topic : topics) {
      const auto it = r.last_seq.find(topic);
      EXPECT_TRUE(it != r.last_seq.end() && it->second == kTicks / kTopics)
          << "consumer " << i << " topic " << topic;
    }
    // Exactly our topics, nothing else (the server is fresh).
    EXPECT_EQ(r.last_seq.size(), static_cast<std::size_t>(kTopics)) << "consumer " << i;
  }
  // Nothing beyond the expected ticks follows.
  for (std::size_t i = 0; i < consumers.size() && !HasFailure(); ++i) {
    EXPECT_TRUE(consumers[i].ExpectNothing(milliseconds(i == 0 ? 50 : 0))) << "consumer " << i;
  }
  ::testing::Test::RecordProperty("publish_ms", std::to_string(publish_ms));
  ::testing::Test::RecordProperty("deliver_all_ms", std::to_string(total_ms));
  ::testing::Test::RecordProperty("data_batch_frames", std::to_string(frames));
  std::cout << "[ load     ] " << kTicks << " ticks x " << kConsumers << " consumers: published in "
            << publish_ms << " ms, all delivered in " << total_ms << " ms, " << frames
            << " DATA_BATCH frames\n";
}

}  // namespace
}  // namespace tickwire::testing
