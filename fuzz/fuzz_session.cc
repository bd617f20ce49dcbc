// Drives the whole per-connection pipeline in memory: bytes -> FrameDecoder -> Session, with a
// host double in place of the socket, so every protobuf payload handler (AUTH, SUBSCRIBE,
// UNSUBSCRIBE, PUBLISH, HEARTBEAT) sees hostile input.
//
// Input layout: byte 0 picks the chunk size (1..64, 0 = whole stream); byte 1 bit 0 prepends a
// valid AUTH so that post-AUTH handlers are reached quickly; the rest is the client's stream.
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
#include "engine/topic.h"
#include "protocol/decoder.h"
#include "protocol/frame.h"
#include "session/session.h"
#include "tickwire/v1/tickwire.pb.h"

namespace {

using tickwire::session::CloseReason;
using tickwire::session::Session;
using tickwire::session::SessionHost;
using tickwire::session::Subscription;
namespace pb = ::tickwire::v1;

void Check(bool ok) {
  if (!ok) std::abort();
}

template <typename M>
bool Parses(const std::string& frame) {
  M m;
  return m.ParseFromArray(frame.data() + 5, static_cast<int>(frame.size() - 5));
}

struct Host : SessionHost {
  bool fatal_seen = false;
  int closes = 0;
  std::size_t subs = 0;

  void SendFrame(std::string frame) override {
    Check(closes == 0);  // nothing after the close
    Check(frame.size() >= tickwire::protocol::kHeaderSize);
    const auto* b = reinterpret_cast<const std::uint8_t*>(frame.data());
    Check(tickwire::protocol::DecodeLength(b) == frame.size() - 4);
    switch (b[4]) {
      case 0x02:
        Check(Parses<pb::AuthOk>(frame));
        break;
      case 0x04:
        Check(Parses<pb::SubscribeOk>(frame));
        break;
      case 0x07:
        Check(Parses<pb::PublishAck>(frame));
        break;
      case 0x09:
        Check(Parses<pb::Heartbeat>(frame));
        break;
      case 0x0A: {
        pb::Error e;
        Check(e.ParseFromArray(frame.data() + 5, static_cast<int>(frame.size() - 5)));
        Check(e.code() != pb::ERROR_CODE_UNSPECIFIED);
        Check(!fatal_seen);
        fatal_seen = e.fatal();
        break;
      }
      default:
        Check(false);
    }
  }
  void CloseAfterError(CloseReason) override {
    Check(fatal_seen);
    ++closes;
    Check(closes == 1);
  }
  void AddSubscription(std::uint64_t, const Subscription& s) override {
    for (const auto& t : s.topics) Check(tickwire::engine::IsValidTopic(t));
    ++subs;
  }
  void RemoveSubscription(std::uint64_t, const Subscription&) override {
    Check(subs > 0);
    --subs;
  }
  void Publish(std::uint32_t, bool, std::vector<tickwire::engine::IngestTick> ticks) override {
    for (const auto& t : ticks) {
      Check(tickwire::engine::IsValidTopic(t.topic));
      Check(std::isfinite(t.price) && std::isfinite(t.size) && t.size >= 0 && t.ts_ns > 0);
    }
  }
  std::int64_t WallClockNs() override { return 1'700'000'000'000'000'000; }
  void OnAuthenticated(const std::string&, const std::string&) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = data[0] % 65;
  const bool preauth = (data[1] & 1) != 0;
  std::span<const std::uint8_t> stream(data + 2, size - 2);

  static const tickwire::auth::Authenticator authenticator("demo", "demo-pass");
  tickwire::session::SessionParams params;
  params.authenticator = &authenticator;
  params.max_msg_size = 4096;
  params.session_id = "fuzz";
  Host host;
  const auto t0 = tickwire::session::Clock::now();
  Session session(params, host, t0);
  tickwire::protocol::FrameDecoder decoder(params.max_msg_size);

  auto feed = [&](std::span<const std::uint8_t> bytes) {
    if (session.closed()) return;
    const auto ec = decoder.Feed(bytes, [&](std::uint8_t type, std::span<const std::uint8_t> p) {
      return session.OnFrame(type, p, t0);
    });
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
