#include "tick_input.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/core.h>
#include <boost/json.hpp>

#include "common.h"
#include "engine/topic.h"
#include "record_format.h"

namespace tickwire::cli {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A CSV field: trimmed, and without the double quotes around it ("" inside stands for one ").
std::string CsvField(std::string_view s) {
  s = Trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    std::string out;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
      out += s[i];
      if (s[i] == '"' && i + 2 < s.size() && s[i + 1] == '"') ++i;
    }
    return out;
  }
  return std::string(s);
}

// Splits a CSV line at commas outside double quotes.
std::vector<std::string> SplitCsv(std::string_view line) {
  std::vector<std::string> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || (line[i] == ',' && !quoted)) {
      out.push_back(CsvField(line.substr(start, i - start)));
      start = i + 1;
    } else if (line[i] == '"') {
      quoted = !quoted;
    }
  }
  return out;
}

std::optional<double> ParseNumber(std::string_view s) {
  s = Trim(s);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A timestamp column or key: its unit when its name says it, `fallback` for the generic names;
// nullopt when the name is not a timestamp's.
std::optional<TsUnit> TimestampName(std::string_view name, TsUnit fallback) {
  if (name == "ts_ns") return TsUnit::kNs;
  if (name == "ts_ms") return TsUnit::kMs;
  if (name == "ts" || name == "time" || name == "timestamp") return fallback;
  return std::nullopt;
}

bool IsBlankOrComment(std::string_view line) {
  line = Trim(line);
  return line.empty() || line.front() == '#';
}

// Builds the tick from its parsed parts.
std::optional<client::Tick> MakeTick(std::string_view topic, std::string_view price,
                                     std::string_view size, std::string_view ts, TsUnit unit,
                                     std::string& why) {
  const auto p = ParseNumber(price);
  if (!p) {
    why = fmt::format("bad price '{}'", price);
    return std::nullopt;
  }
  const auto s = ParseNumber(size);
  if (!s) {
    why = fmt::format("bad size '{}'", size);
    return std::nullopt;
  }
  const auto ts_ns = ParseTimestampNs(ts, unit);
  if (!ts_ns) {
    why = fmt::format(
        "bad timestamp '{}' (use whole {} since the epoch, or ISO 8601 like "
        "2024-05-01T12:00:00.5Z)",
        ts, unit == TsUnit::kNs ? "ns" : "ms");
    return std::nullopt;
  }
  client::Tick t;
  t.topic = std::string(topic);
  t.price = *p;
  t.size = *s;
  t.ts_ns = *ts_ns;  // 0: the server stamps its receive time
  return t;
}

// The text of a JSON scalar (for MakeTick): strings as they are, numbers printed exactly.
// nullopt for anything else (objects, arrays, booleans, null).
std::optional<std::string> JsonScalar(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d)) return std::nullopt;
    // Doubles as text that reads back the same: fixed notation, shortest round trip. A
    // timestamp that was written as 1.7145648e12 still parses as a whole number.
    char buf[512];
    const auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
    if (r.ec != std::errc()) return std::nullopt;
    return std::string(buf, r.ptr);
  }
  return std::nullopt;
}

}  // namespace

std::optional<InputFormat> ParseInputFormat(std::string_view text) {
  if (text == "text") return InputFormat::kText;
  if (text == "csv") return InputFormat::kCsv;
  if (text == "json") return InputFormat::kJson;
  return std::nullopt;
}

std::optional<TsUnit> ParseTsUnit(std::string_view text) {
  if (text == "ms") return TsUnit::kMs;
  if (text == "ns") return TsUnit::kNs;
  return std::nullopt;
}

std::optional<std::int64_t> ParseTimestampNs(std::string_view text, TsUnit unit) {
  text = Trim(text);
  if (text.empty()) return 0;
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
    if (unit == TsUnit::kMs && __builtin_mul_overflow(v, std::int64_t{1'000'000}, &v)) {
      return std::nullopt;
    }
    return v;
  }
  // A whole number written with a fraction of zeros ("1714564800123.0", from a JSON double).
  if (const auto dot = text.find('.');
      dot != std::string_view::npos && dot > 0 &&
      text.find_first_not_of('0', dot + 1) == std::string_view::npos) {
    return ParseTimestampNs(text.substr(0, dot), unit);
  }
  const auto ns = ParseIsoTimeNs(text);
  if (!ns || *ns < 0) return std::nullopt;
  return ns;
}

bool CheckTick(const client::Tick& t, std::int64_t now_ns, std::string& why) {
  if (!engine::IsValidTopic(t.topic)) {
    why = fmt::format("bad topic '{}' (1 to 128 characters of A-Z a-z 0-9 . _ : -)", t.topic);
    return false;
  }
  if (!std::isfinite(t.price) || std::abs(t.price) > kMaxPriceOrSize) {
    why = fmt::format("price {} is out of range (at most 1e15 either way)", t.price);
    return false;
  }
  if (!std::isfinite(t.size) || t.size < 0 || t.size > kMaxPriceOrSize) {
    why = fmt::format("size {} is out of range (0 to 1e15)", t.size);
    return false;
  }
  if (t.ts_ns < 0) {
    why = "timestamp before 1970";
    return false;
  }
  if (t.ts_ns > now_ns && t.ts_ns - now_ns > kMaxFutureSkewNs) {
    why = fmt::format(
        "timestamp {} is {:.1f} s ahead of this machine's clock; the server refuses ticks more "
        "than 5 s ahead",
        FormatTimeNs(t.ts_ns), static_cast<double>(t.ts_ns - now_ns) / 1e9);
    return false;
  }
  return true;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<client::Tick> TickFromFields(const std::vector<std::string_view>& fields, TsUnit unit,
                                           std::string& why) {
  if (fields.size() != 3 && fields.size() != 4) {
    why = fmt::format("expected 'TOPIC PRICE SIZE [TS]', got {}", Plural(fields.size(), "field"));
    return std::nullopt;
  }
  return MakeTick(fields[0], fields[1], fields[2], fields.size() == 4 ? fields[3] : "", unit, why);
}

TickReader::Status TickReader::Read(std::string_view line, std::int64_t now_ns, client::Tick& tick,
                                    std::string& why) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (IsBlankOrComment(line)) return Status::kSkip;
  Status status = Status::kBad;
  switch (format_) {
    case InputFormat::kText:
      status = ReadText(line, tick, why);
      break;
    case InputFormat::kCsv:
      status = ReadCsv(line, tick, why);
      break;
    case InputFormat::kJson:
      status = ReadJson(line, tick, why);
      break;
  }
  if (status == Status::kTick && !CheckTick(tick, now_ns, why)) return Status::kBad;
  return status;
}

TickReader::Status TickReader::ReadText(std::string_view line, client::Tick& tick,
                                        std::string& why) {
  auto t = TickFromFields(SplitFields(line), unit_, why);
  if (!t) return Status::kBad;
  tick = std::move(*t);
  return Status::kTick;
}

TickReader::Status TickReader::ReadCsv(std::string_view line, client::Tick& tick,
                                       std::string& why) {
  const auto fields = SplitCsv(line);
  const bool first = first_line_;
  first_line_ = false;
  if (first && std::any_of(fields.begin(), fields.end(),
                           [](const std::string& f) { return Lower(f) == "topic"; })) {
    // The header: columns by name, in any order; other columns are ignored.
    CsvColumns c;
    c.count = fields.size();
    bool topic = false, price = false, size = false;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::string name = Lower(fields[i]);
      bool* seen = nullptr;
      if (name == "topic") {
        c.topic = i;
        seen = &topic;
      } else if (name == "price") {
        c.price = i;
        seen = &price;
      } else if (name == "size") {
        c.size = i;
        seen = &size;
      } else if (const auto unit = TimestampName(name, unit_)) {
        if (c.ts) {
          why = fmt::format("CSV header names two timestamp columns ('{}' and '{}')", fields[*c.ts],
                            fields[i]);
          return Status::kFatal;
        }
        c.ts = i;
        c.ts_unit = *unit;
        continue;
      } else {
        continue;
      }
      if (*seen) {
        why = fmt::format("CSV header names column '{}' twice", name);
        return Status::kFatal;
      }
      *seen = true;
    }
    if (!topic || !price || !size) {
      why =
          "CSV header needs the columns topic, price and size (ts, ts_ms, ts_ns, time or "
          "timestamp optional)";
      return Status::kFatal;
    }
    csv_ = c;
    return Status::kSkip;
  }
  if (csv_.count == 0) {
    if (fields.size() != 3 && fields.size() != 4) {
      why = fmt::format("expected 'topic,price,size[,ts]', got {}", Plural(fields.size(), "field"));
      return Status::kBad;
    }
    auto t =
        MakeTick(fields[0], fields[1], fields[2], fields.size() == 4 ? fields[3] : "", unit_, why);
    if (!t) return Status::kBad;
    tick = std::move(*t);
    return Status::kTick;
  }
  if (fields.size() != csv_.count) {
    why = fmt::format("expected {} as in the header, got {}", Plural(csv_.count, "field"),
                      fields.size());
    return Status::kBad;
  }
  auto t = MakeTick(fields[csv_.topic], fields[csv_.price], fields[csv_.size],
                    csv_.ts ? std::string_view(fields[*csv_.ts]) : std::string_view(), csv_.ts_unit,
                    why);
  if (!t) return Status::kBad;
  tick = std::move(*t);
  return Status::kTick;
}

TickReader::Status TickReader::ReadJson(std::string_view line, client::Tick& tick,
                                        std::string& why) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  if (ec) {
    why = "not JSON: " + ec.message();
    return Status::kBad;
  }
  if (!v.is_object()) {
    why = "not a JSON object";
    return Status::kBad;
  }
  const auto& o = v.get_object();
  // `tickwire sub --json` prints bars too: they are not ticks.
  if (const auto* type = o.if_contains("type"); type != nullptr) {
    if (!type->is_string() || type->get_string() != "tick") {
      why = "not a tick (\"type\" is not \"tick\")";
      return Status::kBad;
    }
  }
  std::optional<std::string> fields[3];
  const char* names[3] = {"topic", "price", "size"};
  for (int i = 0; i < 3; ++i) {
    if (const auto* f = o.if_contains(names[i])) fields[i] = JsonScalar(*f);
    if (!fields[i]) {
      why = fmt::format("needs \"{}\" (a string or number)", names[i]);
      return Status::kBad;
    }
  }
  if (!o.at("topic").is_string()) {
    why = "\"topic\" is not a string";
    return Status::kBad;
  }
  // The first timestamp key present: ts_ns, ts_ms, ts, time.
  std::string ts;
  TsUnit unit = unit_;
  for (const char* key : {"ts_ns", "ts_ms", "ts", "time"}) {
    const auto* f = o.if_contains(key);
    if (f == nullptr || f->is_null()) continue;
    const auto text = JsonScalar(*f);
    if (!text) {
      why = fmt::format("\"{}\" is not a string or number", key);
      return Status::kBad;
    }
    ts = *text;
    unit = *TimestampName(key, unit_);
    break;
  }
  auto t = MakeTick(*fields[0], *fields[1], *fields[2], ts, unit, why);
  if (!t) return Status::kBad;
  tick = std::move(*t);
  return Status::kTick;
}

}  // namespace tickwire::cli
