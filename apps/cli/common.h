#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "client/client.h"

namespace tickwire::cli {

// Connection flags every subcommand takes (--addr, --user, --pass, --name).
struct ConnectionFlags {
  std::string addr = "127.0.0.1:7878";
  std::string user;
  std::string pass;
  std::string name;
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

// Client options from the flags; on a bad --addr, returns nullopt with `error` set.
std::optional<client::ClientOptions> MakeClientOptions(const ConnectionFlags& flags,
                                                       const std::string& default_name,
                                                       std::string& error);

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

// Prints "tickwire: <message>" to stderr.
void PrintError(std::string_view message);

}  // namespace tickwire::cli
