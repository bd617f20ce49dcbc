#include "session/close_reason.h"

namespace tickwire::session {

std::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kNone:
      return "none";
    case CloseReason::kClientClosed:
      return "client_closed";
    case CloseReason::kIoError:
      return "io_error";
    case CloseReason::kAuthRequired:
      return "auth_required";
    case CloseReason::kAuthFailed:
      return "auth_failed";
    case CloseReason::kAuthTimeout:
      return "auth_timeout";
    case CloseReason::kMalformedFrame:
      return "malformed_frame";
    case CloseReason::kFrameTooLarge:
      return "frame_too_large";
    case CloseReason::kUnknownFrameType:
      return "unknown_frame_type";
    case CloseReason::kInvalidRequest:
      return "invalid_request";
    case CloseReason::kHeartbeatTimeout:
      return "heartbeat_timeout";
    case CloseReason::kSlowConsumer:
      return "slow_consumer";
    case CloseReason::kServerShutdown:
      return "server_shutdown";
    case CloseReason::kAuthRateLimited:
      return "auth_rate_limited";
    case CloseReason::kProxyHeader:
      return "proxy_header";
    case CloseReason::kTlsHandshake:
      return "tls_handshake";
    case CloseReason::kInternal:
      return "internal";
    case CloseReason::kUnauthEvicted:
      return "unauth_evicted";
    case CloseReason::kWsHandshake:
      return "ws_handshake";
    case CloseReason::kCount:
      break;
  }
  return "unknown";
}

}  // namespace tickwire::session
