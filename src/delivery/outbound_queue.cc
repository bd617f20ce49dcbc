#include "delivery/outbound_queue.h"

namespace tickwire::delivery {

bool OutboundQueue::Push(std::string frame, FrameTag tag) {
  if (pending_bytes_ + frame.size() > max_pending_bytes_) return false;
  PushUnbounded(std::move(frame), tag);
  return true;
}

void OutboundQueue::PushUnbounded(std::string frame, FrameTag tag) {
  pending_bytes_ += frame.size();
  frames_.push_back({std::move(frame), tag, nullptr, {}});
}

bool OutboundQueue::PushShared(std::string head, engine::RecordBlockPtr block,
                               std::string_view tail, FrameTag tag) {
  const std::size_t size = head.size() + tail.size();
  if (pending_bytes_ + size > max_pending_bytes_) return false;
  pending_bytes_ += size;
  frames_.push_back({std::move(head), tag, std::move(block), tail});
  return true;
}

void OutboundQueue::DropUnsent() {
  while (frames_.size() > in_flight_) {
    pending_bytes_ -= frames_.back().size();
    frames_.pop_back();
  }
}

}  // namespace tickwire::delivery
