// tickwire: command-line client for a tickwire server (sub, pub, bench, passwd).

#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"tickwire: command-line client for tickwire servers", "tickwire"};
  app.set_version_flag("--version", std::string("tickwire ") + TICKWIRE_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  tickwire::cli::RegisterSub(app, exit_code);
  tickwire::cli::RegisterPub(app, exit_code);
  tickwire::cli::RegisterBench(app, exit_code);
  tickwire::cli::RegisterPasswd(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
