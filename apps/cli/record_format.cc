#include "record_format.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include <fmt/core.h>

#include "common.h"
#include "config/duration.h"

namespace tickwire::cli {
namespace {

// Column widths (the least; number columns grow, see DecimalColumn); a longer topic pushes its
// row out rather than being cut.
constexpr int kTickTimeWidth = 26;
constexpr int kBarTimeWidth = 19;
constexpr int kTopicWidth = 14;
constexpr int kNumWidth = 13;
constexpr int kVwapWidth = 16;
constexpr int kSeqWidth = 10;
constexpr int kCountWidth = 7;

// The tick table's number columns, then the bar table's.
enum TickColumn { kPrice = 0, kSize = 1 };
enum BarColumn { kOpen = 0, kHigh, kLow, kClose, kVolume, kVwap };

std::tm UtcTm(std::int64_t seconds) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

// Floor division, so that times before 1970 still print correctly.
std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool ParseInt(std::string_view s, int& out) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool IsLeap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays[month - 1];
}

// "Z", "+HH:MM", "-HHMM" or "+HH" as seconds east of UTC; nullopt otherwise.
std::optional<std::int64_t> ParseZone(std::string_view zone) {
  if (zone == "Z" || zone == "z") return 0;
  if (zone.size() < 3 || (zone[0] != '+' && zone[0] != '-')) return std::nullopt;
  const int sign = zone[0] == '-' ? -1 : 1;
  std::string_view rest = zone.substr(1);
  int hours = 0, minutes = 0;
  if (!ParseInt(rest.substr(0, 2), hours)) return std::nullopt;
  rest.remove_prefix(2);
  if (!rest.empty() && rest.front() == ':') rest.remove_prefix(1);
  if (!rest.empty() && (rest.size() != 2 || !ParseInt(rest, minutes))) return std::nullopt;
  if (hours > 23 || minutes > 59) return std::nullopt;
  return sign * (hours * 3600 + minutes * 60);
}

// The numbers of a record, as the table shows them, in column order.
std::vector<std::string> TickNumbers(const client::Tick& t) {
  return {FixedShortest(t.price), FixedShortest(t.size)};
}
std::vector<std::string> BarNumbers(const client::Bar& b) {
  return {FixedShortest(b.open),  FixedShortest(b.high), FixedShortest(b.low),
          FixedShortest(b.close), TableVolume(b.volume), TableVwap(b.vwap)};
}

std::vector<DecimalColumn> TickColumns() {
  return {DecimalColumn(kNumWidth), DecimalColumn(kNumWidth)};
}
std::vector<DecimalColumn> BarColumns() {
  return {DecimalColumn(kNumWidth), DecimalColumn(kNumWidth), DecimalColumn(kNumWidth),
          DecimalColumn(kNumWidth), DecimalColumn(kNumWidth), DecimalColumn(kVwapWidth)};
}

}  // namespace

std::optional<JsonTs> ParseJsonTs(std::string_view text) {
  if (text == "string") return JsonTs::kString;
  if (text == "ms") return JsonTs::kMs;
  return std::nullopt;
}

std::string TableVolume(double volume) { return FixedSignificant(volume, 15); }
std::string TableVwap(double vwap) { return FixedSignificant(vwap, 10); }

TableFormatter::TableFormatter(client::Mode mode)
    : ticks_(mode == client::Mode::kTick),
      tick_columns_(TickColumns()),
      bar_columns_(BarColumns()) {}

std::string TableFormatter::Header() const {
  if (ticks_) {
    const auto& c = tick_columns_;
    return fmt::format("{:<{}}  {:<{}} {:>{}} {:>{}} {:>{}}\n", "time (UTC)", kTickTimeWidth,
                       "topic", kTopicWidth, "price", c[kPrice].width(), "size", c[kSize].width(),
                       "seq", kSeqWidth);
  }
  const auto& c = bar_columns_;
  return fmt::format("{:<{}}  {:<{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}}\n",
                     "time (UTC)", kBarTimeWidth, "topic", kTopicWidth, "open", c[kOpen].width(),
                     "high", c[kHigh].width(), "low", c[kLow].width(), "close", c[kClose].width(),
                     "volume", c[kVolume].width(), "count", kCountWidth, "vwap", c[kVwap].width());
}

void TableFormatter::Fit(const client::Record& record) {
  if (const auto* t = std::get_if<client::Tick>(&record)) {
    const auto n = TickNumbers(*t);
    for (std::size_t i = 0; i < n.size(); ++i) tick_columns_[i].Fit(n[i]);
    return;
  }
  if (std::holds_alternative<client::Watermark>(record)) return;  // no numbers
  const auto n = BarNumbers(std::get<client::Bar>(record));
  for (std::size_t i = 0; i < n.size(); ++i) bar_columns_[i].Fit(n[i]);
}

void TableFormatter::AppendRow(std::string& out, const client::Record& record) const {
  if (const auto* t = std::get_if<client::Tick>(&record)) {
    const auto n = TickNumbers(*t);
    const auto& c = tick_columns_;
    out += fmt::format("{:<{}}  {:<{}} {} {} {:>{}}\n", FormatTickTime(t->ts_ns), kTickTimeWidth,
                       t->topic, kTopicWidth, c[kPrice].Format(n[kPrice]),
                       c[kSize].Format(n[kSize]), t->seq, kSeqWidth);
    return;
  }
  if (const auto* w = std::get_if<client::Watermark>(&record)) {
    // The end of an interval: every bar of it is above this line.
    out += fmt::format("{:<{}}  -- {} final --\n", FormatBarTime(w->start_ms, w->interval),
                       kBarTimeWidth, client::ModeName(w->interval));
    return;
  }
  const auto& b = std::get<client::Bar>(record);
  const auto n = BarNumbers(b);
  const auto& c = bar_columns_;
  std::string row =
      fmt::format("{:<{}}  {:<{}} {} {} {} {} {} {:>{}} {}", FormatBarTime(b.start_ms, b.interval),
                  kBarTimeWidth, b.topic, kTopicWidth, c[kOpen].Format(n[kOpen]),
                  c[kHigh].Format(n[kHigh]), c[kLow].Format(n[kLow]), c[kClose].Format(n[kClose]),
                  c[kVolume].Format(n[kVolume]), b.count, kCountWidth, c[kVwap].Format(n[kVwap]));
  row.erase(row.find_last_not_of(' ') + 1);  // the last column's fraction padding
  out += row;
  out += '\n';
}

std::string FormatBarTime(std::int64_t start_ms, client::Mode interval) {
  const std::tm tm = UtcTm(FloorDiv(start_ms, 1000));
  if (interval == client::Mode::kMinute) {
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min);
  }
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string FormatTickTime(std::int64_t ts_ns) {
  const std::int64_t s = FloorDiv(ts_ns, 1'000'000'000);
  const std::int64_t us = (ts_ns - s * 1'000'000'000) / 1000;
  const std::tm tm = UtcTm(s);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

void AppendJsonLine(std::string& out, const client::Record& record, JsonTs ts) {
  if (const auto* t = std::get_if<client::Tick>(&record)) {
    out += "{\"type\":\"tick\",\"topic\":";
    AppendJson(out, t->topic);
    out += fmt::format(",\"time\":\"{}\",\"price\":{},\"size\":{}", FormatTimeNs(t->ts_ns),
                       FixedShortest(t->price), FixedShortest(t->size));
    if (ts == JsonTs::kMs) {
      out += fmt::format(",\"ts_ms\":{},\"seq\":{},\"prev_seq\":{}}}\n",
                         FloorDiv(t->ts_ns, 1'000'000), t->seq, t->prev_seq);
    } else {
      out += fmt::format(",\"ts_ns\":\"{}\",\"seq\":\"{}\",\"prev_seq\":\"{}\"}}\n", t->ts_ns,
                         t->seq, t->prev_seq);
    }
    return;
  }
  if (const auto* w = std::get_if<client::Watermark>(&record)) {
    out += "{\"type\":\"watermark\",\"interval\":\"";
    out += client::ModeName(w->interval);
    out += fmt::format("\",\"time\":\"{}\",\"start_ms\":{}}}\n", FormatTimeMs(w->start_ms),
                       w->start_ms);
    return;
  }
  // start_ms (at most 9223372036854 by the protocol) and count stay below 2^53: plain numbers.
  const auto& b = std::get<client::Bar>(record);
  out += "{\"type\":\"bar\",\"interval\":\"";
  out += client::ModeName(b.interval);
  out += "\",\"topic\":";
  AppendJson(out, b.topic);
  out += fmt::format(
      ",\"time\":\"{}\",\"start_ms\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},"
      "\"volume\":{},\"count\":{},\"vwap\":{}}}\n",
      FormatTimeMs(b.start_ms), b.start_ms, FixedShortest(b.open), FixedShortest(b.high),
      FixedShortest(b.low), FixedShortest(b.close), FixedShortest(b.volume), b.count,
      FixedShortest(b.vwap));
}

void AppendHistoryEndJsonLine(std::string& out, const client::HistoryEnd& e, JsonTs ts) {
  // Seqs and epochs are 64-bit: strings unless --json-ts ms asked for plain numbers.
  auto num = [ts](std::uint64_t v) {
    return ts == JsonTs::kMs ? fmt::format("{}", v) : fmt::format("\"{}\"", v);
  };
  out += fmt::format(
      "{{\"type\":\"history_end\",\"subscription\":{},\"truncated\":{},\"retention\":{},"
      "\"backfill_limit\":{},\"epoch_changed\":{},\"lost\":[",
      e.subscription_id, e.truncated, e.retention, e.backfill_limit, e.epoch_changed);
  for (std::size_t i = 0; i < e.lost.size(); ++i) {
    const auto& l = e.lost[i];
    if (i > 0) out += ',';
    out += "{\"topic\":";
    AppendJson(out, l.topic);
    out += fmt::format(",\"from_seq\":{},\"to_seq\":{},\"topic_epoch\":{}}}", num(l.from_seq),
                       num(l.to_seq), num(l.topic_epoch));
  }
  out += fmt::format("],\"lost_omitted\":{}}}\n", e.lost_omitted);
}

std::optional<std::int64_t> ParseIsoTimeNs(std::string_view s) {
  // YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM|+HHMM|+HH)
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  if (!ParseInt(s.substr(0, 4), year) || !ParseInt(s.substr(5, 2), mon) ||
      !ParseInt(s.substr(8, 2), day) || !ParseInt(s.substr(11, 2), hour) ||
      !ParseInt(s.substr(14, 2), min) || !ParseInt(s.substr(17, 2), sec)) {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > DaysInMonth(year, mon) || hour > 23 || min > 59 ||
      sec > 60) {
    return std::nullopt;
  }
  std::size_t i = 19;
  std::int64_t frac_ns = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    int digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (digits < 9) frac_ns = frac_ns * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (int d = digits; d < 9; ++d) frac_ns *= 10;
  }
  const auto offset_s = ParseZone(s.substr(i));
  if (!offset_s) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::int64_t seconds = static_cast<std::int64_t>(timegm(&tm)) - *offset_s;
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(seconds, std::int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, frac_ns, &ns)) {
    return std::nullopt;
  }
  return ns;
}

std::optional<std::int64_t> ParseSince(std::string_view text, std::int64_t now_ms) {
  if (text.empty()) return std::nullopt;
  if (text.front() == '-') {
    const auto d = config::ParseDuration(text.substr(1));
    if (!d) return std::nullopt;
    return now_ms - d->count();
  }
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
    return v;
  }
  const auto ns = ParseIsoTimeNs(text);
  if (!ns) return std::nullopt;
  return FloorDiv(*ns, 1'000'000);
}

}  // namespace tickwire::cli
