#pragma once

#include <cstdint>
#include <string_view>

namespace tickwire::session {

// Why a connection ended. Every close carries one; it is logged on the conn_close line and is
// the `reason` label of connection_drops_total, so the set is small and fixed.
enum class CloseReason : std::uint8_t {
  kNone = 0,
  kClientClosed,      // peer closed or reset the connection
  kIoError,           // a socket error other than a clean close
  kAuthRequired,      // first frame was not AUTH
  kAuthFailed,        // wrong credentials
  kAuthTimeout,       // no AUTH within AUTH_TIMEOUT_MS
  kMalformedFrame,    // zero length or unparseable payload
  kFrameTooLarge,     // declared length over MAX_MSG_SIZE
  kUnknownFrameType,  // type byte not in the contract
  kInvalidRequest,    // fatal INVALID_REQUEST (server-only type, bad protocol version)
  kHeartbeatTimeout,  // no HEARTBEAT within heartbeat_timeout
  kSlowConsumer,      // pending output over its limit, or write deadline missed
  kServerShutdown,    // server stopping
  kAuthRateLimited,   // failed-AUTH budget of the source address or user name used up
  kProxyHeader,       // PROXY header missing, malformed, late, or from an untrusted source
  kTlsHandshake,      // TLS handshake failed or did not complete in time
  kInternal,          // a server fault while handling this connection's frame (ERROR INTERNAL)
  kUnauthEvicted,     // still not authenticated, closed to make room for a newer connection
  kWsHandshake,       // WebSocket upgrade request refused or not complete in time
  kCount
};

std::string_view CloseReasonName(CloseReason reason);

}  // namespace tickwire::session
