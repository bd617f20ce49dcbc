#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "engine/record_block.h"
#include "protocol/frame_pool.h"

namespace tickwire::delivery {

// What the owner wants to know about a frame once it has been written (for metrics):
// DATA_BATCH frames carry when their records were ready and how many there are.
struct FrameTag {
  std::chrono::steady_clock::time_point ready{};
  std::uint32_t records = 0;  // 0 for control frames
};

// A connection's output: whole frames waiting to be written, with at most one write in flight
// covering a prefix of them. Bounded by max_pending_bytes; Push reports a breach and the
// owner drops the connection as a slow consumer. Runs on the owning worker only.
class OutboundQueue {
 public:
  explicit OutboundQueue(std::uint64_t max_pending_bytes) : max_pending_bytes_(max_pending_bytes) {}

  // Queues a frame. Returns false (and does not queue) if it would exceed the limit.
  bool Push(std::string frame, FrameTag tag = {});
  // Queues a frame regardless of the limit (the final ERROR frame before a close).
  void PushUnbounded(std::string frame, FrameTag tag = {});
  // Queues a frame made of `head` (owned: header and batch_seq) followed by `tail`, bytes of
  // `block` shared with every other connection that gets them: written with one gather write,
  // never copied here. Same limit as Push.
  bool PushShared(std::string head, engine::RecordBlockPtr block, std::string_view tail,
                  FrameTag tag);

  bool write_in_flight() const { return in_flight_ > 0; }
  bool has_unsent() const { return frames_.size() > in_flight_; }
  std::uint64_t pending_bytes() const { return pending_bytes_; }

  // Marks up to `max_frames` unsent frames as in flight and calls `fn(std::string_view)` for
  // each of their parts (one, or two for a shared frame), in order. Returns how many were
  // marked.
  template <typename Fn>
  std::size_t BeginWrite(std::size_t max_frames, Fn&& fn);
  // The in-flight write finished: drops those frames, calling `fn(const FrameTag&)` for each.
  template <typename Fn>
  void CompleteWrite(Fn&& fn);
  void CompleteWrite() {
    CompleteWrite([](const FrameTag&) {});
  }
  // Discards every frame not yet in flight (before a slow consumer's final ERROR).
  void DropUnsent();
  std::size_t frame_count() const { return frames_.size(); }

 private:
  std::uint64_t max_pending_bytes_;
  std::uint64_t pending_bytes_ = 0;
  std::size_t in_flight_ = 0;
  struct Entry {
    std::string bytes;
    FrameTag tag;
    engine::RecordBlockPtr shared;  // keeps `tail` alive
    std::string_view tail;
    std::size_t size() const { return bytes.size() + tail.size(); }
  };
  std::deque<Entry> frames_;
};

template <typename Fn>
std::size_t OutboundQueue::BeginWrite(std::size_t max_frames, Fn&& fn) {
  std::size_t n = 0;
  for (std::size_t i = in_flight_; i < frames_.size() && n < max_frames; ++i, ++n) {
    fn(std::string_view(frames_[i].bytes));
    if (!frames_[i].tail.empty()) fn(frames_[i].tail);
  }
  in_flight_ += n;
  return n;
}

template <typename Fn>
void OutboundQueue::CompleteWrite(Fn&& fn) {
  for (; in_flight_ > 0; --in_flight_) {
    fn(static_cast<const FrameTag&>(frames_.front().tag));
    pending_bytes_ -= frames_.front().size();
    protocol::RecycleFrameBuffer(std::move(frames_.front().bytes));
    frames_.pop_front();
  }
}

}  // namespace tickwire::delivery
