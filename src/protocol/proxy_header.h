#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tickwire::protocol {

// The PROXY protocol header (HAProxy's "PROXY protocol" spec, versions 1 and 2) that an L4
// load balancer puts in front of a connection to pass on the client's real address. A pure
// parser over bytes, no sockets: the connection peeks at the socket, asks ParseProxyHeader, and
// consumes exactly `length` bytes once the header is complete.

// Version 2 starts with these 12 bytes; version 1 with "PROXY ".
inline constexpr std::string_view kProxyV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
inline constexpr std::size_t kProxyV1MaxLength = 107;  // including CRLF, per the spec
inline constexpr std::size_t kProxyV2HeaderSize = 16;  // before addresses and TLVs
// Longest version 2 header accepted (addresses + TLVs); longer ones are refused rather than
// buffered. Load balancers send far less (TLVs carry ids of a few dozen bytes).
inline constexpr std::size_t kProxyV2MaxLength = 4096;

enum class ProxyParseStatus : std::uint8_t {
  kNeedMore,  // a valid beginning; every byte so far belongs to the header
  kDone,      // `header` is complete; it used `header.length` bytes
  kError,     // not a valid header (`error` says why); close the connection
};

struct ProxyHeader {
  int version = 0;     // 1 or 2
  bool local = false;  // LOCAL (v2) / UNKNOWN (v1) / unspecified family: keep the socket's address
  std::string source;  // client address as text ("192.0.2.1", "2001:db8::1"), empty if local
  std::uint16_t source_port = 0;
  std::string destination;
  std::uint16_t destination_port = 0;
  std::size_t length = 0;  // bytes the header occupies
};

struct ProxyParseResult {
  ProxyParseStatus status = ProxyParseStatus::kNeedMore;
  ProxyHeader header;
  std::string error;
};

// Parses the header at the start of `data` (which may also hold bytes that follow it).
ProxyParseResult ParseProxyHeader(std::span<const std::uint8_t> data);

}  // namespace tickwire::protocol
