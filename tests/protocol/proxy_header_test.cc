#include "protocol/proxy_header.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tickwire::protocol {
namespace {

ProxyParseResult Parse(std::string_view bytes) {
  return ParseProxyHeader(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

// A version 2 header: command (0 LOCAL, 1 PROXY), family/transport byte, then the body.
std::string V2(std::uint8_t command, std::uint8_t fam, const std::string& body) {
  std::string h(kProxyV2Signature);
  h.push_back(static_cast<char>(0x20 | command));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xFF));
  return h + body;
}

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

TEST(ProxyHeader, V1Tcp4WithTrailingData) {
  const std::string h = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 7878\r\n";
  const auto r = Parse(h + "\x00\x00\x00\x05\x01rest");
  ASSERT_EQ(r.status, ProxyParseStatus::kDone) << r.error;
  EXPECT_EQ(r.header.version, 1);
  EXPECT_FALSE(r.header.local);
  EXPECT_EQ(r.header.source, "192.0.2.7");
  EXPECT_EQ(r.header.source_port, 56324);
  EXPECT_EQ(r.header.destination, "10.0.0.1");
  EXPECT_EQ(r.header.destination_port, 7878);
  EXPECT_EQ(r.header.length, h.size());
}

TEST(ProxyHeader, V1Tcp6AndUnknown) {
  auto r = Parse("PROXY TCP6 2001:DB8::1 ::1 65535 0\r\n");
  ASSERT_EQ(r.status, ProxyParseStatus::kDone) << r.error;
  EXPECT_EQ(r.header.source, "2001:db8::1");
  EXPECT_EQ(r.header.source_port, 65535);
  r = Parse("PROXY UNKNOWN\r\n");
  ASSERT_EQ(r.status, ProxyParseStatus::kDone);
  EXPECT_TRUE(r.header.local);
  r = Parse("PROXY UNKNOWN ffff::1 ::1 1 2\r\n");
  ASSERT_EQ(r.status, ProxyParseStatus::kDone);
  EXPECT_TRUE(r.header.local);
}

TEST(ProxyHeader, V1EveryPrefixNeedsMore) {
  const std::string h = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 7878\r\n";
  for (std::size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(Parse(h.substr(0, n)).status, ProxyParseStatus::kNeedMore) << n;
  }
}

TEST(ProxyHeader, V1Malformed) {
  for (const std::string& bad : std::vector<std::string>{
           "PROXY TCP4 192.0.2.7 10.0.0.1 56324\r\n",    // missing port
           "PROXY TCP4 192.0.2.7  10.0.0.1 1 2\r\n",     // double space
           "PROXY TCP4 1.2.3 10.0.0.1 1 2\r\n",          // bad address
           "PROXY TCP4 ::1 10.0.0.1 1 2\r\n",            // v6 in TCP4
           "PROXY TCP6 10.0.0.1 ::1 1 2\r\n",            // v4 in TCP6
           "PROXY TCP4 192.0.2.7 10.0.0.1 65536 1\r\n",  // port out of range
           "PROXY TCP4 192.0.2.7 10.0.0.1 01 1\r\n",     // leading zero
           "PROXY TCP4 192.0.2.7 10.0.0.1 -1 1\r\n",     // sign
           "PROXY UDP4 192.0.2.7 10.0.0.1 1 1\r\n",      // protocol
           "PROXY TCP4 192.0.2.7 10.0.0.1 1 1\n",        // LF only, then control byte
           "proxy TCP4 192.0.2.7 10.0.0.1 1 1\r\n",      // case
           "GET / HTTP/1.1\r\n",                         // not PROXY at all
           std::string("\x00\x00\x00\x05\x01", 5),       // a tickwire frame
           std::string("\x16\x03\x01\x02\x00", 5),       // a TLS ClientHello
       }) {
    const auto r = Parse(bad);
    EXPECT_EQ(r.status, ProxyParseStatus::kError) << bad;
    EXPECT_FALSE(r.error.empty());
  }
  // Found by fuzzing: a non-printable byte is an error whether or not the CRLF has arrived.
  const std::string binary = "PROXY UNKNOWN :\xff\xff 1 ::1 65535 78";
  EXPECT_EQ(Parse(binary).status, ProxyParseStatus::kError);
  EXPECT_EQ(Parse(binary + "\r\n").status, ProxyParseStatus::kError);
  EXPECT_EQ(Parse("PROXY TCP4 1.2.3.4\r").status, ProxyParseStatus::kNeedMore);
  EXPECT_EQ(Parse("PROXY TCP4 1.2.3.4\rx").status, ProxyParseStatus::kError);
  EXPECT_EQ(Parse("PROXY TCP4 " + std::string(120, '1')).status, ProxyParseStatus::kError)
      << "a line without CRLF within 107 bytes";
}

TEST(ProxyHeader, V2Tcp4WithTlvs) {
  const std::string addr = Bytes({192, 0, 2, 7, 10, 0, 0, 1, 0xDC, 0x04, 0x1E, 0xC6});
  const std::string tlvs = Bytes({0x01, 0x00, 0x02, 'h', '2', 0xEA, 0x00, 0x03, 1, 2, 3});
  const std::string h = V2(1, 0x11, addr + tlvs);
  const auto r = Parse(h + "after");
  ASSERT_EQ(r.status, ProxyParseStatus::kDone) << r.error;
  EXPECT_EQ(r.header.version, 2);
  EXPECT_EQ(r.header.source, "192.0.2.7");
  EXPECT_EQ(r.header.source_port, 0xDC04);
  EXPECT_EQ(r.header.destination, "10.0.0.1");
  EXPECT_EQ(r.header.destination_port, 7878);
  EXPECT_EQ(r.header.length, h.size());
  for (std::size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(Parse(h.substr(0, n)).status, ProxyParseStatus::kNeedMore) << n;
  }
}

TEST(ProxyHeader, V2Tcp6) {
  std::string addr(36, '\0');
  addr[0] = 0x20;
  addr[1] = 0x01;
  addr[2] = 0x0d;
  addr[3] = static_cast<char>(0xb8);
  addr[15] = 0x09;
  addr[31] = 0x01;
  addr[32] = 0x30;
  addr[33] = 0x39;
  const auto r = Parse(V2(1, 0x21, addr));
  ASSERT_EQ(r.status, ProxyParseStatus::kDone) << r.error;
  EXPECT_EQ(r.header.source, "2001:db8::9");
  EXPECT_EQ(r.header.source_port, 12345);
  EXPECT_EQ(r.header.destination, "::1");
}

TEST(ProxyHeader, V2LocalAndUnspecified) {
  auto r = Parse(V2(0, 0x00, ""));
  ASSERT_EQ(r.status, ProxyParseStatus::kDone) << r.error;
  EXPECT_TRUE(r.header.local);
  EXPECT_EQ(r.header.length, 16u);
  // LOCAL with an address block and TLVs: all skipped.
  r = Parse(V2(0, 0x11, std::string(12, '\x01') + Bytes({0x04, 0x00, 0x01, 0x00})));
  ASSERT_EQ(r.status, ProxyParseStatus::kDone);
  EXPECT_TRUE(r.header.local);
  EXPECT_EQ(r.header.length, 32u);
  r = Parse(V2(1, 0x00, ""));  // PROXY over an unspecified family
  ASSERT_EQ(r.status, ProxyParseStatus::kDone);
  EXPECT_TRUE(r.header.local);
}

TEST(ProxyHeader, V2Malformed) {
  const std::string addr4(12, '\x01');
  std::string bad_version = V2(1, 0x11, addr4);
  bad_version[12] = 0x11;
  const std::string cases[] = {
      bad_version,
      V2(2, 0x11, addr4),                                   // unknown command
      V2(1, 0x11, std::string(11, '\x01')),                 // short TCP4 block
      V2(1, 0x21, std::string(35, '\x01')),                 // short TCP6 block
      V2(1, 0x12, addr4),                                   // DGRAM
      V2(1, 0x41, addr4),                                   // unknown family
      V2(1, 0x11, std::string(kProxyV2MaxLength, '\x01')),  // over the limit
      std::string("\r\n\r\n\0\r\nQUIX\n", 12) + std::string(8, '\0'),
  };
  for (const auto& bad : cases) {
    EXPECT_EQ(Parse(bad).status, ProxyParseStatus::kError);
  }
  // Over the limit is refused from the fixed part alone, before the body arrives.
  EXPECT_EQ(Parse(V2(1, 0x11, std::string(kProxyV2MaxLength, '\x01')).substr(0, 16)).status,
            ProxyParseStatus::kError);
}

}  // namespace
}  // namespace tickwire::protocol
