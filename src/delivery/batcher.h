#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/batch_builder.h"

namespace tickwire::delivery {

// A connection's DATA_BATCH under construction. Numbers frames 1, 2, 3, ... and cuts a frame
// early when the next record would push its payload past MAX_MSG_SIZE. The window (how long
// records may wait) is the owner's business: Add reports when a new frame was opened so the
// owner can arm its flush deadline. Runs on the owning worker only.
class Batcher {
 public:
  explicit Batcher(std::uint32_t max_msg_size) : builder_(max_msg_size) {}

  // Appends `entry`. If it does not fit, the open frame is finished and handed to
  // `emit(std::string frame)` first. Returns true when the entry opened a new frame.
  template <typename Emit>
  bool Add(std::string_view entry, Emit&& emit) {
    if (!builder_.empty() && !builder_.Fits(entry.size())) emit(Finish());
    const bool opened = builder_.empty();
    builder_.Append(entry, next_batch_seq_);
    return opened;
  }

  // Bytes of entries that still fit into the open frame (or a new one).
  std::size_t room() const { return builder_.Room(); }
  // Appends `records` consecutive entries that fit (room()); returns true when they opened a
  // new frame.
  bool AppendRun(std::string_view entries, std::size_t records) {
    const bool opened = builder_.empty();
    builder_.AppendRun(entries, records, next_batch_seq_);
    return opened;
  }

  // Numbers a frame whose `records` entries (`records_bytes`) are sent from shared memory
  // after the returned head (protocol::EncodeDataBatchHead). The open frame, if any, must have
  // been finished first so that batch_seq stays in write order.
  std::string SharedFrameHead(std::size_t records_bytes, std::size_t records) {
    finished_records_ = static_cast<std::uint32_t>(records);
    return protocol::EncodeDataBatchHead(next_batch_seq_++, records_bytes);
  }

  bool empty() const { return builder_.empty(); }
  std::size_t records() const { return builder_.records(); }
  std::size_t payload_size() const { return builder_.payload_size(); }

  // Closes the open frame and returns it (header included). Must not be empty.
  std::string Finish() {
    ++next_batch_seq_;
    finished_records_ = static_cast<std::uint32_t>(builder_.records());
    return builder_.Finish();
  }
  // Records in the frame the last Finish() returned.
  std::uint32_t finished_records() const { return finished_records_; }

  std::uint64_t next_batch_seq() const { return next_batch_seq_; }

 private:
  protocol::BatchBuilder builder_;
  std::uint64_t next_batch_seq_ = 1;
  std::uint32_t finished_records_ = 0;
};

}  // namespace tickwire::delivery
