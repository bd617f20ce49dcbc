// tickwire bench conns: N idle authenticated connections (AUTH, one TICK SUBSCRIBE to a topic
// nobody publishes, a HEARTBEAT every --heartbeat as PROTOCOL.md S2 requires), held open by one
// io thread; reports the server's RSS before and after, bytes per connection and the figure for
// 100,000 connections. Needs the server's pid (--spawn or --server-pid) for the memory figures.

#include <memory>
#include <string>

#include "bench_common.h"
#include "commands.h"
#include "common.h"
#include "idle_connections.h"
#include "spawned_server.h"

namespace tickwire::cli {
namespace {

struct BenchConnsFlags {
  ConnectionFlags conn;
  ConnsFlags conns;
  std::string spawn;
  std::vector<std::string> server_env;
  std::string topic = "idle.none";
};

int RunConns(const BenchConnsFlags& f) {
  const auto options = f.conns.Options();
  if (!options) return kExitUsage;
  RaiseFdLimit();
  std::unique_ptr<SpawnedServer> server;
  int rc = 0;
  const auto base = StartBench(f.spawn, f.server_env, f.conn, "tickwire-bench-conns", server, rc);
  if (!base) return rc;
  std::optional<int> pid;
  if (server) pid = server->pid();
  if (!pid && f.conns.server_pid > 0) pid = f.conns.server_pid;
  const TickwireIdleProtocol protocol(base->username, base->password, f.topic);
  bool interrupted = false;
  const BenchReport r =
      RunIdleConnections(protocol, base->host, base->port, *options, pid, interrupted);
  StopBenchServer(server);
  return FinishBench(r, f.conns.json, interrupted);
}

}  // namespace

void RegisterBenchConns(CLI::App& bench, int& exit_code) {
  auto flags = std::make_shared<BenchConnsFlags>();
  auto* cmd = bench.add_subcommand(
      "conns", "N idle authenticated connections with heartbeats: server memory per connection");
  AddConnectionFlags(*cmd, flags->conn);
  AddConnsFlags(*cmd, flags->conns);
  cmd->add_option("--spawn", flags->spawn,
                  "Start this tickwire-server binary on 127.0.0.1 (free port) for the run");
  cmd->add_option("--server-env", flags->server_env, "Extra K=V for the spawned server");
  cmd->add_option("--topic", flags->topic, "Topic each connection subscribes to ('' = none)")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunConns(*flags); });
}

}  // namespace tickwire::cli
