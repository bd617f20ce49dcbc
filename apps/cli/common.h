#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "client/client.h"

namespace tickwire::cli {

// Exit codes, the same for every subcommand (listed by `tickwire --help` and docs/CLIENT.md).
inline constexpr int kExitOk = 0;
// A runtime or server error: connect, TLS or AUTH failed, the server refused a request, the
// connection was lost for good, a bench check failed.
inline constexpr int kExitFailure = 1;
// A usage error: bad flags or arguments, missing credentials, unreadable input format.
inline constexpr int kExitUsage = 2;
// Done, but not all of it: `pub` skipped input lines, `topics` stopped at --timeout.
inline constexpr int kExitPartial = 3;
// A run that has its own end (bench, topics) was stopped by SIGINT/SIGTERM. `sub` and
// `pub --demo`, which run until stopped, exit 0 then.
inline constexpr int kExitInterrupted = 130;
// The exit codes as `--help` prints them.
std::string ExitCodesHelp();

// Connection flags every subcommand takes (--addr, --user, --pass, --name, TLS).
struct ConnectionFlags {
  std::string addr = "127.0.0.1:7878";
  std::string user;
  std::string pass;
  std::string name;
  bool tls = false;
  std::string ca_file;    // implies tls
  std::string cert_file;  // client certificate (mutual TLS); implies tls, needs key_file
  std::string key_file;
};

// Adds the connection flags to `cmd`, with their environment fallbacks.
void AddConnectionFlags(CLI::App& cmd, ConnectionFlags& flags);

// Splits "host:port" (or "[v6]:port"); nullopt when malformed.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<HostPort> ParseHostPort(std::string_view addr);

// A load generator's producer connection: `base` with `pub_addr` (host:port) when that is not
// empty, so a multi-instance run can publish through one instance and consume from another.
// nullopt on a malformed address.
std::optional<client::ClientOptions> ProducerOptions(const client::ClientOptions& base,
                                                     const std::string& pub_addr);

// Client options from the flags. Returns nullopt with `error` set (a usage error) on a bad
// --addr, missing credentials (no user; no password unless a client certificate is the
// credential), or --cert without --key.
std::optional<client::ClientOptions> MakeClientOptions(const ConnectionFlags& flags,
                                                       const std::string& default_name,
                                                       std::string& error);

// Connects (TCP or TLS, AUTH); on failure prints the error and returns null, for which a
// command exits kExitFailure.
std::unique_ptr<client::Client> ConnectOrReport(const client::ClientOptions& options);
// Prints "connection closed: <why>" for the Closed event that ends a command.
void PrintClosed(const client::Closed& closed);

// Turns on the client library's reconnect and prints its events to stderr as
// "tickwire <what>: connection lost (...); reconnecting in 1.2 s (attempt 1)" and
// "tickwire <what>: reconnected; 1 subscription resumed".
void EnableReconnect(client::ClientOptions& options, const std::string& what);

// CLI11 validator/transform for durations like "10s", "500ms".
std::optional<std::chrono::milliseconds> ParseDurationFlag(const std::string& text);

// SIGINT/SIGTERM set this flag (installed by InstallStopSignals); loops poll it.
void InstallStopSignals();
bool StopRequested();

// "2024-05-01T12:00:00.123456789Z" for ns, "...:00.123Z" for ms.
std::string FormatTimeNs(std::int64_t ts_ns);
std::string FormatTimeMs(std::int64_t ts_ms);

// Appends `s` as a JSON string literal.
void AppendJson(std::string& out, std::string_view s);

// "1 tick", "2 ticks", "0 ticks"; `plural` defaults to `singular` + "s".
std::string Plural(std::uint64_t n, std::string_view singular, std::string_view plural = {});

// Prints "tickwire: <message>" to stderr.
void PrintError(std::string_view message);

}  // namespace tickwire::cli
