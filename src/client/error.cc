#include "client/error.h"

#include "client/records.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::client {

// The public enums mirror the schema's numbers; a renumbering would break the contract anyway.
static_assert(static_cast<int>(ErrorCode::kAuthFailed) == tickwire::v1::AUTH_FAILED);
static_assert(static_cast<int>(ErrorCode::kInvalidRequest) == tickwire::v1::INVALID_REQUEST);
static_assert(static_cast<int>(ErrorCode::kSlowConsumer) == tickwire::v1::SLOW_CONSUMER);
static_assert(static_cast<int>(ErrorCode::kInternal) == tickwire::v1::INTERNAL);
static_assert(static_cast<int>(ErrorCode::kUnavailable) == tickwire::v1::UNAVAILABLE);
static_assert(static_cast<int>(ErrorCode::kTopicLimit) == tickwire::v1::TOPIC_LIMIT);
static_assert(static_cast<int>(Mode::kSecond) == tickwire::v1::MODE_SECOND);
static_assert(static_cast<int>(Mode::kMinute) == tickwire::v1::MODE_MINUTE);
static_assert(static_cast<int>(Mode::kTick) == tickwire::v1::MODE_TICK);

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnspecified:
      return "ERROR_CODE_UNSPECIFIED";
    case ErrorCode::kAuthRequired:
      return "AUTH_REQUIRED";
    case ErrorCode::kAuthFailed:
      return "AUTH_FAILED";
    case ErrorCode::kAuthRateLimited:
      return "AUTH_RATE_LIMITED";
    case ErrorCode::kAuthTimeout:
      return "AUTH_TIMEOUT";
    case ErrorCode::kMalformedFrame:
      return "MALFORMED_FRAME";
    case ErrorCode::kFrameTooLarge:
      return "FRAME_TOO_LARGE";
    case ErrorCode::kUnknownFrameType:
      return "UNKNOWN_FRAME_TYPE";
    case ErrorCode::kInvalidRequest:
      return "INVALID_REQUEST";
    case ErrorCode::kForbidden:
      return "FORBIDDEN";
    case ErrorCode::kHeartbeatTimeout:
      return "HEARTBEAT_TIMEOUT";
    case ErrorCode::kSlowConsumer:
      return "SLOW_CONSUMER";
    case ErrorCode::kServerDraining:
      return "SERVER_DRAINING";
    case ErrorCode::kInternal:
      return "INTERNAL";
    case ErrorCode::kUnavailable:
      return "UNAVAILABLE";
    case ErrorCode::kTopicLimit:
      return "TOPIC_LIMIT";
  }
  return "UNKNOWN_ERROR_CODE";
}

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kServer:
      return "server";
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kBatchGap:
      return "batch_gap";
    case ErrorKind::kClosed:
      return "closed";
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kCallback:
      return "callback";
  }
  return "unknown";
}

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSecond:
      return "second";
    case Mode::kMinute:
      return "minute";
    case Mode::kTick:
      return "tick";
  }
  return "unknown";
}

std::string Error::ToString() const {
  std::string out;
  if (kind == ErrorKind::kServer) {
    out = "server error ";
    out += ErrorCodeName(code);
  } else {
    out = ErrorKindName(kind);
    out += " error";
  }
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  if (request_id != 0) out += " (request " + std::to_string(request_id) + ")";
  if (retry_after_ms != 0) out += " (retry after " + std::to_string(retry_after_ms) + " ms)";
  // Only a server says "fatal"; local errors that close the client say so in their kind.
  if (fatal && kind == ErrorKind::kServer) out += " (fatal)";
  return out;
}

}  // namespace tickwire::client
