#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/cidr.h"

namespace tickwire::config {

// Log levels in increasing severity.
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// PROXY_PROTOCOL: whether a PROXY protocol header (v1 or v2) must precede every connection.
enum class ProxyMode { kOff, kRequired };

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
  unsigned workers = 0;                                  // WORKERS (0 = one per CPU it may run on)
  bool tcp_nodelay = true;                               // TCP_NODELAY
  std::uint32_t so_sndbuf = 0;                           // SO_SNDBUF (0 = kernel default)
  std::uint32_t so_rcvbuf = 0;                           // SO_RCVBUF (0 = kernel default)
  // Bars and history (PROTOCOL S8a and S8b).
  std::uint32_t bar_close_delay_ms = 100;          // BAR_CLOSE_DELAY_MS
  bool watermarks = true;                          // WATERMARKS
  std::uint32_t history_second_bars = 3600;        // HISTORY_SECOND_BARS per topic (an hour)
  std::uint32_t history_minute_bars = 1440;        // HISTORY_MINUTE_BARS per topic (a day)
  std::uint32_t history_ticks = 1024;              // HISTORY_TICKS per topic
  std::uint32_t max_topics = 100'000;              // MAX_TOPICS (hard cap on topics held)
  std::uint32_t max_topics_per_user = 0;           // MAX_TOPICS_PER_USER (0: no per-user cap)
  std::uint32_t max_backfill_records = 1'000'000;  // MAX_BACKFILL_RECORDS per subscription
  std::uint32_t max_connections = 100'000;         // MAX_CONNECTIONS
  std::uint32_t max_unauth_connections = 10'000;   // MAX_UNAUTH_CONNECTIONS (not yet AUTHed)
  std::uint32_t max_unauth_per_source = 256;       // MAX_UNAUTH_PER_SOURCE (IPv6 per /64)
  std::string tls_cert_path;                       // TLS_CERT_PATH
  std::string tls_key_path;                        // TLS_KEY_PATH
  LogLevel log_level = LogLevel::kInfo;            // LOG_LEVEL
  std::string port_file;  // PORT_FILE: write the bound port here once listening (tests, scripts)
  // METRICS_ADDR: the operations HTTP endpoint (/metrics, /healthz, /readyz, /connz). Loopback
  // by default because /connz shows users and client addresses; an empty host disables it.
  std::string metrics_host = "127.0.0.1";
  std::uint16_t metrics_port = 9878;
  std::string metrics_port_file;  // METRICS_PORT_FILE: the bound metrics port, like PORT_FILE
  // METRICS_PREFIX: put before every metric family name on /metrics (e.g. "tickwire_"); empty
  // keeps the names docs/METRICS.md lists, which the deploy/ alert rules and dashboard use.
  std::string metrics_prefix;
  // WEB_ROOT: a directory of web files (the chart page, web/dist) served under /chart/ on the
  // METRICS_ADDR endpoint, read once at startup; empty turns it off.
  std::string web_root;
  std::uint32_t log_rate_limit = 20;  // LOG_RATE_LIMIT: noisy log lines per second per kind
  // Security and rolling operations (docs/SECURITY.md).
  std::string users_file;                                // USERS_FILE
  std::uint32_t auth_fail_budget_addr = 5;               // AUTH_FAIL_BUDGET_ADDR
  std::uint32_t auth_fail_budget_user = 20;              // AUTH_FAIL_BUDGET_USER
  std::chrono::milliseconds auth_backoff_min{1'000};     // AUTH_BACKOFF_MIN
  std::chrono::milliseconds auth_backoff_max{60'000};    // AUTH_BACKOFF_MAX
  std::chrono::milliseconds auth_user_delay_max{2'000};  // AUTH_USER_DELAY_MAX
  std::uint32_t auth_rate_table_size = 16'384;           // AUTH_RATE_TABLE_SIZE
  unsigned auth_hash_threads = 0;  // AUTH_HASH_THREADS (0 = a quarter of the workers, at least 1)
  std::uint32_t auth_hash_queue = 64;                       // AUTH_HASH_QUEUE
  std::string tls_client_ca_path;                           // TLS_CLIENT_CA_PATH (mTLS when set)
  bool tls_client_cn_user = false;                          // TLS_CLIENT_CN_USER
  std::chrono::milliseconds tls_handshake_timeout{10'000};  // TLS_HANDSHAKE_TIMEOUT
  ProxyMode proxy_protocol = ProxyMode::kOff;               // PROXY_PROTOCOL
  std::vector<Cidr> proxy_trusted;                          // PROXY_TRUSTED_CIDRS
  std::chrono::milliseconds proxy_header_timeout{5'000};    // PROXY_HEADER_TIMEOUT
  // WebSocket transport (PROTOCOL.md "Transports"): off while ws_host is empty.
  std::string ws_host;                                     // WS_LISTEN_ADDR host part
  std::uint16_t ws_port = 0;                               // WS_LISTEN_ADDR port part
  std::string ws_port_file;                                // WS_PORT_FILE: like PORT_FILE
  std::string ws_path = "/";                               // WS_PATH: the upgraded target
  std::vector<std::string> ws_allowed_origins;             // WS_ALLOWED_ORIGINS (empty = any)
  std::chrono::milliseconds ws_handshake_timeout{10'000};  // WS_HANDSHAKE_TIMEOUT
  std::chrono::milliseconds drain_period{5'000};           // DRAIN_PERIOD
  std::chrono::milliseconds drain_deadline{20'000};        // DRAIN_DEADLINE
  std::string config_file;                                 // CONFIG_FILE
  // Durable embedded history (docs/RELIABILITY.md): snapshots of every shard go to DATA_DIR on
  // drain and every SNAPSHOT_INTERVAL, and are restored at start. Empty: off. Not used in the
  // multi-instance mode (the shared log holds the history there).
  std::string data_dir;                                 // DATA_DIR
  std::chrono::milliseconds snapshot_interval{10'000};  // SNAPSHOT_INTERVAL
  // Multi-instance mode (docs/CLUSTER.md): empty NATS_URL = the embedded single process.
  std::string nats_url;                                   // NATS_URL
  std::string nats_stream = "TICKWIRE";                   // NATS_STREAM
  std::string nats_subject = "tickwire.ticks";            // NATS_SUBJECT
  std::chrono::milliseconds nats_max_age{3'600'000};      // NATS_MAX_AGE (stream retention)
  std::uint64_t nats_max_bytes = std::uint64_t{1} << 30;  // NATS_MAX_BYTES (stream retention)
  std::uint32_t nats_replicas = 1;                        // NATS_REPLICAS
  std::chrono::milliseconds nats_publish_timeout{2'000};  // NATS_PUBLISH_TIMEOUT
  std::string instance_id;                                // INSTANCE_ID (default: host name)
  // Each setting's text as given (env name -> value), to tell what a reload changed.
  std::map<std::string, std::string> given;

  bool tls_enabled() const { return !tls_cert_path.empty(); }
  bool clustered() const { return !nats_url.empty(); }
  bool ws_enabled() const { return !ws_host.empty(); }

  // Workers after resolving 0 to the number of CPUs in the process's affinity mask.
  unsigned EffectiveWorkers() const;
  // Password-hashing threads after resolving 0 to a quarter of the workers (at least 1).
  unsigned EffectiveAuthHashThreads() const;
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

// Parses flags (which win) over environment variables, over the lines of CONFIG_FILE (when
// given: NAME=value per line, '#' comments), then validates the whole config. Reloading (SIGHUP)
// calls this again with the same arguments; the file is re-read.
ParseResult ParseServerConfig(const std::vector<std::string>& args, const EnvLookup& env);

// The CONFIG_FILE format, one setting per line (CRLF accepted), blank lines and lines whose
// first non-blank character is '#' ignored:
//   NAME=value            blanks around NAME and value trimmed; ' #' (a '#' after a blank)
//                         starts a comment; a '#' anywhere else or a quote is refused
//   NAME="value"          the text between the quotes exactly as written (no escapes), which
//   NAME='value'          may hold '#', blanks and the other quote; then only blanks and an
//                         optional comment
// NAME is letters, digits and '_'. Control characters (other than tab) are refused. Fills `out`
// (the last of repeated names wins); returns an error ("<line>: why", never quoting the value)
// or empty. Whether a name is a setting is checked by ParseServerConfig.
inline constexpr std::size_t kMaxConfigFileLines = 10'000;
inline constexpr std::size_t kMaxConfigFileBytes = 1024 * 1024;
std::string ParseConfigFileText(std::string_view text, std::map<std::string, std::string>& out);

// Validation alone (also used after reloads); returns the first problem found.
std::optional<std::string> Validate(const Config& config);

std::string_view LogLevelName(LogLevel level);

// What a running server does with a setting when SIGHUP reloads the configuration. Each setting
// of the table ParseServerConfig reads carries one (so --help, Server::Reload and the settings
// table of docs/RUNBOOK.md, which a test compares, follow one list); Server::Reload applies
// every kind other than kRestart, and a changed kRestart setting only gets a
// reload_needs_restart warning: it takes effect at the next start.
enum class Reload : std::uint8_t {
  kRestart,      // read once, at startup
  kLogLevel,     // the log threshold
  kBatchWindow,  // the batch window the workers share (an atomic)
  kAuthLimits,   // the failed-AUTH rate limiter's budgets, back-off and table size
  kCredentials,  // STREAM_USER/STREAM_PASS and the users file (re-read on every reload)
  kTls,          // certificate, key and client CA (re-read on every reload; not TLS on/off)
  kDrain,        // read when a drain starts
  kConfigFile,   // the file itself: re-read on every reload
};
// The kinds Server::Reload applies, in the order it applies them.
inline constexpr Reload kReloadKinds[] = {
    Reload::kLogLevel, Reload::kBatchWindow, Reload::kAuthLimits, Reload::kCredentials,
    Reload::kTls,      Reload::kDrain,       Reload::kConfigFile};
struct SettingReload {
  std::string_view env;
  Reload reload;
};
// Every setting (in --help order) with its reload kind.
std::vector<SettingReload> SettingReloads();
// The reload kind of a setting (kRestart for a name that is not a setting).
Reload ReloadOf(std::string_view env_name);
// METRICS_PREFIX must keep every metric name valid for Prometheus, [a-zA-Z_:][a-zA-Z0-9_:]*:
// empty, or at most kMaxMetricsPrefix bytes of that set not starting with a digit. Returns why
// not, or nullopt.
inline constexpr std::size_t kMaxMetricsPrefix = 64;
std::optional<std::string> ValidateMetricsPrefix(std::string_view prefix);

// Whether a running server applies the setting on SIGHUP; every other one needs a restart.
bool ReloadsOnSighup(std::string_view env_name);
// Env names of the settings whose values differ between `a` and `b`.
std::vector<std::string> ChangedSettings(const Config& a, const Config& b);

}  // namespace tickwire::config
