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

// A completeness watermark (PROTOCOL S8d): every bar of `interval` with start_ms <= `start_ms`
// has been delivered on this connection, so the interval starting at `start_ms` is final (a
// topic without a bar for it had no trade in it). Sent once per interval to connections that
// subscribe to that interval, also when nothing traded, after every bar it covers.
struct Watermark {
  Mode interval = Mode::kSecond;
  std::int64_t start_ms = 0;
};

using Record = std::variant<Tick, Bar, Watermark>;

// A position in one topic's tick numbering (Subscribe.resume_after, PROTOCOL S8c): the last
// seq received and the topic_epoch it belongs to.
struct ResumePoint {
  std::string topic;
  std::uint64_t after_seq = 0;
  std::uint64_t topic_epoch = 0;
};

// Ticks a history replay knows it did not send (PROTOCOL S8c): seqs from_seq..to_seq of `topic`
// in its numbering `topic_epoch`; to_seq 0 means up to the end of that numbering.
struct LostRange {
  std::string topic;
  std::uint64_t from_seq = 0;
  std::uint64_t to_seq = 0;
  std::uint64_t topic_epoch = 0;
};

// The end of one subscription's history replay (Record.history_end, PROTOCOL S8c): the
// subscription's replayed records came before it. Once per Subscribe with backfill or
// since_ms, and once per resume after a reconnect.
struct HistoryEnd {
  // The subscription: what Subscribe returned (with reconnect enabled, the client's handle).
  std::uint64_t subscription_id = 0;
  bool truncated = false;       // something asked for was not replayed (one of the three below)
  bool retention = false;       // the server's history no longer held records asked for
  bool backfill_limit = false;  // MAX_BACKFILL_RECORDS cut the replay
  bool epoch_changed = false;   // a resume position belonged to another stream or topic epoch
  std::vector<LostRange> lost;
  std::uint32_t lost_omitted = 0;  // further ranges the server knew of but did not list
  // Where it sat in the DATA_BATCH: after records[0 .. record_index).
  std::size_t record_index = 0;
};

// One DATA_BATCH, decoded. Records of unknown kinds (newer servers) are skipped.
struct Batch {
  std::uint64_t batch_seq = 0;
  std::vector<Record> records;
  std::vector<HistoryEnd> history_ends;  // markers in the batch, in order (S8c)
};

// The client is closed. `reason` is the error that closed it; empty after Close().
struct Closed {
  std::optional<Error> reason;
};

// What Client::Next() returns.
using Event = std::variant<Batch, Error, Closed>;

}  // namespace tickwire::client
