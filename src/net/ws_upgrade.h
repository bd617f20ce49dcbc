#pragma once

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/ws_settings.h"

namespace tickwire::net::ws {

// The HTTP side of the WebSocket transport: parses the client's upgrade request (RFC 6455
// section 4.2.1) with Beast's HTTP parser, in memory, and builds the answer. No socket: the
// connection feeds it what it reads and writes the response, which is also how the fuzzer
// (fuzz/fuzz_ws_upgrade.cc) drives it.

// The whole request head (request line and headers) must fit in this many bytes.
inline constexpr std::size_t kMaxRequestBytes = 8192;
// The subprotocol the server selects when a client offers it (clients need not offer any).
inline constexpr std::string_view kSubprotocol = "tickwire.v1";

// Why an upgrade was refused: the `reason` label of ws_upgrades_rejected_total.
enum class Rejection : std::uint8_t {
  kNone = 0,
  kMalformed,   // not a well-formed HTTP/1.1 request head, or a request body: 400
  kTooLarge,    // the request head over kMaxRequestBytes: 431
  kNotFound,    // another path: 404
  kNotUpgrade,  // not a GET with Upgrade: websocket / Connection: upgrade / a valid key: 400/426
  kVersion,     // Sec-WebSocket-Version other than 13: 426
  kOrigin,      // Origin not in WS_ALLOWED_ORIGINS: 403
  kTimeout,     // no complete request within WS_HANDSHAKE_TIMEOUT (decided by the connection)
  kCount
};
std::string_view RejectionName(Rejection r);

struct UpgradeResult {
  enum class Status : std::uint8_t { kNeedMore, kAccepted, kRejected };
  Status status = Status::kNeedMore;
  Rejection rejection = Rejection::kNone;
  std::string response;  // the whole HTTP response to write (101, or the refusal)
  std::string detail;    // for the log line
  std::string leftover;  // kAccepted: bytes after the request head (the first WebSocket frames)
};

// One connection's upgrade request. Keeps at most kMaxRequestBytes.
class UpgradeParser {
 public:
  explicit UpgradeParser(const UpgradeSettings& settings);

  // Adds bytes read from the client. After kAccepted or kRejected it must not be fed again.
  UpgradeResult Feed(std::span<const std::uint8_t> data);

 private:
  UpgradeResult Decide();

  const UpgradeSettings& settings_;
  std::string buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  std::size_t consumed_ = 0;  // bytes of buffer_ the parser has taken
};

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string AcceptKey(std::string_view key);
// An HTTP error response that closes the connection.
std::string ErrorResponse(unsigned status, std::string_view reason, std::string_view body,
                          std::string_view extra_headers = {});

}  // namespace tickwire::net::ws
