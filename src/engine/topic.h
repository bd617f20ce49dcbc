#pragma once

#include <cstdint>
#include <string_view>

namespace tickwire::engine {

inline constexpr std::size_t kMaxTopicLength = 128;
inline constexpr std::string_view kWildcard = "*";

// Delivery modes, numbered as the wire's Mode enum.
enum class Mode : std::uint8_t { kSecond = 1, kMinute = 2, kTick = 3 };
inline constexpr int kModeSlots = 4;  // index by the enum value; slot 0 unused

// Lower-case name of a mode ("second", "minute", "tick"), as logs and metric labels use it.
inline constexpr std::string_view ModeName(Mode m) {
  switch (m) {
    case Mode::kSecond:
      return "second";
    case Mode::kMinute:
      return "minute";
    case Mode::kTick:
      return "tick";
  }
  return "unknown";
}

// A topic name is 1-128 bytes of [A-Za-z0-9._:-]. "*" is not a topic name (it is only a
// subscription wildcard).
bool IsValidTopic(std::string_view topic);

// Stable 64-bit FNV-1a hash of a topic name (same value on every process and platform).
std::uint64_t TopicHash(std::string_view topic);

// The shard (worker index) that owns a topic.
inline unsigned ShardOf(std::string_view topic, unsigned shards) {
  return static_cast<unsigned>(TopicHash(topic) % shards);
}

// Bit set of worker indices (WORKERS is at most 64).
using WorkerMask = std::uint64_t;
inline constexpr WorkerMask WorkerBit(unsigned worker) { return WorkerMask{1} << worker; }

}  // namespace tickwire::engine
