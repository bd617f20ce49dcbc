// tickwire bench bars: many topics ticking steadily, many consumers subscribed to '*' in SECOND
// mode. Reports, per second, the bars delivered and the delay from the end of the bar's bucket
// to its receipt (both CLOCK_REALTIME on one host), the server's CPU, and checks that every
// consumer got every (topic, second) bar of the seconds the run fully covers exactly once, with
// the tick count the producer sent in it, and that no bar came after the watermark of its
// second (PROTOCOL S8d; the watermarks' own delay is reported too).
//
// The producer stamps ticks itself (ts_ns = its CLOCK_REALTIME when it builds the frame), so it
// knows exactly which ticks fall in which bucket. Consumers read raw DATA_BATCH payloads (no
// protobuf objects) on a small io_context thread pool.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "bench_common.h"
#include "commands.h"
#include "common.h"
#include "latency_histogram.h"
#include "protocol/wire.h"
#include "spawned_server.h"

namespace tickwire::cli {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct BarsFlags {
  ConnectionFlags conn;
  std::string pub_addr;  // the producer's server when not --addr (multi-instance runs)
  std::uint32_t topics = 10000;
  double rate_per_topic = 10;
  int subscribers = 100;
  std::string duration = "10s";
  std::string drain = "5s";  // longest wait for the last bars after publishing stops
  bool json = false;
  std::string spawn;
  std::vector<std::string> server_env;
  unsigned io_threads = 0;
  std::size_t rcvbuf = 0;    // consumers' SO_RCVBUF (0 = kernel default)
  std::size_t batch = 1000;  // max ticks per PUBLISH frame
  std::string prefix = "bars.";
};

// What the producer sent: per second of the run (index = second - first second) and topic, the
// number of ticks stamped in it. Sized for the whole run up front (no reallocation), written by
// the producer and read by consumers as bars arrive (a bar comes after its bucket is complete).
class Ledger {
 public:
  Ledger(std::int64_t first_sec, std::size_t seconds, std::uint32_t topics)
      : first_sec_(first_sec), seconds_(seconds), topics_(topics), counts_(seconds * topics) {}

  std::int64_t first_sec() const { return first_sec_; }
  std::size_t seconds() const { return seconds_; }
  std::uint32_t topics() const { return topics_; }

  // Index of the second containing `sec` (Unix seconds); -1 when outside the run.
  std::int64_t Index(std::int64_t sec) const {
    const std::int64_t i = sec - first_sec_;
    return i >= 0 && static_cast<std::size_t>(i) < seconds_ ? i : -1;
  }
  void Add(std::size_t second, std::uint32_t topic, std::uint32_t n) {
    counts_[second * topics_ + topic].fetch_add(n, std::memory_order_relaxed);
  }
  std::uint32_t Count(std::size_t second, std::uint32_t topic) const {
    return counts_[second * topics_ + topic].load(std::memory_order_relaxed);
  }

 private:
  std::int64_t first_sec_;
  std::size_t seconds_;
  std::uint32_t topics_;
  std::vector<std::atomic<std::uint32_t>> counts_;
};

// One consuming connection. Everything but the atomics is touched only by the client's handlers
// (its strand) until the client is closed.
class BarConsumer {
 public:
  BarConsumer(const Ledger& ledger, const std::string& prefix)
      : ledger_(ledger),
        prefix_(prefix),
        seen_(ledger.seconds() * ledger.topics(), 0),
        per_second_(ledger.seconds()),
        bars_in_second_(ledger.seconds()) {}

  void OnBatch(std::span<const std::uint8_t> payload) {
    const std::int64_t now = RealtimeNs();
    std::uint64_t n = 0;
    bool bad = false;
    // Receipts per second are published once per run of bars of one second, not per bar.
    std::size_t run_second = 0;
    std::uint32_t run = 0;
    const auto seq = protocol::ScanDataBatch(payload, [&](protocol::RecordKind kind, auto inner) {
      if (kind == protocol::RecordKind::kWatermark) {
        const auto w = protocol::ParseWatermarkFields(inner);
        if (!w) {
          bad = true;
          return;
        }
        OnWatermark(*w, now);
        return;
      }
      if (kind != protocol::RecordKind::kBar) return;
      const auto b = protocol::ParseBarFields(inner);
      if (!b) {
        bad = true;
        return;
      }
      ++n;
      const auto s = OnBar(*b, now);
      if (!s) return;
      if (run != 0 && *s != run_second) {
        bars_in_second_[run_second].fetch_add(run, std::memory_order_relaxed);
        run = 0;
      }
      run_second = *s;
      ++run;
    });
    if (run != 0) bars_in_second_[run_second].fetch_add(run, std::memory_order_relaxed);
    if (!seq || bad) errors_.fetch_add(1, std::memory_order_relaxed);
    bars_.fetch_add(n, std::memory_order_relaxed);
  }

  void OnError(const client::Error& e) {
    if (e.fatal) dead_.store(true, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (first_error_.empty()) first_error_ = e.ToString();
  }

  std::uint64_t bars() const { return bars_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  bool dead() const { return dead_.load(std::memory_order_relaxed); }
  std::uint32_t BarsInSecond(std::size_t i) const {
    return bars_in_second_[i].load(std::memory_order_relaxed);
  }

  // Read only after the client is closed.
  struct Second {
    LatencyHistogram delay;
    std::int64_t max_delay_ns = 0;
  };
  const std::vector<Second>& per_second() const { return per_second_; }
  std::uint8_t Seen(std::size_t second, std::uint32_t topic) const {
    return seen_[second * ledger_.topics() + topic];
  }
  std::uint64_t count_mismatches() const { return count_mismatches_; }
  std::uint64_t watermarks() const { return watermarks_; }
  // Bars at or before a SECOND watermark already received, and watermarks that went backwards.
  std::uint64_t watermark_violations() const { return watermark_violations_; }
  const LatencyHistogram& watermark_delay() const { return watermark_delay_; }
  std::int64_t watermark_max_delay_ns() const { return watermark_max_delay_ns_; }
  std::uint64_t foreign() const { return foreign_; }
  const std::string& first_error() const { return first_error_; }

  std::unique_ptr<client::Client> client;

 private:
  // A SECOND watermark: in order, and its delay from the end of its second.
  void OnWatermark(const protocol::WatermarkFields& w, std::int64_t now) {
    if (w.interval != 1) return;
    ++watermarks_;
    if (w.start_ms <= final_through_ms_) ++watermark_violations_;
    final_through_ms_ = std::max(final_through_ms_, w.start_ms);
    if (ledger_.Index(w.start_ms / 1000) < 0) return;
    const std::int64_t delay = now - (w.start_ms + 1000) * 1'000'000;
    watermark_delay_.Record(delay);
    watermark_max_delay_ns_ = std::max(watermark_max_delay_ns_, delay);
  }

  // Checks and records one bar; returns its second's index, nullopt for a foreign bar.
  std::optional<std::size_t> OnBar(const protocol::BarFields& b, std::int64_t now) {
    if (b.interval == 1 && b.start_ms <= final_through_ms_) ++watermark_violations_;
    std::uint32_t topic = 0;
    const std::string_view name = b.topic;
    if (b.interval != 1 || name.substr(0, prefix_.size()) != prefix_) {
      ++foreign_;
      return std::nullopt;
    }
    const auto digits = name.substr(prefix_.size());
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), topic);
    const std::int64_t second = ledger_.Index(b.start_ms / 1000);
    if (ec != std::errc() || p != digits.data() + digits.size() || topic >= ledger_.topics() ||
        second < 0 || b.start_ms % 1000 != 0) {
      ++foreign_;
      return std::nullopt;
    }
    const auto s = static_cast<std::size_t>(second);
    auto& seen = seen_[s * ledger_.topics() + topic];
    if (seen < 255) ++seen;
    if (b.count != ledger_.Count(s, topic)) ++count_mismatches_;
    const std::int64_t delay = now - (b.start_ms + 1000) * 1'000'000;
    auto& ps = per_second_[s];
    ps.delay.Record(delay);
    ps.max_delay_ns = std::max(ps.max_delay_ns, delay);
    return s;
  }

  const Ledger& ledger_;
  const std::string prefix_;
  std::vector<std::uint8_t> seen_;  // receipts per (second, topic), saturating at 255
  std::vector<Second> per_second_;
  std::vector<std::atomic<std::uint32_t>> bars_in_second_;
  std::uint64_t count_mismatches_ = 0;
  std::uint64_t foreign_ = 0;                  // bars of other topics or outside the run
  std::int64_t final_through_ms_ = INT64_MIN;  // the newest SECOND watermark's start
  std::uint64_t watermarks_ = 0;
  std::uint64_t watermark_violations_ = 0;
  LatencyHistogram watermark_delay_;
  std::int64_t watermark_max_delay_ns_ = 0;
  std::string first_error_;
  std::atomic<std::uint64_t> bars_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> dead_{false};
};

struct SecondRow {
  std::int64_t start_ms = 0;
  bool covered = false;
  std::uint64_t bars = 0;      // delivered, all consumers
  std::uint64_t expected = 0;  // covered seconds: topics with ticks x consumers
  std::uint64_t p50_us = 0, p99_us = 0;
  std::int64_t max_ns = 0;
};

struct BarsResults {
  std::uint32_t topics = 0;
  double rate_per_topic = 0;
  int subscribers = 0;
  double publish_seconds = 0;
  std::uint64_t published = 0;
  std::uint64_t covered_seconds = 0;
  std::uint64_t bars_delivered = 0;  // in the run's seconds, all consumers
  std::uint64_t bars_expected = 0;   // covered seconds only
  std::uint64_t missing = 0, duplicates = 0, count_mismatches = 0, foreign = 0, errors = 0;
  std::uint64_t watermarks = 0, watermark_violations = 0;
  std::uint64_t watermark_p50_us = 0, watermark_p99_us = 0;
  std::int64_t watermark_max_ns = 0;
  std::uint64_t p50_us = 0, p99_us = 0;
  std::int64_t max_ns = 0;
  std::vector<SecondRow> rows;
  double bench_cpu = 0;
  std::optional<double> server_cpu;
  std::optional<std::uint64_t> server_peak_rss_kb;
  std::string first_error;
};

double Ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }
double MsNs(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

void PrintBarsTable(const BarsResults& r) {
  std::string out = fmt::format(
      "tickwire bench bars: {} x {:g} ticks/s, {} of '*', {:.1f} s published\n",
      Plural(r.topics, "topic"), r.rate_per_topic,
      Plural(static_cast<std::uint64_t>(r.subscribers), "SECOND consumer"), r.publish_seconds);
  out += fmt::format("  {:<21} {:>9} {:>11} {:>11} {:>9} {:>9} {:>9}\n", "second (UTC)", "covered",
                     "bars", "expected", "p50 ms", "p99 ms", "max ms");
  for (const auto& row : r.rows) {
    out += fmt::format("  {:<21} {:>9} {:>11} {:>11} {:>9.1f} {:>9.1f} {:>9.1f}\n",
                       FormatTimeMs(row.start_ms).substr(0, 19), row.covered ? "yes" : "partial",
                       row.bars, row.covered ? std::to_string(row.expected) : std::string("-"),
                       Ms(row.p50_us), Ms(row.p99_us), MsNs(row.max_ns));
  }
  auto kv = [&](std::string_view k, const std::string& v) {
    out += fmt::format("  {:<32} {}\n", k, v);
  };
  kv("ticks published",
     fmt::format(
         "{} ({:.0f}/s)", r.published,
         r.publish_seconds > 0 ? static_cast<double>(r.published) / r.publish_seconds : 0.0));
  kv("seconds fully covered", fmt::format("{}", r.covered_seconds));
  kv("bars delivered / expected", fmt::format("{} / {}", r.bars_delivered, r.bars_expected));
  kv("missing / duplicate bars", fmt::format("{} / {}", r.missing, r.duplicates));
  kv("bars with a wrong tick count", fmt::format("{}", r.count_mismatches));
  kv("delay p50 / p99 / max (ms)",
     fmt::format("{:.1f} / {:.1f} / {:.1f}", Ms(r.p50_us), Ms(r.p99_us), MsNs(r.max_ns)));
  kv("watermarks / out of order", fmt::format("{} / {}", r.watermarks, r.watermark_violations));
  kv("watermark delay p50 / p99 / max",
     fmt::format("{:.1f} / {:.1f} / {:.1f}", Ms(r.watermark_p50_us), Ms(r.watermark_p99_us),
                 MsNs(r.watermark_max_ns)));
  kv("client errors", fmt::format("{}", r.errors));
  kv("bench CPU s", fmt::format("{:.2f}", r.bench_cpu));
  kv("server CPU s",
     r.server_cpu
         ? fmt::format("{:.2f} ({:.0f}% of one core)", *r.server_cpu,
                       r.publish_seconds > 0 ? 100.0 * *r.server_cpu / r.publish_seconds : 0.0)
         : std::string("n/a (not spawned)"));
  kv("server peak RSS MiB",
     r.server_peak_rss_kb
         ? fmt::format("{:.1f}", static_cast<double>(*r.server_peak_rss_kb) / 1024.0)
         : std::string("n/a (not spawned)"));
  if (!r.first_error.empty()) kv("first error", r.first_error);
  std::fputs(out.c_str(), stdout);
}

void PrintBarsJson(const BarsResults& r) {
  std::string out = fmt::format(
      "{{\"topics\":{},\"rate_per_topic\":{},\"subscribers\":{},\"publish_seconds\":{:.3f},"
      "\"published\":{},\"covered_seconds\":{},\"bars_delivered\":{},\"bars_expected\":{},"
      "\"missing\":{},\"duplicates\":{},\"count_mismatches\":{},\"foreign\":{},\"errors\":{},"
      "\"delay_ms\":{{\"p50\":{:.3f},\"p99\":{:.3f},\"max\":{:.3f}}},\"bench_cpu_s\":{:.3f}",
      r.topics, r.rate_per_topic, r.subscribers, r.publish_seconds, r.published, r.covered_seconds,
      r.bars_delivered, r.bars_expected, r.missing, r.duplicates, r.count_mismatches, r.foreign,
      r.errors, Ms(r.p50_us), Ms(r.p99_us), MsNs(r.max_ns), r.bench_cpu);
  out += fmt::format(
      ",\"watermarks\":{},\"watermark_violations\":{},\"watermark_delay_ms\":{{\"p50\":{:.3f},"
      "\"p99\":{:.3f},\"max\":{:.3f}}}",
      r.watermarks, r.watermark_violations, Ms(r.watermark_p50_us), Ms(r.watermark_p99_us),
      MsNs(r.watermark_max_ns));
  if (r.server_cpu) out += fmt::format(",\"server_cpu_s\":{:.3f}", *r.server_cpu);
  if (r.server_peak_rss_kb) out += fmt::format(",\"server_peak_rss_kb\":{}", *r.server_peak_rss_kb);
  out += ",\"per_second\":[";
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    out += fmt::format(
        "{}{{\"start_ms\":{},\"covered\":{},\"bars\":{},\"expected\":{},\"p50_ms\":{:.3f},"
        "\"p99_ms\":{:.3f},\"max_ms\":{:.3f}}}",
        i == 0 ? "" : ",", row.start_ms, row.covered ? "true" : "false", row.bars, row.expected,
        Ms(row.p50_us), Ms(row.p99_us), MsNs(row.max_ns));
  }
  out += "]";
  if (!r.first_error.empty()) {
    out += ",\"first_error\":";
    AppendJson(out, r.first_error);
  }
  out += "}\n";
  std::fputs(out.c_str(), stdout);
}

int RunBars(const BarsFlags& f) {
  const auto duration = ParseDurationFlag(f.duration);
  const auto drain = ParseDurationFlag(f.drain);
  if (!duration || duration->count() <= 0 || !drain) {
    PrintError("invalid --duration or --drain");
    return kExitUsage;
  }
  if (f.topics < 1 || f.subscribers < 1 || f.batch < 1 || !(f.rate_per_topic > 0)) {
    PrintError("--topics, --subscribers, --batch and --rate-per-topic must be above 0");
    return kExitUsage;
  }
  std::unique_ptr<SpawnedServer> server;
  int rc = 0;
  const auto base = StartBench(f.spawn, f.server_env, f.conn, "tickwire-bench-bars", server, rc);
  if (!base) return rc;

  // The run's seconds: from now (the producer starts right after the consumers are ready, so
  // allow for their setup) to the end of publishing, plus slack either side.
  const std::int64_t first_sec = RealtimeNs() / 1'000'000'000;
  const auto total_seconds = static_cast<std::size_t>(
      std::chrono::duration_cast<std::chrono::seconds>(*duration).count() + 60 + 3);
  Ledger ledger(first_sec, total_seconds, f.topics);
  std::vector<std::string> names(f.topics);
  for (std::uint32_t i = 0; i < f.topics; ++i) names[i] = fmt::format("{}{:05}", f.prefix, i);

  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned io_threads = f.io_threads != 0 ? f.io_threads : std::max(1u, hw / 2);
  boost::asio::io_context io(static_cast<int>(io_threads));
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  std::vector<std::unique_ptr<BarConsumer>> consumers;
  auto stop_threads = [&] {
    consumers.clear();
    work.reset();
    for (auto& t : threads) t.join();
    threads.clear();
  };
  for (int i = 0; i < f.subscribers; ++i) {
    auto c = std::make_unique<BarConsumer>(ledger, f.prefix);
    auto o = *base;
    o.client_name = fmt::format("{}-sub-{}", base->client_name, i);
    o.io_context = &io;
    BarConsumer* raw = c.get();
    o.on_raw_batch = [raw](std::uint64_t, std::span<const std::uint8_t> p) { raw->OnBatch(p); };
    o.on_error = [raw](const client::Error& e) { raw->OnError(e); };
    auto r = client::Client::Connect(o);
    if (!r.ok()) {
      PrintError(fmt::format("consumer {} connect: {}", i, r.error().ToString()));
      stop_threads();
      return kExitFailure;
    }
    c->client = std::move(r).value();
    auto sub = c->client->Subscribe(client::Mode::kSecond, {"*"});
    if (!sub.ok()) {
      PrintError(fmt::format("consumer {} subscribe: {}", i, sub.error().ToString()));
      stop_threads();
      return kExitFailure;
    }
    consumers.push_back(std::move(c));
  }
  const auto popts = ProducerOptions(*base, f.pub_addr);
  if (!popts) {
    PrintError("--pub-addr: expected host:port, got '" + f.pub_addr + "'");
    stop_threads();
    return kExitUsage;
  }
  auto pconn = client::Client::Connect(*popts);
  if (!pconn.ok()) {
    PrintError("producer connect: " + pconn.error().ToString());
    stop_threads();
    return kExitFailure;
  }
  auto producer = std::move(pconn).value();

  const double total_rate = f.rate_per_topic * static_cast<double>(f.topics);
  std::atomic<std::uint64_t> published{0};
  std::atomic<bool> producer_stop{false};
  std::atomic<std::int64_t> first_ts{0};
  std::atomic<std::int64_t> last_ts{0};
  std::string producer_error;
  const auto t0 = Steady::now();
  const auto t_end = t0 + *duration;
  std::thread producer_thread([&] {
    std::vector<client::Tick> ticks;
    ticks.reserve(f.batch);
    std::uint64_t sent = 0;
    std::uint32_t next_topic = 0;
    std::uint64_t step = 0;
    while (!producer_stop.load(std::memory_order_relaxed) && Steady::now() < t_end) {
      const double elapsed = std::chrono::duration<double>(Steady::now() - t0).count();
      const auto due = static_cast<std::uint64_t>(elapsed * total_rate);
      if (due <= sent) {
        // Pacing, not synchronisation: wake when the next tick is due (at most 1 ms away).
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        continue;
      }
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(f.batch, due - sent));
      const std::int64_t ts = RealtimeNs();
      const std::int64_t second = ledger.Index(ts / 1'000'000'000);
      if (second < 0) {
        producer_error = "clock left the run's range";
        break;
      }
      ticks.clear();
      for (std::size_t i = 0; i < n; ++i) {
        ++step;
        client::Tick t;
        t.topic = names[next_topic];
        t.price = 100.0 + static_cast<double>(step % 1000) * 0.01;
        t.size = 1.0 + static_cast<double>(step % 7);
        t.ts_ns = ts;
        ticks.push_back(std::move(t));
        ledger.Add(static_cast<std::size_t>(second), next_topic, 1);
        next_topic = next_topic + 1 == f.topics ? 0 : next_topic + 1;
      }
      auto r = producer->Publish(ticks, false);
      if (!r.ok()) {
        producer_error = r.error().ToString();
        break;
      }
      if (first_ts.load(std::memory_order_relaxed) == 0) first_ts.store(ts);
      last_ts.store(ts);
      sent += n;
      published.fetch_add(n, std::memory_order_relaxed);
    }
  });

  auto total_bars = [&] {
    std::uint64_t n = 0;
    for (const auto& c : consumers) n += c->bars();
    return n;
  };
  const double cpu_start = SelfCpuSeconds();
  std::optional<ProcStats> server_start;
  if (server) server_start = ReadProcStats(server->pid());
  std::optional<ProcStats> server_last = server_start;
  std::uint64_t last_pub = 0, last_bars = 0;
  auto next_report = t0 + std::chrono::seconds(1);
  bool interrupted = false;
  auto progress = [&](Steady::time_point now, bool draining) {
    const auto pub = published.load(std::memory_order_relaxed);
    const auto bars = total_bars();
    std::string cpu;
    if (server) {
      const auto s = ReadProcStats(server->pid());
      if (s && server_last)
        cpu = fmt::format(", server CPU {:.0f}%",
                          100.0 * (s->cpu_seconds - server_last->cpu_seconds));
      server_last = s;
    }
    std::fprintf(stderr, "[%5.1fs]%s published %llu ticks/s, delivered %llu bars/s%s\n",
                 std::chrono::duration<double>(now - t0).count(), draining ? " (draining)" : "",
                 static_cast<unsigned long long>(pub - last_pub),
                 static_cast<unsigned long long>(bars - last_bars), cpu.c_str());
    last_pub = pub;
    last_bars = bars;
  };
  while (Steady::now() < t_end) {
    if (StopRequested()) {
      interrupted = true;
      break;
    }
    const auto now = Steady::now();
    if (now >= next_report) {
      progress(now, false);
      next_report += std::chrono::seconds(1);
    }
    std::this_thread::sleep_until(std::min({next_report, t_end, now + milliseconds(20)}));
  }
  producer_stop = true;
  producer_thread.join();
  const auto publish_stop = Steady::now();

  // The seconds the producer covered entirely: every topic ticked in each.
  const std::int64_t first_ms = first_ts.load() / 1'000'000;
  const std::int64_t last_ms = last_ts.load() / 1'000'000;
  const std::int64_t first_full = first_ms == 0 ? 0 : (first_ms + 999) / 1000;  // ceil
  const std::int64_t last_full = last_ms / 1000 - 1;  // the last second that ended before it
  auto covered = [&](std::int64_t sec) {
    return first_ms != 0 && sec >= first_full && sec <= last_full;
  };
  std::uint64_t expected_per_consumer = 0;
  for (std::int64_t sec = first_full; first_ms != 0 && sec <= last_full; ++sec) {
    const auto i = static_cast<std::size_t>(ledger.Index(sec));
    for (std::uint32_t t = 0; t < f.topics; ++t) expected_per_consumer += ledger.Count(i, t) != 0;
  }

  // Drain: wait until the covered seconds' bars have all arrived (or --drain has passed).
  const auto drain_deadline = Steady::now() + *drain;
  auto covered_received = [&] {
    std::uint64_t n = 0;
    for (const auto& c : consumers) {
      if (c->dead()) continue;
      for (std::int64_t sec = first_full; first_ms != 0 && sec <= last_full; ++sec) {
        n += c->BarsInSecond(static_cast<std::size_t>(ledger.Index(sec)));
      }
    }
    return n;
  };
  std::size_t live = 0;
  for (const auto& c : consumers) live += c->dead() ? 0u : 1u;
  while (!interrupted && Steady::now() < drain_deadline && !StopRequested() &&
         covered_received() < expected_per_consumer * live) {
    const auto now = Steady::now();
    if (now >= next_report) {
      progress(now, true);
      next_report += std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  const double bench_cpu = SelfCpuSeconds() - cpu_start;
  std::optional<ProcStats> server_end;
  if (server) server_end = ReadProcStats(server->pid());

  producer->Close();
  for (auto& c : consumers) c->client->Close();  // after this no consumer handler runs

  BarsResults r;
  r.topics = f.topics;
  r.rate_per_topic = f.rate_per_topic;
  r.subscribers = f.subscribers;
  r.publish_seconds = std::chrono::duration<double>(publish_stop - t0).count();
  r.published = published.load();
  r.bench_cpu = bench_cpu;
  r.covered_seconds = first_ms != 0 && last_full >= first_full
                          ? static_cast<std::uint64_t>(last_full - first_full + 1)
                          : 0;
  if (server_start && server_end) {
    r.server_cpu = server_end->cpu_seconds - server_start->cpu_seconds;
    r.server_peak_rss_kb = server_end->peak_rss_kb;
  }
  LatencyHistogram all;
  for (std::size_t i = 0; i < ledger.seconds(); ++i) {
    const std::int64_t sec = ledger.first_sec() + static_cast<std::int64_t>(i);
    SecondRow row;
    row.start_ms = sec * 1000;
    row.covered = covered(sec);
    LatencyHistogram h;
    std::uint64_t topics_with_ticks = 0;
    if (row.covered) {
      for (std::uint32_t t = 0; t < f.topics; ++t) topics_with_ticks += ledger.Count(i, t) != 0;
    }
    for (const auto& c : consumers) {
      const auto& ps = c->per_second()[i];
      h.Merge(ps.delay);
      row.max_ns = std::max(row.max_ns, ps.max_delay_ns);
      row.bars += ps.delay.total();
      if (row.covered) {
        for (std::uint32_t t = 0; t < f.topics; ++t) {
          const std::uint8_t seen = c->Seen(i, t);
          if (ledger.Count(i, t) != 0 && seen == 0) ++r.missing;
          if (seen > 1) r.duplicates += seen - 1u;
        }
      }
    }
    if (row.bars == 0 && !row.covered) continue;
    row.expected = topics_with_ticks * consumers.size();
    row.p50_us = h.Quantile(0.50);
    row.p99_us = h.Quantile(0.99);
    r.bars_delivered += row.bars;
    if (row.covered) {
      r.bars_expected += row.expected;
      all.Merge(h);
      r.max_ns = std::max(r.max_ns, row.max_ns);
    }
    r.rows.push_back(row);
  }
  r.p50_us = all.Quantile(0.50);
  r.p99_us = all.Quantile(0.99);
  LatencyHistogram watermark_delay;
  for (const auto& c : consumers) {
    r.watermarks += c->watermarks();
    r.watermark_violations += c->watermark_violations();
    watermark_delay.Merge(c->watermark_delay());
    r.watermark_max_ns = std::max(r.watermark_max_ns, c->watermark_max_delay_ns());
    r.count_mismatches += c->count_mismatches();
    r.foreign += c->foreign();
    r.errors += c->errors();
    if (r.first_error.empty()) r.first_error = c->first_error();
  }
  r.watermark_p50_us = watermark_delay.Quantile(0.50);
  r.watermark_p99_us = watermark_delay.Quantile(0.99);
  if (!producer_error.empty()) {
    ++r.errors;
    r.first_error = "producer: " + producer_error;
  }

  producer.reset();
  stop_threads();
  if (server) {
    const std::string status = server->Stop();
    if (status != "exit 0") PrintError("server " + status + "; log: " + server->log_path());
  }
  if (f.json) {
    PrintBarsJson(r);
  } else {
    PrintBarsTable(r);
  }
  if (interrupted) return kExitInterrupted;
  if (r.missing + r.duplicates + r.count_mismatches + r.watermark_violations + r.errors != 0 ||
      r.covered_seconds == 0) {
    PrintError(
        "integrity check failed (missing, duplicate or miscounted bars, a bar after its "
        "watermark, errors, or no second fully covered)");
    return kExitFailure;
  }
  return 0;
}

}  // namespace

void RegisterBenchBars(CLI::App& bench, int& exit_code) {
  auto flags = std::make_shared<BarsFlags>();
  auto* cmd = bench.add_subcommand(
      "bars",
      "Many topics ticking, N SECOND consumers of '*': bars/s, bucket-end-to-receipt "
      "delay, server CPU, exactly-once check");
  AddConnectionFlags(*cmd, flags->conn);
  cmd->add_option("--topics", flags->topics, "Topics the producer ticks")->capture_default_str();
  cmd->add_option("--rate-per-topic", flags->rate_per_topic, "Ticks/s per topic")
      ->capture_default_str();
  cmd->add_option("--pub-addr", flags->pub_addr,
                  "Publish through this server (host:port) instead of --addr");
  cmd->add_option("--subscribers", flags->subscribers, "Consumer connections")
      ->capture_default_str();
  cmd->add_option("--duration", flags->duration, "How long the producer publishes")
      ->capture_default_str();
  cmd->add_option("--drain", flags->drain, "Longest wait for the last bars afterwards")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print one JSON object instead of a table");
  cmd->add_option("--spawn", flags->spawn,
                  "Start this tickwire-server binary on 127.0.0.1 (free port) for the run");
  cmd->add_option("--server-env", flags->server_env, "Extra K=V for the spawned server");
  cmd->add_option("--io-threads", flags->io_threads,
                  "Threads running the consumers (0 = half the hardware threads)");
  cmd->add_option("--batch", flags->batch, "Max ticks per PUBLISH frame")->capture_default_str();
  cmd->add_option("--prefix", flags->prefix, "Topic name prefix")->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunBars(*flags); });
}

}  // namespace tickwire::cli
