#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "support/temp_dir.h"

namespace tickwire::testing {

// A "VmRSS:"-style field of /proc/<pid>/status, in kB (nullopt when the process or the field is
// not there).
std::optional<std::uint64_t> ProcStatusKb(pid_t pid, const std::string& field);

// Environment overrides for the server. A value of std::nullopt removes the variable from the
// defaults (e.g. {"STREAM_USER", std::nullopt} to test a missing required setting).
using EnvOverrides = std::map<std::string, std::optional<std::string>>;

// One real `tickwire-server` process for a test. The child gets a clean environment: the test
// defaults (STREAM_USER=test, STREAM_PASS=secret, LISTEN_ADDR=127.0.0.1:0, PORT_FILE in a
// private temp dir, WORKERS=2, DRAIN_PERIOD=0s, METRICS_ADDR=127.0.0.1:0 with METRICS_PORT_FILE in
// the temp dir) with the overrides merged on top, plus sanitizer options passed through from the
// test's own environment. stdout and stderr go to files in the temp dir.
//
// Only this object's own child PID is ever signalled, and never after it has been reaped. The
// child is also killed by the kernel if the test process dies (PR_SET_PDEATHSIG), so a crashed
// test leaves no server behind. The destructor stops the server.
class ServerProcess {
 public:
  static constexpr const char* kUser = "test";
  static constexpr const char* kPass = "secret";

  explicit ServerProcess(EnvOverrides overrides = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Spawns the server and waits until it has written its port to PORT_FILE. Returns false (see
  // error()) when the binary is missing, the process exits first, or `timeout` passes.
  bool Start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Spawns the server for a run that is expected to end by itself (bad config); does not wait
  // for a port. Returns false when it could not be spawned.
  bool Spawn();

  // Bound TCP port, valid after Start() returned true.
  std::uint16_t port() const { return port_; }
  // Bound metrics (HTTP) port, valid after Start() returned true; 0 when the server was
  // started without the metrics endpoint.
  std::uint16_t metrics_port() const { return metrics_port_; }
  // Bound WebSocket port, valid after Start() returned true; 0 unless the test set
  // WS_LISTEN_ADDR.
  std::uint16_t ws_port() const { return ws_port_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then wait up to `grace`; SIGKILL after that. Returns the exit code (see
  // ExitCode()). Does nothing but return the recorded code when the process already ended.
  // The first Stop() after the process ended (the destructor's included) also checks its log:
  // every stdout line must be a JSON object (CheckJsonLogLines), else the running test fails.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Waits up to `timeout` for the process to end by itself; returns its exit code or nullopt.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);
  // Exit status when the process has ended: the exit code, or 128 + signal number when it was
  // killed by a signal. nullopt while it runs.
  std::optional<int> ExitCode();
  bool Running() { return pid_ > 0 && !ExitCode().has_value(); }

  // What the server wrote to stdout (JSON log lines) and stderr so far.
  std::string Logs() const;
  std::string Stderr() const;
  // Why Start() failed, with the tail of stderr; for assertion messages.
  const std::string& error() const { return error_; }
  // Short description for assertion messages: pid, exit state, stderr tail and last log lines.
  std::string Describe();

  // Before Start(): the server's stdout is a pipe (of one page) that nothing reads until
  // ResumeStdout(), as with a stalled log shipper. From then on (and from Stop() at the latest)
  // a thread copies it to the log file that Logs() reads.
  void StallStdout() { stall_stdout_ = true; }
  void ResumeStdout();

  // Path of the server binary: $TICKWIRE_SERVER_BIN if set, else the build's compile-time path.
  static std::string BinaryPath();

 private:
  // Reaps the child without blocking; records its status. True when it has ended.
  bool Reap();
  // Once per process, after it ended: fails the running test when a stdout line is not a JSON
  // log line.
  void CheckLogsOnce();

  TempDir dir_;
  EnvOverrides overrides_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::uint16_t port_ = 0;
  std::uint16_t metrics_port_ = 0;
  std::uint16_t ws_port_ = 0;
  std::string error_;
  bool logs_checked_ = false;
  bool stall_stdout_ = false;
  int stdout_pipe_ = -1;  // read end while stdout is a pipe
  std::thread stdout_reader_;
};

}  // namespace tickwire::testing
