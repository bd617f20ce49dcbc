#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace tickwire::testing {

// Polls `predicate` every `poll` until it returns true or `timeout` has passed. Returns the last
// result, so `EXPECT_TRUE(WaitUntil(...))` both waits and checks. Tests wait with this, never
// with a bare sleep: the wait ends as soon as the condition holds.
inline bool WaitUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(poll);
  }
}

// Milliseconds left until `deadline` (never negative), for passing to calls that take a timeout.
inline std::chrono::milliseconds Remaining(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

}  // namespace tickwire::testing
