#pragma once

// What a bench consumer counts and checks, for tickwire's consumers and the peers' alike: records
// received, latency from the producer's stamp to receipt (both CLOCK_REALTIME on one host), and
// per-stream order (every record once, in order, nothing missing).

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench_common.h"
#include "bench_report.h"
#include "client/client.h"
#include "latency_histogram.h"
#include "protocol/wire.h"

namespace tickwire::cli {

// Checks one stream's records: `prev_seq` must name the last seq received (`last`); a seq equal to
// it is a duplicate, one below it out of order. A stream's first record (last == 0) sets the
// baseline. Streams numbered 1, 2, 3 ... without a prev_seq pass seq - 1.
inline void CheckSeq(std::uint64_t& last, std::uint64_t seq, std::uint64_t prev_seq,
                     IntegrityCounts& counts) {
  if (last != 0) {
    if (seq == last) {
      ++counts.dups;
      return;
    }
    if (seq < last) {
      ++counts.reorders;
      return;
    }
    if (prev_seq != last) ++counts.gaps;
  }
  last = seq;
}

// Counters of one consuming connection. Everything but the atomics is touched only by the
// connection's handlers (one at a time), so there are no locks on the per-record path; read the
// rest only after the connection is closed.
class ConsumerCounters {
 public:
  explicit ConsumerCounters(const Window& window) : window_(window) {}

  // One record stamped `ts_ns` by its producer, received at `now`.
  void OnRecord(std::int64_t now, std::int64_t ts_ns) {
    if (window_.Contains(ts_ns)) latency_.Record(now - ts_ns);
  }
  // After the records of one read or frame: `n` records, `bytes` payload bytes, received at `now`.
  void OnBatch(std::int64_t now, std::uint64_t n, std::uint64_t bytes) {
    if (window_.Contains(now)) {
      window_records_ += n;
      ++window_frames_;
      window_bytes_ += bytes;
    }
    records_.fetch_add(n, std::memory_order_relaxed);
  }
  void OnError(std::string_view what, bool fatal) {
    if (fatal) dead_.store(true, std::memory_order_relaxed);
    ++integrity_.errors;
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (first_error_.empty()) first_error_ = std::string(what);
  }

  std::uint64_t records() const { return records_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  bool dead() const { return dead_.load(std::memory_order_relaxed); }
  IntegrityCounts& integrity() { return integrity_; }

  // Adds this consumer's window counters, integrity and latency to `r` and `latency`.
  void AddTo(BenchReport& r, LatencyHistogram& latency, bool count_frames) const {
    latency.Merge(latency_);
    r.delivered += window_records_;
    if (count_frames) {
      r.frames += window_frames_;
      r.frame_bytes += window_bytes_;
    }
    r.integrity.Add(integrity_);
    if (r.first_error.empty()) r.first_error = first_error_;
  }

 private:
  const Window& window_;
  LatencyHistogram latency_;
  std::uint64_t window_records_ = 0;
  std::uint64_t window_frames_ = 0;
  std::uint64_t window_bytes_ = 0;
  IntegrityCounts integrity_;
  std::string first_error_;
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> dead_{false};  // closed by a fatal error; no longer paces the producer
};

// The messages the slowest live consumer of `consumers` has received (all receive every message);
// nullopt when none is live. For Pacer.
template <typename ConsumerPtrs>
std::optional<std::uint64_t> SlowestReceived(const ConsumerPtrs& consumers) {
  std::optional<std::uint64_t> slowest;
  for (const auto& c : consumers) {
    if (c->counters.dead()) continue;
    const auto n = c->counters.records();
    if (!slowest || n < *slowest) slowest = n;
  }
  return slowest;
}

// Sum of the messages `consumers` received so far.
template <typename ConsumerPtrs>
std::uint64_t TotalReceived(const ConsumerPtrs& consumers) {
  std::uint64_t n = 0;
  for (const auto& c : consumers) n += c->counters.records();
  return n;
}

// What RunPublisher saw.
struct PublishOutcome {
  bool finished = false;        // false: a stop signal cut the run short
  std::uint64_t published = 0;  // messages published in the measured window
  std::uint64_t published_total = 0;
  std::uint64_t lost = 0;  // expected - received after the drain, all consumers
  std::string error;       // the publisher's, when it failed
};
// `publish(sent, n, ts_ns)` sends the n messages after the first `sent`, stamped `ts_ns`;
// returns an error line, empty on success.
using PublishFn = std::function<std::string(std::uint64_t sent, std::size_t n, std::int64_t ts)>;

// The fan-out run shared by tickwire and the peers: one publisher thread paced by
// Pacer(rate, batch, max_inflight) through `m`'s timeline, a progress line once a second, then
// up to 3 s for the `consumers` to receive everything published (each receives every message).
template <typename ConsumerPtrs>
PublishOutcome RunPublisher(Measurement& m, double rate, std::size_t batch,
                            std::uint64_t max_inflight, const ConsumerPtrs& consumers,
                            const PublishFn& publish) {
  return RunPublisherWith(
      m, rate, batch, max_inflight, consumers.size(), [&] { return SlowestReceived(consumers); },
      [&] { return TotalReceived(consumers); }, publish);
}
PublishOutcome RunPublisherWith(Measurement& m, double rate, std::size_t batch,
                                std::uint64_t max_inflight, std::size_t consumers,
                                const std::function<std::optional<std::uint64_t>()>& slowest,
                                const std::function<std::uint64_t()>& received,
                                const PublishFn& publish);

// Fills `r` with the window, the publisher's and the consumers' figures of a fan-out run (the
// consumers closed: their handlers are done). `frames`: count DATA_BATCH frames too.
template <typename ConsumerPtrs>
void FillFanoutReport(BenchReport& r, const Measurement& m, const PublishOutcome& o,
                      const ConsumerPtrs& consumers, bool frames) {
  r.producers = 1;
  m.Fill(r);
  r.published = o.published;
  LatencyHistogram latency;
  for (const auto& c : consumers) c->counters.AddTo(r, latency, frames);
  r.latency = LatencySummary::From(latency);
  r.integrity.lost = o.lost;
  if (!o.error.empty()) {
    ++r.integrity.errors;
    r.first_error = "publisher: " + o.error;
  }
}

// A tickwire TICK consumer on the client library (raw DATA_BATCH payloads, scanned without
// protobuf objects). Checks seq/prev_seq per topic, any number of topics.
class TickConsumer {
 public:
  explicit TickConsumer(const Window& window) : counters(window) {}

  void OnBatch(std::span<const std::uint8_t> payload) {
    const std::int64_t now = RealtimeNs();
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
      CheckSeq(LastSeq(t->topic), t->seq, t->prev_seq, counters.integrity());
      counters.OnRecord(now, t->ts_ns);
    });
    if (!seq || bad) counters.OnError("malformed DATA_BATCH", false);
    counters.OnBatch(now, n, payload.size());
  }

  // Stops delivery: after it no handler of this consumer runs.
  void Close() {
    if (client) client->Close();
    if (close_ws) close_ws();
  }

  ConsumerCounters counters;
  std::unique_ptr<client::Client> client;
  // A WebSocket consumer (ConnectWsTickConsumers) instead of `client`: closes it (idempotent).
  std::function<void()> close_ws;
  ~TickConsumer() {
    if (close_ws) close_ws();
  }

 private:
  // The last seq of `topic`; the previous record's topic is remembered, so one-topic streams
  // never touch the map.
  std::uint64_t& LastSeq(std::string_view topic) {
    if (last_ != nullptr && SameTopic(topic, last_topic_)) return *last_;
    auto it = seqs_.find(std::string(topic));
    if (it == seqs_.end()) it = seqs_.emplace(std::string(topic), 0).first;
    last_topic_ = it->first;
    last_ = &it->second;
    return *last_;
  }

  // a == b; topics of 8 to 16 bytes (most) are compared as two overlapping words, without a
  // call to memcmp per record.
  static bool SameTopic(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    if (a.size() < 8 || a.size() > 16) return a == b;
    std::uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.data(), 8);
    std::memcpy(&b0, b.data(), 8);
    std::memcpy(&a1, a.data() + a.size() - 8, 8);
    std::memcpy(&b1, b.data() + b.size() - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }

  std::unordered_map<std::string, std::uint64_t> seqs_;  // node-based: pointers stay valid
  std::string_view last_topic_;
  std::uint64_t* last_ = nullptr;
};

// What every tickwire throughput bench sets up first: the server (spawned with --spawn), the
// client options, the io threads its consumers share, the consumers and the window they count
// in.
class BenchSession {
 public:
  // Parses --warmup/--duration and starts. Returns false with the message printed and
  // exit_code() set. Call before any thread starts.
  bool Open(const BenchRunFlags& run, const ConnectionFlags& conn, const std::string& client_name);
  int exit_code() const { return exit_code_; }
  const BenchRunFlags::Times& times() const { return times_; }
  const client::ClientOptions& base() const { return base_; }
  boost::asio::io_context& io() { return pool_->io(); }
  std::optional<pid_t> server_pid() const { return server_pid_; }
  // The spawned server's WebSocket port (0 without --spawn or without WS_LISTEN_ADDR).
  std::uint16_t ws_port() const { return server_ ? server_->ws_port() : 0; }
  // Closes the consumers, stops the io threads, then a spawned server. Idempotent.
  void Close();
  // Prints `message`, Close()s and returns 1 (the exit code).
  int Fail(const std::string& message);

  Window window;  // set from the Measurement before producers start; consumers read it
  std::vector<std::unique_ptr<TickConsumer>> consumers;  // on io()

 private:
  std::unique_ptr<SpawnedServer> server_;
  client::ClientOptions base_;
  std::unique_ptr<IoPool> pool_;
  std::optional<pid_t> server_pid_;
  BenchRunFlags::Times times_{};
  int exit_code_ = 0;
};

// The same over WebSocket: each consumer speaks to `base`'s address (the server's
// WS_LISTEN_ADDR) at `path`, one frame per binary message, with Boost.Beast on `io` (read loop
// and HEARTBEATs on a strand, as the client library does on its io thread).
std::string ConnectWsTickConsumers(const client::ClientOptions& base, const std::string& path,
                                   boost::asio::io_context& io, int n,
                                   const std::vector<std::string>& topics, const Window& window,
                                   std::vector<std::unique_ptr<TickConsumer>>& out);

// Connects `n` TickConsumers on `io` and subscribes each to `topics` in TICK mode. Returns an
// error line, empty on success.
std::string ConnectTickConsumers(const client::ClientOptions& base, boost::asio::io_context& io,
                                 int n, const std::vector<std::string>& topics,
                                 const Window& window,
                                 std::vector<std::unique_ptr<TickConsumer>>& out);

}  // namespace tickwire::cli
