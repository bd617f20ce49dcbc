#pragma once

// The pure parts of reconnect-and-resume (no sockets): backoff delays, the per-topic record of
// what was delivered (duplicate filter), and the since_ms a subscription resumes from. The
// client drives them on its strand; tests drive them directly.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "records.h"

namespace tickwire::client {

// How the client reconnects after losing its connection (ClientOptions::reconnect).
struct ReconnectOptions {
  // Off by default: without it, a lost connection closes the client (the v1 library's
  // behaviour, which callers that handle Closed themselves rely on).
  bool enabled = false;
  // Attempt n (1-based) waits initial_backoff * multiplier^(n-1), capped at max_backoff, minus a
  // random share of up to `jitter` of it (0.5: uniformly in [d/2, d]), so that many clients
  // dropped together do not come back together.
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10000};
  double multiplier = 2.0;
  double jitter = 0.5;
  // Consecutive failed attempts after which the client gives up and closes; 0 = never.
  std::uint32_t max_attempts = 0;
  // A resumed subscription asks for records from this long before the newest one it received,
  // to cover records of other topics that were still in flight when the connection broke and
  // ticks stamped out of order by producers; the duplicates this brings are dropped.
  std::chrono::milliseconds resume_lookback{1000};
  // No frame from the server for this long (heartbeat echoes included) means the connection is
  // dead even without a FIN; 0 = the server's heartbeat_timeout_ms.
  std::chrono::milliseconds idle_timeout{0};
};

// Delay before reconnect attempt `attempt` (1-based); `u` is uniform in [0, 1).
std::chrono::milliseconds BackoffDelay(const ReconnectOptions& options, std::uint32_t attempt,
                                       double u);
// Delay when the server said when to come back (ERROR retry_after_ms, e.g. SERVER_DRAINING):
// never sooner, spread up to `jitter` later so that drained clients do not return at once.
std::chrono::milliseconds RetryAfterDelay(const ReconnectOptions& options,
                                          std::uint32_t retry_after_ms, double u);

// Resume point of a record: for a tick floor(ts_ns / 1e6), for a bar its start_ms. PROTOCOL S8b
// sends every retained record whose point is >= since_ms.
std::int64_t TickPointMs(std::int64_t ts_ns);

// since_ms for re-subscribing: `newest_point_ms` is the newest point the subscription received
// (nullopt: none), `anchor_ms` when it started (the caller's since_ms, or the client's clock at
// its first SUBSCRIBE_OK), `user_since_ms` the caller's own since_ms (0: none), below which it
// never goes. Always >= 1, because since_ms 0 means "no history".
std::int64_t ResumeSinceMs(std::int64_t user_since_ms, std::int64_t anchor_ms,
                           std::optional<std::int64_t> newest_point_ms,
                           std::chrono::milliseconds lookback);

// Per (mode, topic), the last record handed to the user. A resume re-sends what the client may
// already have; this drops those duplicates: a tick whose seq is not above the last seq seen on
// its topic, a bar whose start_ms is not above the last one of its topic and interval.
// Memory grows with the number of distinct topics received (about 100 bytes each).
class DeliveredState {
 public:
  // True when the tick is new (and records it). A tick with prev_seq 0 and a ts_ns newer than
  // anything seen on its topic starts a fresh numbering (a restarted server without history):
  // it is new, and the topic's seq starts over from it.
  // A tick whose topic_epoch differs from the last one seen on its topic (both non-zero) starts a
  // new incarnation of the topic's numbering (evicted and created again): it is new, and the
  // topic's seq starts over from it.
  bool AcceptTick(std::string_view topic, std::uint64_t seq, std::uint64_t prev_seq,
                  std::int64_t ts_ns, std::uint64_t topic_epoch = 0);
  // The server's stream epoch changed (PROTOCOL S7a): every topic's numbering starts over, so
  // the seqs seen so far no longer mark duplicates. Bar positions stay (start_ms is wall time).
  void ResetTickNumbering();
  bool AcceptBar(Mode interval, std::string_view topic, std::int64_t start_ms);

  // Resume positions (PROTOCOL S8c) of the topics a TICK subscription to `topics` (or `*` when
  // `wildcard`; prefix patterns "FX.*" included) has received ticks of, in topic order, at
  // most `max_bytes` of them by their encoded size (the rest resume by since_ms).
  std::vector<ResumePoint> TickPositions(bool wildcard, const std::vector<std::string>& topics,
                                         std::size_t max_bytes) const;

  // Newest resume point received for `mode` on `topics`, or on any topic when `wildcard`.
  std::optional<std::int64_t> NewestPoint(Mode mode, bool wildcard,
                                          const std::vector<std::string>& topics) const;

  std::uint64_t duplicates() const { return duplicates_; }
  // Ticks whose prev_seq was not the last seq seen on their topic (records missed).
  std::uint64_t tick_gaps() const { return tick_gaps_; }
  std::uint64_t renumbered() const { return renumbered_; }
  // Ticks that started a new topic_epoch on a topic that had another.
  std::uint64_t topic_epoch_changes() const { return topic_epoch_changes_; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using TopicMap = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

  struct TickState {
    std::uint64_t last_seq = 0;
    std::int64_t max_ts_ns = 0;
    std::uint64_t epoch = 0;  // topic_epoch of last_seq
  };
  static std::size_t Index(Mode mode) { return static_cast<std::size_t>(mode); }

  TopicMap<TickState> ticks_;
  TopicMap<std::int64_t> bars_[2];         // last start_ms, by Index(interval) - 1 (second, minute)
  std::optional<std::int64_t> newest_[4];  // newest point per mode, any topic
  std::uint64_t duplicates_ = 0;
  std::uint64_t tick_gaps_ = 0;
  std::uint64_t renumbered_ = 0;
  std::uint64_t topic_epoch_changes_ = 0;
};

}  // namespace tickwire::client
