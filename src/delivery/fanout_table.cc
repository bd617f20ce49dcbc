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

bool FanoutTable::AddTo(Table& table, std::string_view key, std::size_t slot, Subscriber* s) {
  auto it = table.find(key);
  if (it == table.end())
    it = table.emplace(std::string(key), std::array<SubList, engine::kModeSlots>{}).first;
  return AddRef(it->second[slot], s);
}

bool FanoutTable::DropFrom(Table& table, std::string_view key, std::size_t slot, Subscriber* s) {
  auto it = table.find(key);
  if (it == table.end() || !DropRef(it->second[slot], s)) return false;
  const bool all_empty =
      std::all_of(it->second.begin(), it->second.end(), [](const SubList& l) { return l.empty(); });
  if (all_empty) table.erase(it);
  return true;
}

void FanoutTable::Add(Subscriber* s, engine::Mode mode, std::span<const std::string> topics,
                      bool wildcard, std::vector<InterestChange>& changes) {
  const auto slot = static_cast<std::size_t>(mode);
  if (s->mode_refs_[slot]++ == 0) {
    s->mode_index_[slot] = static_cast<std::uint32_t>(by_mode_[slot].size());
    by_mode_[slot].push_back(s);
  }
  if (wildcard) {
    ++s->wildcard_refs_[slot];
    if (AddRef(wildcard_[slot], s)) changes.push_back({"", true, mode, true});
  }
  for (const std::string& topic : topics) {
    if (const std::string_view prefix = engine::PrefixOf(topic); !prefix.empty()) {
      if (AddTo(prefixes_, prefix, slot, s))
        changes.push_back({std::string(prefix), true, mode, true});
    } else if (AddTo(topics_, topic, slot, s)) {
      changes.push_back({topic, false, mode, true});
    }
  }
}

void FanoutTable::Remove(Subscriber* s, engine::Mode mode, std::span<const std::string> topics,
                         bool wildcard, std::vector<InterestChange>& changes) {
  const auto slot = static_cast<std::size_t>(mode);
  if (s->mode_refs_[slot] > 0 && --s->mode_refs_[slot] == 0) {
    auto& list = by_mode_[slot];
    const std::uint32_t at = s->mode_index_[slot];
    list[at] = list.back();
    list[at]->mode_index_[slot] = at;
    list.pop_back();
  }
  if (wildcard && s->wildcard_refs_[slot] > 0) {
    --s->wildcard_refs_[slot];
    if (DropRef(wildcard_[slot], s)) changes.push_back({"", true, mode, false});
  }
  for (const std::string& topic : topics) {
    if (const std::string_view prefix = engine::PrefixOf(topic); !prefix.empty()) {
      if (DropFrom(prefixes_, prefix, slot, s)) {
        changes.push_back({std::string(prefix), true, mode, false});
      }
    } else if (DropFrom(topics_, topic, slot, s)) {
      changes.push_back({topic, false, mode, false});
    }
  }
}

std::size_t FanoutTable::DeliverWatermark(engine::Mode interval, std::string_view entry) const {
  // Closing a connection defers its removal from this table, so the list holds still here.
  const auto& list = by_mode_[static_cast<std::size_t>(interval)];
  for (Subscriber* s : list) s->DeliverWatermark(interval, entry);
  return list.size();
}

std::size_t FanoutTable::DeliverStretch(const engine::RecordBlockPtr& block, std::string_view topic,
                                        std::size_t slot,
                                        std::span<const engine::RecordBlock::Entry> run) const {
  std::size_t deliveries = 0;
  const SubList* exact = nullptr;
  if (!topics_.empty()) {
    if (auto it = topics_.find(topic); it != topics_.end()) exact = &it->second[slot];
  }
  // Prefix lists matching this topic: at most one per '.' of its name.
  std::array<const SubList*, engine::kMaxTopicLength> matched;
  std::size_t n_matched = 0;
  if (!prefixes_.empty()) {
    engine::ForEachPatternPrefix(topic, [&](std::string_view prefix) {
      auto it = prefixes_.find(prefix);
      if (it != prefixes_.end() && !it->second[slot].empty())
        matched[n_matched++] = &it->second[slot];
    });
  }
  if (n_matched == 0) {
    // The exact path: no subscriber can be in two lists, so no marking.
    if (exact == nullptr) return 0;
    for (const auto& [sub, refs] : *exact) {
      if (sub->wildcard_refs_[slot] > 0) continue;  // already served through the wildcard list
      sub->DeliverRun(block, run);
      deliveries += run.size();
    }
    return deliveries;
  }
  const std::uint64_t stamp = ++stamp_;
  auto serve = [&](const SubList& list) {
    for (const auto& [sub, refs] : list) {
      if (sub->wildcard_refs_[slot] > 0 || sub->fanout_stamp_ == stamp) continue;
      sub->fanout_stamp_ = stamp;
      sub->DeliverRun(block, run);
      deliveries += run.size();
    }
  };
  if (exact != nullptr) serve(*exact);
  for (std::size_t i = 0; i < n_matched; ++i) serve(*matched[i]);
  return deliveries;
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
    if (topics_.empty() && prefixes_.empty()) continue;
    // Exact-topic and prefix subscribers: one stretch of one topic at a time.
    for (std::size_t k = begin; k < j;) {
      const std::string_view topic = block.Topic(entries[k]);
      std::size_t m = k + 1;
      while (m < j && block.Topic(entries[m]) == topic) ++m;
      const Run run(entries.data() + k, m - k);
      k = m;
      if (!prefixes_.empty()) {
        deliveries += DeliverStretch(block_ptr, topic, slot, run);
        continue;
      }
      // No prefix subscriber on this worker: the exact lookup inline, as cheap as before
      // prefixes existed (no call, no prefix scan, no marking).
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
