// tickwire bench fanout (and its fixed-rate preset, bench latency): one producer, N TICK
// consumers on one topic; measures throughput, end-to-end latency (producer send time ->
// consumer receipt, both CLOCK_REALTIME on one host), and per-topic seq integrity. Consumers
// share a small io_context thread pool and read raw DATA_BATCH payloads with
// protocol::ScanDataBatch (no protobuf objects).

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_common.h"
#include "bench_consumer.h"
#include "client/codec.h"
#include "commands.h"
#include "common.h"
#include "raw_connection.h"
#include "spawned_server.h"

namespace tickwire::cli {
namespace {

struct FanoutFlags {
  ConnectionFlags conn;
  BenchRunFlags run;
  std::string scenario = "fanout";  // or "latency": the same run, a fixed rate by default
  int subscribers = 10;
  double rate = 0;  // ticks/s; 0 = as fast as the server takes them
  std::string topic = "bench";
  // What the consumers subscribe to: the topic itself (empty), "*", or a prefix pattern such as
  // "bench.*" that matches the topic (to compare the fan-out paths on one workload).
  std::string subscribe;
  std::string pub_addr;     // the producer's server when not --addr (multi-instance runs)
  std::size_t batch = 100;  // max ticks per PUBLISH frame
  // With --rate 0: the producer stays at most this many ticks ahead of the slowest live
  // consumer, so "as fast as possible" measures sustained fan-out instead of overrunning the
  // server's per-connection output limit (0 = no limit: overrun and count slow consumers).
  std::uint64_t max_inflight = 2000;
  // Extra consumers that subscribe like the others and then never read (slow-consumer test):
  // the server must drop them without slowing anyone else down.
  int stalled = 0;
  // "tcp", or "ws": every connection (consumers, producer, stalled ones) over WebSocket, to
  // --addr (the server's WS_LISTEN_ADDR) at --ws-path; with --spawn the server gets a
  // WebSocket endpoint of its own.
  std::string transport = "tcp";
  std::string ws_path = "/";
};

// With --spawn the spawned server's address replaces --addr/TICKWIRE_ADDR.
int RunFanout(const FanoutFlags& f) {
  if (!CheckFlags(f.subscribers >= 1 && f.batch >= 1 && f.rate >= 0,
                  "--subscribers and --batch must be >= 1, --rate >= 0")) {
    return kExitUsage;
  }
  const std::string pattern = f.subscribe.empty() ? f.topic : f.subscribe;
  const bool matches =
      pattern == "*" || pattern == f.topic ||
      (pattern.size() >= 2 && pattern.ends_with(".*") &&
       f.topic.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1)));
  if (!CheckFlags(matches,
                  "--subscribe must be the --topic, '*' or a prefix pattern ('P.*') that "
                  "matches the --topic")) {
    return kExitUsage;
  }
  const bool ws = f.transport == "ws";
  if (!CheckFlags(ws || f.transport == "tcp", "--transport must be tcp or ws") ||
      !CheckFlags(!ws || (!f.conn.tls && f.pub_addr.empty()),
                  "--transport ws: no --tls or --pub-addr (plain ws:// to one server)")) {
    return kExitUsage;
  }
  BenchRunFlags run = f.run;
  if (ws && !run.spawn.empty()) run.server_env.push_back("WS_LISTEN_ADDR=127.0.0.1:0");
  BenchSession session;
  if (!session.Open(run, f.conn, "tickwire-bench")) return session.exit_code();
  client::ClientOptions base = session.base();
  if (ws && session.ws_port() != 0) base.port = session.ws_port();
  auto& consumers = session.consumers;
  if (auto err = ws ? ConnectWsTickConsumers(base, f.ws_path, session.io(), f.subscribers,
                                             {pattern}, session.window, consumers)
                    : ConnectTickConsumers(base, session.io(), f.subscribers, {pattern},
                                           session.window, consumers);
      !err.empty()) {
    return session.Fail(err);
  }
  std::vector<RawConnection> stalled(static_cast<std::size_t>(std::max(0, f.stalled)));
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    auto o = base;
    o.client_name += "-stalled";
    if (ws) stalled[i].UseWebSocket(f.ws_path);
    auto err = stalled[i].Open(session.io(), o, 4096);
    if (err.empty()) {
      err =
          stalled[i].Send(client::codec::EncodeSubscribe(1, client::Mode::kTick, {pattern}, 0, 0));
    }
    if (err.empty()) err = stalled[i].Expect(protocol::FrameType::kSubscribeOk);
    if (!err.empty()) return session.Fail(fmt::format("stalled consumer {}: {}", i, err));
  }
  const auto popts = ProducerOptions(base, f.pub_addr);
  if (!popts) return session.Fail("--pub-addr: expected host:port, got '" + f.pub_addr + "'");
  // The producer writes its PUBLISH frames (unacked) on a blocking socket from the publishing
  // thread itself, as the peers' publishers do: no hand-off to an io thread between stamping a
  // tick and writing it, so latency measures the server, not a thread wake-up on the load
  // generator's core.
  RawConnection producer;
  if (ws) producer.UseWebSocket(f.ws_path);
  if (auto err = producer.Open(session.io(), *popts); !err.empty()) {
    return session.Fail("producer connect: " + err);
  }
  auto last_heartbeat = BenchClock::now();

  Measurement m(session.times().warmup, session.times().duration, session.server_pid());
  session.window = m.window();
  std::vector<client::Tick> ticks(f.batch, client::Tick{f.topic, 100.0, 1.0, 0, 0, 0});
  const PublishOutcome o = RunPublisher(
      m, f.rate, f.batch, f.max_inflight, consumers,
      [&](std::uint64_t sent, std::size_t n, std::int64_t ts) -> std::string {
        for (std::size_t i = 0; i < n; ++i) {
          ticks[i].ts_ns = ts;
          ticks[i].price = 100.0 + static_cast<double>((sent + i) % 1000) * 0.01;
        }
        std::string frame =
            client::codec::EncodePublish(0, std::span<const client::Tick>(ticks.data(), n), false);
        // Only HEARTBEAT frames keep a connection alive (PROTOCOL S2): one every 10 s.
        if (const auto now = BenchClock::now(); now - last_heartbeat > std::chrono::seconds(10)) {
          frame += client::codec::EncodeHeartbeat(RealtimeNs() / 1'000'000);
          last_heartbeat = now;
        }
        return producer.Send(frame);
      });
  for (auto& c : consumers) c->Close();  // after this no consumer handler runs

  BenchReport r;
  r.scenario = f.scenario;
  r.subscribers = f.subscribers;
  r.rate = f.rate;
  FillFanoutReport(r, m, o, consumers, true);
  if (ws) r.extras.push_back({"transport", "transport", "ws"});
  if (!stalled.empty()) {
    int dropped = 0;
    for (auto& st : stalled) dropped += st.DroppedByServer() ? 1 : 0;
    r.extras.push_back({"stalled", "stalled consumers", std::to_string(stalled.size())});
    r.extras.push_back({"stalled_dropped", "stalled consumers dropped", std::to_string(dropped)});
  }
  stalled.clear();
  session.Close();
  return FinishBench(r, f.run.json, !o.finished);
}

void AddFanoutCommand(CLI::App& bench, int& exit_code, const std::string& name,
                      const std::string& description, int subscribers, double rate) {
  auto flags = std::make_shared<FanoutFlags>();
  flags->scenario = name;
  flags->subscribers = subscribers;
  flags->rate = rate;
  auto* cmd = &AddTickwireBench(bench, name, description, flags->conn, flags->run);
  cmd->add_option("--subscribers", flags->subscribers, "Consumer connections")
      ->capture_default_str();
  cmd->add_option("--rate", flags->rate, "Ticks/s to publish (0 = as fast as possible)")
      ->capture_default_str();
  cmd->add_option("--topic", flags->topic, "Topic")->capture_default_str();
  cmd->add_option("--subscribe", flags->subscribe,
                  "What the consumers subscribe to: the --topic (default), '*', or a prefix "
                  "pattern such as 'bench.*' that matches it");
  cmd->add_option("--pub-addr", flags->pub_addr,
                  "Publish through this server (host:port) instead of --addr: consumers on one "
                  "instance, the producer on another");
  cmd->add_option("--stalled", flags->stalled,
                  "Extra consumers that subscribe and never read (the server must drop them)")
      ->capture_default_str();
  cmd->add_option("--batch", flags->batch, "Max ticks per PUBLISH frame")->capture_default_str();
  cmd->add_option("--transport", flags->transport,
                  "tcp, or ws: every connection over WebSocket to --addr (the server's "
                  "WS_LISTEN_ADDR; with --spawn its own)")
      ->check(CLI::IsMember({"tcp", "ws"}))
      ->capture_default_str();
  cmd->add_option("--ws-path", flags->ws_path, "WebSocket path (--transport ws)")
      ->capture_default_str();
  cmd->add_option("--max-inflight", flags->max_inflight,
                  "With --rate 0: max ticks ahead of the slowest consumer (0 = unlimited)")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunFanout(*flags); });
}

}  // namespace

void RegisterBench(CLI::App& app, int& exit_code) {
  auto* bench = app.add_subcommand("bench", "Load generators");
  bench->require_subcommand(1);
  AddFanoutCommand(*bench, exit_code, "fanout",
                   "1 producer, N TICK consumers on one topic: throughput, latency, integrity", 10,
                   0);
  AddFanoutCommand(*bench, exit_code, "latency",
                   "fanout at a fixed rate (default 50,000 ticks/s to 10 consumers): latency "
                   "percentiles, integrity",
                   10, 50000);
  RegisterBenchIngest(*bench, exit_code);
  RegisterBenchConns(*bench, exit_code);
  RegisterBenchBars(*bench, exit_code);
  RegisterBenchAuth(*bench, exit_code);
}

}  // namespace tickwire::cli
