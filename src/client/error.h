#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tickwire::client {

// ERROR codes of the wire contract (PROTOCOL.md section 2), same numbers. Kept here so the public
// headers do not pull in protobuf; client.cc static_asserts they match the schema.
enum class ErrorCode : std::uint32_t {
  kUnspecified = 0,
  kAuthRequired = 1,
  kAuthFailed = 2,
  kAuthRateLimited = 3,
  kAuthTimeout = 4,
  kMalformedFrame = 5,
  kFrameTooLarge = 6,
  kUnknownFrameType = 7,
  kInvalidRequest = 8,
  kForbidden = 9,
  kHeartbeatTimeout = 10,
  kSlowConsumer = 11,
  kServerDraining = 12,
  kInternal = 13,
  kUnavailable = 14,
  // Ticks of a PUBLISH for new topics that the server's topic cap refused (non-fatal). It is a
  // report, not the PUBLISH's answer: an acked Publish still returns the PUBLISH_ACK's
  // `accepted` (the ticks applied), and this error goes to on_error / Next().
  kTopicLimit = 15,
};

// Where an error comes from. Only kServer errors carry a wire ErrorCode.
enum class ErrorKind : std::uint8_t {
  kServer = 0,           // an ERROR frame from the server; every Error field is the frame's
  kConnect = 1,          // name resolution or TCP connect failed
  kTimeout = 2,          // connect+AUTH, a request reply, or outbound space not ready in time
  kIo = 3,               // socket read/write failed, or the server closed the connection
  kProtocol = 4,         // the server broke the contract (bad header, unparsable payload, ...)
  kBatchGap = 5,         // DATA_BATCH batch_seq did not increase by exactly 1 (non-fatal)
  kClosed = 6,           // the client is closed; the request was not sent or not answered
  kInvalidArgument = 7,  // rejected locally before sending (e.g. frame over max_msg_size)
  kCallback = 8,         // a user callback threw; the client closes
};

std::string_view ErrorCodeName(ErrorCode code);  // "AUTH_FAILED", as in the contract
std::string_view ErrorKindName(ErrorKind kind);  // "server", "timeout", ...

struct Error {
  ErrorKind kind = ErrorKind::kServer;
  ErrorCode code = ErrorCode::kUnspecified;  // set for kServer only
  std::string message;
  std::uint32_t request_id = 0;  // of the request it answers (0: none)
  bool fatal = false;            // true: the connection is closed (the client is closed)
  std::uint32_t retry_after_ms = 0;

  // One line for humans: "server error AUTH_FAILED: bad credentials (fatal)".
  std::string ToString() const;
};

// A value or an Error. No exceptions: callers check ok() before value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace tickwire::client
