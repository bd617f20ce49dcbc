#pragma once

// What `tickwire topics` prints: per topic, its newest tick (or, without one, its newest bar),
// gathered from the records a '*' subscription brings. Pure, unit-tested.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "client/records.h"

namespace tickwire::cli {

class TopicListing {
 public:
  // Takes `record` into account; true when its topic was not listed yet.
  bool Add(const client::Record& record);
  std::size_t size() const { return topics_.size(); }

  // Sorted by topic. The table: topic, last (UTC), price, seq ("-" without a tick), with a
  // header; numbers aligned on the decimal point.
  void AppendTable(std::string& out) const;
  // One object per line: {"topic","time","last_ms","price"[,"seq" as a string]}.
  void AppendJsonLines(std::string& out) const;
  // One name per line.
  void AppendNames(std::string& out) const;

 private:
  struct Entry {
    std::optional<client::Tick> tick;  // the highest seq seen
    std::optional<client::Bar> bar;    // the one that ends last
  };
  // The time (ns) and price a row shows: the tick's, else the bar's start and close.
  static std::int64_t LastNs(const Entry& e);
  static double LastPrice(const Entry& e);

  std::map<std::string, Entry, std::less<>> topics_;
};

}  // namespace tickwire::cli
