// The WebSocket transport's input path in memory: the client's bytes -> ws::UpgradeParser (Beast's
// HTTP parser with the server's limits) -> ws::FrameReader -> one frame per binary message ->
// Session, with the in-memory host of fuzz_host.h in place of the socket.
//
// Input layout: byte 0 picks the chunk size (1..64, 0 = whole stream); byte 1 bit 0 sets
// WS_ALLOWED_ORIGINS (to http://a.example), bit 1 WS_PATH=/ws instead of /; the rest is the
// client's stream (the upgrade request, then masked WebSocket frames).
//
// Oracles:
//  - the parser keeps at most kMaxRequestBytes + 1 bytes and decides by then; every answer is an
//    HTTP/1.1 response with a status line and a blank line; 101 only with a valid
//    Sec-WebSocket-Accept (checked against ws::AcceptKey of the request's key) and nothing after;
//  - the frame reader never buffers more than the message limit plus one chunk, hands over no
//    message longer than the limit, and reports nothing after an error or a stop;
//  - what reaches the session obeys fuzz_host.h's oracles (well-formed server frames, one close).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "auth/authenticator.h"
#include "auth/users_file.h"
#include "fuzz_host.h"
#include "net/ws_upgrade.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "protocol/ws_frame.h"
#include "session/session.h"

namespace {

using tickwire_fuzz::Check;
using tickwire_fuzz::Host;
using tickwire_fuzz::Session;
namespace ws = tickwire::net::ws;
namespace wsf = tickwire::protocol::ws;

void CheckResponse(const std::string& r, bool accepted) {
  Check(r.rfind("HTTP/1.1 ", 0) == 0 && r.size() >= 12);
  const auto end = r.find("\r\n\r\n");
  Check(end != std::string::npos);
  if (accepted) {
    Check(r.rfind("HTTP/1.1 101 ", 0) == 0);
    Check(end + 4 == r.size());
    Check(r.find("\r\nSec-WebSocket-Accept: ") != std::string::npos);
  } else {
    Check(r.rfind("HTTP/1.1 101 ", 0) != 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = data[0] % 65;
  ws::UpgradeSettings settings;
  if ((data[1] & 1) != 0) settings.allowed_origins = {"http://a.example"};
  if ((data[1] & 2) != 0) settings.path = "/ws";
  std::span<const std::uint8_t> stream(data + 2, size - 2);

  // STREAM_USER only: every AUTH is decided at once (no check off the loop, so no pause).
  static const auto authenticator = std::get<std::shared_ptr<const tickwire::auth::Authenticator>>(
      tickwire::auth::Authenticator::Create("demo", "demo-pass", {}));
  tickwire::session::SessionParams params;
  params.authenticator = authenticator.get();
  params.max_msg_size = 4096;
  params.session_id = "fuzz";
  Host host;
  const auto t0 = tickwire::session::Clock::now();
  Session session(params, host, t0);
  const std::size_t limit = params.max_msg_size + tickwire::protocol::kHeaderSize;
  ws::UpgradeParser upgrade(settings);
  wsf::FrameReader reader(limit);
  bool upgraded = false;
  bool done = false;  // refused, closed, or the reader failed
  std::size_t fed_to_parser = 0;

  auto on_event = [&](const wsf::Event& ev) {
    Check(!done);
    switch (ev.kind) {
      case wsf::Event::Kind::kBinary: {
        Check(ev.payload.size() <= limit);
        const auto& m = ev.payload;
        if (m.size() < tickwire::protocol::kHeaderSize ||
            tickwire::protocol::DecodeLength(m.data()) != m.size() - 4) {
          session.Fail(tickwire::v1::MALFORMED_FRAME, "not one frame",
                       tickwire::session::CloseReason::kMalformedFrame);
          return false;
        }
        const bool go_on = session.OnFrame(m[4], m.subspan(5), t0);
        // Users-file checks never happen here (no authenticator with users): no pause.
        Check(!session.auth_pending());
        return go_on;
      }
      case wsf::Event::Kind::kText:
        session.Fail(tickwire::v1::MALFORMED_FRAME, "text",
                     tickwire::session::CloseReason::kMalformedFrame);
        return false;
      case wsf::Event::Kind::kPing: {
        Check(ev.payload.size() <= wsf::kMaxControlPayload);
        const std::string pong = wsf::EncodeFrame(wsf::Opcode::kPong, ev.payload);
        Check(pong.size() == 2 + ev.payload.size());
        return true;
      }
      case wsf::Event::Kind::kPong:
        return true;
      case wsf::Event::Kind::kClose: {
        const std::string close = wsf::EncodeClose(
            ev.close_code,
            std::string_view(reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size()));
        Check(close.size() <= 2 + wsf::kMaxControlPayload);
        return false;
      }
    }
    return false;
  };

  auto feed = [&](std::span<const std::uint8_t> bytes) {
    if (done || session.closed()) return;
    if (!upgraded) {
      fed_to_parser += bytes.size();
      auto r = upgrade.Feed(bytes);
      if (r.status == ws::UpgradeResult::Status::kNeedMore) {
        Check(fed_to_parser <= ws::kMaxRequestBytes);
        return;
      }
      CheckResponse(r.response, r.status == ws::UpgradeResult::Status::kAccepted);
      if (r.status == ws::UpgradeResult::Status::kRejected) {
        Check(r.rejection != ws::Rejection::kNone);
        done = true;
        return;
      }
      upgraded = true;
      session.OnTransportReady(t0, {"192.0.2.1", {}});
      if (r.leftover.empty()) return;
      const std::string rest = std::move(r.leftover);
      bytes = std::span(reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size());
      const auto err = reader.Feed(bytes, on_event);
      if (err != wsf::ReadError::kNone) {
        done = true;
        session.Fail(tickwire::v1::MALFORMED_FRAME, wsf::ReadErrorText(err),
                     tickwire::session::CloseReason::kMalformedFrame);
      }
      Check(reader.buffered() <= limit + bytes.size());
      return;
    }
    const auto err = reader.Feed(bytes, on_event);
    if (err != wsf::ReadError::kNone) {
      done = true;
      session.Fail(tickwire::v1::MALFORMED_FRAME, wsf::ReadErrorText(err),
                   tickwire::session::CloseReason::kMalformedFrame);
    }
    Check(reader.buffered() <= limit + bytes.size());
  };

  if (chunk == 0) {
    feed(stream);
  } else {
    for (std::size_t off = 0; off < stream.size() && !done && !session.closed(); off += chunk) {
      feed(stream.subspan(off, std::min(chunk, stream.size() - off)));
    }
  }
  // A stopped or failed reader reports nothing more.
  if (upgraded && (done || session.closed())) {
    const std::uint8_t ping[] = {0x89, 0x80, 0, 0, 0, 0};
    reader.Feed(std::span<const std::uint8_t>(ping), [](const wsf::Event&) {
      Check(false);
      return false;
    });
  }
  session.CheckTimers(t0 + std::chrono::hours(1));
  Check(session.closed());
  Check(host.closes == 1);
  return 0;
}
