#include "config/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tickwire::config {

std::optional<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  c.text = std::string(text);
  const auto slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  if (addr.find('\0') != std::string::npos) return std::nullopt;  // inet_pton would stop there
  if (addr.find(':') != std::string::npos) {
    c.v6 = true;
    if (inet_pton(AF_INET6, addr.c_str(), c.bytes.data()) != 1) return std::nullopt;
  } else if (inet_pton(AF_INET, addr.c_str(), c.bytes.data()) != 1) {
    return std::nullopt;
  }
  const unsigned max = c.v6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || c.prefix > max) {
      return std::nullopt;
    }
  }
  // Normalise: clear host bits.
  for (unsigned bit = c.prefix; bit < max; ++bit) {
    c.bytes[bit / 8] = static_cast<std::uint8_t>(c.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return c;
}

bool Cidr::Contains(bool addr_v6, const std::array<std::uint8_t, 16>& addr) const {
  std::array<std::uint8_t, 16> a = addr;
  bool is_v6 = addr_v6;
  if (is_v6 && !v6) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.data(), kMapped, 12) != 0) return false;
    std::memmove(a.data(), a.data() + 12, 4);
    is_v6 = false;
  }
  if (is_v6 != v6) return false;
  const unsigned full = prefix / 8;
  if (std::memcmp(a.data(), bytes.data(), full) != 0) return false;
  if (prefix % 8 == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFFu << (8 - prefix % 8));
  return (a[full] & mask) == bytes[full];
}

}  // namespace tickwire::config
