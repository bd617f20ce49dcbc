#include "delivery/fanout_table.h"

#include <algorithm>

namespace tickwire::delivery {

bool FanoutTable::AddRef(SubList& list, Subscriber* s) {
  for (auto& [sub, refs] : list) {
    if (sub == s) {
      ++refs;
      return false;
    }
  }
  list.emplace_back(s, 1);
  return list.size() == 1;
}

bool FanoutTable::DropRef(SubList& list, Subscriber* s) {
  auto it = std::find_if(list.begin(), list.end(), [s](const auto& e) { return e.first == s; });
  if (it == list.end()) return false;
  if (--it->second > 0) return false;
  *it = list.back();
  list.pop_back();
  return list.empty();
}

void FanoutTable::Add(Subscriber* s, engine::Mode mode, std::span<const std::string> topics,
                      bool wildcard, std::vector<InterestChange>& changes) {
  const auto slot = static_cast<std::size_t>(mode);
  if (wildcard) {
    ++s->wildcard_refs_[slot];
    if (AddRef(wildcard_[slot], s)) changes.push_back({"", true, mode, true});
  }
  for (const std::string& topic : topics) {
    auto it = topics_.find(topic);
    if (it == topics_.end())
      it = topics_.emplace(topic, std::array<SubList, engine::kModeSlots>{}).first;
    if (AddRef(it->second[slot], s)) changes.push_back({topic, false, mode, true});
  }
}

void FanoutTable::Remove(Subscriber* s, engine::Mode mode, std::span<const std::string> topics,
                         bool wildcard, std::vector<InterestChange>& changes) {
  const auto slot = static_cast<std::size_t>(mode);
  if (wildcard && s->wildcard_refs_[slot] > 0) {
    --s->wildcard_refs_[slot];
    if (DropRef(wildcard_[slot], s)) changes.push_back({"", true, mode, false});
  }
  for (const std::string& topic : topics) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) continue;
    if (DropRef(it->second[slot], s)) {
      changes.push_back({topic, false, mode, false});
      const bool all_empty = std::all_of(it->second.begin(), it->second.end(),
                                         [](const SubList& l) { return l.empty(); });
      if (all_empty) topics_.erase(it);
    }
  }
}

std::size_t FanoutTable::Deliver(const engine::RecordBlock& block, unsigned worker) const {
  const engine::WorkerMask me = engine::WorkerBit(worker);
  std::size_t deliveries = 0;
  const auto& entries = block.entries;
  for (std::size_t i = 0; i < entries.size();) {
    const auto& e = entries[i];
    // The run: following entries of the same topic and mode, bytes end to end. One lookup and
    // one call per subscriber for all of them.
    std::size_t j = i + 1;
    const std::string_view topic = block.Topic(e);
    while (j < entries.size()) {
      const auto& prev = entries[j - 1];
      const auto& next = entries[j];
      if (next.mode != e.mode || next.workers != e.workers ||
          next.offset != prev.offset + prev.length || block.Topic(next) != topic) {
        break;
      }
      ++j;
    }
    const std::span<const engine::RecordBlock::Entry> run(entries.data() + i, j - i);
    i = j;
    if ((e.workers & me) == 0) continue;
    const auto slot = static_cast<std::size_t>(e.mode);
    for (const auto& [sub, refs] : wildcard_[slot]) {
      sub->DeliverRun(block, run);
      deliveries += run.size();
    }
    auto it = topics_.find(topic);
    if (it == topics_.end()) continue;
    for (const auto& [sub, refs] : it->second[slot]) {
      if (sub->wildcard_refs_[slot] > 0) continue;  // already served through the wildcard list
      sub->DeliverRun(block, run);
      deliveries += run.size();
    }
  }
  return deliveries;
}

}  // namespace tickwire::delivery
