#include "delivery/outbound_queue.h"

#include <algorithm>

namespace tickwire::delivery {
namespace {

// Capacity of a string's inline storage: shorter frames allocate no buffer.
const std::size_t kInlineCapacity = std::string().capacity();

}  // namespace

std::uint64_t OutboundQueue::Charge(const std::string& bytes) {
  return kFrameOverhead + (bytes.capacity() > kInlineCapacity ? bytes.capacity() : 0);
}

void OutboundQueue::Compact(std::string& frame) {
  // A short frame in a large reused buffer (a DATA_BATCH cut by its window in a buffer grown by
  // earlier full frames): copying it costs less than the memory it would hold while it waits,
  // and the buffer goes back to the pool for the next frame.
  const std::size_t slack = frame.capacity() - frame.size();
  if (frame.capacity() <= kInlineCapacity || slack <= std::max<std::size_t>(frame.size(), 4096)) {
    return;
  }
  std::string compact(frame);
  protocol::RecycleFrameBuffer(std::move(frame));
  frame = std::move(compact);
}

bool OutboundQueue::Fits(std::uint64_t charge) const {
  // One frame always fits into an empty queue: the limit bounds a backlog, and may be as small
  // as one frame's wire bytes.
  return frames_.empty() || charged_bytes_ + charge <= max_pending_bytes_;
}

void OutboundQueue::Add(Entry entry) {
  pending_bytes_ += entry.size();
  charged_bytes_ += entry.charge;
  frames_.push_back(std::move(entry));
}

void OutboundQueue::PopFront() {
  Entry& front = frames_.front();
  pending_bytes_ -= front.size();
  charged_bytes_ -= front.charge;
  protocol::RecycleFrameBuffer(std::move(front.bytes));
  frames_.pop_front();
  ++popped_;
}

bool OutboundQueue::Push(std::string frame, FrameTag tag) {
  Compact(frame);
  if (!Fits(Charge(frame))) return false;
  PushUnbounded(std::move(frame), tag);
  return true;
}

void OutboundQueue::PushUnbounded(std::string frame, FrameTag tag) {
  Compact(frame);
  const std::uint64_t charge = Charge(frame);
  Add(Entry{std::move(frame), tag, nullptr, {}, charge});
}

bool OutboundQueue::PushShared(std::string head, engine::RecordBlockPtr block,
                               std::string_view tail, FrameTag tag) {
  const std::uint64_t pinned =
      block.get() == NewestSharedBlock() ? tail.size() : std::max(block->bytes.size(), tail.size());
  const std::uint64_t charge = Charge(head) + pinned;
  if (!Fits(charge)) return false;
  Add(Entry{std::move(head), tag, std::move(block), tail, charge});
  last_shared_ = popped_ + frames_.size() - 1;
  return true;
}

bool OutboundQueue::PushCoalesced(std::string frame) {
  if (Queued(coalesced_) && coalesced_ >= popped_ + in_flight_) {
    // The previous one is still waiting: it carries the newer contents instead.
    Entry& e = frames_[static_cast<std::size_t>(coalesced_ - popped_)];
    const std::uint64_t charge = Charge(frame);
    if (charge > e.charge && !Fits(charge - e.charge)) return false;
    pending_bytes_ = pending_bytes_ - e.bytes.size() + frame.size();
    charged_bytes_ = charged_bytes_ - e.charge + charge;
    e.bytes = std::move(frame);
    e.charge = charge;
    return true;
  }
  if (!Push(std::move(frame))) return false;
  coalesced_ = popped_ + frames_.size() - 1;
  return true;
}

void OutboundQueue::DropUnsent() {
  while (frames_.size() > in_flight_) {
    pending_bytes_ -= frames_.back().size();
    charged_bytes_ -= frames_.back().charge;
    frames_.pop_back();
  }
  // Numbers of dropped frames will be given to new ones: forget them.
  if (!Queued(coalesced_)) coalesced_ = kNone;
  if (!Queued(last_shared_)) last_shared_ = kNone;
}

const engine::RecordBlock* OutboundQueue::NewestSharedBlock() const {
  return Queued(last_shared_)
             ? frames_[static_cast<std::size_t>(last_shared_ - popped_)].shared.get()
             : nullptr;
}

}  // namespace tickwire::delivery
