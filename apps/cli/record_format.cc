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

// Column widths; a longer topic pushes its row out rather than being cut.
constexpr int kTopicWidth = 14;
constexpr int kNumWidth = 13;

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

// Eight significant digits: whole cents on five-digit prices, five decimals on FX rates.
std::string Num(double v) { return fmt::format("{:.8g}", v); }

bool ParseInt(std::string_view s, int& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::optional<std::int64_t> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00|-00:00)
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
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return std::nullopt;
  }
  std::size_t i = 19;
  std::int64_t frac_ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (digits < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (int d = digits; d < 3; ++d) frac_ms *= 10;
  }
  const std::string_view zone = s.substr(i);
  if (zone != "Z" && zone != "z" && zone != "+00:00" && zone != "-00:00") return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  return static_cast<std::int64_t>(t) * 1000 + frac_ms;
}

}  // namespace

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

std::string TableHeader(client::Mode mode) {
  if (mode == client::Mode::kTick) {
    return fmt::format("{:<26}  {:<{}} {:>{}} {:>{}} {:>10}\n", "time (UTC)", "topic", kTopicWidth,
                       "price", kNumWidth, "size", kNumWidth, "seq");
  }
  return fmt::format("{:<19}  {:<{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>7} {:>{}}\n",
                     "time (UTC)", "topic", kTopicWidth, "open", kNumWidth, "high", kNumWidth,
                     "low", kNumWidth, "close", kNumWidth, "volume", kNumWidth, "count", "vwap",
                     kNumWidth);
}

void AppendTableRow(std::string& out, const client::Record& record) {
  if (const auto* t = std::get_if<client::Tick>(&record)) {
    out += fmt::format("{:<26}  {:<{}} {:>{}} {:>{}} {:>10}\n", FormatTickTime(t->ts_ns), t->topic,
                       kTopicWidth, Num(t->price), kNumWidth, Num(t->size), kNumWidth, t->seq);
    return;
  }
  const auto& b = std::get<client::Bar>(record);
  out += fmt::format("{:<19}  {:<{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>7} {:>{}}\n",
                     FormatBarTime(b.start_ms, b.interval), b.topic, kTopicWidth, Num(b.open),
                     kNumWidth, Num(b.high), kNumWidth, Num(b.low), kNumWidth, Num(b.close),
                     kNumWidth, Num(b.volume), kNumWidth, b.count, Num(b.vwap), kNumWidth);
}

void AppendJsonLine(std::string& out, const client::Record& record) {
  if (const auto* t = std::get_if<client::Tick>(&record)) {
    out += "{\"type\":\"tick\",\"topic\":";
    AppendJson(out, t->topic);
    out += fmt::format(
        ",\"time\":\"{}\",\"price\":{},\"size\":{},\"ts_ns\":{},\"seq\":{},\"prev_seq\":{}}}\n",
        FormatTimeNs(t->ts_ns), t->price, t->size, t->ts_ns, t->seq, t->prev_seq);
    return;
  }
  const auto& b = std::get<client::Bar>(record);
  out += "{\"type\":\"bar\",\"interval\":\"";
  out += client::ModeName(b.interval);
  out += "\",\"topic\":";
  AppendJson(out, b.topic);
  out += fmt::format(
      ",\"time\":\"{}\",\"start_ms\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},"
      "\"volume\":{},\"count\":{},\"vwap\":{}}}\n",
      FormatTimeMs(b.start_ms), b.start_ms, b.open, b.high, b.low, b.close, b.volume, b.count,
      b.vwap);
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
  return ParseRfc3339(text);
}

}  // namespace tickwire::cli
