#pragma once

#include <chrono>
#include <cstdint>

namespace tickwire::common {

// The wall clock in nanoseconds since the Unix epoch (UTC): the time base of tick `ts_ns`,
// `accepted_ns`, the bar clock's marks, `since_ms` and heartbeat `ts_ms`. It can step (NTP,
// an operator); durations and deadlines use std::chrono::steady_clock instead.
inline std::int64_t WallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The same in milliseconds (truncated).
inline std::int64_t WallClockMs() { return WallClockNs() / 1'000'000; }

}  // namespace tickwire::common
