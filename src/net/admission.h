#pragma once

#include <atomic>
#include <cstdint>

namespace tickwire::net {

// Server-wide connection budget: MAX_CONNECTIONS open connections, of which at most
// MAX_UNAUTH_CONNECTIONS have not authenticated yet. Only the listener admits (one thread), so
// check-then-increment needs no lock; workers release from their own threads.
class Admission {
 public:
  void Configure(std::uint64_t max_open, std::uint64_t max_unauthenticated) {
    max_open_ = max_open;
    max_unauthenticated_ = max_unauthenticated;
  }

  // Listener thread: admits a new connection (returns -1), or says which budget is full: 0 for
  // MAX_CONNECTIONS, 1 for MAX_UNAUTH_CONNECTIONS (the caller closes it at once).
  int TryAdmit() {
    if (open_.load(std::memory_order_relaxed) >= max_open_) {
      rejected_full_.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    if (unauthenticated_.load(std::memory_order_relaxed) >= max_unauthenticated_) {
      rejected_unauthenticated_.fetch_add(1, std::memory_order_relaxed);
      return 1;
    }
    open_.fetch_add(1, std::memory_order_relaxed);
    unauthenticated_.fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  // A connection authenticated (once per connection).
  void Authenticated() { unauthenticated_.fetch_sub(1, std::memory_order_relaxed); }
  // An admitted connection is gone.
  void Released(bool authenticated) {
    if (!authenticated) unauthenticated_.fetch_sub(1, std::memory_order_relaxed);
    open_.fetch_sub(1, std::memory_order_relaxed);
  }

  std::uint64_t open() const { return open_.load(std::memory_order_relaxed); }
  std::uint64_t unauthenticated() const { return unauthenticated_.load(std::memory_order_relaxed); }
  std::uint64_t rejected_full() const { return rejected_full_.load(std::memory_order_relaxed); }
  std::uint64_t rejected_unauthenticated() const {
    return rejected_unauthenticated_.load(std::memory_order_relaxed);
  }

 private:
  std::uint64_t max_open_ = UINT64_MAX;
  std::uint64_t max_unauthenticated_ = UINT64_MAX;
  std::atomic<std::uint64_t> open_{0};
  std::atomic<std::uint64_t> unauthenticated_{0};
  std::atomic<std::uint64_t> rejected_full_{0};
  std::atomic<std::uint64_t> rejected_unauthenticated_{0};
};

}  // namespace tickwire::net
