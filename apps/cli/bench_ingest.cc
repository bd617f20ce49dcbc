// tickwire bench ingest: P producers publish PUBLISH frames of --batch ticks over --topics topics
// (round-robin), each keeping a window of acked frames in flight; the rate is the ticks the
// server acknowledged (PUBLISH_ACK.accepted) per second; ticks the topic cap refused (ERROR
// TOPIC_LIMIT before the frame's ack) are counted apart. Bars fold as usual (server defaults).
// With --check one TICK consumer of '*' verifies that every accepted tick is delivered once, in
// order, per topic, and the producers stay at most --max-inflight ticks ahead of it.
//
// Producers run on plain blocking sockets, one thread each, and send frames encoded once up
// front (ticks with ts_ns = 0, which the server stamps on receipt): only the request_id is
// written per frame, so the load generator costs next to nothing per tick.

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_common.h"
#include "bench_consumer.h"
#include "client/codec.h"
#include "commands.h"
#include "common.h"
#include "protocol/wire.h"
#include "raw_connection.h"
#include "spawned_server.h"

namespace tickwire::cli {
namespace {

struct IngestFlags {
  ConnectionFlags conn;
  BenchRunFlags run;
  int producers = 1;
  std::size_t batch = 100;       // ticks per PUBLISH frame
  std::uint32_t topics = 1000;   // topics ticked round-robin
  std::uint32_t in_flight = 64;  // acked frames outstanding per producer (6,400 ticks)
  bool check = false;
  std::uint64_t max_inflight = 20000;  // with --check: ticks ahead of the consumer
  std::string prefix = "ingest.";
  std::string transport = "tcp";  // or "ws" (see bench fanout --transport)
  std::string ws_path = "/";
};

// PUBLISH payloads without request_id and ack (proto3 leaves out default fields), one per
// rotation step; Frame() appends request_id and ack = true after the ticks (field order is free
// in protobuf) and puts the header in front.
class FrameBook {
 public:
  FrameBook(const IngestFlags& f, int producer) {
    std::vector<std::string> names(f.topics);
    for (std::uint32_t i = 0; i < f.topics; ++i) names[i] = fmt::format("{}{:05}", f.prefix, i);
    // Producers start at different topics so that they do not move in lockstep.
    std::uint32_t next = static_cast<std::uint32_t>(producer) * 7919u % f.topics;
    const std::size_t frames = std::max<std::size_t>(1, f.topics / std::gcd(f.topics, f.batch));
    std::vector<client::Tick> ticks(f.batch);
    for (std::size_t i = 0; i < frames; ++i) {
      for (std::size_t k = 0; k < f.batch; ++k) {
        ticks[k] = client::Tick{names[next],
                                100.0 + static_cast<double>((i + k) % 100) * 0.01,
                                1.0 + static_cast<double>(k % 5),
                                0,
                                0,
                                0};
        next = next + 1 == f.topics ? 0 : next + 1;
      }
      const std::string frame = client::codec::EncodePublish(0, ticks, false);
      payloads_.push_back(frame.substr(protocol::kHeaderSize));
    }
  }

  // The whole frame for `request_id` (valid until the next call).
  const std::string& Frame(std::uint32_t request_id) {
    const std::string& ticks = payloads_[request_id % payloads_.size()];
    payload_ = ticks;
    payload_.push_back(0x08);  // field 1, varint: request_id
    protocol::AppendVarint(payload_, request_id);
    payload_.push_back(0x18);  // field 3, varint: ack
    payload_.push_back(0x01);
    frame_.resize(protocol::kHeaderSize);
    protocol::EncodeHeader(protocol::FrameType::kPublish, payload_.size(),
                           reinterpret_cast<std::uint8_t*>(frame_.data()));
    frame_ += payload_;
    return frame_;
  }

 private:
  std::vector<std::string> payloads_;
  std::string payload_;
  std::string frame_;
};

// PUBLISH_ACK.accepted, or nullopt when the payload does not parse.
std::optional<std::uint32_t> AckAccepted(const std::string& payload) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  protocol::wire_detail::Reader r{p, p + payload.size()};
  std::uint32_t accepted = 0;
  while (r.ok && !r.AtEnd()) {
    const std::uint64_t tag = r.Varint();
    if (!r.ok) break;
    if (tag == 0x10) {
      accepted = static_cast<std::uint32_t>(r.Varint());
    } else if (!r.Skip(static_cast<std::uint32_t>(tag & 7))) {
      return std::nullopt;
    }
  }
  if (!r.ok) return std::nullopt;
  return accepted;
}

// Figures shared by the producer threads.
struct IngestTotals {
  std::atomic<std::uint64_t> sent{0};             // ticks sent, whole run
  std::atomic<std::uint64_t> sent_window{0};      // ... in the window
  std::atomic<std::uint64_t> accepted{0};         // ticks acknowledged, whole run
  std::atomic<std::uint64_t> accepted_window{0};  // ... acknowledged in the window
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> acks{0};
  // Ticks the server's topic cap refused (frames answered TOPIC_LIMIT, then acked with fewer).
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> topic_limit_errors{0};
};

// One producer connection: sends while fewer than --in-flight frames await their ack, then
// reads replies; after the end, reads the acks still due (5 s at most).
std::string RunProducer(RawConnection& conn, FrameBook& book, const IngestFlags& f,
                        const Measurement& m, Pacer& pacer, IngestTotals& totals,
                        const std::atomic<bool>& stop) {
  std::uint32_t request_id = 0;
  std::uint32_t outstanding = 0;
  auto next_heartbeat = BenchClock::now();
  std::uint8_t type = 0;
  std::string payload;
  std::uint32_t refused_request = 0;  // the frame the last TOPIC_LIMIT was about (its ack follows)
  auto read_reply = [&]() -> std::string {
    if (auto err = conn.ReadFrame(type, payload); !err.empty()) return err;
    if (type == static_cast<std::uint8_t>(protocol::FrameType::kPublishAck)) {
      const auto accepted = AckAccepted(payload);
      if (!accepted) return "malformed PUBLISH_ACK";
      // Acks come in request order; the one after a TOPIC_LIMIT counts the applied ticks only.
      if (refused_request != 0 && *accepted < f.batch) {
        totals.refused.fetch_add(f.batch - *accepted, std::memory_order_relaxed);
        refused_request = 0;
      }
      --outstanding;
      totals.acks.fetch_add(1, std::memory_order_relaxed);
      totals.accepted.fetch_add(*accepted, std::memory_order_relaxed);
      if (m.window().Contains(RealtimeNs())) {
        totals.accepted_window.fetch_add(*accepted, std::memory_order_relaxed);
      }
      return {};
    }
    if (type == static_cast<std::uint8_t>(protocol::FrameType::kHeartbeat)) return {};
    const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
    if (auto e = client::codec::DecodeError({p, payload.size()})) {
      if (e->code == client::ErrorCode::kTopicLimit && !e->fatal) {
        // Ticks for new topics over MAX_TOPICS: reported, not an error of the run.
        refused_request = e->request_id;
        totals.topic_limit_errors.fetch_add(1, std::memory_order_relaxed);
        return {};
      }
      return e->ToString();
    }
    return "unexpected " + std::string(protocol::FrameTypeName(type)) + " frame";
  };
  while (!stop.load(std::memory_order_relaxed) && BenchClock::now() < m.end()) {
    if (BenchClock::now() >= next_heartbeat) {  // PROTOCOL.md S2: every heartbeat interval
      if (auto err = conn.Send(client::codec::EncodeHeartbeat(RealtimeNs() / 1'000'000));
          !err.empty()) {
        return err;
      }
      next_heartbeat += std::chrono::seconds(5);
    }
    if (outstanding < f.in_flight) {
      if (pacer.Next(totals.sent.load(std::memory_order_relaxed)) == 0) continue;
      if (auto err = conn.Send(book.Frame(++request_id)); !err.empty()) return err;
      ++outstanding;
      totals.frames_sent.fetch_add(1, std::memory_order_relaxed);
      totals.sent.fetch_add(f.batch, std::memory_order_relaxed);
      if (m.window().Contains(RealtimeNs())) {
        totals.sent_window.fetch_add(f.batch, std::memory_order_relaxed);
      }
      if (!conn.Readable())
        continue;  // replies are read when they are there, or the window is full
    }
    if (auto err = read_reply(); !err.empty()) return err;
  }
  while (outstanding > 0) {  // the socket's read timeout bounds each wait
    if (auto err = read_reply(); !err.empty()) return err;
  }
  return {};
}

int RunIngest(const IngestFlags& f) {
  if (!CheckFlags(f.producers >= 1 && f.batch >= 1 && f.topics >= 1 && f.in_flight >= 1,
                  "--producers, --batch, --topics and --in-flight must be >= 1")) {
    return kExitUsage;
  }
  const bool ws = f.transport == "ws";
  if (!CheckFlags(!ws || !f.conn.tls, "--transport ws: no --tls (plain ws://)")) return kExitUsage;
  BenchRunFlags run = f.run;
  if (ws && !run.spawn.empty()) run.server_env.push_back("WS_LISTEN_ADDR=127.0.0.1:0");
  BenchSession session;
  if (!session.Open(run, f.conn, "tickwire-bench-ingest")) return session.exit_code();
  client::ClientOptions base = session.base();
  if (ws && session.ws_port() != 0) base.port = session.ws_port();
  auto& consumers = session.consumers;
  std::vector<RawConnection> conns(static_cast<std::size_t>(f.producers));
  if (f.check) {
    if (auto err =
            ws ? ConnectWsTickConsumers(base, f.ws_path, session.io(), 1, {"*"}, session.window,
                                        consumers)
               : ConnectTickConsumers(base, session.io(), 1, {"*"}, session.window, consumers);
        !err.empty()) {
      return session.Fail(err);
    }
  }
  std::vector<std::unique_ptr<FrameBook>> books;
  for (int i = 0; i < f.producers; ++i) {
    auto o = base;
    o.client_name = fmt::format("{}-pub-{}", base.client_name, i);
    conns[static_cast<std::size_t>(i)].SetReadTimeout(5000);
    if (ws) conns[static_cast<std::size_t>(i)].UseWebSocket(f.ws_path);
    const auto err = conns[static_cast<std::size_t>(i)].Open(session.io(), o);
    if (!err.empty()) return session.Fail(fmt::format("producer {}: {}", i, err));
    books.push_back(std::make_unique<FrameBook>(f, i));
  }

  Measurement m(session.times().warmup, session.times().duration, session.server_pid());
  session.window = m.window();
  IngestTotals totals;
  std::atomic<bool> stop{false};
  std::vector<std::string> errors(static_cast<std::size_t>(f.producers));
  std::vector<std::thread> threads;
  for (int i = 0; i < f.producers; ++i) {
    threads.emplace_back([&, i] {
      const auto u = static_cast<std::size_t>(i);
      Pacer pacer(
          0, f.batch, f.check ? f.max_inflight : 0, [&] { return SlowestReceived(consumers); },
          m.end());
      errors[u] = RunProducer(conns[u], *books[u], f, m, pacer, totals, stop);
    });
  }
  std::uint64_t last_sent = 0, last_acked = 0, last_recv = 0;
  const bool finished = m.Run([&] {
    const auto sent = totals.sent.load(std::memory_order_relaxed);
    const auto acked = totals.accepted.load(std::memory_order_relaxed);
    const auto recv = TotalReceived(consumers);
    std::string line =
        fmt::format("sent {} ticks/s, accepted {} ticks/s", sent - last_sent, acked - last_acked);
    if (f.check) line += fmt::format(", delivered {}/s", recv - last_recv);
    last_sent = sent;
    last_acked = acked;
    last_recv = recv;
    return line;
  });
  stop = true;
  for (auto& t : threads) t.join();

  // Drain: the checking consumer should get every accepted tick; wait at most 3 s for it.
  const std::uint64_t accepted = totals.accepted.load();
  const auto drain_deadline = BenchClock::now() + std::chrono::seconds(3);
  while (f.check && TotalReceived(consumers) < accepted && BenchClock::now() < drain_deadline &&
         !StopRequested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::uint64_t received = TotalReceived(consumers);
  for (auto& c : consumers) c->Close();

  BenchReport r;
  r.scenario = "ingest";
  r.producers = f.producers;
  r.subscribers = f.check ? 1 : 0;
  m.Fill(r);
  r.published = totals.sent_window.load();
  r.accepted = totals.accepted_window.load();
  LatencyHistogram latency;  // the ticks carry no producer stamp: no latency here
  for (const auto& c : consumers) c->counters.AddTo(r, latency, true);
  if (f.check && accepted > received) r.integrity.lost += accepted - received;
  // Every frame is acked in full: what the server did not accept, and did not say it refused,
  // is lost too.
  const std::uint64_t sent = totals.sent.load();
  const std::uint64_t refused = totals.refused.load();
  if (sent > accepted + refused) r.integrity.lost += sent - accepted - refused;
  for (const auto& e : errors) {
    if (e.empty()) continue;
    ++r.integrity.errors;
    if (r.first_error.empty()) r.first_error = "producer: " + e;
  }
  r.extras.push_back({"topics", "topics", std::to_string(f.topics)});
  r.extras.push_back({"batch", "ticks per PUBLISH", std::to_string(f.batch)});
  r.extras.push_back({"frames_sent", "PUBLISH frames sent", std::to_string(totals.frames_sent)});
  r.extras.push_back({"acks", "PUBLISH_ACKs received", std::to_string(totals.acks)});
  if (totals.topic_limit_errors.load() != 0) {
    r.extras.push_back({"refused", "ticks refused (TOPIC_LIMIT)", std::to_string(refused)});
    r.extras.push_back(
        {"topic_limit_errors", "TOPIC_LIMIT errors", std::to_string(totals.topic_limit_errors)});
  }
  if (totals.acks.load() != totals.frames_sent.load()) ++r.integrity.errors;
  session.Close();
  return FinishBench(r, f.run.json, !finished);
}

}  // namespace

void RegisterBenchIngest(CLI::App& bench, int& exit_code) {
  auto flags = std::make_shared<IngestFlags>();
  auto* cmd = &AddTickwireBench(bench, "ingest",
                                "P producers of acked PUBLISH frames over many topics: ticks "
                                "accepted/s (--check: one consumer of '*' verifies delivery)",
                                flags->conn, flags->run);
  cmd->add_option("--producers", flags->producers, "Producer connections")->capture_default_str();
  cmd->add_option("--batch", flags->batch, "Ticks per PUBLISH frame")->capture_default_str();
  cmd->add_option("--topics", flags->topics, "Topics ticked round-robin")->capture_default_str();
  cmd->add_option("--in-flight", flags->in_flight, "Unacknowledged frames per producer")
      ->capture_default_str();
  cmd->add_flag("--check", flags->check,
                "One TICK consumer of '*' checks every accepted tick arrives once, in order");
  cmd->add_option("--max-inflight", flags->max_inflight,
                  "With --check: max ticks the producers run ahead of the consumer")
      ->capture_default_str();
  cmd->add_option("--prefix", flags->prefix, "Topic name prefix")->capture_default_str();
  cmd->add_option("--transport", flags->transport,
                  "tcp, or ws: producers (and the --check consumer) over WebSocket to --addr "
                  "(the server's WS_LISTEN_ADDR; with --spawn its own)")
      ->check(CLI::IsMember({"tcp", "ws"}))
      ->capture_default_str();
  cmd->add_option("--ws-path", flags->ws_path, "WebSocket path (--transport ws)")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunIngest(*flags); });
}

}  // namespace tickwire::cli
