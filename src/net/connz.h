#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/topic.h"

namespace tickwire::net {

// One connection as the connection listing shows it. Copied out on the connection's own
// worker, so the listing never touches a connection from another thread.
struct ConnectionInfo {
  struct Sub {
    std::uint64_t id = 0;
    engine::Mode mode = engine::Mode::kTick;
    bool wildcard = false;
    std::vector<std::string> topics;
  };

  std::uint64_t id = 0;
  unsigned worker = 0;
  std::string remote;
  std::string user;         // empty before AUTH
  std::string client_name;  // as the client sent it in AUTH (untrusted text)
  std::string state;        // "awaiting_auth", "ready", "closing"
  std::int64_t age_ms = 0;
  std::uint64_t subscriptions = 0;
  std::uint64_t pending_bytes = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::vector<Sub> subs;  // filled only when the listing asks for subscription details
};

// What /connz was asked for.
struct ConnzQuery {
  enum class Sort { kId, kAge, kBytesIn, kBytesOut, kPending, kSubscriptions };
  Sort sort = Sort::kId;
  std::size_t offset = 0;
  std::size_t limit = 100;
  bool subs = false;  // include each connection's subscriptions and topics
};

inline constexpr std::size_t kConnzMaxLimit = 10'000;

// Parses /connz parameters: sort=id|age|bytes_in|bytes_out|pending|subs (id ascending, the
// others largest first), limit (1..10000, default 100), offset, subs=1. Returns an error line
// for a bad parameter.
std::string ParseConnzQuery(const std::map<std::string, std::string>& params, ConnzQuery& out);

// Sorts, pages and renders the listing as one JSON object:
// {"now": ..., "total": N, "offset": .., "limit": .., "sort": "..", "connections": [...]}.
std::string RenderConnz(std::vector<ConnectionInfo> all, const ConnzQuery& query);

}  // namespace tickwire::net
