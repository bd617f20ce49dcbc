#include "protocol/batch_builder.h"

#include <algorithm>
#include <cassert>

#include "protocol/frame.h"
#include "protocol/frame_pool.h"
#include "protocol/wire.h"

namespace tickwire::protocol {
namespace {
constexpr std::size_t kMaxSeqField = kMaxBatchSeqField;
}  // namespace

std::string EncodeDataBatchHead(std::uint64_t batch_seq, std::size_t records_bytes) {
  std::string head(kHeaderSize, '\0');
  if (batch_seq != 0) {
    head.push_back(static_cast<char>((1 << 3) | 0));  // DataBatch.batch_seq
    AppendVarint(head, batch_seq);
  }
  EncodeHeader(FrameType::kDataBatch, head.size() - kHeaderSize + records_bytes,
               reinterpret_cast<std::uint8_t*>(head.data()));
  return head;
}

std::size_t BatchBuilder::payload_size() const {
  return frame_.empty() ? 0 : frame_.size() - kHeaderSize;
}

bool BatchBuilder::Fits(std::size_t entry_size) const {
  const std::size_t base = frame_.empty() ? kMaxSeqField : payload_size();
  return base + entry_size <= max_msg_size_;
}

std::size_t BatchBuilder::Room() const {
  const std::size_t base = frame_.empty() ? kMaxSeqField : payload_size();
  return base >= max_msg_size_ ? 0 : max_msg_size_ - base;
}

void BatchBuilder::AppendRun(std::string_view entry, std::size_t records, std::uint64_t batch_seq) {
  if (frame_.empty()) {
    frame_ = TakeFrameBuffer();
    if (frame_.capacity() < 4096) {
      frame_.reserve(std::min<std::size_t>(max_msg_size_ + kHeaderSize, 4096));
    }
    frame_.assign(kHeaderSize, '\0');
    if (batch_seq != 0) {
      frame_.push_back(static_cast<char>((1 << 3) | 0));  // DataBatch.batch_seq
      AppendVarint(frame_, batch_seq);
    }
  }
  if (frame_.size() + entry.size() > frame_.capacity()) {
    // Grow by doubling, but never past the largest frame: a full 64 KiB frame stays below the
    // allocator's mmap threshold instead of landing in a fresh 128 KiB mapping.
    const std::size_t limit = std::size_t{max_msg_size_} + kHeaderSize;
    frame_.reserve(std::max(frame_.size() + entry.size(), std::min(frame_.capacity() * 2, limit)));
  }
  frame_.append(entry);
  records_ += records;
  assert(payload_size() <= max_msg_size_);
}

std::string BatchBuilder::Finish() {
  EncodeHeader(FrameType::kDataBatch, payload_size(),
               reinterpret_cast<std::uint8_t*>(frame_.data()));
  records_ = 0;
  std::string out;
  out.swap(frame_);
  return out;
}

}  // namespace tickwire::protocol
