#pragma once

// The demo feed behind `tickwire pub --demo`: random-walk prices for a set of symbols, published
// at a steady rate so that every symbol has ticks in every second (and so a SECOND bar).

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "client/records.h"
#include "common.h"

namespace tickwire::cli {

// Symbols the feed uses when none are given: crypto, US stocks and FX, each with a realistic
// starting price, price step and trade size.
std::vector<std::string> DefaultDemoSymbols();

// The synthetic market. Deterministic for a given seed.
class DemoMarket {
 public:
  DemoMarket(const std::vector<std::string>& symbols, std::uint64_t seed);

  // The next tick: symbols take turns (so each gets an equal share of the rate), the price makes
  // a small log-normal step rounded to the symbol's price increment and stays positive, the
  // size is random in the symbol's range. ts_ns is 0: the server stamps its receive time.
  client::Tick Next();

  std::size_t size() const { return instruments_.size(); }

 private:
  struct Instrument {
    std::string symbol;
    double price;
    double increment;   // prices are multiples of it
    double volatility;  // standard deviation of one tick's log return
    double min_size;
    double max_size;
    double lot;  // sizes are multiples of it
  };
  static Instrument Describe(const std::string& symbol);

  std::vector<Instrument> instruments_;
  std::size_t next_ = 0;
  std::mt19937_64 rng_;
};

struct DemoFlags {
  std::string symbols;         // comma-separated; empty = DefaultDemoSymbols()
  double rate = 40;            // ticks/s over all symbols
  double rate_per_symbol = 0;  // > 0: ticks/s per symbol instead
  std::string duration;        // empty = until Ctrl-C
  std::uint64_t seed = 0;      // 0 = random
  std::size_t batch = 500;     // max ticks per PUBLISH frame
};

// Runs the feed until Ctrl-C/SIGTERM or --duration; reconnects through the client library.
int RunDemoFeed(const ConnectionFlags& conn, const DemoFlags& flags);

}  // namespace tickwire::cli
