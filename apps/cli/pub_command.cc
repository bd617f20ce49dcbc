// tickwire pub: publish one tick from arguments, or many from stdin lines "topic price size".

#include <cctype>
#include <charconv>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "common.h"
#include "demo_feed.h"

namespace tickwire::cli {
namespace {

struct PubFlags {
  ConnectionFlags conn;
  bool ack = false;
  std::size_t batch = 100;
  std::vector<std::string> args;
  bool demo = false;
  DemoFlags demo_flags;
};

std::optional<double> ParseNumber(std::string_view s) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Parses "topic price size"; on failure returns nullopt with `why` set.
std::optional<client::Tick> ParseTick(std::string_view topic, std::string_view price,
                                      std::string_view size, std::string& why) {
  auto p = ParseNumber(price);
  auto s = ParseNumber(size);
  if (!p) {
    why = "bad price '" + std::string(price) + "'";
    return std::nullopt;
  }
  if (!s || *s < 0) {
    why = "bad size '" + std::string(size) + "'";
    return std::nullopt;
  }
  client::Tick t;
  t.topic = std::string(topic);
  t.price = *p;
  t.size = *s;
  return t;  // ts_ns 0: the server stamps its receive time
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

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

  void PrintSummary(std::size_t bad_lines) const {
    std::string s = fmt::format("published {} ticks in {} frames", sent_, frames_);
    if (ack_) s += fmt::format(", {} accepted", accepted_);
    if (rejected_ != 0) s += fmt::format(", {} rejected", rejected_);
    if (async_errors_ != 0) s += fmt::format(", {} server errors", async_errors_);
    if (bad_lines != 0) s += fmt::format(", {} bad lines skipped", bad_lines);
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
      return 2;
    }
    return RunDemoFeed(f.conn, f.demo_flags);
  }
  if (!f.args.empty() && f.args.size() != 3) {
    PrintError("pub takes TOPIC PRICE SIZE, or no arguments to read lines from stdin");
    return 2;
  }
  if (f.batch == 0) {
    PrintError("--batch must be at least 1");
    return 2;
  }
  std::string error;
  auto options = MakeClientOptions(f.conn, "tickwire-pub", error);
  if (!options) {
    PrintError(error);
    return 2;
  }
  std::optional<client::Tick> single;
  if (f.args.size() == 3) {
    std::string why;
    single = ParseTick(f.args[0], f.args[1], f.args[2], why);
    if (!single) {
      PrintError(why);
      return 2;
    }
  }
  auto connected = client::Client::Connect(*options);
  if (!connected.ok()) {
    PrintError(connected.error().ToString());
    return 1;
  }
  auto& c = *connected.value();
  Publisher pub(c, f.ack);
  if (single) {
    if (!pub.Send({*single}, true, 0)) return 1;
    pub.PrintSummary(0);
    return pub.failed() ? 1 : 0;
  }

  std::vector<client::Tick> batch;
  batch.reserve(f.batch);
  std::size_t line_no = 0;
  std::size_t batch_first_line = 0;
  std::size_t bad_lines = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_no;
    const auto fields = SplitFields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    std::string why;
    std::optional<client::Tick> tick;
    if (fields.size() != 3) {
      why = fmt::format("expected 'topic price size', got {} fields", fields.size());
    } else {
      tick = ParseTick(fields[0], fields[1], fields[2], why);
    }
    if (!tick) {
      PrintError(fmt::format("line {}: {}; skipped", line_no, why));
      ++bad_lines;
      continue;
    }
    if (batch.empty()) batch_first_line = line_no;
    batch.push_back(std::move(*tick));
    if (batch.size() >= f.batch) {
      // Not the last frame unless stdin ends right here; a final empty flush is skipped, so
      // look ahead by peeking.
      const bool last = std::cin.peek() == std::char_traits<char>::eof();
      if (!pub.Send(batch, last, batch_first_line)) return 1;
      batch.clear();
    }
  }
  if (!pub.Send(batch, true, batch_first_line)) return 1;
  pub.DrainEvents();
  pub.PrintSummary(bad_lines);
  return pub.failed() ? 1 : 0;
}

}  // namespace

void RegisterPub(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<PubFlags>();
  auto* cmd = app.add_subcommand(
      "pub", "Publish ticks: one from TOPIC PRICE SIZE, or lines 'topic price size' from stdin");
  AddConnectionFlags(*cmd, flags->conn);
  cmd->add_flag("--ack", flags->ack, "Ask for PUBLISH_ACK on every frame");
  cmd->add_option("--batch", flags->batch, "Ticks per PUBLISH frame")->capture_default_str();
  cmd->add_option("args", flags->args, "TOPIC PRICE SIZE (omit to read stdin)");
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
