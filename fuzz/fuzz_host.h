// The in-memory SessionHost the session fuzzers drive, with the oracles every emitted frame and
// host call must satisfy (see fuzz_session.cc and fuzz_payload.cc).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/topic.h"
#include "protocol/frame.h"
#include "session/session.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire_fuzz {

using tickwire::session::CloseReason;
using tickwire::session::Session;
using tickwire::session::SessionHost;
using tickwire::session::Subscription;
namespace pb = ::tickwire::v1;

inline void Check(bool ok) {
  if (!ok) std::abort();
}

template <typename M>
bool Parses(const std::string& frame) {
  M m;
  return m.ParseFromArray(frame.data() + 5, static_cast<int>(frame.size() - 5));
}

struct Host : SessionHost {
  std::vector<pb::Error> errors;
  std::vector<std::uint8_t> types;  // every frame type sent, in order
  std::size_t published = 0;
  bool fatal_seen = false;
  int closes = 0;
  std::size_t subs = 0;

  void SendFrame(std::string frame) override {
    Check(closes == 0);  // nothing after the close
    Check(frame.size() >= tickwire::protocol::kHeaderSize);
    const auto* b = reinterpret_cast<const std::uint8_t*>(frame.data());
    Check(tickwire::protocol::DecodeLength(b) == frame.size() - 4);
    types.push_back(b[4]);
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
        errors.push_back(e);
        Check(e.code() != pb::ERROR_CODE_UNSPECIFIED);
        Check(e.code() != pb::INTERNAL);  // only a handler that threw sends it: a bug
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
    published += ticks.size();
    for (const auto& t : ticks) {
      Check(tickwire::engine::IsValidTopic(t.topic));
      Check(std::isfinite(t.price) && std::isfinite(t.size) && t.size >= 0 && t.ts_ns > 0);
    }
  }
  std::int64_t WallClockNs() override { return 1'700'000'000'000'000'000; }
  void OnAuthenticated(const std::string&, const std::string&) override {}
  void OnInternalFault(std::string_view) override { Check(false); }
  // The fuzzers run no rate limiter: no user name is ever throttled.
  void DelayAuth(std::chrono::milliseconds) override { Check(false); }
  // Kept for the driver to run, as a hashing thread would, before it feeds more bytes.
  void CheckOffLoop(tickwire::session::CredentialCheck check) override {
    Check(!pending_check);  // one AUTH decided at a time
    pending_check = std::move(check);
  }
  tickwire::session::CredentialCheck pending_check;
};

}  // namespace tickwire_fuzz
