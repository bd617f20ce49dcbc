#include "delivery/catch_up.h"

#include <algorithm>
#include <limits>

namespace tickwire::delivery {

CatchUp::CatchUp(std::uint64_t id, std::uint64_t subscription_id, engine::Mode mode, Scope scope,
                 std::uint32_t backfill, std::int64_t since_ms, unsigned shards)
    : id_(id),
      subscription_id_(subscription_id),
      mode_(mode),
      wildcard_(scope.wildcard),
      topics_(std::move(scope.topics)),
      excluded_(std::move(scope.excluded)),
      excluded_prefixes_(scope.excluded_prefixes.begin(), scope.excluded_prefixes.end()),
      shards_(shards) {
  // Prefixes to replay, sorted, none under another (kept) or under an excluded one: each
  // topic then falls under at most one, which the shard's name-order walk relies on.
  std::vector<std::string> prefixes;
  if (!wildcard_) {
    std::sort(scope.prefixes.begin(), scope.prefixes.end());
    for (auto& p : scope.prefixes) {
      if (!prefixes.empty() && p.starts_with(prefixes.back())) continue;
      if (!excluded_prefixes_.empty() && MatchesPrefix(excluded_prefixes_, p)) continue;
      prefixes.push_back(std::move(p));
    }
  }
  prefixes_.insert(prefixes.begin(), prefixes.end());
  all_shards_ = wildcard_ || !prefixes.empty();
  const auto shared_prefixes =
      std::make_shared<const std::vector<std::string>>(std::move(prefixes));
  std::vector<std::vector<std::string>> lists(shards);
  if (!wildcard_) {
    for (const auto& t : topics_) lists[engine::ShardOf(t, shards)].push_back(t);
  }
  // Resume positions go to their topics' owners, in topic order (the shard searches them).
  std::vector<std::vector<engine::ResumePoint>> positions(shards);
  if (mode == engine::Mode::kTick) {
    for (auto& p : scope.resume) {
      if (CoversTopic(p.topic)) {
        const unsigned s = engine::ShardOf(p.topic, shards);
        positions[s].push_back(std::move(p));
      }
    }
  }
  for (unsigned s = 0; s < shards; ++s) {
    if (!all_shards_ && lists[s].empty()) continue;
    Owner& o = owners_.emplace_back();
    o.shard = s;
    o.request.mode = mode;
    o.request.wildcard = wildcard_;
    o.request.backfill = backfill;
    o.request.since_ms = since_ms;
    if (mode == engine::Mode::kTick) o.request.resume_from_ns = scope.resume_from_ns;
    if (!positions[s].empty()) {
      o.request.resume =
          std::make_shared<const std::vector<engine::ResumePoint>>(std::move(positions[s]));
    }
    if (!wildcard_) {
      std::sort(lists[s].begin(), lists[s].end());
      o.request.topics = std::make_shared<const std::vector<std::string>>(std::move(lists[s]));
      if (!shared_prefixes->empty()) o.request.prefixes = shared_prefixes;
    }
  }
  unfinished_ = static_cast<unsigned>(owners_.size());
}

bool CatchUp::MatchesPrefix(const TopicSet& prefixes, std::string_view topic) {
  bool found = false;
  engine::ForEachPatternPrefix(topic,
                               [&](std::string_view p) { found = found || prefixes.contains(p); });
  return found;
}

CatchUp::Owner& CatchUp::OwnerOf(unsigned shard) {
  if (all_shards_) return owners_[shard];
  for (auto& o : owners_) {
    if (o.shard == shard) return o;
  }
  return owners_.front();  // unreachable: a covered topic's shard has an owner entry
}

bool CatchUp::NextRequest(SliceRequest& out) {
  const auto n = static_cast<unsigned>(owners_.size());
  for (unsigned k = 0; k < n; ++k) {
    const unsigned i = (next_owner_ + k) % n;
    Owner& o = owners_[i];
    if (!o.active || o.in_flight) continue;
    o.in_flight = true;
    next_owner_ = i + 1;
    out.shard = o.shard;
    out.request = o.request;
    out.cursor = o.cursor;
    return true;
  }
  return false;
}

void CatchUp::Release(const std::string& topic, const HeldList& list) {
  for (const auto& h : list) held_bytes_ -= h.bytes.size() + kHeldRecordOverhead;
  held_bytes_ -= topic.size() + kHeldTopicOverhead;
}

void CatchUp::Flush(HeldList& list, std::size_t from, const Emit& emit) {
  for (std::size_t i = from; i < list.size(); ++i) emit(list[i].bytes);
}

void CatchUp::OnLive(std::string_view topic, std::uint64_t key, std::string_view entry,
                     const Emit& emit) {
  Owner& o = OwnerOf(engine::ShardOf(topic, shards_));
  if (o.cursor.finished || topic <= o.cursor.after) {
    emit(entry);  // its replay is complete (or it was created behind the cursor)
    return;
  }
  auto it = o.held.find(topic);
  if (it == o.held.end()) {
    it = o.held.emplace(std::string(topic), HeldList{}).first;
    held_bytes_ += topic.size() + kHeldTopicOverhead;
  }
  HeldList& list = it->second;
  if (!list.empty() && key <= list.back().key) {
    // Ticks restarted: the topic was evicted and created again. What is held is older than
    // anything a replay can still bring, which will be of the new incarnation.
    Flush(list, 0, emit);
    for (const auto& h : list) held_bytes_ -= h.bytes.size() + kHeldRecordOverhead;
    list.clear();
  }
  list.push_back(Held{std::string(entry), key});
  held_bytes_ += entry.size() + kHeldRecordOverhead;
}

void CatchUp::EndReport::AddLost(engine::LostRange range) {
  if (lost.size() < kMaxLostRanges) {
    lost.push_back(std::move(range));
  } else if (lost_omitted < std::numeric_limits<std::uint32_t>::max()) {
    ++lost_omitted;
  }
}

bool CatchUp::OnSlice(unsigned shard, const engine::HistorySlice& slice, const Emit& emit) {
  Owner& o = OwnerOf(shard);
  o.in_flight = false;
  const engine::HistoryCursor& next = slice.cursor;
  end_.retention = end_.retention || next.retention_cut;
  end_.backfill_limit = end_.backfill_limit || next.truncated;
  end_.epoch_changed = end_.epoch_changed || next.epoch_changed;
  for (const auto& r : slice.lost) end_.AddLost(r);
  end_.lost_omitted = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(std::uint64_t{end_.lost_omitted} + slice.lost_unnamed,
                              std::numeric_limits<std::uint32_t>::max()));
  auto completes = [&](std::string_view topic) { return next.finished || topic <= next.after; };
  const engine::RecordBlock& block = slice.records;
  const auto& entries = block.entries;
  for (std::size_t i = 0; i < entries.size();) {
    const std::string_view topic = block.Topic(entries[i]);
    std::size_t end = i + 1;
    while (end < entries.size() && block.Topic(entries[end]) == topic) ++end;
    if (!CoversTopic(topic)) {  // another subscription delivers it live
      i = end;
      continue;
    }
    auto held = o.held.find(topic);
    HeldList* list = held == o.held.end() ? nullptr : &held->second;
    std::size_t q = 0;  // held records emitted or dropped so far
    for (; i < end; ++i) {
      const std::uint64_t key = entries[i].key;
      if (list != nullptr) {
        while (q < list->size() && (*list)[q].key < key) emit((*list)[q++].bytes);
        if (q < list->size() && (*list)[q].key == key) ++q;  // the same record, live
      }
      emit(block.EntryBytes(entries[i]));
    }
    if (list == nullptr) continue;
    if (completes(topic)) {
      Flush(*list, q, emit);
      Release(held->first, *list);
      o.held.erase(held);
    } else {
      for (std::size_t k = 0; k < q; ++k)
        held_bytes_ -= (*list)[k].bytes.size() + kHeldRecordOverhead;
      list->erase(list->begin(), list->begin() + static_cast<std::ptrdiff_t>(q));
    }
  }
  // Topics completed by this slice without a record in it: what is held of them is all live.
  for (auto it = o.held.upper_bound(o.cursor.after); it != o.held.end() && completes(it->first);) {
    Flush(it->second, 0, emit);
    Release(it->first, it->second);
    it = o.held.erase(it);
  }
  o.cursor = next;
  if (next.finished && o.active) {
    o.active = false;
    --unfinished_;
  }
  return complete();
}

void CatchUp::Abandon(const std::function<bool(std::string_view topic)>& keep, const Emit& emit) {
  cancel_->cancelled.store(true, std::memory_order_relaxed);
  for (auto& o : owners_) {
    for (auto& [topic, list] : o.held) {
      if (keep(topic)) Flush(list, 0, emit);
      Release(topic, list);
    }
    o.held.clear();
    if (o.active) {
      o.active = false;
      --unfinished_;
    }
  }
}

}  // namespace tickwire::delivery
