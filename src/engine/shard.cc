#include "engine/shard.h"

#include "protocol/wire.h"

namespace tickwire::engine {

Shard::TopicState& Shard::Lookup(std::string_view topic) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) it = topics_.emplace(std::string(topic), TopicState{}).first;
  return it->second;
}

std::size_t Shard::Apply(std::span<const IngestTick> ticks, RecordBlock& out) {
  const auto tick_slot = static_cast<std::size_t>(Mode::kTick);
  for (const IngestTick& t : ticks) {
    TopicState& st = Lookup(t.topic);
    const std::uint64_t prev = st.last_seq;
    st.last_seq = prev + 1;
    const WorkerMask dest = st.interest[tick_slot] | wildcard_[tick_slot];
    if (dest == 0) continue;  // nobody listens: nothing to encode
    const auto offset = out.bytes.size();
    const std::size_t topic_offset = protocol::AppendTickRecordEntry(
        out.bytes, protocol::TickFields{t.topic, t.price, t.size, t.ts_ns, st.last_seq, prev});
    out.entries.push_back(RecordBlock::Entry{
        static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(out.bytes.size() - offset),
        static_cast<std::uint32_t>(topic_offset), static_cast<std::uint16_t>(t.topic.size()),
        Mode::kTick, dest});
  }
  return ticks.size();
}

namespace {
void SetWorkerBit(WorkerMask& mask, unsigned worker, bool on) {
  mask = on ? (mask | WorkerBit(worker)) : (mask & ~WorkerBit(worker));
}
}  // namespace

void Shard::SetInterest(std::string_view topic, Mode mode, unsigned worker, bool interested) {
  SetWorkerBit(Lookup(topic).interest[static_cast<std::size_t>(mode)], worker, interested);
}

void Shard::SetWildcardInterest(Mode mode, unsigned worker, bool interested) {
  SetWorkerBit(wildcard_[static_cast<std::size_t>(mode)], worker, interested);
}

std::uint64_t Shard::LastSeq(std::string_view topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : it->second.last_seq;
}

}  // namespace tickwire::engine
