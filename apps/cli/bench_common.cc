#include "bench_common.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

#include <fmt/core.h>

namespace tickwire::cli {

std::uint64_t RaiseFdLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) getrlimit(RLIMIT_NOFILE, &lim);
  }
  return static_cast<std::uint64_t>(lim.rlim_cur);
}

void AddBenchRunFlags(CLI::App& cmd, BenchRunFlags& flags, bool spawn) {
  cmd.add_option("--duration", flags.duration, "Measured time")->capture_default_str();
  cmd.add_option("--warmup", flags.warmup, "Unmeasured time first")->capture_default_str();
  cmd.add_flag("--json", flags.json, "Print one JSON object instead of a table");
  if (spawn) {
    cmd.add_option("--spawn", flags.spawn,
                   "Start this tickwire-server binary on 127.0.0.1 (free port) for the run");
    cmd.add_option("--server-env", flags.server_env, "Extra K=V for the spawned server");
  }
  cmd.add_option("--server-pid", flags.server_pid,
                 "PID of the server under test, for its CPU and memory figures");
  cmd.add_option("--io-threads", flags.io_threads,
                 "Threads running the consumers (0 = half the hardware threads)");
}

CLI::App& AddTickwireBench(CLI::App& bench, const std::string& name, const std::string& description,
                           ConnectionFlags& conn, BenchRunFlags& run) {
  auto* cmd = bench.add_subcommand(name, description);
  AddConnectionFlags(*cmd, conn);
  AddBenchRunFlags(*cmd, run, true);
  return *cmd;
}

bool CheckFlags(bool ok, std::string_view message) {
  if (!ok) PrintError(message);
  return ok;
}

std::optional<BenchRunFlags::Times> BenchRunFlags::ParseTimes() const {
  const auto d = ParseDurationFlag(duration);
  const auto w = ParseDurationFlag(warmup);
  if (!d || d->count() <= 0 || !w) {
    PrintError("invalid --duration or --warmup");
    return std::nullopt;
  }
  return Times{*w, *d};
}

IoPool::IoPool(unsigned threads) : io_(1), work_(boost::asio::make_work_guard(io_)) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency() / 2);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void IoPool::Stop() {
  work_.reset();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Measurement::Measurement(std::chrono::milliseconds warmup, std::chrono::milliseconds duration,
                         std::optional<pid_t> server_pid)
    : server_pid_(server_pid),
      t0_(BenchClock::now()),
      t_window_(t0_ + warmup),
      t_end_(t_window_ + duration),
      stopped_(t_end_) {
  const std::int64_t rt0 = RealtimeNs();
  window_.start_ns = rt0 + std::chrono::nanoseconds(warmup).count();
  window_.end_ns = window_.start_ns + std::chrono::nanoseconds(duration).count();
  cpu_start_ = SelfCpuSeconds();
}

void Measurement::Snapshot(double& cpu, std::optional<ProcStats>& server) const {
  cpu = SelfCpuSeconds();
  if (server_pid_) server = ReadProcStats(*server_pid_);
}

bool Measurement::Run(const std::function<std::string()>& progress) {
  bool window_started = false;
  bool interrupted = false;
  auto next_report = t0_ + std::chrono::seconds(1);
  while (BenchClock::now() < t_end_) {
    if (StopRequested()) {
      interrupted = true;
      break;
    }
    const auto now = BenchClock::now();
    if (!window_started && now >= t_window_) {
      window_started = true;
      Snapshot(cpu_start_, server_start_);
    }
    if (now >= next_report) {
      const std::string line = progress();
      std::fprintf(stderr, "[%5.1fs]%s %s\n", std::chrono::duration<double>(now - t0_).count(),
                   window_started ? "" : " (warmup)", line.c_str());
      next_report += std::chrono::seconds(1);
    }
    std::this_thread::sleep_until(
        std::min({next_report, t_end_, now + std::chrono::milliseconds(20)}));
  }
  if (!window_started) Snapshot(cpu_start_, server_start_);  // nothing meaningful measured
  stopped_ = std::min(BenchClock::now(), t_end_);
  Snapshot(cpu_end_, server_end_);
  return !interrupted;
}

void Measurement::Fill(BenchReport& report) const {
  report.seconds = std::chrono::duration<double>(stopped_ - std::min(t_window_, stopped_)).count();
  report.bench_cpu = cpu_end_ - cpu_start_;
  if (server_start_ && server_end_) {
    report.server_cpu = server_end_->cpu_seconds - server_start_->cpu_seconds;
    report.server_peak_rss_kb = server_end_->peak_rss_kb;
  }
}

Pacer::Pacer(double rate, std::size_t batch, std::uint64_t max_inflight,
             std::function<std::optional<std::uint64_t>()> slowest, BenchClock::time_point end)
    : rate_(rate),
      batch_(batch),
      max_inflight_(max_inflight),
      slowest_(std::move(slowest)),
      start_(BenchClock::now()),
      end_(end) {}

std::size_t Pacer::Next(std::uint64_t sent) {
  if (rate_ > 0) {
    const double elapsed = std::chrono::duration<double>(BenchClock::now() - start_).count();
    const auto due = static_cast<std::uint64_t>(elapsed * rate_);
    if (due <= sent) {
      // Pacing, not synchronisation: wake when the next message is due.
      const auto next =
          start_ + std::chrono::duration_cast<BenchClock::duration>(
                       std::chrono::duration<double>(static_cast<double>(sent + 1) / rate_));
      std::this_thread::sleep_until(std::min(next, end_));
      return 0;
    }
    return static_cast<std::size_t>(std::min<std::uint64_t>(batch_, due - sent));
  }
  if (max_inflight_ != 0 && slowest_) {
    const auto slowest = slowest_();
    if (slowest && sent > *slowest + max_inflight_) {
      // Flow control, not synchronisation: let the consumers catch up a little.
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      return 0;
    }
  }
  return batch_;
}

int FinishBench(const BenchReport& report, bool json, bool interrupted) {
  PrintReport(report, json);
  if (interrupted) return kExitInterrupted;
  if (!report.Passed()) {
    PrintError(report.conns ? "check failed (connections not ready or not alive, or errors above)"
                            : "integrity check failed (gaps, duplicates, reordering, loss or "
                              "errors above)");
    return kExitFailure;
  }
  return 0;
}

}  // namespace tickwire::cli
