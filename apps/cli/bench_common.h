#pragma once

// Helpers shared by the `tickwire bench` commands.

#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "bench_report.h"
#include "common.h"
#include "spawned_server.h"

namespace tickwire::cli {

using BenchClock = std::chrono::steady_clock;

// CLOCK_REALTIME in ns: producer stamps and receipt times on one host compare directly.
inline std::int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// User + system CPU seconds of this process.
inline double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// With --spawn: starts `binary` on a free loopback port with bench credentials (defaulted in
// `conn` when unset) and `server_env` (K=V) on top, and points `conn.addr` at it. Returns false
// with the message printed; `exit_code` is 2 for a usage error, 1 otherwise. Call before any
// thread starts (it forks).
inline bool SpawnBenchServer(const std::string& binary, const std::vector<std::string>& server_env,
                             ConnectionFlags& conn, std::unique_ptr<SpawnedServer>& server,
                             int& exit_code) {
  if (conn.user.empty()) conn.user = "bench";
  if (conn.pass.empty()) conn.pass = "bench";
  std::map<std::string, std::string> env = {{"STREAM_USER", conn.user}, {"STREAM_PASS", conn.pass}};
  for (const auto& kv : server_env) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError("--server-env expects K=V, got '" + kv + "'");
      exit_code = kExitUsage;
      return false;
    }
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  server = std::make_unique<SpawnedServer>();
  std::string error;
  if (!server->Start(binary, env, std::chrono::seconds(10), error)) {
    PrintError(error);
    exit_code = kExitFailure;
    return false;
  }
  conn.addr = "127.0.0.1:" + std::to_string(server->port());
  return true;
}

// How every bench starts: with a non-empty `spawn`, a server of its own (SpawnBenchServer);
// then the client options for `conn` named `client_name`, and Ctrl-C handling. Returns nullopt
// with the message printed and `exit_code` set. Call before any thread starts (it may fork).
inline std::optional<client::ClientOptions> StartBench(
    const std::string& spawn, const std::vector<std::string>& server_env, ConnectionFlags conn,
    const std::string& client_name, std::unique_ptr<SpawnedServer>& server, int& exit_code) {
  if (!spawn.empty() && !SpawnBenchServer(spawn, server_env, conn, server, exit_code)) {
    return std::nullopt;
  }
  std::string error;
  auto options = MakeClientOptions(conn, client_name, error);
  if (!options) {
    PrintError(error);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  InstallStopSignals();
  return options;
}

// Raises this process's open-file limit to its hard limit (thousands of sockets); returns the
// limit now in force.
std::uint64_t RaiseFdLimit();

// Flags every throughput bench takes besides the connection flags.
struct BenchRunFlags {
  std::string duration = "10s";
  std::string warmup = "1s";
  bool json = false;
  std::string spawn;  // tickwire only: start this server binary for the run
  std::vector<std::string> server_env;
  int server_pid = 0;       // a server started elsewhere, for its CPU and memory figures
  unsigned io_threads = 0;  // 0 = half the hardware threads, at least 1

  // --warmup and --duration (above 0); nullopt with the message printed when they do not parse.
  struct Times {
    std::chrono::milliseconds warmup, duration;
  };
  std::optional<Times> ParseTimes() const;
};

// StartBench for the commands that take BenchRunFlags; also raises the open-file limit.
inline std::optional<client::ClientOptions> StartBench(const BenchRunFlags& run,
                                                       const ConnectionFlags& conn,
                                                       const std::string& client_name,
                                                       std::unique_ptr<SpawnedServer>& server,
                                                       int& exit_code) {
  RaiseFdLimit();
  return StartBench(run.spawn, run.server_env, conn, client_name, server, exit_code);
}

// The pid of the server under test: the spawned one, else --server-pid, else none.
inline std::optional<pid_t> ServerPid(const BenchRunFlags& run, const SpawnedServer* server) {
  if (server != nullptr) return server->pid();
  if (run.server_pid > 0) return static_cast<pid_t>(run.server_pid);
  return std::nullopt;
}

// Stops a spawned server (if any), saying so when it did not exit cleanly.
inline void StopBenchServer(std::unique_ptr<SpawnedServer>& server) {
  if (!server) return;
  const std::string status = server->Stop();
  if (status != "exit 0") PrintError("server " + status + "; log: " + server->log_path());
}

// Adds --duration, --warmup, --json, --server-pid, --io-threads and, with `spawn`, --spawn and
// --server-env to `cmd`.
void AddBenchRunFlags(CLI::App& cmd, BenchRunFlags& flags, bool spawn);
// Adds the subcommand `name` of a tickwire throughput bench to `bench`, with the connection flags
// and every BenchRunFlags flag.
CLI::App& AddTickwireBench(CLI::App& bench, const std::string& name, const std::string& description,
                           ConnectionFlags& conn, BenchRunFlags& run);
// Prints `message` and returns false unless `ok`: for checking flag values.
bool CheckFlags(bool ok, std::string_view message);

// The measurement window in CLOCK_REALTIME ns. Set before the producers start; read-only after.
struct Window {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  bool Contains(std::int64_t ns) const { return ns >= start_ns && ns < end_ns; }
};

// An io_context run by `threads` threads (0 = half the hardware threads, at least 1) until
// Stop(); the load generator's consumers share it.
class IoPool {
 public:
  explicit IoPool(unsigned threads);
  ~IoPool() { Stop(); }
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;
  boost::asio::io_context& io() { return io_; }
  // Lets the threads finish once no work is left and joins them. Idempotent.
  void Stop();

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// The timeline of one run: `warmup` unmeasured, then `duration` measured. Run() sleeps through
// it printing a progress line on stderr once a second and takes CPU snapshots of this process
// and of the server (when its pid is known) at the edges of the measured window.
class Measurement {
 public:
  Measurement(std::chrono::milliseconds warmup, std::chrono::milliseconds duration,
              std::optional<pid_t> server_pid);

  BenchClock::time_point start() const { return t0_; }
  BenchClock::time_point window_start() const { return t_window_; }
  BenchClock::time_point end() const { return t_end_; }
  const Window& window() const { return window_; }

  // Returns false when a stop signal cut the run short. `progress` returns the text of the
  // progress line (after the elapsed time).
  bool Run(const std::function<std::string()>& progress);
  // The window's length, this process's CPU and the server's CPU and peak RSS over it.
  void Fill(BenchReport& report) const;

 private:
  void Snapshot(double& cpu, std::optional<ProcStats>& server) const;

  std::optional<pid_t> server_pid_;
  BenchClock::time_point t0_, t_window_, t_end_;
  Window window_;
  BenchClock::time_point stopped_;
  double cpu_start_ = 0, cpu_end_ = 0;
  std::optional<ProcStats> server_start_, server_end_;
};

// Publisher pacing shared by every bench: at a fixed `rate` (msgs/s), or with rate 0 as fast as
// possible but at most `max_inflight` messages ahead of the slowest live consumer (0 = no limit),
// so that "as fast as possible" measures sustained delivery, not how fast queues fill.
class Pacer {
 public:
  // `slowest` returns the messages the slowest live consumer has received (nullopt: none live).
  Pacer(double rate, std::size_t batch, std::uint64_t max_inflight,
        std::function<std::optional<std::uint64_t>()> slowest, BenchClock::time_point end);
  // How many messages to send now after `sent` so far (at most `batch`); 0 after waiting a
  // little, when nothing is due yet.
  std::size_t Next(std::uint64_t sent);

 private:
  double rate_;
  std::size_t batch_;
  std::uint64_t max_inflight_;
  std::function<std::optional<std::uint64_t>()> slowest_;
  BenchClock::time_point start_, end_;
};

// How a bench ends: prints the report (table or --json), then the exit code: 130 when
// interrupted, 1 when a check failed (with a line saying so), 0 otherwise.
int FinishBench(const BenchReport& report, bool json, bool interrupted);

}  // namespace tickwire::cli
