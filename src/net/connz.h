#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/topic.h"

namespace tickwire::net {

// The numbers of a connection that the listing shows and sorts on.
struct ConnectionCounters {
  std::uint64_t id = 0;
  std::int64_t age_ms = 0;
  std::uint64_t subscriptions = 0;
  std::uint64_t pending_bytes = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

// One connection as the connection listing shows it. Copied out on the connection's own
// worker, so the listing never touches a connection from another thread.
struct ConnectionInfo : ConnectionCounters {
  struct Sub {
    std::uint64_t id = 0;
    engine::Mode mode = engine::Mode::kTick;
    std::size_t topic_count = 0;      // its entries ("*" counts as one)
    std::vector<std::string> topics;  // the first of them ("*" first), at most ConnzQuery caps
  };

  unsigned worker = 0;
  std::string remote;
  std::string user;         // empty before AUTH
  std::string client_name;  // as the client sent it in AUTH (untrusted text, at most 128 bytes)
  std::string state;        // "awaiting_auth", "ready", "closing"
  std::vector<Sub> subs;    // filled only when the listing asks for subscription details
};

// What /connz was asked for.
struct ConnzQuery {
  enum class Sort { kId, kAge, kBytesIn, kBytesOut, kPending, kSubscriptions };
  Sort sort = Sort::kId;
  std::size_t offset = 0;
  std::size_t limit = 100;
  bool subs = false;            // include each connection's subscriptions
  std::size_t sub_topics = 16;  // topic names shown per subscription (with subs)
};

inline constexpr std::size_t kConnzMaxLimit = 10'000;
// With subs=1 a page holds at most this many connections, each showing at most
// kConnzTopicsPerConnection topic names in all (a subscription's topic_count is always given),
// so one request copies a bounded amount whatever the connections hold.
inline constexpr std::size_t kConnzMaxLimitWithSubs = 100;
inline constexpr std::size_t kConnzMaxSubTopics = 256;
inline constexpr std::size_t kConnzTopicsPerConnection = 256;

// Parses /connz parameters: sort=id|age|bytes_in|bytes_out|pending|subs (id ascending, the
// others largest first), limit (1..10000, default 100; 1..100 with subs=1), offset, subs=1,
// sub_topics (0..256, default 16). Returns an error line for a bad parameter.
std::string ParseConnzQuery(const std::map<std::string, std::string>& params, ConnzQuery& out);

// A connection's place in the listing: all the first step of a listing copies per connection.
struct ConnectionKey {
  std::uint64_t id = 0;
  unsigned worker = 0;
  std::uint64_t key = 0;  // what `sort` orders by
};
std::uint64_t SortKey(const ConnectionCounters& c, ConnzQuery::Sort sort);

// Sorts every connection's key and returns those of the requested page, in order.
std::vector<ConnectionKey> SelectPage(std::vector<ConnectionKey> all, const ConnzQuery& query);

// Renders one page (already selected and in order) as one JSON object:
// {"now": ..., "total": N, "offset": .., "limit": .., "sort": "..", "connections": [...]}.
std::string RenderConnz(std::size_t total, const std::vector<ConnectionInfo>& page,
                        const ConnzQuery& query);

}  // namespace tickwire::net
