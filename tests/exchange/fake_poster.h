#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "exchange/exchange.h"

namespace tickwire::exchange::testing {

// The wall clock the exchanges under test read (ns); the FakePoster moves it forward.
inline std::int64_t g_now_ns = 0;
inline std::int64_t FakeWallNs() { return g_now_ns; }

// A Poster that keeps what Asio promises and nothing more: operations one source posts to one
// destination run there in order; across sources, and relative to time, anything goes. Each
// post waits a random delay (seeded), and the next operation to run is picked at random among
// the queues whose head is due. Single-threaded: the test's thread plays every worker.
class FakePoster final : public Poster {
 public:
  static constexpr unsigned kOutside = ~0U;  // posts made by the test itself (the bus, a timer)

  FakePoster(unsigned workers, std::uint64_t seed, std::int64_t max_delay_ns)
      : workers_(workers), rng_(seed), max_delay_ns_(max_delay_ns) {}

  void Attach(std::vector<Exchange*> exchanges) { exchanges_ = std::move(exchanges); }
  unsigned workers() const override { return workers_; }

  void Post(unsigned to, Op op) override {
    auto& q = queues_[{current_, to}];
    std::uniform_int_distribution<std::int64_t> delay(0, max_delay_ns_);
    std::int64_t due = g_now_ns + delay(rng_);
    if (!q.empty()) due = std::max(due, q.back().first);  // FIFO per (source, destination)
    q.emplace_back(due, std::move(op));
    ++posted_;
  }

  // Runs `fn` as worker `w` (what it posts comes from `w`).
  void RunAs(unsigned w, const std::function<void()>& fn) {
    const unsigned before = current_;
    current_ = w;
    fn();
    current_ = before;
  }

  // Runs one due operation (moving the clock to the earliest due one when none is); false when
  // nothing is queued.
  bool RunOne() {
    std::vector<std::pair<unsigned, unsigned>> due;
    std::int64_t earliest = INT64_MAX;
    for (auto& [key, q] : queues_) {
      if (q.empty()) continue;
      earliest = std::min(earliest, q.front().first);
      if (q.front().first <= g_now_ns) due.push_back(key);
    }
    if (earliest == INT64_MAX) return false;
    if (due.empty()) {
      g_now_ns = earliest;
      return RunOne();
    }
    const auto key = due[std::uniform_int_distribution<std::size_t>(0, due.size() - 1)(rng_)];
    auto& q = queues_[key];
    Op op = std::move(q.front().second);
    q.pop_front();
    RunAs(key.second, [&] { exchanges_[key.second]->Handle(std::move(op)); });
    return true;
  }

  // Runs everything queued, and whatever that queues, within `limit` operations.
  std::size_t Drain(std::size_t limit = 1'000'000) {
    std::size_t n = 0;
    while (n < limit && RunOne()) ++n;
    return n;
  }

  std::mt19937_64& rng() { return rng_; }
  std::uint64_t posted() const { return posted_; }

 private:
  unsigned workers_;
  std::mt19937_64 rng_;
  std::int64_t max_delay_ns_;
  std::vector<Exchange*> exchanges_;
  std::map<std::pair<unsigned, unsigned>, std::deque<std::pair<std::int64_t, Op>>> queues_;
  unsigned current_ = kOutside;
  std::uint64_t posted_ = 0;
};

}  // namespace tickwire::exchange::testing
