#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tickwire::net {

// Why a connection was refused, or a waiting one evicted (connections_rejected_total{limit}).
enum class AdmissionLimit : std::uint8_t {
  kMaxConnections = 0,  // refused: MAX_CONNECTIONS
  kMaxUnauthenticated,  // evicted: MAX_UNAUTH_CONNECTIONS full
  kMaxUnauthPerSource,  // evicted: MAX_UNAUTH_PER_SOURCE full for its source
  kCount
};

// One admitted connection's place in the connection budget. Created by Admission::Admit and
// held by the connection; `source`, `waiting` and `evicted_for` are guarded by Admission's
// mutex (and read by the connection's worker after the eviction is posted to it).
struct AdmissionTicket {
  std::uint64_t seq = 0;            // admission order: lower is older
  unsigned worker = 0;              // the connection's worker
  std::uint64_t connection_id = 0;  // set and read by that worker only
  std::string source;               // source key (IPv6: its /64); empty while unknown (PROXY)
  bool waiting = false;             // counted as not yet authenticated
  AdmissionLimit evicted_for = AdmissionLimit::kCount;  // set when chosen to make room
};
using TicketPtr = std::shared_ptr<AdmissionTicket>;

// Server-wide connection budget: MAX_CONNECTIONS open connections, of which at most
// MAX_UNAUTH_CONNECTIONS have not authenticated yet, and at most MAX_UNAUTH_PER_SOURCE of those
// from one source address (an IPv6 /64 counts as one). Over MAX_CONNECTIONS a new connection is
// refused. The unauthenticated limits never refuse one: they make room by closing the oldest
// connection still waiting to authenticate (from the same source when that source is full,
// else overall). An attacker that holds idle connections holds the oldest ones, so it is the
// one that loses them, and a client in the middle of its AUTH is evicted only if the flood
// replaces every waiting connection faster than that client authenticates.
//
// The listener admits (one thread); workers report AUTH and close from their own threads, and
// a PROXY header's source once it is read. One mutex: these are per-connection events, not
// per-frame ones.
class Admission {
 public:
  void Configure(std::uint64_t max_open, std::uint64_t max_unauthenticated,
                 std::uint64_t max_unauthenticated_per_source);

  using Limit = AdmissionLimit;
  struct Decision {
    TicketPtr ticket;   // null: refused (MAX_CONNECTIONS)
    TicketPtr evicted;  // a waiting connection to close to make room (its worker does it)
    Limit why = Limit::kMaxConnections;  // of the refusal or the eviction
  };
  // Listener thread: a new connection from `source` (a source key; empty when only a PROXY
  // header will tell) for `worker`.
  Decision Admit(std::string_view source, unsigned worker);
  // A PROXY header named the real source: counts the ticket there from now on. Returns a
  // waiting connection of that source to close to make room, or null.
  TicketPtr SetSource(const TicketPtr& ticket, std::string_view source);
  // The connection authenticated (no longer counted as waiting).
  void Authenticated(const TicketPtr& ticket);
  // An admitted connection is gone.
  void Released(const TicketPtr& ticket);

  std::uint64_t open() const { return open_.load(std::memory_order_relaxed); }
  std::uint64_t unauthenticated() const;
  std::uint64_t refused_full() const { return refused_full_.load(std::memory_order_relaxed); }
  // Waiting connections chosen to make room (one that authenticates before its worker gets to
  // close it stays open: the connection counts the closes).
  std::uint64_t evicted(Limit why) const {
    return evicted_[static_cast<std::size_t>(why)].load(std::memory_order_relaxed);
  }

 private:
  // Takes `victim` out of the waiting set and counts why. Call with mu_ held.
  void Evict(const TicketPtr& victim, Limit why);
  void Unwait(const TicketPtr& ticket);  // mu_ held
  // Counts `ticket` as waiting from `source`; returns that source's oldest waiting ticket to
  // evict when it is over its limit. mu_ held.
  TicketPtr CountSource(const TicketPtr& ticket, std::string_view source);

  std::uint64_t max_open_ = UINT64_MAX;
  std::uint64_t max_unauthenticated_ = UINT64_MAX;
  std::uint64_t max_per_source_ = UINT64_MAX;
  std::atomic<std::uint64_t> open_{0};
  std::atomic<std::uint64_t> refused_full_{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Limit::kCount)> evicted_{};

  mutable std::mutex mu_;
  std::uint64_t next_seq_ = 1;                  // guarded by mu_
  std::map<std::uint64_t, TicketPtr> waiting_;  // by admission order; guarded by mu_
  // Waiting tickets per known source, by admission order; guarded by mu_.
  std::unordered_map<std::string, std::set<std::uint64_t>> by_source_;
};

}  // namespace tickwire::net
