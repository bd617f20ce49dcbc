// tickwire pub: publish one tick from arguments, or many from stdin: "TOPIC PRICE SIZE [TS]"
// lines, CSV or JSON lines (tick_input.h), timestamps kept for replays.

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "common.h"
#include "common/wall_clock.h"
#include "demo_feed.h"
#include "tick_input.h"

namespace tickwire::cli {
namespace {

struct PubFlags {
  ConnectionFlags conn;
  bool ack = false;
  std::size_t batch = 100;
  std::string format = "text";
  std::string ts_unit = "ms";
  std::vector<std::string> args;
  bool demo = false;
  DemoFlags demo_flags;
};

// Publishes what it is given; tracks totals; reports server rejections. The final frame is
// always acked so that the summary is only printed once the server has applied everything (and
// reported errors for earlier un-acked frames, which arrive in order before that ack).
class Publisher {
 public:
  Publisher(client::Client& c, bool ack) : c_(c), ack_(ack) {}

  bool Send(const std::vector<client::Tick>& ticks, bool last, std::size_t first_line) {
    if (ticks.empty()) return true;
    ++frames_;
    auto r = c_.Publish(ticks, ack_ || last);
    if (!r.ok()) {
      const auto& e = r.error();
      if (e.kind == client::ErrorKind::kServer && !e.fatal) {
        rejected_ += ticks.size();
        PrintError(first_line == 0 ? "rejected: " + e.ToString()
                                   : fmt::format("frame starting at line {} rejected: {}",
                                                 first_line, e.ToString()));
        return true;
      }
      PrintError("publish: " + e.ToString());
      return false;
    }
    sent_ += ticks.size();
    if (ack_ || last) accepted_ += r.value();
    DrainEvents();
    return true;
  }

  // Reports errors the server sent for un-acked frames.
  void DrainEvents() {
    while (auto ev = c_.Next(std::chrono::milliseconds(0))) {
      if (auto* e = std::get_if<client::Error>(&*ev)) {
        PrintError("server: " + e->ToString());
        ++async_errors_;
      } else if (std::holds_alternative<client::Closed>(*ev)) {
        break;
      }
    }
  }

  void PrintSummary() const {
    std::string s =
        fmt::format("published {} in {}", Plural(sent_, "tick"), Plural(frames_, "frame"));
    if (ack_) s += fmt::format(", {} accepted", accepted_);
    if (rejected_ != 0) s += fmt::format(", {} rejected", rejected_);
    if (async_errors_ != 0) s += ", " + Plural(async_errors_, "server error");
    std::cout << s << std::endl;
  }

  bool failed() const { return rejected_ != 0 || async_errors_ != 0; }

 private:
  client::Client& c_;
  bool ack_;
  std::size_t frames_ = 0;
  std::size_t sent_ = 0;
  std::size_t accepted_ = 0;
  std::size_t rejected_ = 0;
  std::size_t async_errors_ = 0;
};

int RunPub(const PubFlags& f) {
  if (f.demo) {
    if (!f.args.empty()) {
      PrintError("pub --demo takes no TOPIC PRICE SIZE");
      return kExitUsage;
    }
    return RunDemoFeed(f.conn, f.demo_flags);
  }
  if (!f.args.empty() && f.args.size() != 3 && f.args.size() != 4) {
    PrintError("pub takes TOPIC PRICE SIZE [TS], or no arguments to read stdin");
    return kExitUsage;
  }
  if (f.batch == 0) {
    PrintError("--batch must be at least 1");
    return kExitUsage;
  }
  const auto format = ParseInputFormat(f.format);
  const auto unit = ParseTsUnit(f.ts_unit);
  if (!format || !unit) {
    PrintError("--format is text, csv or json; --ts-unit is ms or ns");
    return kExitUsage;
  }
  std::string error;
  auto options = MakeClientOptions(f.conn, "tickwire-pub", error);
  if (!options) {
    PrintError(error);
    return kExitUsage;
  }
  std::optional<client::Tick> single;
  if (!f.args.empty()) {
    const std::vector<std::string_view> fields(f.args.begin(), f.args.end());
    std::string why;
    single = TickFromFields(fields, *unit, why);
    if (!single || !CheckTick(*single, common::WallClockNs(), why)) {
      PrintError(why);
      return kExitUsage;
    }
  }
  const auto connected = ConnectOrReport(*options);
  if (!connected) return kExitFailure;
  auto& c = *connected;
  Publisher pub(c, f.ack);
  if (single) {
    if (!pub.Send({*single}, true, 0)) return kExitFailure;
    pub.PrintSummary();
    return pub.failed() ? kExitFailure : kExitOk;
  }

  TickReader reader(*format, *unit);
  std::vector<client::Tick> batch;
  batch.reserve(f.batch);
  std::size_t line_no = 0;
  std::size_t batch_first_line = 0;
  std::size_t ticks_read = 0;
  std::size_t bad_lines = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_no;
    client::Tick tick;
    std::string why;
    const auto status = reader.Read(line, common::WallClockNs(), tick, why);
    if (status == TickReader::Status::kSkip) continue;
    if (status == TickReader::Status::kFatal) {
      PrintError(fmt::format("line {}: {}", line_no, why));
      return kExitUsage;
    }
    if (status == TickReader::Status::kBad) {
      PrintError(fmt::format("line {}: {}; skipped", line_no, why));
      ++bad_lines;
      continue;
    }
    ++ticks_read;
    if (batch.empty()) batch_first_line = line_no;
    batch.push_back(std::move(tick));
    if (batch.size() >= f.batch) {
      // Not the last frame unless stdin ends right here; a final empty flush is skipped, so
      // look ahead by peeking.
      const bool last = std::cin.peek() == std::char_traits<char>::eof();
      if (!pub.Send(batch, last, batch_first_line)) return kExitFailure;
      batch.clear();
    }
  }
  if (!pub.Send(batch, true, batch_first_line)) return kExitFailure;
  pub.DrainEvents();
  pub.PrintSummary();
  if (pub.failed()) return kExitFailure;
  if (bad_lines != 0) {
    PrintError(fmt::format("skipped {} of {} (exit code {})", bad_lines,
                           Plural(ticks_read + bad_lines, "input line"), kExitPartial));
    return kExitPartial;
  }
  return kExitOk;
}

}  // namespace

void RegisterPub(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<PubFlags>();
  auto* cmd = app.add_subcommand(
      "pub",
      "Publish ticks: one from TOPIC PRICE SIZE [TS], or many from stdin (text, CSV or "
      "JSON lines), or a demo feed");
  cmd->footer(
      "A tick without TS is stamped by the server on receipt. A tick with TS keeps it (replays "
      "of recorded data): the server refuses a TS more than 5 s ahead of its clock, and a tick "
      "that arrives after its bar has closed (BAR_CLOSE_DELAY_MS, default 100 ms, after the "
      "second ends) is late: delivered and kept as a tick, but in no bar. Input lines the server "
      "would refuse (bad numbers, topics, timestamps) are skipped and reported on stderr with "
      "their line numbers; the rest is published and the exit code is 3.");
  AddConnectionFlags(*cmd, flags->conn);
  cmd->add_flag("--ack", flags->ack, "Ask for PUBLISH_ACK on every frame");
  cmd->add_option("--batch", flags->batch, "Ticks per PUBLISH frame")->capture_default_str();
  cmd->add_option("--format", flags->format,
                  "stdin format: text ('TOPIC PRICE SIZE [TS]'), csv (topic,price,size[,ts]; a "
                  "first line naming the columns, e.g. ts,topic,price,size, is a header) or json "
                  "(one object per line: topic, price, size and ts, ts_ms, ts_ns or time)")
      ->check(CLI::IsMember({"text", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--ts-unit", flags->ts_unit,
                  "Unit of whole-number timestamps in TS, CSV ts/time and JSON ts/time (ts_ms and "
                  "ts_ns say theirs); ISO 8601 times (2024-05-01T12:00:00.123Z) work anywhere")
      ->check(CLI::IsMember({"ms", "ns"}))
      ->capture_default_str();
  cmd->add_option("args", flags->args, "TOPIC PRICE SIZE [TS] (omit to read stdin)");
  auto* demo = cmd->add_flag("--demo", flags->demo,
                             "Run a synthetic feed: random-walk prices for --symbols at --rate, "
                             "until Ctrl-C (reconnects when the server goes away)");
  auto demo_opt = [&](CLI::Option* o) { o->needs(demo)->group("Demo feed (--demo)"); };
  demo_opt(cmd->add_option("--symbols", flags->demo_flags.symbols,
                           "Comma-separated symbols (default: BTC-USD,ETH-USD,SOL-USD,AAPL,"
                           "MSFT,NVDA,EURUSD,GBPUSD)"));
  demo_opt(cmd->add_option("--rate", flags->demo_flags.rate, "Ticks/s over all symbols")
               ->capture_default_str());
  demo_opt(cmd->add_option("--rate-per-symbol", flags->demo_flags.rate_per_symbol,
                           "Ticks/s per symbol (instead of --rate)"));
  demo_opt(cmd->add_option("--duration", flags->demo_flags.duration,
                           "Stop after this long (default: until Ctrl-C)"));
  demo_opt(cmd->add_option("--seed", flags->demo_flags.seed, "Random seed (0 = random)"));
  cmd->callback([flags, &exit_code] { exit_code = RunPub(*flags); });
}

}  // namespace tickwire::cli
