#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tickwire::protocol::ws {

// WebSocket framing (RFC 6455 section 5) for the server side of the WebSocket transport, with no
// sockets: the connection feeds it the bytes it reads (plain or decrypted) and writes what it
// builds. Each binary message carries exactly one tickwire frame (PROTOCOL.md, "Transports").

enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close status codes the server sends (RFC 6455 section 7.4.1).
inline constexpr std::uint16_t kCloseNormal = 1000;
inline constexpr std::uint16_t kCloseGoingAway = 1001;
inline constexpr std::uint16_t kCloseProtocolError = 1002;
inline constexpr std::uint16_t kCloseUnsupportedData = 1003;
inline constexpr std::uint16_t kClosePolicyViolation = 1008;
inline constexpr std::uint16_t kCloseTooBig = 1009;
inline constexpr std::uint16_t kCloseInternalError = 1011;

// A control frame's payload is at most 125 bytes; a close reason at most 123.
inline constexpr std::size_t kMaxControlPayload = 125;
// The longest frame header the server writes (no mask: 2 + 8 bytes).
inline constexpr std::size_t kMaxServerHeader = 10;

// Why the reader gave up. Each ends the connection (close code in brackets).
enum class ReadError : std::uint8_t {
  kNone = 0,
  kUnmasked,         // a client frame without the mask bit [1002]
  kReservedBits,     // RSV1-3 set (no extension was negotiated) [1002]
  kBadOpcode,        // an opcode RFC 6455 reserves [1002]
  kBadControl,       // a control frame fragmented or longer than 125 bytes [1002]
  kBadContinuation,  // a continuation with no message open, or a new message inside one [1002]
  kBadClosePayload,  // a close frame with a one-byte payload [1002]
  kMessageTooBig,    // a message longer than the limit, refused from its header [1009]
};

std::string_view ReadErrorText(ReadError e);

// One complete thing the peer sent.
struct Event {
  enum class Kind : std::uint8_t { kBinary, kText, kPing, kPong, kClose };
  Kind kind;
  std::span<const std::uint8_t> payload;  // unmasked; valid only during the callback
  std::uint16_t close_code = 0;           // kClose: the peer's status (0 = none given)
};

// Incremental reader of client frames. Bytes arrive in arbitrary chunks; each complete message
// (data frames joined across continuations) and each control frame is handed to a callback. A
// data frame's declared length is checked against the message limit as soon as its header is
// known, before any of its payload is buffered, so a hostile length costs nothing. What is kept
// between calls: at most one frame header (14 bytes), the message being assembled (bounded by
// the limit) and, after Pause(), the unread rest of one chunk.
class FrameReader {
 public:
  // `max_message`: the largest message accepted (the server: MAX_MSG_SIZE + 5, one frame).
  explicit FrameReader(std::size_t max_message) : max_message_(max_message) {}

  // Reads all complete frames in `data`. `on_event(const Event&) -> bool` is called for each
  // message and control frame; returning false stops reading (the caller is closing) and the
  // rest is dropped. Returns the error that ended reading; the reader must not be fed again
  // after one.
  template <typename OnEvent>
  ReadError Feed(std::span<const std::uint8_t> data, OnEvent&& on_event);

  // From inside `on_event`: stop after this event and keep the rest of the chunk for Resume().
  void Pause() { paused_ = true; }
  bool paused() const { return paused_; }
  template <typename OnEvent>
  ReadError Resume(OnEvent&& on_event);

  // Heap bytes held (for memory accounting and tests).
  std::size_t buffered() const { return message_.size() + held_.size(); }

 private:
  // Parses a complete header in header_; false with error_ set on a bad one.
  bool ParseHeader();
  // After a frame's last payload byte: the event it completes, if any.
  template <typename OnEvent>
  bool FinishFrame(OnEvent& on_event);
  // Returns message_ memory to the allocator when it grew for a large message.
  void ReleaseIfLarge();

  std::size_t max_message_;
  // The frame being read.
  std::array<std::uint8_t, 14> header_{};
  std::size_t header_have_ = 0;
  std::size_t header_need_ = 2;
  bool in_payload_ = false;
  bool fin_ = false;
  Opcode opcode_ = Opcode::kContinuation;
  std::array<std::uint8_t, 4> mask_{};
  std::uint64_t payload_left_ = 0;
  std::uint64_t payload_pos_ = 0;  // payload bytes of this frame read so far (mask offset)
  // The data message being assembled, and its first frame's opcode (kContinuation = none open).
  std::vector<std::uint8_t> message_;
  Opcode message_opcode_ = Opcode::kContinuation;
  // A control frame's payload (interleaved between data fragments, so kept apart).
  std::array<std::uint8_t, kMaxControlPayload> control_{};
  std::size_t control_have_ = 0;
  ReadError error_ = ReadError::kNone;
  bool paused_ = false;
  bool stopped_ = false;            // a callback returned false
  std::vector<std::uint8_t> held_;  // unread bytes after the event that paused
};

// The header of an unmasked (server) frame with FIN set; returns its length.
std::size_t EncodeHeader(Opcode opcode, std::uint64_t payload_size,
                         std::array<std::uint8_t, kMaxServerHeader>& out);
// A whole unmasked frame.
std::string EncodeFrame(Opcode opcode, std::span<const std::uint8_t> payload);
// A close frame: `code` and `reason`, the reason cut to 123 bytes (at a UTF-8 boundary).
std::string EncodeClose(std::uint16_t code, std::string_view reason);

template <typename OnEvent>
ReadError FrameReader::Feed(std::span<const std::uint8_t> data, OnEvent&& on_event) {
  if (error_ != ReadError::kNone || stopped_) return error_;
  if (paused_) {  // the caller should not read while paused; keep the order all the same
    held_.insert(held_.end(), data.begin(), data.end());
    return ReadError::kNone;
  }
  std::size_t pos = 0;
  const std::size_t n = data.size();
  while (pos < n) {
    if (!in_payload_) {
      const std::size_t take = std::min(header_need_ - header_have_, n - pos);
      std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(pos), take,
                  header_.begin() + static_cast<std::ptrdiff_t>(header_have_));
      header_have_ += take;
      pos += take;
      if (header_have_ < header_need_) return ReadError::kNone;
      if (!ParseHeader()) return error_;
      if (!in_payload_) continue;  // the header grew: read the rest of it
      if (payload_left_ > 0) continue;
    } else {
      const std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, n - pos));
      const std::uint8_t* src = data.data() + pos;
      const bool control = static_cast<std::uint8_t>(opcode_) >= 0x8;
      std::uint8_t* dst = nullptr;
      if (control) {
        dst = control_.data() + control_have_;
        control_have_ += take;
      } else {
        const std::size_t at = message_.size();
        message_.resize(at + take);
        dst = message_.data() + at;
      }
      for (std::size_t i = 0; i < take; ++i) {
        dst[i] = static_cast<std::uint8_t>(src[i] ^ mask_[(payload_pos_ + i) & 3]);
      }
      payload_pos_ += take;
      payload_left_ -= take;
      pos += take;
      if (payload_left_ > 0) return ReadError::kNone;
    }
    // A frame is complete.
    if (!FinishFrame(on_event)) return error_;
    if (paused_) {
      held_.assign(data.begin() + static_cast<std::ptrdiff_t>(pos), data.end());
      return ReadError::kNone;
    }
  }
  return ReadError::kNone;
}

template <typename OnEvent>
bool FrameReader::FinishFrame(OnEvent& on_event) {
  in_payload_ = false;
  header_have_ = 0;
  header_need_ = 2;
  const Opcode op = opcode_;
  if (static_cast<std::uint8_t>(op) >= 0x8) {
    Event ev{Event::Kind::kPing, std::span<const std::uint8_t>(control_.data(), control_have_)};
    if (op == Opcode::kPong) ev.kind = Event::Kind::kPong;
    if (op == Opcode::kClose) {
      ev.kind = Event::Kind::kClose;
      if (control_have_ == 1) {
        error_ = ReadError::kBadClosePayload;
        return false;
      }
      if (control_have_ >= 2) {
        ev.close_code = static_cast<std::uint16_t>((control_[0] << 8) | control_[1]);
        ev.payload = ev.payload.subspan(2);
      }
    }
    control_have_ = 0;
    if (!on_event(static_cast<const Event&>(ev))) {
      error_ = ReadError::kNone;
      paused_ = false;
      held_.clear();
      stopped_ = true;  // the caller is closing: nothing more is read
      return false;
    }
    return true;
  }
  if (!fin_) return true;  // more fragments follow
  Event ev{message_opcode_ == Opcode::kText ? Event::Kind::kText : Event::Kind::kBinary,
           std::span<const std::uint8_t>(message_.data(), message_.size())};
  message_opcode_ = Opcode::kContinuation;
  const bool go_on = on_event(static_cast<const Event&>(ev));
  message_.clear();
  ReleaseIfLarge();
  if (!go_on) {
    paused_ = false;
    held_.clear();
    stopped_ = true;
    return false;
  }
  return true;
}

template <typename OnEvent>
ReadError FrameReader::Resume(OnEvent&& on_event) {
  paused_ = false;
  const std::vector<std::uint8_t> held = std::move(held_);
  held_ = {};
  if (held.empty()) return ReadError::kNone;
  return Feed(std::span<const std::uint8_t>(held), std::forward<OnEvent>(on_event));
}

}  // namespace tickwire::protocol::ws
