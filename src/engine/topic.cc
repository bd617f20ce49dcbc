#include "engine/topic.h"

#include <algorithm>

#include <cstring>
#include <random>

namespace tickwire::engine {
namespace {

HashKey RandomKey() {
  // std::random_device reads the kernel's random source (getrandom) on Linux.
  std::random_device rd;
  auto word = [&rd] { return (std::uint64_t{rd()} << 32) | rd(); };
  return HashKey{word(), word()};
}

// Drawn before main() runs; nothing hashes a topic during static initialization.
const HashKey kProcessKey = RandomKey();

constexpr std::uint64_t Rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
};

std::uint64_t Load64Le(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // x86-64 and aarch64 Linux: little-endian
  return v;
}

}  // namespace

bool IsValidTopic(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxTopicLength) return false;
  for (const char c : topic) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsPrefixPattern(std::string_view pattern) {
  if (pattern.size() < 3 || pattern.size() > kMaxTopicLength || pattern.back() != '*') {
    return false;
  }
  const std::string_view prefix = PatternPrefix(pattern);
  return prefix.back() == '.' && IsValidTopic(prefix);
}

bool ListHasPatternFor(std::span<const std::string> sorted, std::string_view topic) {
  bool found = false;
  std::string key;
  ForEachPatternPrefix(topic, [&](std::string_view prefix) {
    if (found) return;
    key.assign(prefix);
    key += '*';
    found = std::binary_search(sorted.begin(), sorted.end(), key);
  });
  return found;
}

std::uint64_t SipHash13(const HashKey& key, std::string_view bytes) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Load64Le assumes little-endian");
  SipState s{key[0] ^ 0x736f6d6570736575ULL, key[1] ^ 0x646f72616e646f6dULL,
             key[0] ^ 0x6c7967656e657261ULL, key[1] ^ 0x7465646279746573ULL};
  const char* p = bytes.data();
  const std::size_t n = bytes.size();
  const char* const end = p + (n & ~std::size_t{7});
  for (; p != end; p += 8) {
    const std::uint64_t m = Load64Le(p);
    s.v3 ^= m;
    s.Round();
    s.v0 ^= m;
  }
  // The last block: the remaining 0-7 bytes, the length's low byte on top.
  std::uint64_t b = static_cast<std::uint64_t>(n) << 56;
  for (std::size_t i = 0; i < (n & 7); ++i) {
    b |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  s.v3 ^= b;
  s.Round();
  s.v0 ^= b;
  s.v2 ^= 0xff;
  s.Round();
  s.Round();
  s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

std::uint64_t TopicHash(std::string_view topic) { return SipHash13(kProcessKey, topic); }

const HashKey& TopicHashKey() { return kProcessKey; }

}  // namespace tickwire::engine
