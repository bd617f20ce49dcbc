#include "delivery/outbound_queue.h"

namespace tickwire::delivery {

bool OutboundQueue::Push(std::string frame) {
  if (pending_bytes_ + frame.size() > max_pending_bytes_) return false;
  PushUnbounded(std::move(frame));
  return true;
}

void OutboundQueue::PushUnbounded(std::string frame) {
  pending_bytes_ += frame.size();
  frames_.push_back(std::move(frame));
}

void OutboundQueue::CompleteWrite() {
  for (; in_flight_ > 0; --in_flight_) {
    pending_bytes_ -= frames_.front().size();
    frames_.pop_front();
  }
}

void OutboundQueue::DropUnsent() {
  while (frames_.size() > in_flight_) {
    pending_bytes_ -= frames_.back().size();
    frames_.pop_back();
  }
}

}  // namespace tickwire::delivery
