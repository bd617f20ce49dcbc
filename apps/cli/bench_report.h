#pragma once

// One result format for every throughput, latency and connection bench: tickwire's own
// (`tickwire bench fanout|ingest|latency|conns`) and the peers' load generators for nats-server
// and redis-server (bench/peers/). A table for people, one JSON object per run with --json, with
// the same keys whatever the system, so that scripts/bench-compare.sh can join them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "latency_histogram.h"

namespace tickwire::cli {

// Publish -> receive latency percentiles in microseconds (histogram bucket lower bounds).
struct LatencySummary {
  std::uint64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  std::uint64_t samples = 0;
  static LatencySummary From(const LatencyHistogram& h);
};

// What a consumer proved about the stream it received (PROTOCOL.md S7 for tickwire; the
// publisher's embedded sequence number for the peers).
struct IntegrityCounts {
  std::uint64_t gaps = 0;      // a record whose predecessor never arrived
  std::uint64_t dups = 0;      // a record received twice
  std::uint64_t reorders = 0;  // a record older than one already received
  std::uint64_t lost = 0;      // expected - received over the whole run, after draining
  std::uint64_t errors = 0;    // client, protocol or server errors
  void Add(const IntegrityCounts& o) {
    gaps += o.gaps;
    dups += o.dups;
    reorders += o.reorders;
    lost += o.lost;
    errors += o.errors;
  }
  std::uint64_t Total() const { return gaps + dups + reorders + lost + errors; }
};

// Idle connections held open (the `conns` scenario).
struct ConnsFigures {
  std::uint64_t requested = 0;
  std::uint64_t ready = 0;       // completed the handshake (AUTH_OK and SUBSCRIBE_OK, ...)
  std::uint64_t alive = 0;       // still open at the end of the hold
  std::uint64_t keepalives = 0;  // heartbeats / pings sent in all
  double setup_seconds = 0;      // connect + handshake of all of them
  std::uint64_t rss_before_kb = 0;
  std::uint64_t rss_after_kb = 0;
  double BytesPerConnection() const;
};

struct BenchReport {
  std::string system = "tickwire";  // tickwire, nats, redis
  std::string scenario;             // fanout, ingest, latency, conns
  int subscribers = 0;
  int producers = 0;
  std::uint64_t payload_bytes = 0;  // per message on the wire's payload (0 = not fixed)
  double rate = 0;                  // target msgs/s; 0 = as fast as possible
  double seconds = 0;               // measured window
  std::uint64_t published = 0;      // messages published in the window
  std::uint64_t accepted = 0;       // ... acknowledged by the server (ingest)
  std::uint64_t delivered = 0;      // messages received in the window, all consumers
  std::uint64_t frames = 0;         // tickwire: DATA_BATCH frames received in the window
  std::uint64_t frame_bytes = 0;    // ... their payload bytes
  std::optional<LatencySummary> latency;
  IntegrityCounts integrity;
  std::optional<ConnsFigures> conns;
  double bench_cpu = 0;  // load generator, user + system, over the window
  std::optional<double> server_cpu;
  std::optional<std::uint64_t> server_peak_rss_kb;
  // Scenario-specific figures, printed after the common ones: {json key, label, value}. Values
  // are JSON numbers (already formatted).
  struct Extra {
    std::string key;
    std::string label;
    std::string value;
  };
  std::vector<Extra> extras;
  // A scenario that measures no messages (auth) describes itself here; the table then has no
  // message or integrity rows.
  std::optional<std::string> summary;
  std::string first_error;

  double PerSecond(std::uint64_t n) const;
  // True when every check passed: no integrity fault and, for conns, every connection ready
  // and still alive.
  bool Passed() const;
};

// Prints `r` as a table on stdout, or as one JSON line with `json`.
void PrintReport(const BenchReport& r, bool json);
std::string ReportJson(const BenchReport& r);

}  // namespace tickwire::cli
