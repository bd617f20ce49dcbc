// tickwire-server: the embedded stream server. Configuration comes from environment variables
// and flags (see --help); a bad setting stops startup with one line naming it.
#include <google/protobuf/stubs/logging.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "observability/log.h"
#include "server/server.h"

namespace {

// How long the server waits at exit for stdout to take the log lines still queued.
constexpr std::chrono::seconds kLogFlushTimeout{2};

tickwire::obs::Level ToLogLevel(tickwire::config::LogLevel level) {
  using tickwire::config::LogLevel;
  using tickwire::obs::Level;
  switch (level) {
    case LogLevel::kDebug:
      return Level::kDebug;
    case LogLevel::kInfo:
      return Level::kInfo;
    case LogLevel::kWarn:
      return Level::kWarn;
    case LogLevel::kError:
      return Level::kError;
  }
  return Level::kInfo;
}

}  // namespace

int main(int argc, char** argv) {
  // The stop and reload signals are blocked before any thread starts (the log writer, the
  // password hashing pool, the workers), so every thread inherits the mask: the signals stay
  // pending until Server::Run takes them with sigtimedwait(), and a SIGTERM that arrives while
  // the server is still starting is never delivered to a thread with the default action.
  tickwire::server::BlockControlSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = tickwire::config::ParseServerConfig(args, tickwire::config::ProcessEnv());
  if (auto* exit = std::get_if<tickwire::config::ParseExit>(&parsed)) {
    std::cout << exit->text;
    return exit->code;
  }
  if (auto* err = std::get_if<tickwire::config::ParseError>(&parsed)) {
    std::cerr << "tickwire-server: " << err->message << "\n";
    return 2;
  }
  auto& config = std::get<tickwire::config::Config>(parsed);
  tickwire::obs::SetLogLevel(ToLogLevel(config.log_level));
  tickwire::obs::SetNoisyLogLimit(config.log_rate_limit);
  // From here on no thread waits for stdout: lines are queued for the log writer's thread, and
  // dropped and counted when stdout stalls. Whatever is queued at exit gets kLogFlushTimeout.
  tickwire::obs::StartLogWriter();
  // Hostile payloads (e.g. invalid UTF-8 in strings) make protobuf log to stderr; the session
  // already answers them with ERROR frames and our own logs.
  google::protobuf::SetLogHandler(nullptr);

  // SIGHUP parses the same flags and environment again (CONFIG_FILE is re-read).
  tickwire::server::Server server(std::move(config), [args] {
    return tickwire::config::ParseServerConfig(args, tickwire::config::ProcessEnv());
  });
  if (auto err = server.Open(); !err.empty()) {
    tickwire::obs::StopLogWriter(kLogFlushTimeout);
    std::cerr << "tickwire-server: " << err << "\n";
    return 1;
  }
  const int code = server.Run();
  tickwire::obs::StopLogWriter(kLogFlushTimeout);
  return code;
}
