#include "peer_bench.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "bench_common.h"
#include "bench_consumer.h"
#include "common.h"

namespace tickwire::peers {
namespace {

using cli::BenchClock;

struct PeerFlags {
  std::string addr;
  std::string user = "bench";
  std::string pass = "bench";
  cli::BenchRunFlags run;
  std::string scenario;
  int subscribers = 10;
  double rate = 0;                    // msgs/s; 0 = as fast as the subscribers take them
  std::size_t batch = 100;            // messages per Publish call
  std::uint64_t max_inflight = 2000;  // with rate 0: messages ahead of the slowest subscriber
  std::size_t payload = 64;
  std::string subject = "bench";
  cli::ConnsFlags conns;
};

constexpr std::size_t kHeader = 16;  // seq + send time

// One subscriber's checks: the publisher numbers messages 1, 2, 3, ...
class PeerConsumer {
 public:
  explicit PeerConsumer(const cli::Window& window) : counters(window) {}

  void OnMessage(std::span<const char> payload) {
    const std::int64_t now = cli::RealtimeNs();
    if (payload.size() < kHeader) {
      counters.OnError("message shorter than its header", false);
      return;
    }
    std::uint64_t seq = 0;
    std::int64_t ts = 0;
    std::memcpy(&seq, payload.data(), sizeof(seq));
    std::memcpy(&ts, payload.data() + sizeof(seq), sizeof(ts));
    cli::CheckSeq(last_, seq, seq - 1, counters.integrity());
    counters.OnRecord(now, ts);
    counters.OnBatch(now, 1, payload.size());
  }

  cli::ConsumerCounters counters;

 private:
  std::uint64_t last_ = 0;
};

std::optional<PeerAddress> Address(const PeerFlags& f) {
  const auto hp = cli::ParseHostPort(f.addr);
  if (!hp) {
    cli::PrintError("invalid --addr '" + f.addr + "': expected host:port");
    return std::nullopt;
  }
  return PeerAddress{hp->host, hp->port, f.user, f.pass};
}

int RunFlow(const PeerFlags& f, const std::string& system, PubSubSystem& sys) {
  const auto times = f.run.ParseTimes();
  if (!times) return 2;
  if (!cli::CheckFlags(f.subscribers >= 1 && f.batch >= 1 && f.rate >= 0 && f.payload >= kHeader,
                       "--subscribers and --batch must be >= 1, --rate >= 0, --payload >= 16")) {
    return 2;
  }
  cli::InstallStopSignals();
  cli::RaiseFdLimit();
  cli::Window window;  // set below, before the publisher starts
  std::vector<std::unique_ptr<PeerConsumer>> consumers;
  for (int i = 0; i < f.subscribers; ++i)
    consumers.push_back(std::make_unique<PeerConsumer>(window));
  std::atomic<std::uint64_t> async_errors{0};
  std::mutex error_mu;
  std::string first_async_error;
  auto err = sys.OpenSubscribers(
      f.subscribers, f.subject, f.run.io_threads,
      [&](int i, std::span<const char> p) { consumers[static_cast<std::size_t>(i)]->OnMessage(p); },
      [&](int i, const std::string& what) {
        async_errors.fetch_add(1);
        std::lock_guard lock(error_mu);
        if (first_async_error.empty())
          first_async_error = fmt::format("subscriber {}: {}", i, what);
      });
  if (err.empty()) err = sys.OpenPublisher();
  if (!err.empty()) {
    sys.Close();
    cli::PrintError(err);
    return 1;
  }

  std::optional<pid_t> pid;
  if (f.run.server_pid > 0) pid = static_cast<pid_t>(f.run.server_pid);
  cli::Measurement m(times->warmup, times->duration, pid);
  window = m.window();
  std::vector<char> buf(f.batch * f.payload, 'x');
  const cli::PublishOutcome o =
      cli::RunPublisher(m, f.rate, f.batch, f.max_inflight, consumers,
                        [&](std::uint64_t sent, std::size_t n, std::int64_t ts) {
                          for (std::size_t i = 0; i < n; ++i) {
                            const std::uint64_t seq = sent + i + 1;
                            std::memcpy(buf.data() + i * f.payload, &seq, sizeof(seq));
                            std::memcpy(buf.data() + i * f.payload + sizeof(seq), &ts, sizeof(ts));
                          }
                          return sys.Publish(f.subject, buf, f.payload, n);
                        });
  sys.Close();

  cli::BenchReport r;
  r.system = system;
  r.scenario = f.scenario;
  r.subscribers = f.subscribers;
  r.payload_bytes = f.payload;
  r.rate = f.rate;
  cli::FillFanoutReport(r, m, o, consumers, false);
  r.integrity.errors += async_errors.load();
  if (r.first_error.empty()) r.first_error = first_async_error;
  return cli::FinishBench(r, f.run.json, !o.finished);
}

int RunConns(const PeerFlags& f, const std::string& system, PubSubSystem& sys) {
  const auto options = f.conns.Options();
  const auto address = Address(f);
  if (!options || !address) return 2;
  cli::InstallStopSignals();
  const auto protocol = sys.MakeIdleProtocol();
  std::optional<int> pid;
  if (f.conns.server_pid > 0) pid = f.conns.server_pid;
  bool interrupted = false;
  cli::BenchReport r =
      cli::RunIdleConnections(*protocol, address->host, address->port, *options, pid, interrupted);
  r.system = system;
  return cli::FinishBench(r, f.conns.json, interrupted);
}

}  // namespace

cli::IdleReplies LineIdleProtocol::Feed(cli::IdleParseState& state, std::string_view data) const {
  cli::IdleReplies r;
  for (const char ch : data) {
    if (ch != '\n') {
      if (state.held < state.head.size()) state.head[state.held++] = ch;
      continue;
    }
    std::string_view line(state.head.data(), state.held);
    state.held = 0;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    for (const auto& ready : spec_.ready_lines) r.replies += line == ready ? 1 : 0;
    if (!spec_.error_prefix.empty() &&
        line.substr(0, spec_.error_prefix.size()) == spec_.error_prefix) {
      r.error = true;
    }
    if (!spec_.ping_line.empty() && line == spec_.ping_line) ++r.answers_due;
  }
  return r;
}

int PeerMain(int argc, char** argv, const std::string& tool, const std::string& system,
             std::uint16_t default_port,
             const std::function<std::unique_ptr<PubSubSystem>(const PeerAddress&)>& make) {
  CLI::App app{tool + ": the tickwire bench scenarios against " + system, tool};
  app.require_subcommand(1);
  auto flags = std::make_shared<PeerFlags>();
  flags->addr = "127.0.0.1:" + std::to_string(default_port);
  int exit_code = 0;
  auto common = [&](CLI::App& cmd) {
    cmd.add_option("--addr", flags->addr, "Server address host:port")->capture_default_str();
    cmd.add_option("--user", flags->user, "User name")->capture_default_str();
    cmd.add_option("--pass", flags->pass, "Password")->capture_default_str();
  };
  // Builds the system for --addr and runs `scenario` on it.
  auto run = [&](int (*scenario)(const PeerFlags&, const std::string&, PubSubSystem&)) {
    const auto address = Address(*flags);
    if (!address) {
      exit_code = 2;
      return;
    }
    auto sys = make(*address);
    exit_code = scenario(*flags, system, *sys);
  };
  struct Preset {
    const char* name;
    const char* description;
    int subscribers;
    double rate;
  };
  const Preset presets[] = {
      {"fanout", "1 publisher, N subscribers of one subject: delivered msgs/s, latency", 10, 0},
      {"ingest", "1 publisher, 1 subscriber: msgs/s", 1, 0},
      {"latency", "fixed rate (default 50,000 msgs/s) to 10 subscribers: latency percentiles", 10,
       50000},
  };
  for (const auto& p : presets) {
    auto* cmd = app.add_subcommand(p.name, p.description);
    common(*cmd);
    cli::AddBenchRunFlags(*cmd, flags->run, false);
    auto* subs = cmd->add_option("--subscribers", flags->subscribers, "Subscriber connections");
    auto* rate =
        cmd->add_option("--rate", flags->rate, "Msgs/s to publish (0 = as fast as possible)");
    cmd->add_option("--batch", flags->batch, "Messages per publish call")->capture_default_str();
    cmd->add_option("--max-inflight", flags->max_inflight,
                    "With --rate 0: max messages ahead of the slowest subscriber")
        ->capture_default_str();
    cmd->add_option("--payload", flags->payload, "Message bytes (>= 16)")->capture_default_str();
    cmd->add_option("--subject", flags->subject, "Subject / channel")->capture_default_str();
    subs->default_str(std::to_string(p.subscribers));
    rate->default_str(fmt::format("{:.0f}", p.rate));
    cmd->preparse_callback([flags, p](std::size_t) {
      flags->scenario = p.name;
      flags->subscribers = p.subscribers;
      flags->rate = p.rate;
    });
    cmd->callback([&run] { run(RunFlow); });
  }
  auto* conns = app.add_subcommand(
      "conns", "N idle authenticated connections with keepalives: server memory per connection");
  common(*conns);
  cli::AddConnsFlags(*conns, flags->conns);
  conns->callback([&run] { run(RunConns); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace tickwire::peers
