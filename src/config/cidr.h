#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tickwire::config {

// An IPv4 or IPv6 network, "10.0.0.0/8" or "2001:db8::/32"; a bare address is a /32 (/128).
struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network address (4 bytes used for IPv4)
  unsigned prefix = 0;
  std::string text;

  static std::optional<Cidr> Parse(std::string_view text);
  // True when the address (4 bytes for IPv4, 16 for IPv6) is inside. An IPv4-mapped IPv6
  // address (::ffff:a.b.c.d) counts as its IPv4 address.
  bool Contains(bool addr_v6, const std::array<std::uint8_t, 16>& addr) const;
};

}  // namespace tickwire::config
