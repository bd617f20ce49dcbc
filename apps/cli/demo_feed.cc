#include "demo_feed.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <fmt/core.h>

namespace tickwire::cli {

std::vector<std::string> DefaultDemoSymbols() {
  return {"BTC-USD", "ETH-USD", "SOL-USD", "AAPL", "MSFT", "NVDA", "EURUSD", "GBPUSD"};
}

DemoMarket::Instrument DemoMarket::Describe(const std::string& symbol) {
  // symbol, price, increment, volatility, min size, max size, lot
  if (symbol == "BTC-USD") return {symbol, 67000, 0.01, 0.0004, 0.001, 0.5, 0.001};
  if (symbol == "ETH-USD") return {symbol, 3400, 0.01, 0.0005, 0.01, 5, 0.01};
  if (symbol == "SOL-USD") return {symbol, 150, 0.001, 0.0007, 0.1, 50, 0.1};
  if (symbol == "AAPL") return {symbol, 190, 0.01, 0.0002, 1, 500, 1};
  if (symbol == "MSFT") return {symbol, 420, 0.01, 0.0002, 1, 300, 1};
  if (symbol == "NVDA") return {symbol, 120, 0.01, 0.0004, 1, 1000, 1};
  if (symbol == "EURUSD") return {symbol, 1.085, 0.00001, 0.00005, 1000, 1000000, 1000};
  if (symbol == "GBPUSD") return {symbol, 1.27, 0.00001, 0.00005, 1000, 1000000, 1000};
  // Anything else: a generic stock-like instrument; the name picks its starting price.
  const double start = 20.0 + static_cast<double>(std::hash<std::string>{}(symbol) % 48000) / 100;
  return {symbol, start, 0.01, 0.0003, 1, 200, 1};
}

DemoMarket::DemoMarket(const std::vector<std::string>& symbols, std::uint64_t seed) : rng_(seed) {
  for (const auto& s : symbols) instruments_.push_back(Describe(s));
}

namespace {

// `v` rounded to a multiple of `step`, as the nearest double to that decimal (0.01 steps give
// 419.9, not 419.90000000000003).
double RoundTo(double v, double step) {
  if (step >= 1) return std::round(v / step) * step;
  const double scale = std::round(1 / step);
  return std::round(v * scale) / scale;
}

}  // namespace

client::Tick DemoMarket::Next() {
  Instrument& in = instruments_[next_];
  next_ = (next_ + 1) % instruments_.size();
  std::normal_distribution<double> step(0.0, in.volatility);
  double price = in.price * std::exp(step(rng_));
  price = std::max(in.increment, RoundTo(price, in.increment));
  in.price = price;
  std::uniform_real_distribution<double> size_dist(in.min_size, in.max_size);
  const double size = std::max(in.lot, RoundTo(size_dist(rng_), in.lot));
  client::Tick t;
  t.topic = in.symbol;
  t.price = price;
  t.size = size;
  return t;
}

namespace {

std::vector<std::string> SplitSymbols(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const auto end = comma == std::string::npos ? list.size() : comma;
    std::string s = list.substr(start, end - start);
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int RunDemoFeed(const ConnectionFlags& conn, const DemoFlags& f) {
  const auto symbols = f.symbols.empty() ? DefaultDemoSymbols() : SplitSymbols(f.symbols);
  if (symbols.empty()) {
    PrintError("--symbols names no symbol");
    return kExitUsage;
  }
  const double rate =
      f.rate_per_symbol > 0 ? f.rate_per_symbol * static_cast<double>(symbols.size()) : f.rate;
  if (!(rate > 0) || !std::isfinite(rate)) {
    PrintError("--rate (or --rate-per-symbol) must be above 0");
    return kExitUsage;
  }
  if (f.batch == 0) {
    PrintError("--batch must be at least 1");
    return kExitUsage;
  }
  std::optional<std::chrono::milliseconds> duration;
  if (!f.duration.empty()) {
    duration = ParseDurationFlag(f.duration);
    if (!duration) {
      PrintError("invalid --duration '" + f.duration + "'");
      return kExitUsage;
    }
  }
  std::string error;
  auto options = MakeClientOptions(conn, "tickwire-demo-feed", error);
  if (!options) {
    PrintError(error);
    return kExitUsage;
  }
  EnableReconnect(*options, "demo feed");
  // Short, so that a publish during an outage gives up quickly and Ctrl-C stays prompt.
  options->request_timeout = std::chrono::milliseconds(1000);
  InstallStopSignals();
  const auto connected = ConnectOrReport(*options);
  if (!connected) return kExitFailure;
  auto& c = *connected;
  const std::uint64_t seed = f.seed != 0 ? f.seed : std::random_device{}();
  DemoMarket market(symbols, seed);
  std::string names;
  for (const auto& s : symbols) names += (names.empty() ? "" : ",") + s;
  PrintError(fmt::format("demo feed: {} ({}) at {:g} ticks/s to {}:{}",
                         Plural(symbols.size(), "symbol"), names, rate, options->host,
                         options->port));

  using Steady = std::chrono::steady_clock;
  const auto start = Steady::now();
  std::uint64_t due_total = 0;
  std::uint64_t published = 0;
  std::uint64_t dropped = 0;
  std::vector<client::Tick> ticks;
  int rc = 0;
  while (!StopRequested()) {
    const auto now = Steady::now();
    if (duration && now - start >= *duration) break;
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const auto due = static_cast<std::uint64_t>(elapsed * rate);
    while (due_total < due && !StopRequested()) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(due - due_total, f.batch));
      ticks.clear();
      for (std::size_t i = 0; i < n; ++i) ticks.push_back(market.Next());
      due_total += n;
      auto r = c.Publish(ticks, false);
      if (r.ok()) {
        published += n;
      } else if (r.error().kind == client::ErrorKind::kClosed) {
        PrintError("demo feed: " + r.error().ToString());
        rc = kExitFailure;
        break;
      } else {
        // Down and reconnecting (or the server refused the frame): the market moves on.
        dropped += n;
      }
    }
    if (rc != 0) break;
    // Errors the server sent for un-acked frames.
    while (auto ev = c.Next(std::chrono::milliseconds(0))) {
      if (auto* e = std::get_if<client::Error>(&*ev)) {
        if (!e->message.ends_with("(reconnecting)")) PrintError("demo feed: " + e->ToString());
      } else if (std::holds_alternative<client::Closed>(*ev)) {
        break;
      }
    }
    // Pacing, not synchronisation: the next tick is due in 1/rate s; wake at most every 20 ms.
    const auto next_due =
        start + std::chrono::duration_cast<Steady::duration>(
                    std::chrono::duration<double>(static_cast<double>(due_total + 1) / rate));
    std::this_thread::sleep_until(
        std::min(next_due, Steady::now() + std::chrono::milliseconds(20)));
  }
  c.Close();
  const auto stats = c.stats();
  PrintError(fmt::format("demo feed: published {}, {} dropped while disconnected, {}",
                         Plural(published, "tick"), dropped,
                         Plural(stats.reconnects, "reconnect")));
  return rc;
}

}  // namespace tickwire::cli
