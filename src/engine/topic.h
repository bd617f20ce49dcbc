#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
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

// Prefix subscriptions (PROTOCOL S4, an extension): "FX.*" stands for every topic, present and
// future, whose name starts with "FX.". A pattern is a prefix of 2-127 topic-name bytes ending
// in '.', followed by '*' (so at most 128 bytes in all, like a topic name). The prefix must end
// at a '.': that is what lets a table find the patterns matching a topic with one lookup per
// '.' in its name (ForEachPatternPrefix) instead of a scan of every pattern.
bool IsPrefixPattern(std::string_view pattern);
// The prefix of a pattern IsPrefixPattern accepted ("FX.*" -> "FX.").
inline std::string_view PatternPrefix(std::string_view pattern) {
  return pattern.substr(0, pattern.size() - 1);
}
// A pattern's prefix if `entry` looks like one (ends in '*' and is not "*"), else empty. For
// lists that hold validated topic names and patterns side by side.
inline std::string_view PrefixOf(std::string_view entry) {
  return entry.size() >= 2 && entry.back() == '*' ? PatternPrefix(entry) : std::string_view{};
}
// Calls fn(prefix) for each prefix of `topic` that a pattern could name, shortest first: the
// name up to and including each '.' ("A.B.C" -> "A.", "A.B."). A topic matches a pattern
// exactly when the pattern's prefix is one of these.
template <typename Fn>
void ForEachPatternPrefix(std::string_view topic, Fn&& fn) {
  for (std::size_t dot = topic.find('.', 1); dot != std::string_view::npos;
       dot = topic.find('.', dot + 1)) {
    fn(topic.substr(0, dot + 1));
  }
}
// True when the sorted list of topic names and patterns `sorted` holds a pattern matching
// `topic` (one binary search per '.' of its name).
bool ListHasPatternFor(std::span<const std::string> sorted, std::string_view topic);

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
