#include "cluster/backplane_frame.h"

#include <algorithm>
#include <limits>

#include "engine/topic.h"
#include "tickwire/v1/backplane.pb.h"

namespace tickwire::cluster {

std::optional<DecodedFrame> DecodeBackplaneFrame(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t stream_seq) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  v1::BackplaneFrame frame;
  if (!frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  DecodedFrame out;
  out.origin = std::move(*frame.mutable_origin());
  out.nonce = frame.nonce();
  out.accepted_ns = frame.accepted_ns();
  if (out.accepted_ns < 0 || out.accepted_ns > kMaxFrameAcceptNs) return std::nullopt;
  const std::int64_t latest_ts_ns = out.accepted_ns + kMaxFrameFutureSkewNs;
  out.user = std::move(*frame.mutable_user());
  const int n = std::min(frame.ticks_size(), static_cast<int>(kSeqPerMessage - 1));
  out.ticks.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto* t = frame.mutable_ticks(i);
    if (t->ts_ns() < 0 || t->ts_ns() > latest_ts_ns) return std::nullopt;
    out.ticks.push_back(engine::IngestTick{
        std::move(*t->mutable_topic()), t->price(), t->size(), t->ts_ns(), out.accepted_ns,
        stream_seq * kSeqPerMessage + static_cast<std::uint64_t>(i),
        static_cast<std::uint32_t>(i)});
  }
  return out;
}

AdmittedFrame AdmitFrame(DecodedFrame& frame, std::uint64_t stream_seq, std::int64_t clock_ns,
                         TopicDirectory& directory, unsigned shards) {
  shards = std::max(shards, 1U);
  AdmittedFrame out;
  out.by_shard.resize(shards);
  out.forget.resize(shards);
  std::vector<std::string> evicted;
  for (auto& tick : frame.ticks) {
    evicted.clear();
    const engine::Refusal r = directory.Admit(tick, frame.user, stream_seq, clock_ns, evicted);
    for (auto& topic : evicted) {
      const unsigned s = shards == 1 ? 0 : engine::ShardOf(topic, shards);
      out.forget[s].push_back(std::move(topic));
    }
    if (r != engine::Refusal::kNone) {
      if (out.refused_total++ == 0) {
        out.first_refused_index = tick.index;
        out.first_refused_topic = tick.topic;
        out.first_refused_reason = r;
      }
      ++out.refused[static_cast<std::size_t>(r)];
      continue;
    }
    const unsigned s = shards == 1 ? 0 : engine::ShardOf(tick.topic, shards);
    out.by_shard[s].push_back(std::move(tick));
    ++out.applied;
  }
  return out;
}

}  // namespace tickwire::cluster
