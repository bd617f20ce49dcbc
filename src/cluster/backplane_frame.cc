#include "cluster/backplane_frame.h"

#include <algorithm>
#include <limits>

#include "engine/topic.h"
#include "tickwire/v1/backplane.pb.h"

namespace tickwire::cluster {

std::optional<DecodedFrame> DecodeBackplaneFrame(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t stream_seq, unsigned shards) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  v1::BackplaneFrame frame;
  if (!frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  DecodedFrame out;
  out.origin = std::move(*frame.mutable_origin());
  out.nonce = frame.nonce();
  out.accepted_ns = frame.accepted_ns();
  out.by_shard.resize(std::max(shards, 1U));
  const int n = std::min(frame.ticks_size(), static_cast<int>(kSeqPerMessage - 1));
  out.ticks = static_cast<std::size_t>(n);
  for (int i = 0; i < n; ++i) {
    auto* t = frame.mutable_ticks(i);
    engine::IngestTick tick{std::move(*t->mutable_topic()),
                            t->price(),
                            t->size(),
                            t->ts_ns(),
                            out.accepted_ns,
                            stream_seq * kSeqPerMessage + static_cast<std::uint64_t>(i)};
    const unsigned s = shards <= 1 ? 0 : engine::ShardOf(tick.topic, shards);
    out.by_shard[s].push_back(std::move(tick));
  }
  return out;
}

}  // namespace tickwire::cluster
