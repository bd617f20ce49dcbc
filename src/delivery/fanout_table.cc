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

std::size_t FanoutTable::Deliver(const engine::RecordBlockPtr& block_ptr, unsigned worker) const {
  const engine::RecordBlock& block = *block_ptr;
  const engine::WorkerMask me = engine::WorkerBit(worker);
  std::size_t deliveries = 0;
  const auto& entries = block.entries;
  using Run = std::span<const engine::RecordBlock::Entry>;
  for (std::size_t i = 0; i < entries.size();) {
    // A run: following entries of the same mode and destination workers, bytes end to end.
    const auto& first = entries[i];
    std::size_t j = i + 1;
    while (j < entries.size() && entries[j].mode == first.mode &&
           entries[j].workers == first.workers &&
           entries[j].offset == entries[j - 1].offset + entries[j - 1].length) {
      ++j;
    }
    const std::size_t begin = i;
    i = j;
    if ((first.workers & me) == 0) continue;
    const auto slot = static_cast<std::size_t>(first.mode);
    // "*" subscribers take the whole run, whatever its topics.
    for (const auto& [sub, refs] : wildcard_[slot]) {
      sub->DeliverRun(block_ptr, Run(entries.data() + begin, j - begin));
      deliveries += j - begin;
    }
    if (topics_.empty()) continue;
    // Exact-topic subscribers: one lookup per stretch of one topic.
    for (std::size_t k = begin; k < j;) {
      const std::string_view topic = block.Topic(entries[k]);
      std::size_t m = k + 1;
      while (m < j && block.Topic(entries[m]) == topic) ++m;
      const Run run(entries.data() + k, m - k);
      k = m;
      auto it = topics_.find(topic);
      if (it == topics_.end()) continue;
      for (const auto& [sub, refs] : it->second[slot]) {
        if (sub->wildcard_refs_[slot] > 0) continue;  // already served through the wildcard list
        sub->DeliverRun(block_ptr, run);
        deliveries += run.size();
      }
    }
  }
  return deliveries;
}

}  // namespace tickwire::delivery
