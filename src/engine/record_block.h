#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/topic.h"

namespace tickwire::engine {

// Records produced by one shard in one loop turn: encoded once, then shared read-only by every
// worker that has subscribers for any of them. Bytes are immutable once published.
struct RecordBlock {
  struct Entry {
    std::uint32_t offset;        // start of the DataBatch.records entry in `bytes`
    std::uint32_t length;        // entry length
    std::uint32_t topic_offset;  // topic name bytes inside `bytes`
    std::uint16_t topic_length;
    Mode mode;
    WorkerMask workers;  // workers that have subscribers for this topic and mode
    // Order key within (topic, mode): a tick's seq, a bar's start_ms. Strictly increasing in
    // the order records are produced, so a receiver can drop what it already has.
    std::uint64_t key;
  };

  std::string bytes;
  std::vector<Entry> entries;

  std::string_view EntryBytes(const Entry& e) const {
    return std::string_view(bytes).substr(e.offset, e.length);
  }
  std::string_view Topic(const Entry& e) const {
    return std::string_view(bytes).substr(e.topic_offset, e.topic_length);
  }
  bool empty() const { return entries.empty(); }
  // Appends copies of `other`'s entries (joining the slices of a history replay, in tests).
  void Append(const RecordBlock& other) {
    for (Entry e : other.entries) {
      const std::uint32_t topic_delta = e.topic_offset - e.offset;
      bytes.append(other.EntryBytes(e));
      e.offset = static_cast<std::uint32_t>(bytes.size() - e.length);
      e.topic_offset = e.offset + topic_delta;
      entries.push_back(e);
    }
  }
};

using RecordBlockPtr = std::shared_ptr<const RecordBlock>;

// Record blocks that come back for reuse: a worker fills one per loop turn, shares it, and
// once the last worker and connection holding it let go, the block (with the capacity of its
// buffers, already touched) returns here instead of being freed. The pool is shared by the
// blocks' deleters, so it outlives every block; any thread may release a block.
class RecordBlockPool : public std::enable_shared_from_this<RecordBlockPool> {
 public:
  static constexpr std::size_t kMaxFree = 32;
  static constexpr std::size_t kMaxKeptBytes = 4 << 20;

  // An empty block, recycled when one is free.
  std::unique_ptr<RecordBlock> Take() {
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        auto b = std::move(free_.back());
        free_.pop_back();
        b->bytes.clear();
        b->entries.clear();
        return b;
      }
    }
    return std::make_unique<RecordBlock>();
  }
  // Shares `block`; it comes back here when the last holder releases it.
  RecordBlockPtr Share(std::unique_ptr<RecordBlock> block) {
    return RecordBlockPtr(block.release(), [pool = shared_from_this()](const RecordBlock* b) {
      pool->Give(std::unique_ptr<RecordBlock>(const_cast<RecordBlock*>(b)));
    });
  }

 private:
  void Give(std::unique_ptr<RecordBlock> b) {
    if (b->bytes.capacity() > kMaxKeptBytes) return;  // a rare huge burst: give it back
    std::lock_guard lock(mu_);
    if (free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<RecordBlock>> free_;
};

}  // namespace tickwire::engine
