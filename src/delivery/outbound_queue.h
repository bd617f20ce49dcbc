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
  // Bytes already framed for the transport, written as they are: the WebSocket transport's
  // HTTP response and control frames (every other frame gets a WebSocket header at write time).
  bool raw = false;
};

// A connection's output: whole frames waiting to be written, with at most one write in flight
// covering a prefix of them. Bounded by max_pending_bytes; Push reports a breach and the
// owner drops the connection as a slow consumer. Runs on the owning worker only.
//
// The bound is on memory, not wire bytes: each frame is charged what it occupies. That is its
// buffer's capacity (a frame short enough for the string's inline storage has no buffer; a short
// frame in a much larger reused buffer is first copied out of it) plus kFrameOverhead for the
// queue entry and allocator bookkeeping; a frame that points into a shared record block is
// charged the whole block the first time the block appears in a row (the queue keeps it alive)
// and its own part after that. One frame always fits into an empty queue.
class OutboundQueue {
 public:
  static constexpr std::size_t kFrameOverhead = 128;

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
  // Queues a frame of which at most one may wait unsent (a HEARTBEAT echo): if the last one
  // queued this way has not started to be written, `frame` replaces it in place; otherwise it
  // is queued like Push. Same limit as Push.
  bool PushCoalesced(std::string frame);

  bool write_in_flight() const { return in_flight_ > 0; }
  bool has_unsent() const { return frames_.size() > in_flight_; }
  // Wire bytes of the queued frames (for the connection listing and logs).
  std::uint64_t pending_bytes() const { return pending_bytes_; }
  // What the queued frames cost against max_pending_bytes (see above).
  std::uint64_t charged_bytes() const { return charged_bytes_; }

  // Marks up to `max_frames` unsent frames as in flight and calls `fn(std::string_view)` for
  // each of their parts (one, or two for a shared frame), in order. Returns how many were
  // marked.
  template <typename Fn>
  std::size_t BeginWrite(std::size_t max_frames, Fn&& fn);
  // The same, and `on_frame(std::size_t frame_bytes, const FrameTag&)` before each frame's parts
  // (the WebSocket transport puts a message header there).
  template <typename OnFrame, typename Fn>
  std::size_t BeginWrite(std::size_t max_frames, OnFrame&& on_frame, Fn&& fn);
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
  struct Entry {
    std::string bytes;
    FrameTag tag;
    engine::RecordBlockPtr shared;  // keeps `tail` alive
    std::string_view tail;
    std::uint64_t charge;  // counted in charged_bytes_
    std::size_t size() const { return bytes.size() + tail.size(); }
  };
  // What an owned frame buffer costs.
  static std::uint64_t Charge(const std::string& bytes);
  // Moves a short frame out of a much larger buffer (which goes back to the frame pool).
  static void Compact(std::string& frame);
  // Whether `charge` more stays within the limit.
  bool Fits(std::uint64_t charge) const;
  void Add(Entry entry);
  void PopFront();
  // A frame's number is its position counted from the first frame ever queued.
  bool Queued(std::uint64_t number) const {
    return number != kNone && number >= popped_ && number < popped_ + frames_.size();
  }

  std::uint64_t max_pending_bytes_;
  std::uint64_t pending_bytes_ = 0;
  std::uint64_t charged_bytes_ = 0;
  std::size_t in_flight_ = 0;
  std::deque<Entry> frames_;
  std::uint64_t popped_ = 0;  // frames removed from the front so far: frames_[0]'s number
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};
  std::uint64_t coalesced_ = kNone;    // number of the frame PushCoalesced may replace
  std::uint64_t last_shared_ = kNone;  // number of the newest shared frame
  // The block of the newest shared frame, while it is queued.
  const engine::RecordBlock* NewestSharedBlock() const;
};

template <typename Fn>
std::size_t OutboundQueue::BeginWrite(std::size_t max_frames, Fn&& fn) {
  return BeginWrite(
      max_frames, [](std::size_t, const FrameTag&) {}, std::forward<Fn>(fn));
}

template <typename OnFrame, typename Fn>
std::size_t OutboundQueue::BeginWrite(std::size_t max_frames, OnFrame&& on_frame, Fn&& fn) {
  std::size_t n = 0;
  for (std::size_t i = in_flight_; i < frames_.size() && n < max_frames; ++i, ++n) {
    on_frame(frames_[i].size(), static_cast<const FrameTag&>(frames_[i].tag));
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
    PopFront();
  }
}

}  // namespace tickwire::delivery
