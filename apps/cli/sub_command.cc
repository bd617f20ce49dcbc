// tickwire sub: subscribe and print records, as an aligned table or JSON lines. Reconnects and
// resumes (through the client library) when the connection is lost, unless --no-reconnect.

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "common.h"
#include "common/wall_clock.h"
#include "record_format.h"

namespace tickwire::cli {
namespace {

struct SubFlags {
  ConnectionFlags conn;
  std::string mode = "tick";
  bool json = false;
  std::string json_ts = "string";
  std::uint64_t count = 0;  // 0 = unlimited
  std::string duration;     // empty = unlimited
  std::uint32_t backfill = 0;
  std::string since;
  std::int64_t since_ms = 0;
  bool no_reconnect = false;
  bool history_end = false;         // print Record.history_end markers (PROTOCOL S8c)
  std::uint64_t header_every = 40;  // rows between repeated table headers; 0 = once
  std::vector<std::string> topics;
};

int RunSub(const SubFlags& f) {
  client::Mode mode = client::Mode::kTick;
  if (f.mode == "second") {
    mode = client::Mode::kSecond;
  } else if (f.mode == "minute") {
    mode = client::Mode::kMinute;
  }
  std::optional<std::chrono::milliseconds> duration;
  if (!f.duration.empty()) {
    duration = ParseDurationFlag(f.duration);
    if (!duration) {
      PrintError("invalid --duration '" + f.duration + "' (use e.g. 10s, 500ms)");
      return kExitUsage;
    }
  }
  std::int64_t since_ms = f.since_ms;
  if (!f.since.empty()) {
    const auto parsed = ParseSince(f.since, common::WallClockMs());
    if (!parsed || *parsed <= 0) {
      PrintError("invalid --since '" + f.since +
                 "' (use ms since the epoch, 2024-05-01T12:00:00Z, or -5m)");
      return kExitUsage;
    }
    since_ms = *parsed;
  }
  if (since_ms > 0 && f.backfill > 0) {
    PrintError("--backfill and --since are exclusive");
    return kExitUsage;
  }
  const JsonTs json_ts = ParseJsonTs(f.json_ts).value_or(JsonTs::kString);
  std::string error;
  auto options = MakeClientOptions(f.conn, "tickwire-sub", error);
  if (!options) {
    PrintError(error);
    return kExitUsage;
  }
  options->watermarks = true;  // the end of each second (minute) is printed
  if (!f.no_reconnect) EnableReconnect(*options, "sub");
  InstallStopSignals();
  const auto connected = ConnectOrReport(*options);
  if (!connected) return kExitFailure;
  auto& c = *connected;
  auto sub = c.Subscribe(mode, f.topics, f.backfill, since_ms);
  if (!sub.ok()) {
    PrintError("subscribe: " + sub.error().ToString());
    return kExitFailure;
  }

  const auto start = std::chrono::steady_clock::now();
  std::uint64_t printed = 0;
  std::string out;
  TableFormatter table(mode);
  if (!f.json) {
    const std::string header = table.Header();
    std::fwrite(header.data(), 1, header.size(), stdout);
    std::fflush(stdout);
  }
  std::uint64_t rows_since_header = 0;
  while (!StopRequested()) {
    if (f.count != 0 && printed >= f.count) break;
    auto wait = std::chrono::milliseconds(100);
    if (duration) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          start + *duration - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      wait = std::min(wait, left);
    }
    auto ev = c.Next(wait);
    if (!ev) continue;
    if (auto* batch = std::get_if<client::Batch>(&*ev)) {
      out.clear();
      // --count counts ticks and bars; watermarks (the end of an interval) are printed between
      // them and not counted, and none after the last one counted.
      std::size_t n = 0;
      for (std::uint64_t data = 0; n < batch->records.size(); ++n) {
        if (f.count != 0 && printed + data >= f.count) break;
        if (!std::holds_alternative<client::Watermark>(batch->records[n])) ++data;
      }
      // The batch's numbers first, so that its rows line up with each other.
      if (!f.json) {
        for (std::size_t i = 0; i < n; ++i) table.Fit(batch->records[i]);
      }
      // History end markers go where they sat among the records: JSON lines with --json, a
      // note on stderr with the table (which keeps stdout to rows).
      std::size_t next_end = 0;
      auto print_ends = [&](std::size_t upto) {
        if (!f.history_end) return;
        for (; next_end < batch->history_ends.size() &&
               batch->history_ends[next_end].record_index <= upto;
             ++next_end) {
          const auto& e = batch->history_ends[next_end];
          if (f.json) {
            AppendHistoryEndJsonLine(out, e, json_ts);
          } else {
            std::fprintf(stderr, "end of history for subscription %llu%s\n",
                         static_cast<unsigned long long>(e.subscription_id),
                         e.truncated ? ": some of it was not replayed" : "");
          }
        }
      };
      for (std::size_t i = 0; i < n; ++i) {
        print_ends(i);
        const auto& r = batch->records[i];
        if (f.json) {
          AppendJsonLine(out, r, json_ts);
        } else {
          if (f.header_every != 0 && rows_since_header >= f.header_every) {
            out += table.Header();
            rows_since_header = 0;
          }
          table.AppendRow(out, r);
          ++rows_since_header;
        }
        if (!std::holds_alternative<client::Watermark>(r)) ++printed;
      }
      print_ends(n);
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
    } else if (auto* err = std::get_if<client::Error>(&*ev)) {
      // Fatal ones end in Closed; a lost connection that is being retried is announced by the
      // reconnect messages.
      if (!err->fatal && !err->message.ends_with("(reconnecting)")) {
        PrintError("warning: " + err->ToString());
      }
    } else {
      PrintClosed(std::get<client::Closed>(*ev));
      return kExitFailure;
    }
  }
  c.Close();
  return kExitOk;
}

}  // namespace

void RegisterSub(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<SubFlags>();
  auto* cmd = app.add_subcommand("sub", "Subscribe to topics and print records");
  cmd->footer(
      "Prints a table (numbers in fixed notation, aligned on the decimal point) or, with --json, "
      "one JSON object per line. Runs until --count, --duration or Ctrl-C (exit 0 for each).");
  AddConnectionFlags(*cmd, flags->conn);
  cmd->add_option("--mode", flags->mode, "tick, second (1 s bars) or minute (1 min bars)")
      ->check(CLI::IsMember({"tick", "second", "minute"}))
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "One JSON object per line instead of a table");
  cmd->add_option("--json-ts", flags->json_ts,
                  "With --json, how ticks carry their 64-bit values: string (ts_ns, seq and "
                  "prev_seq as JSON strings, exact in every JSON reader) or ms (ts_ms, seq and "
                  "prev_seq as JSON numbers; readers that use doubles round values above 2^53)")
      ->check(CLI::IsMember({"string", "ms"}))
      ->capture_default_str();
  cmd->add_option("--count", flags->count, "Exit after printing N records");
  cmd->add_option("--duration", flags->duration, "Exit after this long (e.g. 10s)");
  cmd->add_option("--backfill", flags->backfill, "First print up to N retained records per topic");
  cmd->add_option("--since", flags->since,
                  "First print retained records from this time on: ms since the epoch, "
                  "2024-05-01T12:00:00Z, or relative like -5m");
  cmd->add_option("--since-ms", flags->since_ms, "Same as --since with ms since the epoch");
  cmd->add_flag("--history-end", flags->history_end,
                "Also print where each subscription's history ends and what it left out: a "
                "{\"type\":\"history_end\",...} line with --json, a note on stderr with the table");
  cmd->add_flag("--no-reconnect", flags->no_reconnect,
                "Exit when the connection is lost instead of reconnecting and resuming");
  cmd->add_option("--header-every", flags->header_every,
                  "Repeat the table header every N rows (0 = once)")
      ->capture_default_str();
  cmd->add_option("topics", flags->topics, "Topics ('*' for all)")->required();
  cmd->callback([flags, &exit_code] { exit_code = RunSub(*flags); });
}

}  // namespace tickwire::cli
