#include "protocol/proxy_header.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <vector>

namespace tickwire::protocol {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";

ProxyParseResult Error(std::string why) {
  ProxyParseResult r;
  r.status = ProxyParseStatus::kError;
  r.error = std::move(why);
  return r;
}

ProxyParseResult NeedMore() { return ProxyParseResult{}; }

// True when `data` is a prefix of `full` (or `full` a prefix of `data`).
bool PrefixMatch(std::span<const std::uint8_t> data, std::string_view full) {
  const std::size_t n = std::min(data.size(), full.size());
  return std::memcmp(data.data(), full.data(), n) == 0;
}

std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(' ', start);
    out.push_back(
        s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

bool ParsePort(std::string_view s, std::uint16_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// Canonical text of an address literal of `family`, or empty when it is not one.
std::string CanonicalAddress(int family, std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return {};
  char in[INET6_ADDRSTRLEN] = {};
  std::memcpy(in, text.data(), text.size());
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(family, in, bytes.data()) != 1) return {};
  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), out, sizeof(out));
  return out;
}

std::string AddressText(int family, const std::uint8_t* bytes) {
  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes, out, sizeof(out));
  return out;
}

ProxyParseResult ParseV1(std::span<const std::uint8_t> data) {
  const std::size_t scan = std::min(data.size(), kProxyV1MaxLength);
  const std::string_view text(reinterpret_cast<const char*>(data.data()), scan);
  const auto crlf = text.find("\r\n");
  // The line is printable US-ASCII up to its CRLF; a lone CR may only be the last byte seen.
  const std::size_t end = crlf == std::string_view::npos ? scan : crlf;
  for (std::size_t i = 0; i < end; ++i) {
    const char c = text[i];
    if ((c < 0x20 || c > 0x7e) && !(c == '\r' && i + 1 == scan)) {
      return Error("PROXY v1 line has a byte that is not printable ASCII");
    }
  }
  if (crlf == std::string_view::npos) {
    if (scan >= kProxyV1MaxLength) return Error("PROXY v1 line longer than 107 bytes");
    return NeedMore();
  }
  const std::string_view line = text.substr(kV1Prefix.size(), crlf - kV1Prefix.size());
  ProxyParseResult r;
  r.status = ProxyParseStatus::kDone;
  r.header.version = 1;
  r.header.length = crlf + 2;
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {
    r.header.local = true;  // the rest of the line is to be ignored
    return r;
  }
  const auto parts = SplitSpaces(line);
  if (parts.size() != 5) return Error("PROXY v1: expected 'TCP4|TCP6 src dst sport dport'");
  int family = 0;
  if (parts[0] == "TCP4") {
    family = AF_INET;
  } else if (parts[0] == "TCP6") {
    family = AF_INET6;
  } else {
    return Error("PROXY v1: unknown protocol '" + std::string(parts[0].substr(0, 16)) + "'");
  }
  r.header.source = CanonicalAddress(family, parts[1]);
  r.header.destination = CanonicalAddress(family, parts[2]);
  if (r.header.source.empty() || r.header.destination.empty()) {
    return Error("PROXY v1: address is not a valid " + std::string(parts[0]) + " address");
  }
  if (!ParsePort(parts[3], r.header.source_port) ||
      !ParsePort(parts[4], r.header.destination_port)) {
    return Error("PROXY v1: port is not a number in [0, 65535]");
  }
  return r;
}

ProxyParseResult ParseV2(std::span<const std::uint8_t> data) {
  if (data.size() < kProxyV2HeaderSize) return NeedMore();
  const std::uint8_t ver_cmd = data[12];
  const std::uint8_t fam = data[13];
  const std::size_t len = (std::size_t{data[14]} << 8) | data[15];
  if ((ver_cmd >> 4) != 2) return Error("PROXY v2: version nibble is not 2");
  const unsigned command = ver_cmd & 0x0F;
  if (command > 1) return Error("PROXY v2: unknown command " + std::to_string(command));
  if (kProxyV2HeaderSize + len > kProxyV2MaxLength) {
    return Error("PROXY v2: header of " + std::to_string(kProxyV2HeaderSize + len) +
                 " bytes is over the " + std::to_string(kProxyV2MaxLength) + " byte limit");
  }
  const unsigned family = fam >> 4;
  const unsigned transport = fam & 0x0F;
  if (family > 3 || transport > 2) return Error("PROXY v2: unknown address family or protocol");
  if (data.size() < kProxyV2HeaderSize + len) return NeedMore();

  ProxyParseResult r;
  r.status = ProxyParseStatus::kDone;
  r.header.version = 2;
  r.header.length = kProxyV2HeaderSize + len;
  // LOCAL: the load balancer's own connection (health checks). UNSPEC or UNIX: no address we
  // can use. In all three the socket's own address stands; TLVs after the addresses are skipped.
  if (command == 0 || family == 0 || family == 3) {
    r.header.local = true;
    return r;
  }
  if (transport != 1) return Error("PROXY v2: only STREAM (TCP) connections are proxied here");
  const std::uint8_t* addr = data.data() + kProxyV2HeaderSize;
  if (family == 1) {
    if (len < 12) return Error("PROXY v2: TCP4 address block shorter than 12 bytes");
    r.header.source = AddressText(AF_INET, addr);
    r.header.destination = AddressText(AF_INET, addr + 4);
    r.header.source_port = static_cast<std::uint16_t>((addr[8] << 8) | addr[9]);
    r.header.destination_port = static_cast<std::uint16_t>((addr[10] << 8) | addr[11]);
  } else {
    if (len < 36) return Error("PROXY v2: TCP6 address block shorter than 36 bytes");
    r.header.source = AddressText(AF_INET6, addr);
    r.header.destination = AddressText(AF_INET6, addr + 16);
    r.header.source_port = static_cast<std::uint16_t>((addr[32] << 8) | addr[33]);
    r.header.destination_port = static_cast<std::uint16_t>((addr[34] << 8) | addr[35]);
  }
  return r;
}

}  // namespace

ProxyParseResult ParseProxyHeader(std::span<const std::uint8_t> data) {
  if (data.empty()) return NeedMore();
  if (data[0] == '\r') {
    if (!PrefixMatch(data, kProxyV2Signature)) return Error("not a PROXY v2 signature");
    if (data.size() < kProxyV2Signature.size()) return NeedMore();
    return ParseV2(data);
  }
  if (!PrefixMatch(data, kV1Prefix))
    return Error("no PROXY header (a v1 or v2 header is required)");
  if (data.size() < kV1Prefix.size()) return NeedMore();
  return ParseV1(data);
}

}  // namespace tickwire::protocol
