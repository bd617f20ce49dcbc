// tickwire: command-line client for a tickwire server (sub, pub, topics, bench, passwd).

#include <CLI/CLI.hpp>

#include "commands.h"
#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"tickwire: command-line client for tickwire servers", "tickwire"};
  app.set_version_flag("--version", std::string("tickwire ") + TICKWIRE_VERSION);
  app.require_subcommand(1);
  int exit_code = tickwire::cli::kExitOk;
  tickwire::cli::RegisterSub(app, exit_code);
  tickwire::cli::RegisterPub(app, exit_code);
  tickwire::cli::RegisterTopics(app, exit_code);
  tickwire::cli::RegisterBench(app, exit_code);
  tickwire::cli::RegisterPasswd(app, exit_code);
  app.footer(tickwire::cli::ExitCodesHelp());
  for (CLI::App* cmd : app.get_subcommands({})) {
    const std::string own = cmd->get_footer();
    cmd->footer((own.empty() ? "" : own + "\n\n") + tickwire::cli::ExitCodesHelp());
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here with 0; every other parse error is a usage error.
    return app.exit(e) == 0 ? tickwire::cli::kExitOk : tickwire::cli::kExitUsage;
  }
  return exit_code;
}
