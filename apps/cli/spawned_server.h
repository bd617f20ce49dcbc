#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace tickwire::cli {

// CPU and memory of a process, from /proc.
struct ProcStats {
  double cpu_seconds = 0;         // utime + stime
  std::uint64_t peak_rss_kb = 0;  // VmHWM
  std::uint64_t rss_kb = 0;       // VmRSS
};
std::optional<ProcStats> ReadProcStats(pid_t pid);

// A tickwire-server child started by the bench on 127.0.0.1 with a free port. Only this child's
// PID is ever signalled. Its output goes to a log file in a private temp dir, which is removed on
// a clean stop and kept (and named) when something went wrong.
class SpawnedServer {
 public:
  SpawnedServer() = default;
  ~SpawnedServer();
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;

  // Forks and execs `binary` with the current environment plus `env` (LISTEN_ADDR and PORT_FILE
  // are set here, METRICS_ADDR to a free loopback port unless `env` has it) and its open-file
  // limit raised to the hard limit, then waits up to `timeout` for the port file. Call before
  // starting threads.
  bool Start(const std::string& binary, const std::map<std::string, std::string>& env,
             std::chrono::milliseconds timeout, std::string& error);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status text ("exit 0", ...).
  std::string Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  std::uint16_t port() const { return port_; }
  // The WebSocket port when `env` set WS_LISTEN_ADDR (0 otherwise).
  std::uint16_t ws_port() const { return ws_port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  bool Reap(bool block);
  std::string StatusText() const;

  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::uint16_t port_ = 0;
  std::uint16_t ws_port_ = 0;
  std::string dir_;
  std::string port_file_;
  std::string log_path_;
  bool keep_dir_ = false;
};

}  // namespace tickwire::cli
