// Fuzzes the decoder of backplane stream messages (tickwire.v1.BackplaneFrame, what every
// instance reads from JetStream; docs/CLUSTER.md) without a NATS connection. The first input
// byte is the instance's shard count (1-16), the next 8 the stream sequence, the rest the
// message. Properties: every tick taken lands on its topic's owner shard, carries the frame's
// accept time and seq = stream sequence * 65536 + its position, in frame order; at most 65535
// ticks are taken; one shard or many, the same ticks are taken.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "cluster/backplane_frame.h"
#include "engine/topic.h"

namespace {

using namespace tickwire::cluster;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 9) return 0;
  const unsigned shards = 1 + data[0] % 16;
  std::uint64_t stream_seq = 0;
  std::memcpy(&stream_seq, data + 1, sizeof stream_seq);
  const std::span<const std::uint8_t> message(data + 9, size - 9);

  const auto frame = DecodeBackplaneFrame(message, stream_seq, shards);
  const auto single = DecodeBackplaneFrame(message, stream_seq, 1);
  Check(frame.has_value() == single.has_value());
  if (!frame) return 0;
  Check(frame->by_shard.size() == shards);
  Check(frame->ticks < kSeqPerMessage);
  Check(single->ticks == frame->ticks && single->by_shard[0].size() == frame->ticks);
  Check(single->origin == frame->origin && single->nonce == frame->nonce);
  std::size_t total = 0;
  for (unsigned s = 0; s < shards; ++s) {
    bool first = true;
    std::uint64_t last = 0;
    for (const auto& t : frame->by_shard[s]) {
      Check(shards == 1 || tickwire::engine::ShardOf(t.topic, shards) == s);
      Check(t.accepted_ns == frame->accepted_ns);
      // Unsigned arithmetic: the sequence may wrap, the position may not.
      const std::uint64_t position = t.seq - stream_seq * kSeqPerMessage;
      Check(position < frame->ticks);
      Check(first || position > last);  // frame order within a shard
      first = false;
      last = position;
      const auto& same = single->by_shard[0][position];
      Check(same.topic == t.topic && same.seq == t.seq);
      ++total;
    }
  }
  Check(total == frame->ticks);
  return 0;
}
