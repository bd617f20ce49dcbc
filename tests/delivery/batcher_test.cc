#include "delivery/batcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::delivery {
namespace {

std::string Entry(std::uint64_t seq) {
  std::string out;
  protocol::AppendTickRecordEntry(out,
                                  {"TOPIC", 1.25, 2.0, 1'700'000'000'000'000'000, seq, seq - 1});
  return out;
}

v1::DataBatch ParseFrame(const std::string& frame) {
  EXPECT_GE(frame.size(), protocol::kHeaderSize);
  EXPECT_EQ(static_cast<std::uint8_t>(frame[4]), 0x08);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(frame.data());
  EXPECT_EQ(protocol::DecodeLength(bytes), frame.size() - 4);
  v1::DataBatch batch;
  EXPECT_TRUE(batch.ParseFromArray(frame.data() + 5, static_cast<int>(frame.size() - 5)));
  return batch;
}

TEST(BatcherTest, NumbersFramesAndCutsAtMaxMsgSize) {
  constexpr std::uint32_t kMax = 1024;
  Batcher batcher(kMax);
  std::vector<std::string> frames;
  auto emit = [&](std::string f) { frames.push_back(std::move(f)); };
  int opened = 0;
  for (std::uint64_t seq = 1; seq <= 500; ++seq) opened += batcher.Add(Entry(seq), emit) ? 1 : 0;
  frames.push_back(batcher.Finish());
  EXPECT_EQ(static_cast<std::size_t>(opened), frames.size());
  EXPECT_GT(frames.size(), 10u);
  std::uint64_t next_seq = 1;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    EXPECT_LE(frames[i].size() - protocol::kHeaderSize, kMax);
    const auto batch = ParseFrame(frames[i]);
    EXPECT_EQ(batch.batch_seq(), i + 1);
    for (const auto& r : batch.records()) EXPECT_EQ(r.tick().seq(), next_seq++);
  }
  EXPECT_EQ(next_seq, 501u);
  EXPECT_TRUE(batcher.empty());
  EXPECT_EQ(batcher.next_batch_seq(), frames.size() + 1);
}

}  // namespace
}  // namespace tickwire::delivery
