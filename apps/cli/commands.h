#pragma once

#include <CLI/CLI.hpp>

namespace tickwire::cli {

// Each Register* adds its subcommand to `app`; the callback it installs runs the command and
// stores the process exit code in `exit_code`.
void RegisterSub(CLI::App& app, int& exit_code);
void RegisterPub(CLI::App& app, int& exit_code);
void RegisterTopics(CLI::App& app, int& exit_code);
void RegisterBench(CLI::App& app, int& exit_code);
void RegisterPasswd(CLI::App& app, int& exit_code);
// `bench bars`, under the `bench` subcommand.
void RegisterBenchBars(CLI::App& bench, int& exit_code);
// `bench ingest` and `bench conns`, under the `bench` subcommand.
void RegisterBenchIngest(CLI::App& bench, int& exit_code);
void RegisterBenchConns(CLI::App& bench, int& exit_code);
// `bench auth`: an AUTH flood from many addresses, under the `bench` subcommand.
void RegisterBenchAuth(CLI::App& bench, int& exit_code);

}  // namespace tickwire::cli
