// tickwire-server: the embedded stream server. Configuration comes from environment variables
// and flags (see --help); a bad setting stops startup with one line naming it.
#include <google/protobuf/stubs/logging.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "observability/log.h"
#include "server/server.h"

namespace {

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
  // Hostile payloads (e.g. invalid UTF-8 in strings) make protobuf log to stderr; the session
  // already answers them with ERROR frames and our own logs.
  google::protobuf::SetLogHandler(nullptr);

  tickwire::server::Server server(std::move(config));
  if (auto err = server.Open(); !err.empty()) {
    std::cerr << "tickwire-server: " << err << "\n";
    return 1;
  }
  return server.Run();
}
