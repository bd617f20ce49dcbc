#pragma once

#include <array>
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

// A 128-bit SipHash key.
using HashKey = std::array<std::uint64_t, 2>;

// SipHash-1-3 (Aumasson and Bernstein's SipHash with one compression and three finalization
// rounds, the variant Rust and Python use for their hash tables) of `bytes` under `key`.
std::uint64_t SipHash13(const HashKey& key, std::string_view bytes);

// The hash of a topic name for every topic hash table (shards, fan-out tables, connections) and
// for the choice of a topic's owner shard: SipHash-1-3 under a key drawn at random once per
// process. Clients choose topic names, so an unkeyed hash would let them pick names that all
// land in one bucket and turn every lookup into a walk of that bucket; without the key they
// cannot tell which names collide. The value differs from one process start to the next: never
// store it, send it, or expect another process to compute the same.
std::uint64_t TopicHash(std::string_view topic);
// The process's key (for tests and benchmarks).
const HashKey& TopicHashKey();

// The shard (worker index) that owns a topic in this process.
inline unsigned ShardOf(std::string_view topic, unsigned shards) {
  return static_cast<unsigned>(TopicHash(topic) % shards);
}

// Bit set of worker indices (WORKERS is at most 64).
using WorkerMask = std::uint64_t;
inline constexpr WorkerMask WorkerBit(unsigned worker) { return WorkerMask{1} << worker; }

}  // namespace tickwire::engine
