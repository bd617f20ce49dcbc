#pragma once

// How `tickwire sub` and `tickwire topics` print records: aligned table rows (numbers in fixed
// notation, aligned on the decimal point) or JSON lines; and the time texts the CLI reads.
// Pure functions, unit-tested.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/records.h"
#include "number_format.h"

namespace tickwire::cli {

// How --json writes the 64-bit integers of a tick. JSON readers commonly hold numbers as
// doubles, exact only up to 2^53: a ts_ns of today (about 1.7e18) would come back rounded.
enum class JsonTs : std::uint8_t {
  kString = 0,  // "ts_ns", "seq" and "prev_seq" as JSON strings: exact in every reader (default)
  kMs = 1,      // "ts_ms" (whole ms), "seq" and "prev_seq" as JSON numbers
};
// "string" or "ms"; nullopt otherwise.
std::optional<JsonTs> ParseJsonTs(std::string_view text);

// The table of `tickwire sub`: time, topic and the record's numbers, one row per record. Number
// columns are aligned on the decimal point and grow with what they have shown (see
// DecimalColumn): Fit() every record of a batch before appending their rows.
class TableFormatter {
 public:
  // Ticks (time, topic, price, size, seq) for kTick; bars (time, topic, open, high, low, close,
  // volume, count, vwap) for kSecond and kMinute.
  explicit TableFormatter(client::Mode mode);

  // The header for the current column widths, with a trailing newline.
  std::string Header() const;
  void Fit(const client::Record& record);
  // Appends one row (and a newline). A record of the other kind (a bar in a tick table) gets
  // that kind's row layout; a watermark a line that marks the end of its interval.
  void AppendRow(std::string& out, const client::Record& record) const;

 private:
  bool ticks_;                               // which header
  std::vector<DecimalColumn> tick_columns_;  // price, size
  std::vector<DecimalColumn> bar_columns_;   // open, high, low, close, volume, vwap
};

// The texts of a record's numbers as the table shows them: prices and sizes exactly (shortest
// round-trip), volume to 15 and vwap to 10 significant digits (sums and quotients whose last
// binary digits are noise).
std::string TableVolume(double volume);
std::string TableVwap(double vwap);

// Appends one JSON object (and a newline) for `record`. Numbers are in fixed notation with
// every digit needed to read back the exact double.
void AppendJsonLine(std::string& out, const client::Record& record, JsonTs ts = JsonTs::kString);
// One JSON object for a Record.history_end (PROTOCOL S8c): {"type":"history_end",...}.
void AppendHistoryEndJsonLine(std::string& out, const client::HistoryEnd& end,
                              JsonTs ts = JsonTs::kString);

// "2024-05-01 12:00:01" for a SECOND bar, "2024-05-01 12:01" for a MINUTE bar (UTC).
std::string FormatBarTime(std::int64_t start_ms, client::Mode interval);
// "2024-05-01 12:00:01.123456" (UTC, microseconds).
std::string FormatTickTime(std::int64_t ts_ns);

// An ISO 8601 / RFC 3339 time as ns since the Unix epoch: "2024-05-01T12:00:00Z", with ' '
// for 'T', a fraction of up to 9 digits (more are cut), and "Z" or an offset ("+02:00",
// "-0500"). A time without a zone is refused (it would depend on this machine's). nullopt
// when unreadable or outside 1677..2262 (what int64 ns hold).
std::optional<std::int64_t> ParseIsoTimeNs(std::string_view text);

// A --since value as ms since the Unix epoch: a whole number (ms since the epoch), an ISO 8601
// time (ParseIsoTimeNs), or a time relative to `now_ms` ("-5m", "-30s", "-1h", "-500ms").
// nullopt when unreadable.
std::optional<std::int64_t> ParseSince(std::string_view text, std::int64_t now_ms);

}  // namespace tickwire::cli
