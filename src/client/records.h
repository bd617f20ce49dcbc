#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "error.h"

namespace tickwire::client {

// Subscription modes, same numbers as the wire enum Mode.
enum class Mode : std::uint8_t { kSecond = 1, kMinute = 2, kTick = 3 };

std::string_view ModeName(Mode mode);  // "second", "minute", "tick"

// A tick as published (seq/prev_seq are ignored on PUBLISH) or as delivered.
struct Tick {
  std::string topic;
  double price = 0;
  double size = 0;
  std::int64_t ts_ns = 0;  // ns since Unix epoch; 0 on publish = the server stamps it
  std::uint64_t seq = 0;
  std::uint64_t prev_seq = 0;
  // The incarnation of the topic's numbering (PROTOCOL S7a): seqs compare only within one.
  // 0 from servers that do not send it.
  std::uint64_t topic_epoch = 0;
};

// A closed SECOND or MINUTE bar.
struct Bar {
  std::string topic;
  Mode interval = Mode::kSecond;
  std::int64_t start_ms = 0;
  double open = 0;
  double high = 0;
  double low = 0;
  double close = 0;
  double volume = 0;
  std::uint64_t count = 0;
  double vwap = 0;
};

using Record = std::variant<Tick, Bar>;

// One DATA_BATCH, decoded. Records of unknown kinds (newer servers) are skipped.
struct Batch {
  std::uint64_t batch_seq = 0;
  std::vector<Record> records;
};

// The client is closed. `reason` is the error that closed it; empty after Close().
struct Closed {
  std::optional<Error> reason;
};

// What Client::Next() returns.
using Event = std::variant<Batch, Error, Closed>;

}  // namespace tickwire::client
