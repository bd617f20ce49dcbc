// Fuzzes the PROXY protocol v1/v2 header parser with properties that must hold for any input:
// a complete header lies within the input and within the version's length limit; every proper
// prefix of a complete header asks for more bytes; the header alone parses to the same result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "protocol/proxy_header.h"

namespace {

using tickwire::protocol::ParseProxyHeader;
using tickwire::protocol::ProxyParseStatus;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  const auto r = ParseProxyHeader(input);
  switch (r.status) {
    case ProxyParseStatus::kNeedMore:
      Check(size < tickwire::protocol::kProxyV2MaxLength);
      break;
    case ProxyParseStatus::kError:
      Check(!r.error.empty());
      break;
    case ProxyParseStatus::kDone: {
      const auto& h = r.header;
      Check(h.length > 0 && h.length <= size);
      Check(h.version == 1 || h.version == 2);
      Check(h.version != 1 || h.length <= tickwire::protocol::kProxyV1MaxLength);
      Check(h.version != 2 || h.length <= tickwire::protocol::kProxyV2MaxLength);
      Check(h.local == h.source.empty());
      const auto alone = ParseProxyHeader(input.first(h.length));
      Check(alone.status == ProxyParseStatus::kDone && alone.header.length == h.length &&
            alone.header.source == h.source && alone.header.source_port == h.source_port);
      // Every proper prefix needs more (sampled: the longest and a few short ones).
      for (std::size_t n : {h.length - 1, std::size_t{0}, std::size_t{1}, h.length / 2}) {
        if (n < h.length)
          Check(ParseProxyHeader(input.first(n)).status == ProxyParseStatus::kNeedMore);
      }
      break;
    }
  }
  return 0;
}
