#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tickwire::config {

// Log levels in increasing severity.
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Every server setting, with the defaults the docs list. Durations are milliseconds.
struct Config {
  std::string stream_user;              // STREAM_USER (required)
  std::string stream_pass;              // STREAM_PASS (required)
  std::string listen_host = "0.0.0.0";  // LISTEN_ADDR host part
  std::uint16_t listen_port = 7878;     // LISTEN_ADDR port part (0 = any free port)
  std::chrono::milliseconds heartbeat_interval{15'000};  // HEARTBEAT_INTERVAL
  std::chrono::milliseconds heartbeat_timeout{20'000};   // HEARTBEAT_TIMEOUT
  std::chrono::milliseconds auth_timeout{5'000};         // AUTH_TIMEOUT_MS
  std::uint32_t batch_window_ms = 5;                     // BATCH_WINDOW_MS
  std::uint32_t max_msg_size = 65536;                    // MAX_MSG_SIZE
  std::chrono::milliseconds write_deadline{5'000};       // WRITE_DEADLINE_MS
  std::uint64_t max_pending_bytes = 4 * 1024 * 1024;     // MAX_PENDING_BYTES per connection
  unsigned workers = 0;                                  // WORKERS (0 = one per hardware thread)
  bool tcp_nodelay = true;                               // TCP_NODELAY
  std::uint32_t so_sndbuf = 0;                           // SO_SNDBUF (0 = kernel default)
  std::uint32_t so_rcvbuf = 0;                           // SO_RCVBUF (0 = kernel default)
  // Bars and history (PROTOCOL rules 5 and 7).
  std::uint32_t bar_close_delay_ms = 100;          // BAR_CLOSE_DELAY_MS
  std::uint32_t history_second_bars = 3600;        // HISTORY_SECOND_BARS per topic (an hour)
  std::uint32_t history_minute_bars = 1440;        // HISTORY_MINUTE_BARS per topic (a day)
  std::uint32_t history_ticks = 1024;              // HISTORY_TICKS per topic
  std::uint32_t max_topics = 100'000;              // MAX_TOPICS (least recently published evicted)
  std::uint32_t max_backfill_records = 1'000'000;  // MAX_BACKFILL_RECORDS per subscription
  std::uint32_t max_connections = 100'000;         // MAX_CONNECTIONS
  std::uint32_t max_unauth_connections = 10'000;   // MAX_UNAUTH_CONNECTIONS (not yet AUTHed)
  std::string tls_cert_path;                       // TLS_CERT_PATH
  std::string tls_key_path;                        // TLS_KEY_PATH
  LogLevel log_level = LogLevel::kInfo;            // LOG_LEVEL
  std::string port_file;  // PORT_FILE: write the bound port here once listening (tests, scripts)
  // METRICS_ADDR: the operations HTTP endpoint (/metrics, /healthz, /readyz, /connz). Loopback
  // by default because /connz shows users and client addresses; an empty host disables it.
  std::string metrics_host = "127.0.0.1";
  std::uint16_t metrics_port = 9878;
  std::string metrics_port_file;      // METRICS_PORT_FILE: the bound metrics port, like PORT_FILE
  std::uint32_t log_rate_limit = 20;  // LOG_RATE_LIMIT: noisy log lines per second per kind

  // Workers after resolving 0 to the hardware thread count.
  unsigned EffectiveWorkers() const;
};

// How to read environment variables; tests pass a map instead of the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

// What parsing produced: a config, an exit with text for stdout (--help, --version), or an
// error line for stderr naming the setting and why.
struct ParseExit {
  int code;
  std::string text;
};
struct ParseError {
  std::string message;
};
using ParseResult = std::variant<Config, ParseExit, ParseError>;

// Parses flags (which win) over environment variables, then validates the whole config.
ParseResult ParseServerConfig(const std::vector<std::string>& args, const EnvLookup& env);

// Validation alone (also used after reloads); returns the first problem found.
std::optional<std::string> Validate(const Config& config);

std::string_view LogLevelName(LogLevel level);

}  // namespace tickwire::config
