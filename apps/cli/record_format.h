#pragma once

// How `tickwire sub` prints records: aligned table rows (one header per mode) or JSON lines.
// Pure functions, unit-tested.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "client/records.h"

namespace tickwire::cli {

// The table header for records of `mode` (bars: time, topic, OHLC, volume, count, vwap; ticks:
// time, topic, price, size, seq), with a trailing newline.
std::string TableHeader(client::Mode mode);
// Appends one aligned row (and a newline) for `record`, matching TableHeader's columns.
void AppendTableRow(std::string& out, const client::Record& record);
// Appends one JSON object (and a newline) for `record`.
void AppendJsonLine(std::string& out, const client::Record& record);

// "2024-05-01 12:00:01" for a SECOND bar, "2024-05-01 12:01" for a MINUTE bar (UTC).
std::string FormatBarTime(std::int64_t start_ms, client::Mode interval);
// "2024-05-01 12:00:01.123456" (UTC, microseconds).
std::string FormatTickTime(std::int64_t ts_ns);

// A --since value as ms since the Unix epoch: a whole number (ms since the epoch), an RFC 3339
// UTC time ("2024-05-01T12:00:00Z", fraction and "+00:00" allowed, ' ' for 'T' too), or a
// time relative to `now_ms` ("-5m", "-30s", "-1h", "-500ms"). nullopt when unreadable.
std::optional<std::int64_t> ParseSince(std::string_view text, std::int64_t now_ms);

}  // namespace tickwire::cli
