// Drives the whole per-connection pipeline in memory: bytes -> FrameDecoder -> Session, with a
// host double in place of the socket, so every protobuf payload handler (AUTH, SUBSCRIBE,
// UNSUBSCRIBE, PUBLISH, HEARTBEAT) sees hostile input.
//
// Input layout: byte 0 picks the chunk size (1..64, 0 = whole stream); byte 1 bit 0 prepends a
// valid AUTH so that post-AUTH handlers are reached quickly; the rest is the client's stream.
// Besides STREAM_USER (decided at once) there is a users-file user, `fuzzer` / `fuzz-pass`, whose
// check runs "off the loop" as on the server: the decoder pauses behind that AUTH and the driver
// resumes it, frames pipelined behind it included, once the check is done.
//
// Oracles:
//  - every frame the session emits is a well-formed frame of a server-to-client type whose
//    payload parses as that type's message;
//  - after a fatal ERROR nothing more is emitted and CloseAfterError was called exactly once;
//  - every published tick passed validation (finite price/size, size >= 0, valid topic);
//  - subscriptions added minus removed equals what the session reports.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "auth/password_hash.h"
#include "auth/users_file.h"
#include "engine/topic.h"
#include "fuzz_host.h"
#include "protocol/decoder.h"
#include "protocol/frame.h"
#include "session/session.h"
#include "tickwire/v1/tickwire.pb.h"

namespace {

using tickwire_fuzz::Check;
using tickwire_fuzz::Host;
using tickwire_fuzz::Session;
namespace pb = ::tickwire::v1;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = data[0] % 65;
  const bool preauth = (data[1] & 1) != 0;
  std::span<const std::uint8_t> stream(data + 2, size - 2);

  static const auto authenticator = [] {
    std::vector<tickwire::auth::UserEntry> users;
    users.push_back({"fuzzer", tickwire::auth::HashPassword("fuzz-pass", 1000),
                     tickwire::auth::Permissions::All()});
    return std::get<std::shared_ptr<const tickwire::auth::Authenticator>>(
        tickwire::auth::Authenticator::Create("demo", "demo-pass", std::move(users)));
  }();
  tickwire::session::SessionParams params;
  params.authenticator = authenticator.get();
  params.max_msg_size = 4096;
  params.session_id = "fuzz";
  Host host;
  const auto t0 = tickwire::session::Clock::now();
  Session session(params, host, t0);
  tickwire::protocol::FrameDecoder decoder(params.max_msg_size);

  auto on_frame = [&](std::uint8_t type, std::span<const std::uint8_t> p) {
    const bool go_on = session.OnFrame(type, p, t0);
    if (go_on && session.auth_pending()) decoder.Pause();
    return go_on;
  };
  auto feed = [&](std::span<const std::uint8_t> bytes) {
    if (session.closed()) return;
    auto ec = decoder.Feed(bytes, on_frame);
    // As the connection does: run the check, hand the verdict over, decode what was held.
    while (!ec && decoder.paused() && !session.closed()) {
      Check(session.auth_pending() && host.pending_check != nullptr);
      auto check = std::move(host.pending_check);
      host.pending_check = nullptr;
      session.OnAuthChecked({true, check(), 0}, t0);
      Check(!session.auth_pending());
      if (session.closed()) break;
      ec = decoder.Resume(on_frame);
    }
    if (ec) session.OnDecodeError(ec);
  };

  if (preauth) {
    pb::Auth auth;
    auth.set_username("demo");
    auth.set_password("demo-pass");
    const std::string frame = tickwire::protocol::MakeFrame(tickwire::protocol::FrameType::kAuth,
                                                            auth.SerializeAsString());
    feed(std::span(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()));
  }
  if (chunk == 0) {
    feed(stream);
  } else {
    for (std::size_t off = 0; off < stream.size() && !session.closed(); off += chunk) {
      feed(stream.subspan(off, std::min(chunk, stream.size() - off)));
    }
  }
  Check(host.subs == session.subscriptions().size());
  // Timers never fire twice and never emit after a close.
  session.CheckTimers(t0 + std::chrono::hours(1));
  Check(session.closed());
  Check(host.closes == 1);
  return 0;
}
