// tickwire bench fanout: one producer, N TICK consumers on one topic; measures throughput,
// end-to-end latency (producer send time -> consumer receipt, both CLOCK_REALTIME on one host),
// and per-topic seq integrity. Consumers share a small io_context thread pool and read raw
// DATA_BATCH payloads with protocol::ScanDataBatch (no protobuf objects).

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "bench_common.h"
#include "client/codec.h"
#include "commands.h"
#include "common.h"
#include "latency_histogram.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "spawned_server.h"

namespace tickwire::cli {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct BenchFlags {
  ConnectionFlags conn;
  int subscribers = 10;
  double rate = 0;  // ticks/s; 0 = as fast as the server takes them
  std::string duration = "10s";
  std::string warmup = "1s";
  std::string topic = "bench";
  bool json = false;
  std::string spawn;
  std::vector<std::string> server_env;
  unsigned io_threads = 0;  // 0 = half the hardware threads, at least 1
  std::size_t batch = 100;  // max ticks per PUBLISH frame
  // With --rate 0: the producer stays at most this many ticks ahead of the slowest live
  // consumer, so "as fast as possible" measures sustained fan-out instead of overrunning the
  // server's per-connection output limit (0 = no limit: overrun and count slow consumers).
  std::uint64_t max_inflight = 2000;
  // Extra consumers that subscribe like the others and then never read (slow-consumer test):
  // the server must drop them without slowing anyone else down.
  int stalled = 0;
};

// A consumer that subscribes and then never reads again, on a plain blocking socket with a small
// receive buffer: it stands for a client that hangs. Its socket is only read at the end, to see
// whether the server dropped it.
class StalledConsumer {
 public:
  // Connects, authenticates and subscribes; returns an error line on failure.
  std::string Open(boost::asio::io_context& io, const client::ClientOptions& o,
                   const std::string& topic) {
    namespace asio = boost::asio;
    boost::system::error_code ec;
    socket_ = std::make_unique<asio::ip::tcp::socket>(io);
    socket_->open(asio::ip::tcp::v4(), ec);
    if (!ec) socket_->set_option(asio::socket_base::receive_buffer_size(4096), ec);
    const auto addr = asio::ip::make_address(o.host, ec);
    if (!ec) socket_->connect({addr, o.port}, ec);
    if (ec) return "connect: " + ec.message();
    const std::string hello =
        client::codec::EncodeAuth(o.username, o.password, o.client_name + "-stalled") +
        client::codec::EncodeSubscribe(1, client::Mode::kTick, {topic}, 0, 0);
    asio::write(*socket_, asio::buffer(hello), ec);
    if (ec) return "send: " + ec.message();
    // AUTH_OK, then SUBSCRIBE_OK: read exactly those two frames and nothing more.
    for (int i = 0; i < 2; ++i) {
      std::uint8_t header[protocol::kHeaderSize];
      asio::read(*socket_, asio::buffer(header), ec);
      if (ec) return "read: " + ec.message();
      std::string payload(protocol::DecodeLength(header) - 1, '\0');
      asio::read(*socket_, asio::buffer(payload), ec);
      if (ec) return "read: " + ec.message();
      const auto want = i == 0 ? protocol::FrameType::kAuthOk : protocol::FrameType::kSubscribeOk;
      if (header[4] != static_cast<std::uint8_t>(want)) return "unexpected reply to AUTH/SUBSCRIBE";
    }
    return {};
  }
  // Reads what is left; true when the server has closed the connection.
  bool DroppedByServer() {
    boost::system::error_code ec;
    socket_->non_blocking(true, ec);
    std::vector<std::uint8_t> buf(65536);
    for (int spins = 0; spins < 2000; ++spins) {
      socket_->read_some(boost::asio::buffer(buf), ec);
      if (ec == boost::asio::error::would_block) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (ec) return true;  // EOF or reset: closed by the server
    }
    return false;
  }

 private:
  std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
};

// The measurement window in CLOCK_REALTIME ns. Set before the producer starts; read-only after.
struct Window {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  bool Contains(std::int64_t ns) const { return ns >= start_ns && ns < end_ns; }
};

// One consuming connection. Everything but the atomics is touched only by the client's handlers
// (its strand), so no locks on the per-record path.
class Consumer {
 public:
  explicit Consumer(const Window& window) : window_(window) {}

  void OnBatch(std::span<const std::uint8_t> payload) {
    const std::int64_t now = RealtimeNs();
    const bool in_window = window_.Contains(now);
    std::uint64_t n = 0;
    bool bad = false;
    auto seq = protocol::ScanDataBatch(payload, [&](protocol::RecordKind kind, auto inner) {
      if (kind != protocol::RecordKind::kTick) return;
      auto t = protocol::ParseTickFields(inner);
      if (!t) {
        bad = true;
        return;
      }
      ++n;
      CheckSeq(*t);
      if (window_.Contains(t->ts_ns)) latency_.Record(now - t->ts_ns);
    });
    if (!seq || bad) errors_.fetch_add(1, std::memory_order_relaxed);
    if (in_window) {
      window_records_ += n;
      ++window_frames_;
      window_bytes_ += payload.size();
    }
    records_.fetch_add(n, std::memory_order_relaxed);
    frames_.fetch_add(1, std::memory_order_relaxed);
  }

  void OnError(const client::Error& e) {
    if (e.fatal) dead_.store(true, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (first_error_.empty()) first_error_ = e.ToString();
  }

  std::uint64_t records() const { return records_.load(std::memory_order_relaxed); }
  std::uint64_t frames() const { return frames_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  bool dead() const { return dead_.load(std::memory_order_relaxed); }

  // Read only after the consumer's client is closed (its handlers are done).
  const LatencyHistogram& latency() const { return latency_; }
  std::uint64_t window_records() const { return window_records_; }
  std::uint64_t window_frames() const { return window_frames_; }
  std::uint64_t window_bytes() const { return window_bytes_; }
  std::uint64_t gaps() const { return gaps_; }
  std::uint64_t dups() const { return dups_; }
  std::uint64_t reorders() const { return reorders_; }
  const std::string& first_error() const { return first_error_; }

  std::unique_ptr<client::Client> client;

 private:
  // Per topic: prev_seq must name the last seq received; a seq at or below it is a duplicate
  // (equal) or out of order (below). The first tick of a topic sets the baseline.
  void CheckSeq(const protocol::TickFields& t) {
    std::uint64_t* last = nullptr;
    if (t.topic == last_topic_) {
      last = &last_topic_seq_;
    } else {
      for (auto& [topic, seq] : others_) {
        if (topic == t.topic) last = &seq;
      }
      if (last == nullptr && last_topic_.empty()) {
        last_topic_ = std::string(t.topic);
        last = &last_topic_seq_;
      } else if (last == nullptr) {
        others_.emplace_back(std::string(t.topic), 0);
        last = &others_.back().second;
      }
    }
    if (*last != 0) {
      if (t.seq == *last) {
        ++dups_;
        return;
      }
      if (t.seq < *last) {
        ++reorders_;
        return;
      }
      if (t.prev_seq != *last) ++gaps_;
    }
    *last = t.seq;
  }

  const Window& window_;
  LatencyHistogram latency_;
  std::string last_topic_;
  std::uint64_t last_topic_seq_ = 0;
  std::vector<std::pair<std::string, std::uint64_t>> others_;
  std::uint64_t window_records_ = 0;
  std::uint64_t window_frames_ = 0;
  std::uint64_t window_bytes_ = 0;
  std::uint64_t gaps_ = 0;
  std::uint64_t dups_ = 0;
  std::uint64_t reorders_ = 0;
  std::string first_error_;
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> frames_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> dead_{false};  // closed by a fatal error; no longer paces the producer
};

struct Results {
  int subscribers = 0;
  double seconds = 0;
  std::uint64_t published = 0;        // ticks sent in the window
  std::uint64_t published_total = 0;  // ticks sent in the whole run
  std::uint64_t delivered = 0;        // records received in the window (all consumers)
  std::uint64_t frames = 0;           // DATA_BATCH frames received in the window
  std::uint64_t window_bytes = 0;     // their payload bytes
  std::uint64_t lost = 0;             // expected - received over the whole run, after draining
  std::uint64_t gaps = 0, dups = 0, reorders = 0, errors = 0;
  std::uint64_t p50 = 0, p99 = 0, p999 = 0, max_bucket = 0;
  std::uint64_t latency_samples = 0;
  double bench_cpu = 0;
  std::optional<double> server_cpu;
  std::optional<std::uint64_t> server_peak_rss_kb;
  std::string first_error;
  int stalled = 0;          // consumers that never read
  int stalled_dropped = 0;  // ... that the server had closed by the end of the run
};

double PerSec(std::uint64_t n, double secs) { return secs > 0 ? static_cast<double>(n) / secs : 0; }

void PrintTable(const Results& r) {
  const double rpf =
      r.frames ? static_cast<double>(r.delivered) / static_cast<double>(r.frames) : 0;
  const double bpr =
      r.delivered ? static_cast<double>(r.window_bytes) / static_cast<double>(r.delivered) : 0;
  std::string out;
  auto row = [&](std::string_view k, const std::string& v) {
    out += fmt::format("  {:<26} {}\n", k, v);
  };
  out += fmt::format("tickwire bench fanout: {} subscribers, {:.1f} s measured\n", r.subscribers,
                     r.seconds);
  row("published ticks/s", fmt::format("{:.0f}", PerSec(r.published, r.seconds)));
  row("delivered records/s", fmt::format("{:.0f}", PerSec(r.delivered, r.seconds)));
  row("DATA_BATCH frames/s", fmt::format("{:.0f}", PerSec(r.frames, r.seconds)));
  row("records per frame", fmt::format("{:.1f}", rpf));
  row("payload bytes per record", fmt::format("{:.1f}", bpr));
  row("latency p50/p99/p99.9 (us)", fmt::format("{} / {} / {}", r.p50, r.p99, r.p999));
  row("latency max bucket (us)", fmt::format("{}", r.max_bucket));
  row("gaps / dups / reorders", fmt::format("{} / {} / {}", r.gaps, r.dups, r.reorders));
  row("lost after drain", fmt::format("{}", r.lost));
  row("client errors", fmt::format("{}", r.errors));
  row("bench CPU s", fmt::format("{:.2f}", r.bench_cpu));
  row("server CPU s", r.server_cpu ? fmt::format("{:.2f}", *r.server_cpu) : "n/a (not spawned)");
  row("server peak RSS MiB",
      r.server_peak_rss_kb
          ? fmt::format("{:.1f}", static_cast<double>(*r.server_peak_rss_kb) / 1024.0)
          : "n/a (not spawned)");
  if (r.stalled > 0) {
    row("stalled consumers dropped", fmt::format("{} of {}", r.stalled_dropped, r.stalled));
  }
  if (!r.first_error.empty()) row("first error", r.first_error);
  std::fputs(out.c_str(), stdout);
}

void PrintJson(const Results& r) {
  std::string out = fmt::format(
      "{{\"subscribers\":{},\"seconds\":{:.3f},\"published\":{},\"published_per_s\":{:.1f},"
      "\"delivered\":{},\"delivered_per_s\":{:.1f},\"frames\":{},\"frames_per_s\":{:.1f},"
      "\"records_per_frame\":{:.2f},\"bytes_per_record\":{:.2f},\"latency_us\":{{\"p50\":{},"
      "\"p99\":{},\"p999\":{},\"max_bucket\":{},\"samples\":{}}},\"gaps\":{},\"dups\":{},"
      "\"reorders\":{},\"lost\":{},\"errors\":{},\"bench_cpu_s\":{:.3f}",
      r.subscribers, r.seconds, r.published, PerSec(r.published, r.seconds), r.delivered,
      PerSec(r.delivered, r.seconds), r.frames, PerSec(r.frames, r.seconds),
      r.frames ? static_cast<double>(r.delivered) / static_cast<double>(r.frames) : 0.0,
      r.delivered ? static_cast<double>(r.window_bytes) / static_cast<double>(r.delivered) : 0.0,
      r.p50, r.p99, r.p999, r.max_bucket, r.latency_samples, r.gaps, r.dups, r.reorders, r.lost,
      r.errors, r.bench_cpu);
  if (r.server_cpu) out += fmt::format(",\"server_cpu_s\":{:.3f}", *r.server_cpu);
  if (r.server_peak_rss_kb) out += fmt::format(",\"server_peak_rss_kb\":{}", *r.server_peak_rss_kb);
  if (r.stalled > 0) {
    out += fmt::format(",\"stalled\":{},\"stalled_dropped\":{}", r.stalled, r.stalled_dropped);
  }
  if (!r.first_error.empty()) {
    out += ",\"first_error\":";
    AppendJson(out, r.first_error);
  }
  out += "}\n";
  std::fputs(out.c_str(), stdout);
}

// With --spawn the spawned server's address replaces --addr/TICKWIRE_ADDR.
int RunFanout(const BenchFlags& f) {
  const auto duration = ParseDurationFlag(f.duration);
  const auto warmup = ParseDurationFlag(f.warmup);
  if (!duration || duration->count() <= 0) {
    PrintError("invalid --duration '" + f.duration + "'");
    return 2;
  }
  if (!warmup) {
    PrintError("invalid --warmup '" + f.warmup + "'");
    return 2;
  }
  if (f.subscribers < 1 || f.batch < 1 || f.rate < 0) {
    PrintError("--subscribers and --batch must be >= 1, --rate >= 0");
    return 2;
  }
  std::unique_ptr<SpawnedServer> server;
  int rc = 0;
  const auto base = StartBench(f.spawn, f.server_env, f.conn, "tickwire-bench", server, rc);
  if (!base) return rc;

  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned io_threads = f.io_threads != 0 ? f.io_threads : std::max(1u, hw / 2);
  boost::asio::io_context io(static_cast<int>(io_threads));
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  auto stop_threads = [&] {
    work.reset();
    for (auto& t : threads) t.join();
    threads.clear();
  };

  Window window;
  std::vector<std::unique_ptr<Consumer>> consumers;
  for (int i = 0; i < f.subscribers; ++i) {
    auto c = std::make_unique<Consumer>(window);
    auto o = *base;
    o.client_name = fmt::format("{}-sub-{}", base->client_name, i);
    o.io_context = &io;
    Consumer* raw = c.get();
    o.on_raw_batch = [raw](std::uint64_t, std::span<const std::uint8_t> p) { raw->OnBatch(p); };
    o.on_error = [raw](const client::Error& e) { raw->OnError(e); };
    auto r = client::Client::Connect(o);
    if (!r.ok()) {
      PrintError(fmt::format("consumer {} connect: {}", i, r.error().ToString()));
      consumers.clear();
      stop_threads();
      return 1;
    }
    c->client = std::move(r).value();
    auto sub = c->client->Subscribe(client::Mode::kTick, {f.topic});
    if (!sub.ok()) {
      PrintError(fmt::format("consumer {} subscribe: {}", i, sub.error().ToString()));
      consumers.clear();
      stop_threads();
      return 1;
    }
    consumers.push_back(std::move(c));
  }
  std::vector<StalledConsumer> stalled(static_cast<std::size_t>(std::max(0, f.stalled)));
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    if (auto err = stalled[i].Open(io, *base, f.topic); !err.empty()) {
      PrintError(fmt::format("stalled consumer {}: {}", i, err));
      consumers.clear();
      stop_threads();
      return 1;
    }
  }
  auto popts = *base;
  popts.client_name = base->client_name + "-pub";
  auto pconn = client::Client::Connect(popts);
  if (!pconn.ok()) {
    PrintError("producer connect: " + pconn.error().ToString());
    consumers.clear();
    stop_threads();
    return 1;
  }
  auto producer = std::move(pconn).value();

  // Timeline: warmup, then the measured window, then a bounded drain.
  const auto t0 = Steady::now();
  const std::int64_t rt0 = RealtimeNs();
  window.start_ns = rt0 + std::chrono::nanoseconds(*warmup).count();
  window.end_ns = window.start_ns + std::chrono::nanoseconds(*duration).count();
  const auto t_window = t0 + *warmup;
  const auto t_end = t_window + *duration;

  std::atomic<std::uint64_t> published_total{0};
  std::atomic<std::uint64_t> published_window{0};
  std::atomic<bool> producer_stop{false};
  std::string producer_error;
  // Records the slowest live consumer has received (all consumers receive every tick).
  auto slowest_received = [&]() -> std::optional<std::uint64_t> {
    std::optional<std::uint64_t> slowest;
    for (const auto& c : consumers) {
      if (c->dead()) continue;
      const auto n = c->records();
      if (!slowest || n < *slowest) slowest = n;
    }
    return slowest;
  };
  std::thread producer_thread([&] {
    std::vector<client::Tick> ticks(f.batch, client::Tick{f.topic, 100.0, 1.0, 0, 0, 0});
    std::uint64_t sent = 0;
    const auto start = Steady::now();
    while (!producer_stop.load(std::memory_order_relaxed) && Steady::now() < t_end) {
      std::size_t n = f.batch;
      if (f.rate > 0) {
        const double elapsed = std::chrono::duration<double>(Steady::now() - start).count();
        const auto due = static_cast<std::uint64_t>(elapsed * f.rate);
        if (due <= sent) {
          // Pacing, not synchronisation: wake when the next tick is due.
          const auto next =
              start + std::chrono::duration_cast<Steady::duration>(
                          std::chrono::duration<double>(static_cast<double>(sent + 1) / f.rate));
          std::this_thread::sleep_until(std::min(next, t_end));
          continue;
        }
        n = static_cast<std::size_t>(std::min<std::uint64_t>(f.batch, due - sent));
      } else if (f.max_inflight != 0) {
        const auto slowest = slowest_received();
        if (slowest && sent > *slowest + f.max_inflight) {
          // Flow control, not synchronisation: let the consumers catch up a little.
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          continue;
        }
      }
      const std::int64_t ts = RealtimeNs();
      for (std::size_t i = 0; i < n; ++i) {
        ticks[i].ts_ns = ts;
        ticks[i].price = 100.0 + static_cast<double>((sent + i) % 1000) * 0.01;
      }
      auto r = producer->Publish(std::span<const client::Tick>(ticks.data(), n), false);
      if (!r.ok()) {
        producer_error = r.error().ToString();
        break;
      }
      sent += n;
      published_total.fetch_add(n, std::memory_order_relaxed);
      if (window.Contains(ts)) published_window.fetch_add(n, std::memory_order_relaxed);
    }
  });

  auto total_received = [&] {
    std::uint64_t n = 0;
    for (const auto& c : consumers) n += c->records();
    return n;
  };
  auto total_frames = [&] {
    std::uint64_t n = 0;
    for (const auto& c : consumers) n += c->frames();
    return n;
  };

  // Progress, once a second, until the end (or a signal).
  double cpu_window_start = SelfCpuSeconds();
  std::optional<ProcStats> server_window_start;
  bool window_started = false;
  std::uint64_t last_pub = 0, last_recv = 0, last_frames = 0;
  auto next_report = t0 + std::chrono::seconds(1);
  bool interrupted = false;
  while (Steady::now() < t_end) {
    if (StopRequested()) {
      interrupted = true;
      break;
    }
    const auto now = Steady::now();
    if (!window_started && now >= t_window) {
      window_started = true;
      cpu_window_start = SelfCpuSeconds();
      if (server) server_window_start = ReadProcStats(server->pid());
    }
    if (now >= next_report) {
      const auto pub = published_total.load(std::memory_order_relaxed);
      const auto recv = total_received();
      const auto frames = total_frames();
      std::fprintf(stderr, "[%5.1fs]%s published %llu/s, delivered %llu/s, frames %llu/s\n",
                   std::chrono::duration<double>(now - t0).count(),
                   window_started ? "" : " (warmup)",
                   static_cast<unsigned long long>(pub - last_pub),
                   static_cast<unsigned long long>(recv - last_recv),
                   static_cast<unsigned long long>(frames - last_frames));
      last_pub = pub;
      last_recv = recv;
      last_frames = frames;
      next_report += std::chrono::seconds(1);
    }
    std::this_thread::sleep_until(std::min({next_report, t_end, now + milliseconds(20)}));
  }
  producer_stop = true;
  producer_thread.join();
  if (!window_started) {
    window_started = true;  // interrupted during warmup: measure nothing meaningful
    cpu_window_start = SelfCpuSeconds();
    if (server) server_window_start = ReadProcStats(server->pid());
  }
  const auto window_stop = Steady::now();
  const double bench_cpu = SelfCpuSeconds() - cpu_window_start;
  std::optional<ProcStats> server_window_end;
  if (server) server_window_end = ReadProcStats(server->pid());

  // Drain: everything published should reach every consumer; wait at most 3 s for it.
  const std::uint64_t expected = published_total.load() * consumers.size();
  const auto drain_deadline = Steady::now() + std::chrono::seconds(3);
  while (total_received() < expected && Steady::now() < drain_deadline && !StopRequested()) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  const std::uint64_t received = total_received();

  producer->Close();
  for (auto& c : consumers) c->client->Close();  // after this no consumer handler runs

  Results r;
  r.subscribers = f.subscribers;
  r.seconds =
      std::chrono::duration<double>(std::min(window_stop, t_end) - std::min(t_window, window_stop))
          .count();
  r.published = published_window.load();
  r.published_total = published_total.load();
  r.lost = expected > received ? expected - received : 0;
  r.bench_cpu = bench_cpu;
  r.stalled = static_cast<int>(stalled.size());
  for (auto& st : stalled) r.stalled_dropped += st.DroppedByServer() ? 1 : 0;
  LatencyHistogram merged;
  for (const auto& c : consumers) {
    merged.Merge(c->latency());
    r.delivered += c->window_records();
    r.frames += c->window_frames();
    r.window_bytes += c->window_bytes();
    r.gaps += c->gaps();
    r.dups += c->dups();
    r.reorders += c->reorders();
    r.errors += c->errors();
    if (r.first_error.empty()) r.first_error = c->first_error();
  }
  if (!producer_error.empty()) {
    ++r.errors;
    r.first_error = "producer: " + producer_error;
  }
  r.p50 = merged.Quantile(0.50);
  r.p99 = merged.Quantile(0.99);
  r.p999 = merged.Quantile(0.999);
  r.max_bucket = merged.Quantile(1.0);
  r.latency_samples = merged.total();
  if (server_window_start && server_window_end) {
    r.server_cpu = server_window_end->cpu_seconds - server_window_start->cpu_seconds;
    r.server_peak_rss_kb = server_window_end->peak_rss_kb;
  }

  consumers.clear();
  producer.reset();
  stop_threads();
  if (server) {
    const std::string status = server->Stop();
    if (status != "exit 0") {
      PrintError("server " + status + "; log: " + server->log_path());
    }
  }

  if (f.json) {
    PrintJson(r);
  } else {
    PrintTable(r);
  }
  if (interrupted) return 130;
  if (r.gaps + r.dups + r.reorders + r.lost + r.errors != 0) {
    PrintError("integrity check failed (gaps, duplicates, reordering, loss or errors above)");
    return 1;
  }
  return 0;
}

}  // namespace

void RegisterBench(CLI::App& app, int& exit_code) {
  auto* bench = app.add_subcommand("bench", "Load generators");
  bench->require_subcommand(1);
  auto flags = std::make_shared<BenchFlags>();
  auto* fanout = bench->add_subcommand(
      "fanout", "1 producer, N TICK consumers on one topic: throughput, latency, integrity");
  AddConnectionFlags(*fanout, flags->conn);
  fanout->add_option("--subscribers", flags->subscribers, "Consumer connections")
      ->capture_default_str();
  fanout->add_option("--rate", flags->rate, "Ticks/s to publish (0 = as fast as possible)")
      ->capture_default_str();
  fanout->add_option("--duration", flags->duration, "Measured time")->capture_default_str();
  fanout->add_option("--warmup", flags->warmup, "Unmeasured time first")->capture_default_str();
  fanout->add_option("--topic", flags->topic, "Topic")->capture_default_str();
  fanout->add_flag("--json", flags->json, "Print one JSON object instead of a table");
  fanout
      ->add_option("--stalled", flags->stalled,
                   "Extra consumers that subscribe and never read (the server must drop them)")
      ->capture_default_str();
  fanout->add_option("--spawn", flags->spawn,
                     "Start this tickwire-server binary on 127.0.0.1 (free port) for the run");
  fanout->add_option("--server-env", flags->server_env, "Extra K=V for the spawned server");
  fanout->add_option("--io-threads", flags->io_threads,
                     "Threads running the consumers (0 = half the hardware threads)");
  fanout->add_option("--batch", flags->batch, "Max ticks per PUBLISH frame")->capture_default_str();
  fanout
      ->add_option("--max-inflight", flags->max_inflight,
                   "With --rate 0: max ticks ahead of the slowest consumer (0 = unlimited)")
      ->capture_default_str();
  fanout->callback([flags, &exit_code] { exit_code = RunFanout(*flags); });
  RegisterBenchBars(*bench, exit_code);
}

}  // namespace tickwire::cli
