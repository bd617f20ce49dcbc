#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "auth/authenticator.h"
#include "auth/rate_limiter.h"
#include "delivery/subscription.h"
#include "engine/shard.h"
#include "engine/topic.h"
#include "session/close_reason.h"

namespace tickwire::v1 {
class SubscribeOk;
class Subscribe;
}  // namespace tickwire::v1

namespace tickwire::session {

using Clock = std::chrono::steady_clock;

// Limits that keep one connection's state bounded.
inline constexpr std::size_t kMaxSubscriptionsPerConnection = 1024;
inline constexpr std::size_t kMaxTopicRefsPerConnection = 65536;
// Prefix patterns ("FX.*") over all of a connection's subscriptions; each also counts as a
// topic entry. Every owner shard keeps an interest entry per distinct pattern (an exact topic
// costs one shard one entry), so patterns get a tighter bound than topics.
inline constexpr std::size_t kMaxPrefixPatternsPerConnection = 256;
// Ticks may carry event times at most this far ahead of the server clock (PROTOCOL S6).
inline constexpr std::int64_t kMaxFutureSkewNs = 5'000'000'000;

// What a session needs to know, fixed for its lifetime.
struct SessionParams {
  // Current credentials, read at AUTH time (a reload swaps them). When null, `authenticator`.
  const auth::CredentialStore* credentials = nullptr;
  const auth::Authenticator* authenticator = nullptr;  // fixed credentials (tests, fuzzing)
  auth::AuthRateLimiter* rate_limiter = nullptr;       // null: no AUTH rate limiting
  std::chrono::milliseconds heartbeat_interval{15'000};
  std::chrono::milliseconds heartbeat_timeout{20'000};
  std::chrono::milliseconds auth_timeout{5'000};
  std::uint32_t max_msg_size = 65536;
  std::uint32_t batch_window_ms = 5;
  std::uint32_t bar_close_delay_ms = 100;  // BAR_CLOSE_DELAY_MS (advertised in AUTH_OK)
  std::uint64_t stream_epoch = 0;          // AuthOk.stream_epoch (PROTOCOL S7a)
  std::string session_id;
};

// What the transport learned before the first frame.
struct TransportInfo {
  std::string peer_address;  // the client's IP (from a PROXY header when there is one)
  // With TLS_CLIENT_CN_USER: the verified client certificate's CN. AUTH must name this user and
  // is not asked for a password.
  std::string tls_identity;
};

// A subscription as the session records it (for UNSUBSCRIBE and cleanup); the connection's
// subscriber stream reads the same records.
using Subscription = delivery::Subscription;

// A password check for the hashing threads: the user's permissions, or null for wrong
// credentials. Runs on another thread; holds everything it needs.
using CredentialCheck = std::function<auth::PermissionsPtr()>;

// What became of a CredentialCheck.
struct AuthCheckResult {
  bool checked = true;               // false: not run (the hashing queue was full)
  auth::PermissionsPtr permissions;  // checked: null for wrong credentials
  std::uint32_t retry_after_ms = 0;  // not checked: when to try again
};

// Ticks of one PUBLISH that the topic cap refused (PROTOCOL S6b).
struct PublishRefusal {
  std::uint32_t index = 0;  // the first refused tick's position in the frame
  std::string topic;        // its topic
  engine::Refusal reason = engine::Refusal::kTopicLimit;
  std::uint32_t refused = 0;  // refused ticks of the frame
  std::uint32_t total = 0;    // ticks in the frame
};

// The side effects of a session, implemented by the connection (or a test double).
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  // Queues a complete control frame (AUTH_OK, SUBSCRIBE_OK, PUBLISH_ACK, ERROR).
  virtual void SendFrame(std::string frame) = 0;
  // Queues the echo of a client HEARTBEAT. An echo still waiting unsent may be replaced by this
  // newer one instead of queuing both (PROTOCOL S2).
  virtual void SendHeartbeatEcho(std::string frame) { SendFrame(std::move(frame)); }
  // A fatal ERROR has been queued: flush it and close. The session is closed from now on.
  virtual void CloseAfterError(CloseReason reason) = 0;
  virtual void AddSubscription(std::uint64_t id, const Subscription& sub) = 0;
  virtual void RemoveSubscription(std::uint64_t id, const Subscription& sub) = 0;
  // Hands validated, stamped ticks to the engine. When `ack`, the host later calls
  // Session::OnPublishApplied once they are applied.
  virtual void Publish(std::uint32_t request_id, bool ack,
                       std::vector<engine::IngestTick> ticks) = 0;
  // Wall clock in ns since the Unix epoch (for stamping ticks and the future-skew check).
  virtual std::int64_t WallClockNs() = 0;
  // The start of the newest `interval` (SECOND or MINUTE) whose bars are final on this
  // connection's worker (the last watermark it sent), 0 before the first (PROTOCOL S8d).
  virtual std::int64_t WatermarkMs(engine::Mode /*interval*/) { return 0; }
  // SubscribeOk.resume_from_ns (PROTOCOL S8c): read before the subscription's interest is
  // registered; every tick its owners apply after that has an accept position at or after it.
  virtual std::int64_t ResumeFromNs() { return 0; }
  // AUTH succeeded (for logs and monitoring).
  virtual void OnAuthenticated(const std::string& user, const std::string& client_name) = 0;
  // An AUTH is being decided away from this call; until Session::auth_pending() turns false the
  // host hands the session no frames (they stay unread, in order). Neither calls back from
  // inside itself, and neither calls back once the session has closed.
  //  - DelayAuth: the user name is throttled; call Session::ResumeAuth after `delay`.
  //  - CheckOffLoop: run `check` on a hashing thread and hand its result to
  //    Session::OnAuthChecked on the session's own thread (not checked: the queue was full).
  virtual void DelayAuth(std::chrono::milliseconds delay) = 0;
  virtual void CheckOffLoop(CredentialCheck check) = 0;
  // An ERROR frame was just queued (for logs and metrics). `subject` is the client-supplied
  // value it is about (a topic), or empty.
  virtual void OnErrorSent(int /*code*/, bool /*fatal*/, std::string_view /*message*/,
                           std::string_view /*subject*/) {}
  // Handling a frame threw (a server bug; `what` is the exception's text, for the log). The
  // session has sent ERROR{INTERNAL} and closed.
  virtual void OnInternalFault(std::string_view /*what*/) {}
};

// The protocol state machine of one connection: AUTH first, heartbeats, SUBSCRIBE /
// UNSUBSCRIBE, PUBLISH validation, and every ERROR these rules name. Never throws on input.
class Session {
 public:
  enum class State : std::uint8_t { kAwaitAuth, kReady, kClosed };

  Session(SessionParams params, SessionHost& host, Clock::time_point connected_at);

  // The transport (PROXY header, TLS handshake) is done: the AUTH deadline starts now.
  void OnTransportReady(Clock::time_point now, TransportInfo info);
  // Handles one complete frame. Returns false once the session is closed. A handler that throws
  // (a server bug: input never throws) ends only this session, with ERROR{INTERNAL}.
  bool OnFrame(std::uint8_t type, std::span<const std::uint8_t> payload, Clock::time_point now);
  // The decoder rejected the byte stream (zero length, frame too large): fatal ERROR.
  void OnDecodeError(std::error_code ec);
  // AUTH and heartbeat deadlines, called by the worker's coarse sweep. False once closed. A
  // throttled AUTH's delay is added to the AUTH deadline; the check itself is not.
  bool CheckTimers(Clock::time_point now);
  // DelayAuth's delay has passed.
  void ResumeAuth(Clock::time_point now);
  // CheckOffLoop's result.
  void OnAuthChecked(const AuthCheckResult& result, Clock::time_point now);
  // The ticks of an acked PUBLISH have been applied.
  void OnPublishApplied(std::uint32_t request_id, std::uint32_t accepted, std::uint32_t late = 0);
  // Ticks of a PUBLISH were refused for the topic cap: non-fatal ERROR TOPIC_LIMIT with the
  // request's id, naming the first refused tick and how many were refused. Sent before the
  // PUBLISH_ACK, if one was asked for.
  void OnPublishRefused(std::uint32_t request_id, const PublishRefusal& refusal);
  // Multi-instance mode: the backplane did not take a PUBLISH (non-fatal ERROR UNAVAILABLE with
  // the request's id; the client may retry after `retry_after_ms`).
  void OnPublishFailed(std::uint32_t request_id, std::string_view message,
                       std::uint32_t retry_after_ms);
  // Sends a fatal ERROR and closes (also used by the host: slow consumer, shutdown).
  void Fail(int code, std::string_view message, CloseReason reason,
            std::uint32_t retry_after_ms = 0, std::uint32_t request_id = 0);

  State state() const { return state_; }
  bool closed() const { return state_ == State::kClosed; }
  // An AUTH has arrived and is being decided (DelayAuth or CheckOffLoop): no frames meanwhile.
  bool auth_pending() const { return pending_ != nullptr; }
  const std::string& user() const { return user_; }
  const std::string& client_name() const { return client_name_; }
  const std::string& peer_address() const { return transport_.peer_address; }
  const delivery::Subscriptions& subscriptions() const { return subs_; }

 private:
  bool Dispatch(std::uint8_t type, std::span<const std::uint8_t> payload, Clock::time_point now);
  bool HandleAuth(std::span<const std::uint8_t> payload, Clock::time_point now);
  bool HandleHeartbeat(std::span<const std::uint8_t> payload, Clock::time_point now);
  bool HandleSubscribe(std::span<const std::uint8_t> payload);
  // SECOND and MINUTE: the watermark and the first interval live delivery completes
  // (PROTOCOL S8d), in a SUBSCRIBE_OK.
  void SetBarCompleteness(engine::Mode mode, v1::SubscribeOk& ok);
  // Reads Subscribe.resume_after / resume_stream_epoch into `sub` (PROTOCOL S8c); false after
  // rejecting the request.
  bool ParseResumeAfter(const v1::Subscribe& req, Subscription& sub);
  bool HandleUnsubscribe(std::span<const std::uint8_t> payload);
  bool HandlePublish(std::span<const std::uint8_t> payload);
  // Non-fatal ERROR answering a request.
  void Reject(int code, std::string_view message, std::uint32_t request_id,
              std::string_view subject = {});
  bool Malformed(std::uint8_t type);
  // An AUTH between its arrival and its verdict.
  struct PendingAuth {
    std::string user;
    std::string password;
    std::string client_name;
    std::shared_ptr<const auth::Authenticator> owner;  // keeps `authenticator` alive (reloads)
    const auth::Authenticator* authenticator = nullptr;
  };
  // The cheap part of the check (or all of it, when that decides); else hands the rest to the
  // hashing threads. False once closed.
  bool ContinueAuth(Clock::time_point now);
  // The verdict: AUTH_OK, or a fatal AUTH_FAILED. False once closed.
  bool FinishAuth(auth::PermissionsPtr permissions, Clock::time_point now);

  SessionParams params_;
  SessionHost& host_;
  State state_ = State::kAwaitAuth;
  Clock::time_point connected_at_;
  Clock::time_point last_heartbeat_;
  std::string user_;
  std::string client_name_;
  TransportInfo transport_;
  std::unique_ptr<PendingAuth> pending_;
  std::chrono::milliseconds auth_delay_{0};  // a throttled AUTH's delay, added to its deadline
  auth::PermissionsPtr permissions_;         // fixed at AUTH; a reload affects later AUTHs only
  std::uint64_t next_subscription_id_ = 1;
  std::size_t topic_refs_ = 0;
  std::size_t pattern_refs_ = 0;  // prefix patterns over all subscriptions
  delivery::Subscriptions subs_;
};

}  // namespace tickwire::session
