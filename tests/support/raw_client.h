#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"
#include "tickwire/v1/tickwire.pb.h"

namespace google::protobuf {
class MessageLite;
}

namespace tickwire::testing {

using std::chrono::milliseconds;

// One frame as read off the wire.
struct Frame {
  std::uint8_t type = 0;
  std::string payload;

  protocol::FrameType frame_type() const { return static_cast<protocol::FrameType>(type); }
};

// Outcome of RawClient::ReadFrame.
enum class ReadStatus {
  kFrame,    // a whole frame was read
  kTimeout,  // nothing complete arrived in time (bytes of a partial frame stay buffered)
  kClosed,   // the peer closed (EOF or reset) with no partial frame pending
  kError,    // a socket error, a partial frame cut off by close, or an invalid server header
};

struct ReadResult {
  ReadStatus status = ReadStatus::kTimeout;
  Frame frame;
  std::string detail;  // for kError: what went wrong

  bool ok() const { return status == ReadStatus::kFrame; }
};

std::string_view ReadStatusName(ReadStatus status);
// "ERROR{INVALID_REQUEST, fatal, request_id=3, 'ticks[2]: ...'}", "DATA_BATCH(123 bytes)", ...
std::string DescribeFrame(const Frame& frame);

// A blocking loopback TCP client that speaks raw frames, for driving the server byte by byte.
// Every read has a deadline; nothing blocks forever. Not thread-safe: one thread per client.
class RawClient {
 public:
  static constexpr milliseconds kDefaultTimeout{3000};

  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;

  // Connects to host:port (IPv4 literal). False on failure (see last_error()).
  bool Connect(std::uint16_t port, const std::string& host = "127.0.0.1");
  void Close();
  // SO_RCVBUF for the next Connect() (0 = kernel default); a small one makes a slow consumer.
  void SetReceiveBuffer(int bytes) { rcvbuf_ = bytes; }
  // Local IPv4 address the next Connect() binds to (e.g. "127.0.0.2", to come from another
  // source address); empty = the kernel's choice.
  void SetSourceAddress(std::string address) { source_ = std::move(address); }
  // Half-closes the sending side (the server reads EOF).
  void ShutdownWrite();
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Serializes `message` and sends it as one frame of `type` (any byte, also invalid ones).
  bool SendFrame(protocol::FrameType type, const google::protobuf::MessageLite& message);
  bool SendFrame(std::uint8_t type, const google::protobuf::MessageLite& message);
  // Sends a frame with the given raw payload bytes.
  bool SendRawFrame(std::uint8_t type, std::string_view payload);
  // Sends bytes exactly as given. False when the socket is closed or the peer reset it.
  bool SendBytes(std::string_view bytes);

  // Reads the next whole frame, waiting at most `timeout`.
  ReadResult ReadFrame(milliseconds timeout = kDefaultTimeout);
  // Reads the next frame and parses it as `M`, requiring type `type`.
  template <typename M>
  ::testing::AssertionResult ReadMessage(protocol::FrameType type, M* out,
                                         milliseconds timeout = kDefaultTimeout);

  // Next frame must be ERROR with `code` (and, when given, this fatal flag and request_id).
  ::testing::AssertionResult ExpectError(tickwire::v1::ErrorCode code,
                                         std::optional<bool> fatal = std::nullopt,
                                         std::optional<std::uint32_t> request_id = std::nullopt,
                                         tickwire::v1::Error* out = nullptr,
                                         milliseconds timeout = kDefaultTimeout);
  // ExpectError(code, fatal=true) followed by ExpectClosed(): a fatal error then close with
  // nothing in between.
  ::testing::AssertionResult ExpectFatal(tickwire::v1::ErrorCode code,
                                         tickwire::v1::Error* out = nullptr,
                                         milliseconds timeout = kDefaultTimeout);
  // The server closes the connection without sending anything (more).
  ::testing::AssertionResult ExpectClosed(milliseconds timeout = kDefaultTimeout);
  // Nothing arrives for `quiet` and the connection stays open.
  ::testing::AssertionResult ExpectNothing(milliseconds quiet);

  // AUTH with these credentials; succeeds when AUTH_OK arrives.
  ::testing::AssertionResult Authenticate(const std::string& user, const std::string& pass,
                                          tickwire::v1::AuthOk* out = nullptr,
                                          std::uint32_t protocol_version = 1);
  // Sends HEARTBEAT{ts_ms} and requires the next frame to be its echo.
  ::testing::AssertionResult HeartbeatRoundTrip(std::int64_t ts_ms);
  // SUBSCRIBE and wait for SUBSCRIBE_OK; the subscription id goes to `*subscription_id`.
  // DATA_BATCH frames that arrive first (a SECOND subscriber's watermark comes every second)
  // are kept and returned by the next ReadFrame calls, in order.
  ::testing::AssertionResult Subscribe(std::uint32_t request_id, tickwire::v1::Mode mode,
                                       const std::vector<std::string>& topics,
                                       std::uint64_t* subscription_id = nullptr,
                                       tickwire::v1::SubscribeOk* reply = nullptr);
  // PUBLISH with ack=true and wait for PUBLISH_ACK{request_id, accepted=ticks.size()}.
  // DATA_BATCH frames that arrive before the ack are stored in `batches` when given (else a
  // DATA_BATCH is a failure).
  ::testing::AssertionResult PublishAcked(std::uint32_t request_id,
                                          const std::vector<tickwire::v1::Tick>& ticks,
                                          std::vector<Frame>* batches = nullptr);

  const std::string& last_error() const { return last_error_; }

 private:
  // Parses a whole frame out of buffer_ into `out` when one is complete.
  bool TakeFrame(Frame& out, std::string& error);

  int fd_ = -1;
  int rcvbuf_ = 0;
  std::string source_;
  std::string buffer_;         // received bytes not yet returned as a frame
  std::deque<Frame> stashed_;  // DATA_BATCH frames read ahead of a SUBSCRIBE_OK, in order
  bool eof_ = false;
  std::string last_error_;
};

// Builds a Tick for PUBLISH.
tickwire::v1::Tick MakeTick(const std::string& topic, double price, double size,
                            std::int64_t ts_ns = 0);
// Current wall clock in nanoseconds / milliseconds since the Unix epoch.
std::int64_t NowNs();
std::int64_t NowMs();

// A DATA_BATCH decoded with protobuf.
struct DecodedBatch {
  std::uint64_t batch_seq = 0;
  std::vector<tickwire::v1::Tick> ticks;
  std::vector<tickwire::v1::Bar> bars;
};
// Parses a DATA_BATCH payload; nullopt when it is not one.
std::optional<DecodedBatch> DecodeBatch(const Frame& frame);

template <typename M>
::testing::AssertionResult RawClient::ReadMessage(protocol::FrameType type, M* out,
                                                  milliseconds timeout) {
  ReadResult r = ReadFrame(timeout);
  if (!r.ok()) {
    return ::testing::AssertionFailure()
           << "expected " << protocol::FrameTypeName(static_cast<std::uint8_t>(type))
           << " but read " << ReadStatusName(r.status) << " " << r.detail;
  }
  if (r.frame.frame_type() != type) {
    return ::testing::AssertionFailure()
           << "expected " << protocol::FrameTypeName(static_cast<std::uint8_t>(type)) << " but got "
           << DescribeFrame(r.frame);
  }
  M msg;
  if (!msg.ParseFromString(r.frame.payload)) {
    return ::testing::AssertionFailure()
           << protocol::FrameTypeName(static_cast<std::uint8_t>(type))
           << " payload does not parse (" << r.frame.payload.size() << " bytes)";
  }
  if (out != nullptr) *out = std::move(msg);
  return ::testing::AssertionSuccess();
}

}  // namespace tickwire::testing
