#pragma once

// What `tickwire pub` reads from stdin, line by line: "TOPIC PRICE SIZE [TS]" text, CSV (with an
// optional header) or JSON lines, with an optional timestamp per tick for replaying recorded
// data. Every tick is checked against the server's PUBLISH rules (PROTOCOL.md S6) before it is
// sent: the server rejects a whole frame for one bad tick, so a bad line is skipped here
// instead. Pure functions, unit-tested.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/records.h"

namespace tickwire::cli {

enum class InputFormat : std::uint8_t { kText = 0, kCsv = 1, kJson = 2 };
// "text", "csv" or "json"; nullopt otherwise.
std::optional<InputFormat> ParseInputFormat(std::string_view text);

// The unit of a timestamp given as a whole number where the column or key does not say it
// (text TS, CSV "ts"/"time"/"timestamp", JSON "ts"/"time"). "ts_ms" and "ts_ns" say it.
enum class TsUnit : std::uint8_t { kMs = 0, kNs = 1 };
std::optional<TsUnit> ParseTsUnit(std::string_view text);  // "ms" or "ns"

// A timestamp as ns since the Unix epoch: a whole number of `unit`, or an ISO 8601 time
// (ParseIsoTimeNs). Empty text is 0 (the server stamps the tick). nullopt when unreadable,
// negative, or beyond what int64 ns hold.
std::optional<std::int64_t> ParseTimestampNs(std::string_view text, TsUnit unit);

// How far ahead of the server's clock a tick's ts_ns may be (PROTOCOL.md S6).
inline constexpr std::int64_t kMaxFutureSkewNs = 5'000'000'000;
// The largest |price| and size the server accepts (PROTOCOL.md S6).
inline constexpr double kMaxPriceOrSize = 1e15;

// The server's checks of one tick (PROTOCOL.md S6), with this machine's clock `now_ns` for
// the 5 s future bound. False with `why` set when the server would reject it.
bool CheckTick(const client::Tick& tick, std::int64_t now_ns, std::string& why);

// Reads one input stream. A CSV header (a first line that names a "topic" column) applies to
// the lines after it.
class TickReader {
 public:
  enum class Status : std::uint8_t {
    kTick = 0,   // `tick` is set and passed CheckTick
    kSkip = 1,   // a blank line, a '#' comment, or the CSV header
    kBad = 2,    // `why` says what is wrong; the caller skips the line
    kFatal = 3,  // `why` says why the input cannot be read at all (a CSV header without a
                 // needed column); nothing after it can be read either
  };

  TickReader(InputFormat format, TsUnit unit) : format_(format), unit_(unit) {}

  // `line` without its newline; `now_ns` is this machine's clock (CheckTick).
  Status Read(std::string_view line, std::int64_t now_ns, client::Tick& tick, std::string& why);

 private:
  Status ReadText(std::string_view line, client::Tick& tick, std::string& why);
  Status ReadCsv(std::string_view line, client::Tick& tick, std::string& why);
  Status ReadJson(std::string_view line, client::Tick& tick, std::string& why);

  // Where a CSV header put the columns (indexes into a row's fields).
  struct CsvColumns {
    std::size_t topic = 0, price = 1, size = 2;
    std::optional<std::size_t> ts;
    TsUnit ts_unit = TsUnit::kMs;
    std::size_t count = 0;  // fields per row; 0: no header (3 or 4 fields, in this order)
  };

  InputFormat format_;
  TsUnit unit_;
  bool first_line_ = true;  // CSV: the next non-blank line may be a header
  CsvColumns csv_;
};

// The fields of a text line: runs of non-space characters.
std::vector<std::string_view> SplitFields(std::string_view line);

// A tick from the fields "TOPIC PRICE SIZE [TS]" (text input and pub's arguments): nullopt with
// `why` set when a number or the timestamp does not parse. Not yet checked (CheckTick).
std::optional<client::Tick> TickFromFields(const std::vector<std::string_view>& fields, TsUnit unit,
                                           std::string& why);

}  // namespace tickwire::cli
