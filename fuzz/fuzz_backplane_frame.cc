// Fuzzes the decoder of backplane stream messages (tickwire.v1.BackplaneFrame, what every
// instance reads from JetStream; docs/CLUSTER.md) and the log's topic cap, without a NATS
// connection. The first input byte is the instance's shard count (1-16), the second the topic
// cap (1-8 topics, or none), the third the per-user cap, the next 8 the stream sequence, the
// rest the message, decoded and admitted a few times as successive log messages. Properties:
// times are inside the decoder's bounds (no overflow downstream, UBSan checks); ticks carry the
// frame's accept time and seq = stream sequence * 65536 + their position, at most 65535 are taken;
// every admitted tick lands on its topic's owner shard in frame order; applied + refused = taken;
// the directory never holds more topics than its cap, and every topic it evicts is one it held;
// without a cap nothing is refused and the split does not depend on the shard count.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <span>
#include <string>

#include "cluster/backplane_frame.h"
#include "engine/topic.h"

namespace {

using namespace tickwire::cluster;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 11) return 0;
  const unsigned shards = 1 + data[0] % 16;
  const bool capped = data[1] % 9 != 0;
  const std::size_t max_topics = capped ? data[1] % 9 : 1'000'000;
  const std::size_t per_user = capped ? data[2] % 4 : 0;
  std::uint64_t stream_seq = 0;
  std::memcpy(&stream_seq, data + 3, sizeof stream_seq);
  const std::span<const std::uint8_t> message(data + 11, size - 11);

  TopicDirectory directory(max_topics, std::min(per_user, max_topics), 100'000'000);
  std::set<std::string> held;
  std::int64_t clock = 0;
  for (int round = 0; round < 3; ++round) {
    const std::uint64_t seq = stream_seq + static_cast<std::uint64_t>(round);
    auto frame = DecodeBackplaneFrame(message, seq);
    if (!frame) return 0;
    Check(frame->ticks.size() < kSeqPerMessage);
    for (std::size_t i = 0; i < frame->ticks.size(); ++i) {
      const auto& t = frame->ticks[i];
      Check(t.accepted_ns == frame->accepted_ns);
      Check(t.ts_ns >= 0 && t.ts_ns <= frame->accepted_ns + kMaxFrameFutureSkewNs);
      Check(t.seq - seq * kSeqPerMessage == i && t.index == i);  // unsigned: may wrap
    }
    const auto taken = frame->ticks;
    const AdmittedFrame admitted = AdmitFrame(*frame, seq, clock, directory, shards);
    // Alternate clocks so that some topics become evictable between rounds.
    clock = round % 2 == 0 ? std::int64_t{1} << 62 : clock;
    std::uint32_t refused = 0;
    for (auto n : admitted.refused) refused += n;
    Check(refused == admitted.refused_total);
    Check(admitted.applied + refused == taken.size());
    if (!capped) Check(refused == 0);
    std::size_t total = 0;
    for (unsigned s = 0; s < shards; ++s) {
      for (const auto& topic : admitted.forget[s]) {
        Check(shards == 1 || tickwire::engine::ShardOf(topic, shards) == s);
        Check(held.erase(topic) == 1);
      }
      std::uint32_t last = 0;
      bool first = true;
      for (const auto& t : admitted.by_shard[s]) {
        Check(shards == 1 || tickwire::engine::ShardOf(t.topic, shards) == s);
        Check(first || t.index > last);  // frame order within a shard
        first = false;
        last = t.index;
        Check(taken[t.index].topic == t.topic && taken[t.index].seq == t.seq);
        held.insert(t.topic);
        ++total;
      }
    }
    Check(total == admitted.applied);
    if (refused > 0) Check(admitted.first_refused_index < taken.size());
    Check(directory.size() <= max_topics && directory.size() == held.size());
    for (const auto& topic : held) Check(directory.Contains(topic));
  }
  return 0;
}
