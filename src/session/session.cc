#include "session/session.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <stdexcept>

#include "protocol/errors.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::session {
namespace {

using protocol::FrameType;
namespace pb = ::tickwire::v1;

template <typename Message>
bool Parse(Message& m, std::span<const std::uint8_t> payload) {
  return m.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

std::string TickProblem(const pb::Tick& t, std::int64_t now_ns) {
  if (!engine::IsValidTopic(t.topic())) {
    return t.topic() == "*" ? "topic '*' is only valid in SUBSCRIBE"
                            : "topic must be 1-128 bytes of [A-Za-z0-9._:-]";
  }
  if (!std::isfinite(t.price())) return "price is not finite";
  if (!std::isfinite(t.size())) return "size is not finite";
  if (t.size() < 0) return "size is negative";
  // Bounded so that no bar's volume or vwap can overflow (engine/shard.h).
  if (std::fabs(t.price()) > engine::kMaxAbsPrice) return "|price| is above 1e15";
  if (t.size() > engine::kMaxSize) return "size is above 1e15";
  if (t.ts_ns() < 0) return "ts_ns is negative";
  if (t.ts_ns() > now_ns + kMaxFutureSkewNs) return "ts_ns is more than 5s ahead of the server";
  return {};
}

}  // namespace

Session::Session(SessionParams params, SessionHost& host, Clock::time_point connected_at)
    : params_(std::move(params)),
      host_(host),
      connected_at_(connected_at),
      last_heartbeat_(connected_at) {}

void Session::OnTransportReady(Clock::time_point now, TransportInfo info) {
  connected_at_ = now;
  last_heartbeat_ = now;
  transport_ = std::move(info);
}

void Session::Fail(int code, std::string_view message, CloseReason reason,
                   std::uint32_t retry_after_ms, std::uint32_t request_id) {
  if (closed()) return;
  pb::Error err;
  err.set_code(static_cast<pb::ErrorCode>(code));
  err.set_message(std::string(message));
  err.set_fatal(true);
  err.set_retry_after_ms(retry_after_ms);
  err.set_request_id(request_id);
  state_ = State::kClosed;
  host_.SendFrame(protocol::EncodeFrame(FrameType::kError, err));
  host_.OnErrorSent(code, true, message, {});
  host_.CloseAfterError(reason);
}

void Session::Reject(int code, std::string_view message, std::uint32_t request_id,
                     std::string_view subject) {
  pb::Error err;
  err.set_code(static_cast<pb::ErrorCode>(code));
  err.set_message(std::string(message));
  err.set_request_id(request_id);
  host_.SendFrame(protocol::EncodeFrame(FrameType::kError, err));
  host_.OnErrorSent(code, false, message, subject);
}

bool Session::Malformed(std::uint8_t type) {
  Fail(pb::MALFORMED_FRAME,
       std::string("payload does not parse as the ") + std::string(protocol::FrameTypeName(type)) +
           " message",
       CloseReason::kMalformedFrame);
  return false;
}

void Session::OnDecodeError(std::error_code ec) {
  if (ec == protocol::DecodeError::kFrameTooLarge) {
    Fail(pb::FRAME_TOO_LARGE,
         "frame payload exceeds MAX_MSG_SIZE (" + std::to_string(params_.max_msg_size) + ")",
         CloseReason::kFrameTooLarge);
  } else {
    Fail(pb::MALFORMED_FRAME, "frame length is zero", CloseReason::kMalformedFrame);
  }
}

bool Session::OnFrame(std::uint8_t type, std::span<const std::uint8_t> payload,
                      Clock::time_point now) {
  if (closed()) return false;
  try {
    return Dispatch(type, payload, now);
  } catch (const std::exception& e) {
    // State this frame changed may be half done: the connection ends here (its cleanup undoes
    // what the session recorded); the worker and every other connection carry on.
    if (closed()) {
      host_.CloseAfterError(CloseReason::kInternal);  // threw inside Fail: no second ERROR
    } else {
      Fail(pb::INTERNAL, "internal server error; reconnect", CloseReason::kInternal);
    }
    host_.OnInternalFault(e.what());
    return false;
  }
}

bool Session::Dispatch(std::uint8_t type, std::span<const std::uint8_t> payload,
                       Clock::time_point now) {
  if (!protocol::IsKnownFrameType(type)) {
    Fail(pb::UNKNOWN_FRAME_TYPE, "unknown frame type " + std::to_string(type),
         CloseReason::kUnknownFrameType);
    return false;
  }
  const auto ft = static_cast<FrameType>(type);
  if (pending_) {
    // The host holds frames back while AUTH is decided; one here is a bug in the host.
    throw std::logic_error("a frame arrived while AUTH was being decided");
  }
  if (state_ == State::kAwaitAuth) {
    if (ft != FrameType::kAuth) {
      Fail(pb::AUTH_REQUIRED, "the first frame must be AUTH", CloseReason::kAuthRequired);
      return false;
    }
    return HandleAuth(payload, now);
  }
  if (!protocol::IsClientFrameType(type)) {
    Fail(pb::INVALID_REQUEST,
         std::string(protocol::FrameTypeName(type)) + " is sent by servers only",
         CloseReason::kInvalidRequest);
    return false;
  }
  switch (ft) {
    case FrameType::kAuth: {
      pb::Auth auth;
      if (!Parse(auth, payload)) return Malformed(type);
      Reject(pb::INVALID_REQUEST, "already authenticated", 0);
      return true;
    }
    case FrameType::kHeartbeat:
      return HandleHeartbeat(payload, now);
    case FrameType::kSubscribe:
      return HandleSubscribe(payload);
    case FrameType::kUnsubscribe:
      return HandleUnsubscribe(payload);
    case FrameType::kPublish:
      return HandlePublish(payload);
    default:
      return true;  // unreachable: client types are handled above
  }
}

bool Session::HandleAuth(std::span<const std::uint8_t> payload, Clock::time_point now) {
  pb::Auth auth;
  if (!Parse(auth, payload)) return Malformed(static_cast<std::uint8_t>(FrameType::kAuth));
  // Logged and listed with every line about this connection: bounded like a topic name.
  if (auth.client_name().size() > protocol::kMaxClientNameBytes) {
    Fail(pb::INVALID_REQUEST,
         "client_name is " + std::to_string(auth.client_name().size()) + " bytes (at most " +
             std::to_string(protocol::kMaxClientNameBytes) + ")",
         CloseReason::kInvalidRequest);
    return false;
  }
  if (auth.protocol_version() > protocol::kProtocolVersion) {
    Fail(pb::INVALID_REQUEST,
         "unsupported protocol_version " + std::to_string(auth.protocol_version()) +
             " (this server speaks 1)",
         CloseReason::kInvalidRequest);
    return false;
  }
  // The address over its own budget: refused without looking at the password (PROTOCOL.md S1).
  // Otherwise the attempt is charged to it now, so that AUTHs in flight together cannot
  // overshoot the budget.
  auto* limiter = params_.rate_limiter;
  if (limiter != nullptr) {
    if (const std::uint32_t retry = limiter->BeginAttempt(transport_.peer_address, now)) {
      limiter->CountThrottled();
      Fail(pb::AUTH_RATE_LIMITED,
           "too many failed AUTH attempts from this address; retry in " + std::to_string(retry) +
               "ms",
           CloseReason::kAuthRateLimited, retry);
      return false;
    }
  }
  auto pending = std::make_unique<PendingAuth>();
  pending->user = auth.username();
  pending->password = std::move(*auth.mutable_password());
  pending->client_name = auth.client_name();
  pending->authenticator = params_.authenticator;
  if (params_.credentials != nullptr) {
    pending->owner = params_.credentials->Get();
    pending->authenticator = pending->owner.get();
  }
  pending_ = std::move(pending);
  // A user name that others have been guessing at is throttled, not blocked: its AUTH is
  // answered after a delay (none for addresses that have authenticated as it before).
  if (limiter != nullptr) {
    auth_delay_ = limiter->UserDelay(transport_.peer_address, pending_->user, now);
    if (auth_delay_.count() > 0) {
      host_.DelayAuth(auth_delay_);
      return true;
    }
  }
  return ContinueAuth(now);
}

void Session::ResumeAuth(Clock::time_point now) {
  if (closed() || !pending_) return;
  ContinueAuth(now);
}

bool Session::ContinueAuth(Clock::time_point now) {
  const PendingAuth& p = *pending_;
  if (p.authenticator == nullptr) return FinishAuth(nullptr, now);
  if (!transport_.tls_identity.empty()) {
    // The client certificate is the credential; AUTH may only name its own user.
    return FinishAuth(p.user == transport_.tls_identity ? p.authenticator->Lookup(p.user) : nullptr,
                      now);
  }
  if (const auto quick = p.authenticator->TryQuick(p.user, p.password); quick.decided) {
    return FinishAuth(quick.permissions, now);
  }
  // PBKDF2: tens of milliseconds, so not on this thread. No frame is handled meanwhile.
  host_.CheckOffLoop([owner = p.owner, a = p.authenticator, user = p.user, pass = p.password] {
    return a->Verify(user, pass);
  });
  return true;
}

void Session::OnAuthChecked(const AuthCheckResult& result, Clock::time_point now) {
  if (closed() || !pending_) return;
  if (!result.checked) {
    // The hashing queue was full: nothing was checked, so nothing counts against the address.
    pending_.reset();
    if (params_.rate_limiter != nullptr) {
      params_.rate_limiter->OnUnchecked(transport_.peer_address, now);
      params_.rate_limiter->CountThrottled();
    }
    Fail(pb::AUTH_RATE_LIMITED,
         "the server is busy checking passwords; retry in " +
             std::to_string(result.retry_after_ms) + "ms",
         CloseReason::kAuthRateLimited, result.retry_after_ms);
    return;
  }
  FinishAuth(result.permissions, now);
}

bool Session::FinishAuth(auth::PermissionsPtr permissions, Clock::time_point now) {
  const std::unique_ptr<PendingAuth> p = std::move(pending_);
  auto* limiter = params_.rate_limiter;
  if (!permissions) {
    if (limiter != nullptr) limiter->OnFailure(transport_.peer_address, p->user, now);
    Fail(pb::AUTH_FAILED, "invalid username or password", CloseReason::kAuthFailed);
    return false;
  }
  if (limiter != nullptr) limiter->OnSuccess(transport_.peer_address, p->user, now);
  permissions_ = std::move(permissions);
  user_ = p->user;
  client_name_ = p->client_name;
  state_ = State::kReady;
  last_heartbeat_ = now;
  pb::AuthOk ok;
  ok.set_session_id(params_.session_id);
  ok.set_heartbeat_interval_ms(static_cast<std::uint32_t>(params_.heartbeat_interval.count()));
  ok.set_heartbeat_timeout_ms(static_cast<std::uint32_t>(params_.heartbeat_timeout.count()));
  ok.set_max_msg_size(params_.max_msg_size);
  ok.set_batch_window_ms(params_.batch_window_ms);
  ok.set_server_version(TICKWIRE_VERSION);
  ok.set_protocol_version(protocol::kProtocolVersion);
  ok.set_bar_close_delay_ms(params_.bar_close_delay_ms);
  ok.set_watermark_ms(host_.WatermarkMs(engine::Mode::kSecond));
  ok.set_stream_epoch(params_.stream_epoch);
  host_.SendFrame(protocol::EncodeFrame(FrameType::kAuthOk, ok));
  host_.OnAuthenticated(user_, client_name_);
  return true;
}

bool Session::HandleHeartbeat(std::span<const std::uint8_t> payload, Clock::time_point now) {
  pb::Heartbeat hb;
  if (!Parse(hb, payload)) return Malformed(static_cast<std::uint8_t>(FrameType::kHeartbeat));
  last_heartbeat_ = now;
  host_.SendHeartbeatEcho(protocol::EncodeFrame(FrameType::kHeartbeat, hb));
  return true;
}

bool Session::HandleSubscribe(std::span<const std::uint8_t> payload) {
  pb::Subscribe req;
  if (!Parse(req, payload)) return Malformed(static_cast<std::uint8_t>(FrameType::kSubscribe));
  const std::uint32_t rid = req.request_id();
  if (req.mode() != pb::MODE_SECOND && req.mode() != pb::MODE_MINUTE &&
      req.mode() != pb::MODE_TICK) {
    Reject(pb::INVALID_REQUEST, "mode must be MODE_SECOND, MODE_MINUTE or MODE_TICK", rid);
    return true;
  }
  if (req.topics_size() == 0) {
    Reject(pb::INVALID_REQUEST, "topics is empty", rid);
    return true;
  }
  if (req.since_ms() < 0) {
    Reject(pb::INVALID_REQUEST, "since_ms is negative", rid);
    return true;
  }
  if (req.since_ms() > engine::kMaxSinceMs) {
    // Beyond the year 2262 the time in ns does not fit 64 bits (PROTOCOL S4).
    Reject(pb::INVALID_REQUEST,
           "since_ms is above " + std::to_string(engine::kMaxSinceMs) + " (2262-04-11)", rid);
    return true;
  }
  if (req.backfill() > 0 && req.since_ms() > 0) {
    Reject(pb::INVALID_REQUEST, "backfill and since_ms are exclusive", rid);
    return true;
  }
  Subscription sub;
  sub.mode = static_cast<engine::Mode>(req.mode());
  sub.backfill = req.backfill();
  sub.since_ms = req.since_ms();
  for (int i = 0; i < req.topics_size(); ++i) {
    const std::string& topic = req.topics(i);
    if (topic == engine::kWildcard) {
      sub.wildcard = true;
    } else if (engine::IsValidTopic(topic) || engine::IsPrefixPattern(topic)) {
      sub.topics.push_back(topic);
    } else {
      Reject(pb::INVALID_REQUEST,
             "topics[" + std::to_string(i) +
                 "]: must be 1-128 bytes of [A-Za-z0-9._:-], a prefix ending in '.' followed by "
                 "'*' (FX.*), or '*'",
             rid, topic);
      return true;
    }
  }
  std::sort(sub.topics.begin(), sub.topics.end());
  sub.topics.erase(std::unique(sub.topics.begin(), sub.topics.end()), sub.topics.end());
  sub.patterns = static_cast<std::size_t>(std::count_if(
      sub.topics.begin(), sub.topics.end(), [](const std::string& t) { return t.back() == '*'; }));
  if (!ParseResumeAfter(req, sub)) return true;
  if (permissions_) {
    const auto& allowed = permissions_->subscribe;
    if (sub.wildcard && !allowed.MatchesAll()) {
      Reject(pb::FORBIDDEN, "user '" + user_ + "' may not subscribe to '*'", rid);
      return true;
    }
    for (const auto& topic : sub.topics) {
      const std::string_view prefix = engine::PrefixOf(topic);
      if (prefix.empty() ? !allowed.Matches(topic) : !allowed.CoversPrefix(prefix)) {
        Reject(pb::FORBIDDEN, "user '" + user_ + "' may not subscribe to '" + topic + "'", rid);
        return true;
      }
    }
  }
  if (subs_.size() >= kMaxSubscriptionsPerConnection ||
      topic_refs_ + sub.topics.size() > kMaxTopicRefsPerConnection) {
    Reject(pb::INVALID_REQUEST, "too many subscriptions on this connection", rid);
    return true;
  }
  if (pattern_refs_ + sub.patterns > kMaxPrefixPatternsPerConnection) {
    Reject(pb::INVALID_REQUEST,
           "too many prefix patterns on this connection (at most " +
               std::to_string(kMaxPrefixPatternsPerConnection) + ")",
           rid);
    return true;
  }
  const std::uint64_t id = next_subscription_id_++;
  topic_refs_ += sub.topics.size();
  pattern_refs_ += sub.patterns;
  auto& stored = subs_.emplace(id, std::move(sub)).first->second;
  // Read before the interest is registered (AddSubscription): S8c's guarantee rests on it.
  const std::int64_t resume_from = stored.mode == engine::Mode::kTick ? host_.ResumeFromNs() : 0;
  host_.AddSubscription(id, stored);
  pb::SubscribeOk ok;
  ok.set_request_id(rid);
  ok.set_subscription_id(id);
  SetBarCompleteness(stored.mode, ok);
  ok.set_history_end(stored.WantsHistory());
  if (stored.mode == engine::Mode::kTick) ok.set_resume_from_ns(resume_from);
  host_.SendFrame(protocol::EncodeFrame(FrameType::kSubscribeOk, ok));
  return true;
}

void Session::SetBarCompleteness(engine::Mode mode, pb::SubscribeOk& ok) {
  if (mode != engine::Mode::kSecond && mode != engine::Mode::kMinute) return;
  ok.set_watermark_ms(host_.WatermarkMs(mode));
  // The subscription's interest reached the owner shards before any of them can close a bucket
  // that ends later than BAR_CLOSE_DELAY_MS before now (their marks from this worker travel
  // behind it), so live delivery has every bar of the bucket open at now - delay, and after.
  const std::int64_t interval_ms = mode == engine::Mode::kSecond ? 1000 : 60'000;
  const std::int64_t now_ms = engine::FloorDiv(host_.WallClockNs(), engine::kNsPerMs);
  const std::int64_t open_ms = now_ms - std::int64_t{params_.bar_close_delay_ms};
  ok.set_live_from_ms(engine::FloorDiv(open_ms, interval_ms) * interval_ms);
}

bool Session::ParseResumeAfter(const pb::Subscribe& req, Subscription& sub) {
  const std::uint32_t rid = req.request_id();
  if (req.resume_from_ns() != 0) {
    if (sub.mode != engine::Mode::kTick || req.resume_from_ns() < 0) {
      Reject(pb::INVALID_REQUEST,
             "resume_from_ns is a non-negative position for MODE_TICK subscriptions only", rid);
      return false;
    }
    sub.resume_from_ns = req.resume_from_ns();
  }
  if (req.resume_after_size() == 0) return true;
  if (sub.mode != engine::Mode::kTick) {
    Reject(pb::INVALID_REQUEST, "resume_after is for MODE_TICK subscriptions only", rid);
    return false;
  }
  sub.resume.reserve(static_cast<std::size_t>(req.resume_after_size()));
  for (int i = 0; i < req.resume_after_size(); ++i) {
    const auto& p = req.resume_after(i);
    const std::string& topic = p.topic();
    const bool covered =
        engine::IsValidTopic(topic) &&
        (sub.wildcard || std::binary_search(sub.topics.begin(), sub.topics.end(), topic) ||
         (sub.patterns > 0 && engine::ListHasPatternFor(sub.topics, topic)));
    if (!covered) {
      Reject(pb::INVALID_REQUEST,
             "resume_after[" + std::to_string(i) + "]: not a topic this subscription covers", rid,
             topic);
      return false;
    }
    sub.resume.push_back(engine::ResumePoint{topic, p.after_seq(), p.topic_epoch()});
  }
  std::sort(sub.resume.begin(), sub.resume.end(),
            [](const auto& a, const auto& b) { return a.topic < b.topic; });
  const auto dup =
      std::adjacent_find(sub.resume.begin(), sub.resume.end(),
                         [](const auto& a, const auto& b) { return a.topic == b.topic; });
  if (dup != sub.resume.end()) {
    Reject(pb::INVALID_REQUEST, "resume_after names a topic twice", rid, dup->topic);
    return false;
  }
  // Positions read under another stream epoch belong to a numbering that is gone (S7a).
  sub.resume_stale =
      req.resume_stream_epoch() != 0 && req.resume_stream_epoch() != params_.stream_epoch;
  return true;
}

bool Session::HandleUnsubscribe(std::span<const std::uint8_t> payload) {
  pb::Unsubscribe req;
  if (!Parse(req, payload)) return Malformed(static_cast<std::uint8_t>(FrameType::kUnsubscribe));
  auto it = subs_.find(req.subscription_id());
  if (it == subs_.end()) {
    Reject(pb::INVALID_REQUEST,
           "no subscription " + std::to_string(req.subscription_id()) + " on this connection",
           req.request_id());
    return true;
  }
  host_.RemoveSubscription(it->first, it->second);
  topic_refs_ -= it->second.topics.size();
  pattern_refs_ -= it->second.patterns;
  subs_.erase(it);
  return true;
}

bool Session::HandlePublish(std::span<const std::uint8_t> payload) {
  // One message per thread, reused: parsing into it again keeps its repeated Tick objects, so a
  // steady stream of PUBLISH frames allocates nothing here.
  thread_local pb::Publish req;
  if (!Parse(req, payload)) return Malformed(static_cast<std::uint8_t>(FrameType::kPublish));
  const std::int64_t now_ns = host_.WallClockNs();
  // Validate the whole frame before applying any of it.
  for (int i = 0; i < req.ticks_size(); ++i) {
    const std::string problem = TickProblem(req.ticks(i), now_ns);
    if (!problem.empty()) {
      Reject(pb::INVALID_REQUEST,
             "ticks[" + std::to_string(i) + "]: " + problem + "; nothing of this frame applied",
             req.request_id(), req.ticks(i).topic());
      return true;
    }
  }
  if (permissions_ && !permissions_->publish.MatchesAll()) {
    const auto& allowed = permissions_->publish;
    for (int i = 0; i < req.ticks_size(); ++i) {
      const std::string& topic = req.ticks(i).topic();
      if (!allowed.Matches(topic)) {
        Reject(pb::FORBIDDEN,
               "ticks[" + std::to_string(i) + "]: user '" + user_ + "' may not publish to '" +
                   topic + "'; nothing of this frame applied",
               req.request_id());
        return true;
      }
    }
  }
  std::vector<engine::IngestTick> ticks;
  ticks.reserve(static_cast<std::size_t>(req.ticks_size()));
  std::uint32_t index = 0;
  for (auto& t : *req.mutable_ticks()) {
    ticks.push_back(engine::IngestTick{std::move(*t.mutable_topic()), t.price(), t.size(),
                                       t.ts_ns() == 0 ? now_ns : t.ts_ns(), now_ns, 0, index++});
  }
  host_.Publish(req.request_id(), req.ack(), std::move(ticks));
  return true;
}

void Session::OnPublishApplied(std::uint32_t request_id, std::uint32_t accepted,
                               std::uint32_t late) {
  if (closed()) return;
  pb::PublishAck ack;
  ack.set_request_id(request_id);
  ack.set_accepted(accepted);
  ack.set_late(late);
  host_.SendFrame(protocol::EncodeFrame(FrameType::kPublishAck, ack));
}

void Session::OnPublishRefused(std::uint32_t request_id, const PublishRefusal& r) {
  if (state_ != State::kReady) return;
  std::string message =
      "ticks[" + std::to_string(r.index) + "]: new topic '" + r.topic + "' refused: ";
  message += r.reason == engine::Refusal::kUserTopicLimit
                 ? "user '" + user_ + "' has reached its topic limit (MAX_TOPICS_PER_USER)"
                 : std::string("the server's topic limit (MAX_TOPICS) is reached");
  message += " and no topic can make room yet; " + std::to_string(r.refused) + " of " +
             std::to_string(r.total) + " ticks of this frame not applied";
  Reject(pb::TOPIC_LIMIT, message, request_id, r.topic);
}

void Session::OnPublishFailed(std::uint32_t request_id, std::string_view message,
                              std::uint32_t retry_after_ms) {
  if (state_ != State::kReady) return;
  pb::Error err;
  err.set_code(pb::UNAVAILABLE);
  err.set_message(std::string(message));
  err.set_request_id(request_id);
  err.set_retry_after_ms(retry_after_ms);
  host_.SendFrame(protocol::EncodeFrame(FrameType::kError, err));
  host_.OnErrorSent(pb::UNAVAILABLE, false, message, {});
}

bool Session::CheckTimers(Clock::time_point now) {
  if (closed()) return false;
  if (state_ == State::kAwaitAuth) {
    if (now - connected_at_ >= params_.auth_timeout + auth_delay_) {
      Fail(pb::AUTH_TIMEOUT,
           "no AUTH within " + std::to_string(params_.auth_timeout.count()) + "ms",
           CloseReason::kAuthTimeout);
      return false;
    }
    return true;
  }
  if (now - last_heartbeat_ >= params_.heartbeat_timeout) {
    Fail(pb::HEARTBEAT_TIMEOUT,
         "no HEARTBEAT for " + std::to_string(params_.heartbeat_timeout.count()) + "ms",
         CloseReason::kHeartbeatTimeout);
    return false;
  }
  return true;
}

}  // namespace tickwire::session
