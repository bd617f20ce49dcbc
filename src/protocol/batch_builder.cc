#include "protocol/batch_builder.h"

#include <cassert>

#include "protocol/frame.h"
#include "protocol/wire.h"

namespace tickwire::protocol {
namespace {
// Worst-case size of the batch_seq field: tag byte + 10-byte varint.
constexpr std::size_t kMaxSeqField = 11;
}  // namespace

std::size_t BatchBuilder::payload_size() const {
  return frame_.empty() ? 0 : frame_.size() - kHeaderSize;
}

bool BatchBuilder::Fits(std::size_t entry_size) const {
  const std::size_t base = frame_.empty() ? kMaxSeqField : payload_size();
  return base + entry_size <= max_msg_size_;
}

void BatchBuilder::Append(std::string_view entry, std::uint64_t batch_seq) {
  if (frame_.empty()) {
    frame_.reserve(std::min<std::size_t>(max_msg_size_ + kHeaderSize, 4096));
    frame_.assign(kHeaderSize, '\0');
    if (batch_seq != 0) {
      frame_.push_back(static_cast<char>((1 << 3) | 0));  // DataBatch.batch_seq
      AppendVarint(frame_, batch_seq);
    }
  }
  frame_.append(entry);
  ++records_;
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
