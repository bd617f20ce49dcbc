#include "topic_listing.h"

#include <algorithm>

#include <fmt/core.h>

#include "common.h"
#include "number_format.h"
#include "record_format.h"

namespace tickwire::cli {
namespace {

std::int64_t BarEndMs(const client::Bar& b) {
  return b.start_ms + (b.interval == client::Mode::kMinute ? 60'000 : 1'000);
}

}  // namespace

bool TopicListing::Add(const client::Record& record) {
  if (std::holds_alternative<client::Watermark>(record)) return false;  // names no topic
  const std::string& topic = std::get_if<client::Tick>(&record) != nullptr
                                 ? std::get<client::Tick>(record).topic
                                 : std::get<client::Bar>(record).topic;
  auto [it, inserted] = topics_.try_emplace(topic);
  Entry& e = it->second;
  if (const auto* t = std::get_if<client::Tick>(&record)) {
    if (!e.tick || t->seq > e.tick->seq) e.tick = *t;
  } else {
    const auto& b = std::get<client::Bar>(record);
    if (!e.bar || BarEndMs(b) > BarEndMs(*e.bar)) e.bar = b;
  }
  return inserted;
}

std::int64_t TopicListing::LastNs(const Entry& e) {
  if (e.tick) return e.tick->ts_ns;
  return e.bar ? e.bar->start_ms * 1'000'000 : 0;
}

double TopicListing::LastPrice(const Entry& e) {
  if (e.tick) return e.tick->price;
  return e.bar ? e.bar->close : 0;
}

void TopicListing::AppendTable(std::string& out) const {
  std::size_t topic_width = 5;  // "topic"
  DecimalColumn price(5);       // "price"
  std::size_t seq_width = 3;    // "seq"
  for (const auto& [topic, e] : topics_) {
    topic_width = std::max(topic_width, topic.size());
    price.Fit(FixedShortest(LastPrice(e)));
    if (e.tick) seq_width = std::max(seq_width, fmt::formatted_size("{}", e.tick->seq));
  }
  constexpr int kTimeWidth = 26;  // FormatTickTime
  out += fmt::format("{:<{}}  {:<{}}  {:>{}}  {:>{}}\n", "topic", topic_width, "last (UTC)",
                     kTimeWidth, "price", price.width(), "seq", seq_width);
  for (const auto& [topic, e] : topics_) {
    out +=
        fmt::format("{:<{}}  {:<{}}  {}  {:>{}}\n", topic, topic_width, FormatTickTime(LastNs(e)),
                    kTimeWidth, price.Format(FixedShortest(LastPrice(e))),
                    e.tick ? fmt::format("{}", e.tick->seq) : std::string("-"), seq_width);
  }
}

void TopicListing::AppendJsonLines(std::string& out) const {
  for (const auto& [topic, e] : topics_) {
    const std::int64_t ns = LastNs(e);
    out += "{\"topic\":";
    AppendJson(out, topic);
    out += fmt::format(",\"time\":\"{}\",\"last_ms\":{},\"price\":{}", FormatTimeNs(ns),
                       ns / 1'000'000, FixedShortest(LastPrice(e)));
    if (e.tick) out += fmt::format(",\"seq\":\"{}\"", e.tick->seq);
    out += "}\n";
  }
}

void TopicListing::AppendNames(std::string& out) const {
  for (const auto& [topic, e] : topics_) {
    out += topic;
    out += '\n';
  }
}

}  // namespace tickwire::cli
