// One target per client payload handler: the input is the payload of a single frame of type
// TICKWIRE_FUZZ_FRAME_TYPE (AUTH, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, HEARTBEAT), delivered to an
// authenticated Session (a fresh one for AUTH), followed by a HEARTBEAT.
//
// Oracles (beside those of fuzz_host.h):
//  - a payload protobuf cannot parse as the type's message is MALFORMED_FRAME, fatal; one it
//    can parse never is;
//  - only AUTH and protocol_version problems are fatal; after any other answer the connection
//    still echoes the HEARTBEAT;
//  - a PUBLISH publishes all of its ticks or none (PROTOCOL S6);
//  - a SUBSCRIBE either gets SUBSCRIBE_OK and adds one subscription, or a non-fatal ERROR
//    carrying its request_id and adds none.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "auth/authenticator.h"
#include "fuzz_host.h"
#include "protocol/frame.h"

#ifndef TICKWIRE_FUZZ_FRAME_TYPE
#error "define TICKWIRE_FUZZ_FRAME_TYPE to the frame type byte under test"
#endif

namespace {

using tickwire_fuzz::Check;
using tickwire_fuzz::Host;
using tickwire_fuzz::Session;
namespace pb = ::tickwire::v1;
using tickwire::protocol::FrameType;

constexpr auto kType = static_cast<FrameType>(TICKWIRE_FUZZ_FRAME_TYPE);

template <typename M>
bool ParsesAs(std::span<const std::uint8_t> payload) {
  M m;
  return m.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

bool PayloadParses(std::span<const std::uint8_t> p) {
  switch (kType) {
    case FrameType::kAuth:
      return ParsesAs<pb::Auth>(p);
    case FrameType::kSubscribe:
      return ParsesAs<pb::Subscribe>(p);
    case FrameType::kUnsubscribe:
      return ParsesAs<pb::Unsubscribe>(p);
    case FrameType::kPublish:
      return ParsesAs<pb::Publish>(p);
    case FrameType::kHeartbeat:
      return ParsesAs<pb::Heartbeat>(p);
    default:
      return false;
  }
}

void DiscardProtobufLog(google::protobuf::LogLevel, const char*, int, const std::string&) {}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (google::protobuf::SetLogHandler(&DiscardProtobufLog), true);
  (void)quiet;
  static const tickwire::auth::Authenticator authenticator("demo", "demo-pass");
  tickwire::session::SessionParams params;
  params.authenticator = &authenticator;
  params.max_msg_size = 65536;
  params.session_id = "fuzz";
  Host host;
  const auto t0 = tickwire::session::Clock::now();
  Session session(params, host, t0);
  if (kType != FrameType::kAuth) {
    pb::Auth auth;
    auth.set_username("demo");
    auth.set_password("demo-pass");
    const std::string a = auth.SerializeAsString();
    Check(session.OnFrame(static_cast<std::uint8_t>(FrameType::kAuth),
                          std::span(reinterpret_cast<const std::uint8_t*>(a.data()), a.size()),
                          t0));
  }
  const std::size_t frames_before = host.types.size();
  const std::span<const std::uint8_t> payload(data, size);
  const bool parses = PayloadParses(payload);
  const bool open = session.OnFrame(static_cast<std::uint8_t>(kType), payload, t0);

  const bool answered_error = host.types.size() > frames_before && host.types.back() == 0x0A;
  if (!parses) {
    Check(!open && answered_error && host.errors.back().code() == pb::MALFORMED_FRAME &&
          host.errors.back().fatal());
    return 0;
  }
  if (answered_error) Check(host.errors.back().code() != pb::MALFORMED_FRAME);
  if (kType == FrameType::kPublish) {
    pb::Publish pub;
    pub.ParseFromArray(data, static_cast<int>(size));
    Check(host.published == 0 || host.published == static_cast<std::size_t>(pub.ticks_size()));
    Check((host.published == 0) == (answered_error || pub.ticks_size() == 0));
  }
  if (kType == FrameType::kSubscribe) {
    pb::Subscribe sub;
    sub.ParseFromArray(data, static_cast<int>(size));
    if (answered_error) {
      Check(host.subs == 0 && !host.errors.back().fatal() &&
            host.errors.back().request_id() == sub.request_id());
    } else {
      Check(host.subs == 1 && host.types.back() == 0x04);
    }
  }
  if (!open) {
    // Only AUTH itself (bad credentials, protocol_version) may close here.
    Check(kType == FrameType::kAuth && host.closes == 1);
    return 0;
  }
  pb::Heartbeat hb;
  hb.set_ts_ms(42);
  const std::string h = hb.SerializeAsString();
  Check(session.OnFrame(static_cast<std::uint8_t>(FrameType::kHeartbeat),
                        std::span(reinterpret_cast<const std::uint8_t*>(h.data()), h.size()), t0));
  Check(host.types.back() == 0x09);
  return 0;
}
