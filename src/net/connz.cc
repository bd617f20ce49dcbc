#include "net/connz.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>

#include "common/wall_clock.h"
#include "observability/log.h"

namespace tickwire::net {
namespace {

struct SortName {
  const char* name;
  ConnzQuery::Sort sort;
};
constexpr SortName kSorts[] = {
    {"id", ConnzQuery::Sort::kId},
    {"age", ConnzQuery::Sort::kAge},
    {"bytes_in", ConnzQuery::Sort::kBytesIn},
    {"bytes_out", ConnzQuery::Sort::kBytesOut},
    {"pending", ConnzQuery::Sort::kPending},
    {"subs", ConnzQuery::Sort::kSubscriptions},
};

std::string_view SortLabel(ConnzQuery::Sort s) {
  for (const auto& n : kSorts) {
    if (n.sort == s) return n.name;
  }
  return "id";
}

bool ParseSize(const std::string& text, std::size_t& out) {
  std::size_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return false;
  out = v;
  return true;
}

void Num(std::string& out, std::string_view key, std::uint64_t v) {
  out += ",\"";
  out += key;
  out += "\":";
  out += std::to_string(v);
}

void Str(std::string& out, std::string_view key, std::string_view v) {
  out += ",\"";
  out += key;
  out += "\":";
  obs::AppendJsonString(out, v);
}

void AppendNowUtc(std::string& out) {
  const auto secs = static_cast<std::time_t>(common::WallClockNs() / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  out.append(buf, n);
}

}  // namespace

std::string ParseConnzQuery(const std::map<std::string, std::string>& params, ConnzQuery& out) {
  for (const auto& [key, value] : params) {
    if (key == "sort") {
      const auto* it = std::find_if(std::begin(kSorts), std::end(kSorts),
                                    [&](const SortName& n) { return value == n.name; });
      if (it == std::end(kSorts)) {
        return "sort must be one of id, age, bytes_in, bytes_out, pending, subs";
      }
      out.sort = it->sort;
    } else if (key == "limit") {
      if (!ParseSize(value, out.limit) || out.limit == 0 || out.limit > kConnzMaxLimit) {
        return "limit must be a whole number from 1 to " + std::to_string(kConnzMaxLimit);
      }
    } else if (key == "offset") {
      if (!ParseSize(value, out.offset)) return "offset must be a whole number";
    } else if (key == "subs") {
      if (value == "1" || value == "true") {
        out.subs = true;
      } else if (value == "0" || value == "false") {
        out.subs = false;
      } else {
        return "subs must be 1 or 0";
      }
    } else if (key == "sub_topics") {
      if (!ParseSize(value, out.sub_topics) || out.sub_topics > kConnzMaxSubTopics) {
        return "sub_topics must be a whole number from 0 to " + std::to_string(kConnzMaxSubTopics);
      }
    } else {
      return "unknown parameter (sort, limit, offset, subs, sub_topics)";
    }
  }
  if (out.subs && out.limit > kConnzMaxLimitWithSubs) {
    // An explicit limit over the cap is refused; the default already fits.
    return "with subs=1, limit must be from 1 to " + std::to_string(kConnzMaxLimitWithSubs);
  }
  return {};
}

std::uint64_t SortKey(const ConnectionCounters& c, ConnzQuery::Sort s) {
  switch (s) {
    case ConnzQuery::Sort::kId:
      return c.id;
    case ConnzQuery::Sort::kAge:
      return static_cast<std::uint64_t>(std::max<std::int64_t>(c.age_ms, 0));
    case ConnzQuery::Sort::kBytesIn:
      return c.bytes_in;
    case ConnzQuery::Sort::kBytesOut:
      return c.bytes_out;
    case ConnzQuery::Sort::kPending:
      return c.pending_bytes;
    case ConnzQuery::Sort::kSubscriptions:
      return c.subscriptions;
  }
  return c.id;
}

std::vector<ConnectionKey> SelectPage(std::vector<ConnectionKey> all, const ConnzQuery& query) {
  const bool ascending = query.sort == ConnzQuery::Sort::kId;
  const auto before = [ascending](const ConnectionKey& a, const ConnectionKey& b) {
    if (a.key != b.key) return ascending ? a.key < b.key : a.key > b.key;
    return a.id < b.id;
  };
  const std::size_t begin = std::min(query.offset, all.size());
  const std::size_t end = std::min(all.size(), begin + query.limit);
  // Only the first `end` need to be in order.
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(end), all.end(), before);
  return {all.begin() + static_cast<std::ptrdiff_t>(begin),
          all.begin() + static_cast<std::ptrdiff_t>(end)};
}

std::string RenderConnz(std::size_t total, const std::vector<ConnectionInfo>& page,
                        const ConnzQuery& query) {
  std::string out = "{\"now\":\"";
  AppendNowUtc(out);
  out += "\"";
  Num(out, "total", total);
  Num(out, "offset", query.offset);
  Num(out, "limit", query.limit);
  Str(out, "sort", SortLabel(query.sort));
  out += ",\"connections\":[";
  for (std::size_t i = 0; i < page.size(); ++i) {
    const ConnectionInfo& c = page[i];
    if (i != 0) out.push_back(',');
    out += "{\"id\":";
    out += std::to_string(c.id);
    Num(out, "worker", c.worker);
    Str(out, "remote", c.remote);
    Str(out, "user", c.user);
    Str(out, "client_name", c.client_name);
    Str(out, "state", c.state);
    Num(out, "age_ms", static_cast<std::uint64_t>(std::max<std::int64_t>(c.age_ms, 0)));
    Num(out, "subscriptions", c.subscriptions);
    Num(out, "pending_bytes", c.pending_bytes);
    Num(out, "bytes_in", c.bytes_in);
    Num(out, "bytes_out", c.bytes_out);
    if (query.subs) {
      out += ",\"subs\":[";
      for (std::size_t s = 0; s < c.subs.size(); ++s) {
        const auto& sub = c.subs[s];
        if (s != 0) out.push_back(',');
        out += "{\"id\":";
        out += std::to_string(sub.id);
        Str(out, "mode", engine::ModeName(sub.mode));
        Num(out, "topic_count", sub.topic_count);
        out += ",\"topics\":[";
        for (std::size_t t = 0; t < sub.topics.size(); ++t) {
          if (t != 0) out.push_back(',');
          obs::AppendJsonString(out, sub.topics[t]);
        }
        out += "]}";
      }
      out += "]";
    }
    out += "}";
  }
  out += "]}\n";
  return out;
}

}  // namespace tickwire::net
