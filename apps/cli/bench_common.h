#pragma once

// Helpers shared by the `tickwire bench` commands.

#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common.h"
#include "spawned_server.h"

namespace tickwire::cli {

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
      exit_code = 2;
      return false;
    }
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  server = std::make_unique<SpawnedServer>();
  std::string error;
  if (!server->Start(binary, env, std::chrono::seconds(10), error)) {
    PrintError(error);
    exit_code = 1;
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
    exit_code = 2;
    return std::nullopt;
  }
  InstallStopSignals();
  return options;
}

}  // namespace tickwire::cli
