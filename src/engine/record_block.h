#pragma once

#include <cstdint>
#include <memory>
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
};

using RecordBlockPtr = std::shared_ptr<const RecordBlock>;

}  // namespace tickwire::engine
