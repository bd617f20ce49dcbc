#include "config/config.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>

#include "config/duration.h"

namespace tickwire::config {
namespace {

// One setting: its env var, its flag, its help line, its default as text, and how to apply a
// text value to the Config (returning an error reason, or empty on success).
struct Setting {
  const char* env;
  const char* flag;
  const char* help;
  std::string default_text;
  std::function<std::string(Config&, const std::string&)> apply;
  // What a running server does with a new value on SIGHUP (Server::Reload applies each kind).
  Reload reload = Reload::kRestart;
};

template <typename T>
std::string ParseUint(const std::string& text, T min, T max, T& out) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return "'" + text + "' is not a whole number";
  }
  if (v < static_cast<std::uint64_t>(min) || v > static_cast<std::uint64_t>(max)) {
    return "'" + text + "' is out of range [" + std::to_string(min) + ", " + std::to_string(max) +
           "]";
  }
  out = static_cast<T>(v);
  return {};
}

std::string ParseBool(const std::string& text, bool& out) {
  if (text == "1" || text == "true" || text == "on" || text == "yes") {
    out = true;
  } else if (text == "0" || text == "false" || text == "off" || text == "no") {
    out = false;
  } else {
    return "'" + text + "' is not a boolean (true/false)";
  }
  return {};
}

std::string ParseDurationSetting(const std::string& text, std::chrono::milliseconds& out) {
  auto d = ParseDuration(text);
  if (!d) return "'" + text + "' is not a duration (a number and a unit: 15s, 500ms, 1m)";
  out = *d;
  return {};
}

std::string ParseMillis(const std::string& text, std::uint32_t min, std::uint32_t max,
                        std::chrono::milliseconds& out) {
  std::uint32_t v = 0;
  if (auto err = ParseUint<std::uint32_t>(text, min, max, v); !err.empty()) return err;
  out = std::chrono::milliseconds(v);
  return {};
}

// host:port or [v6]:port.
std::string ParseHostPort(const std::string& text, std::string& host_out, std::uint16_t& port_out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return "'" + text + "' is not host:port";
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return "'" + text + "' has no host (use 0.0.0.0:PORT for all interfaces)";
  std::uint16_t port = 0;
  if (auto err = ParseUint<std::uint16_t>(text.substr(colon + 1), 0, 65535, port); !err.empty()) {
    return "port " + err;
  }
  host_out = host;
  port_out = port;
  return {};
}

std::string ParseListen(const std::string& text, Config& c) {
  return ParseHostPort(text, c.listen_host, c.listen_port);
}

std::string ParseCidrs(const std::string& text, std::vector<Cidr>& out) {
  out.clear();
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) {
      auto cidr = Cidr::Parse(item);
      if (!cidr) return "'" + item + "' is not a network (10.0.0.0/8, 2001:db8::/32, 192.0.2.1)";
      out.push_back(*cidr);
    }
    start = end + 1;
  }
  return {};
}

std::string ReadConfigFile(const std::string& path, std::map<std::string, std::string>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read '" + path + "'";
  std::string text;
  text.resize(kMaxConfigFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    return "'" + path + "' is larger than " + std::to_string(kMaxConfigFileBytes) + " bytes";
  }
  if (auto err = ParseConfigFileText(text, out); !err.empty()) return path + ":" + err;
  return {};
}

std::vector<Setting> Settings() {
  const Config d;
  return {
      {"STREAM_USER", "--stream-user", "username clients must send in AUTH (required)", "",
       [](Config& c, const std::string& v) {
         c.stream_user = v;
         return std::string{};
       },
       Reload::kCredentials},
      {"STREAM_PASS", "--stream-pass", "password clients must send in AUTH (required)", "",
       [](Config& c, const std::string& v) {
         c.stream_pass = v;
         return std::string{};
       },
       Reload::kCredentials},
      {"LISTEN_ADDR", "--listen", "stream port address, host:port ([::1]:port for IPv6)",
       d.listen_host + ":" + std::to_string(d.listen_port),
       [](Config& c, const std::string& v) { return ParseListen(v, c); }},
      {"HEARTBEAT_INTERVAL", "--heartbeat-interval",
       "how often clients must send HEARTBEAT (told to them in AUTH_OK)",
       FormatDuration(d.heartbeat_interval),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.heartbeat_interval);
       }},
      {"HEARTBEAT_TIMEOUT", "--heartbeat-timeout",
       "silence (no HEARTBEAT) after which a connection is closed",
       FormatDuration(d.heartbeat_timeout),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.heartbeat_timeout);
       }},
      {"AUTH_TIMEOUT_MS", "--auth-timeout-ms", "milliseconds a new connection has to send AUTH",
       std::to_string(d.auth_timeout.count()),
       [](Config& c, const std::string& v) { return ParseMillis(v, 1, 600'000, c.auth_timeout); }},
      {"BATCH_WINDOW_MS", "--batch-window-ms",
       "longest a record waits before its DATA_BATCH is written (0 = no wait)",
       std::to_string(d.batch_window_ms),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 1000, c.batch_window_ms);
       },
       Reload::kBatchWindow},
      {"MAX_MSG_SIZE", "--max-msg-size", "largest frame payload in bytes, either direction",
       std::to_string(d.max_msg_size),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1024, 16 * 1024 * 1024, c.max_msg_size);
       }},
      {"WRITE_DEADLINE_MS", "--write-deadline-ms",
       "a socket write that takes longer drops the connection as a slow consumer",
       std::to_string(d.write_deadline.count()),
       [](Config& c, const std::string& v) {
         return ParseMillis(v, 1, 600'000, c.write_deadline);
       }},
      {"MAX_PENDING_BYTES", "--max-pending-bytes",
       "memory a connection's waiting output may take (queued frames with their bookkeeping, "
       "live records held during a history replay) before it is dropped as a slow consumer",
       std::to_string(d.max_pending_bytes),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint64_t>(v, 1, std::uint64_t{1} << 40, c.max_pending_bytes);
       }},
      {"WORKERS", "--workers",
       "worker threads, each with its own event loop (0 = one per CPU it may run on)",
       std::to_string(d.workers),
       [](Config& c, const std::string& v) { return ParseUint<unsigned>(v, 0, 64, c.workers); }},
      {"TCP_NODELAY", "--tcp-nodelay", "disable Nagle's algorithm on client sockets", "true",
       [](Config& c, const std::string& v) { return ParseBool(v, c.tcp_nodelay); }},
      {"SO_SNDBUF", "--sndbuf", "socket send buffer bytes (0 = kernel default)",
       std::to_string(d.so_sndbuf),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 1U << 30, c.so_sndbuf);
       }},
      {"SO_RCVBUF", "--rcvbuf", "socket receive buffer bytes (0 = kernel default)",
       std::to_string(d.so_rcvbuf),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 1U << 30, c.so_rcvbuf);
       }},
      {"BAR_CLOSE_DELAY_MS", "--bar-close-delay-ms",
       "grace after a bar's bucket ends for producer-stamped ticks still on their way",
       std::to_string(d.bar_close_delay_ms),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 60'000, c.bar_close_delay_ms);
       }},
      {"WATERMARKS", "--watermarks",
       "send SECOND and MINUTE subscribers a completeness watermark after each closed interval "
       "(false only to measure what they cost)",
       "true", [](Config& c, const std::string& v) { return ParseBool(v, c.watermarks); }},
      {"HISTORY_SECOND_BARS", "--history-second-bars",
       "closed SECOND bars retained per topic for backfill and resume",
       std::to_string(d.history_second_bars),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 10'000'000, c.history_second_bars);
       }},
      {"HISTORY_MINUTE_BARS", "--history-minute-bars",
       "closed MINUTE bars retained per topic for backfill and resume",
       std::to_string(d.history_minute_bars),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 10'000'000, c.history_minute_bars);
       }},
      {"HISTORY_TICKS", "--history-ticks", "ticks retained per topic for backfill and resume",
       std::to_string(d.history_ticks),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 10'000'000, c.history_ticks);
       }},
      {"MAX_TOPICS", "--max-topics",
       "topics held, split over the workers; a new topic replaces the least recently published "
       "one once that one's bars are closed, and is refused (ERROR TOPIC_LIMIT) until then",
       std::to_string(d.max_topics),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 100'000'000, c.max_topics);
       }},
      {"MAX_TOPICS_PER_USER", "--max-topics-per-user",
       "topics one user's PUBLISH frames may create and hold, split over the workers like "
       "MAX_TOPICS; 0 = no per-user cap",
       std::to_string(d.max_topics_per_user),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 100'000'000, c.max_topics_per_user);
       }},
      {"MAX_BACKFILL_RECORDS", "--max-backfill-records",
       "history records one subscription receives, split over the workers: each sends at most "
       "ceil(MAX_BACKFILL_RECORDS / WORKERS) for the topics it owns (each topic's newest, up to "
       "a fair share of what is left)",
       std::to_string(d.max_backfill_records),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 100'000'000, c.max_backfill_records);
       }},
      {"MAX_CONNECTIONS", "--max-connections",
       "open connections; beyond it new ones are accepted and closed at once",
       std::to_string(d.max_connections),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 10'000'000, c.max_connections);
       }},
      {"MAX_UNAUTH_CONNECTIONS", "--max-unauth-connections",
       "connections still waiting to AUTH; when full, the oldest of them is closed to make room",
       std::to_string(d.max_unauth_connections),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 10'000'000, c.max_unauth_connections);
       }},
      {"MAX_UNAUTH_PER_SOURCE", "--max-unauth-per-source",
       "connections still waiting to AUTH from one source address (IPv6: one /64); beyond it "
       "that source's oldest is closed to make room",
       std::to_string(d.max_unauth_per_source),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 10'000'000, c.max_unauth_per_source);
       }},
      {"TLS_CERT_PATH", "--tls-cert", "PEM certificate chain for TLS on the stream port", "",
       [](Config& c, const std::string& v) {
         c.tls_cert_path = v;
         return std::string{};
       },
       Reload::kTls},
      {"TLS_KEY_PATH", "--tls-key", "PEM private key for TLS on the stream port", "",
       [](Config& c, const std::string& v) {
         c.tls_key_path = v;
         return std::string{};
       },
       Reload::kTls},
      {"LOG_LEVEL", "--log-level", "debug, info, warn or error", "info",
       [](Config& c, const std::string& v) {
         if (v == "debug")
           c.log_level = LogLevel::kDebug;
         else if (v == "info")
           c.log_level = LogLevel::kInfo;
         else if (v == "warn" || v == "warning")
           c.log_level = LogLevel::kWarn;
         else if (v == "error")
           c.log_level = LogLevel::kError;
         else
           return "'" + v + "' is not one of debug, info, warn, error";
         return std::string{};
       },
       Reload::kLogLevel},
      {"PORT_FILE", "--port-file", "write the bound stream port to this file once listening", "",
       [](Config& c, const std::string& v) {
         c.port_file = v;
         return std::string{};
       }},
      {"METRICS_ADDR", "--metrics-addr",
       "HTTP endpoint for /metrics, /healthz, /readyz and /connz, host:port (empty = off)",
       d.metrics_host + ":" + std::to_string(d.metrics_port),
       [](Config& c, const std::string& v) {
         if (v.empty()) {
           c.metrics_host.clear();
           return std::string{};
         }
         return ParseHostPort(v, c.metrics_host, c.metrics_port);
       }},
      {"METRICS_PORT_FILE", "--metrics-port-file",
       "write the bound metrics port to this file (before PORT_FILE is written)", "",
       [](Config& c, const std::string& v) {
         c.metrics_port_file = v;
         return std::string{};
       }},
      {"METRICS_PREFIX", "--metrics-prefix",
       "put this before every metric family name on /metrics, e.g. tickwire_ (empty = the names "
       "docs/METRICS.md lists); at most 64 bytes of [a-zA-Z0-9_:], not starting with a digit",
       "",
       [](Config& c, const std::string& v) {
         if (auto why = ValidateMetricsPrefix(v)) return *why;
         c.metrics_prefix = v;
         return std::string{};
       }},
      {"WEB_ROOT", "--web-root",
       "serve the files of this directory (the chart page: web/dist) at /chart/ on the "
       "METRICS_ADDR endpoint, read once at startup (empty = off)",
       "",
       [](Config& c, const std::string& v) {
         c.web_root = v;
         return std::string{};
       }},
      {"LOG_RATE_LIMIT", "--log-rate-limit",
       "log lines per second for each kind of client-caused noisy event (0 = unlimited)",
       std::to_string(d.log_rate_limit),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 1'000'000, c.log_rate_limit);
       }},
      {"USERS_FILE", "--users-file",
       "users file: salted password hashes and per-user publish/subscribe permissions", "",
       [](Config& c, const std::string& v) {
         c.users_file = v;
         return std::string{};
       },
       Reload::kCredentials},
      {"AUTH_FAIL_BUDGET_ADDR", "--auth-fail-budget-addr",
       "failed AUTHs a source address may make before it is made to wait",
       std::to_string(d.auth_fail_budget_addr),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 1'000'000, c.auth_fail_budget_addr);
       },
       Reload::kAuthLimits},
      {"AUTH_FAIL_BUDGET_USER", "--auth-fail-budget-user",
       "failed AUTHs for one user name (from any address) before it is made to wait",
       std::to_string(d.auth_fail_budget_user),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 1'000'000, c.auth_fail_budget_user);
       },
       Reload::kAuthLimits},
      {"AUTH_BACKOFF_MIN", "--auth-backoff-min",
       "first wait after the failed-AUTH budget is used; doubles with each further failure",
       FormatDuration(d.auth_backoff_min),
       [](Config& c, const std::string& v) { return ParseDurationSetting(v, c.auth_backoff_min); },
       Reload::kAuthLimits},
      {"AUTH_BACKOFF_MAX", "--auth-backoff-max",
       "longest failed-AUTH wait; also how often an address or user name forgets one failure",
       FormatDuration(d.auth_backoff_max),
       [](Config& c, const std::string& v) { return ParseDurationSetting(v, c.auth_backoff_max); },
       Reload::kAuthLimits},
      {"AUTH_USER_DELAY_MAX", "--auth-user-delay-max",
       "longest delay of an AUTH for a user name over its failure budget (0 = no delay)",
       FormatDuration(d.auth_user_delay_max),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.auth_user_delay_max);
       },
       Reload::kAuthLimits},
      {"AUTH_RATE_TABLE_SIZE", "--auth-rate-table-size",
       "addresses and user names the AUTH rate limiter tracks at most (bounded memory)",
       std::to_string(d.auth_rate_table_size),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 16, 10'000'000, c.auth_rate_table_size);
       },
       Reload::kAuthLimits},
      {"AUTH_HASH_THREADS", "--auth-hash-threads",
       "threads that check users-file passwords (PBKDF2) away from the workers (0 = a quarter "
       "of WORKERS, at least 1)",
       std::to_string(d.auth_hash_threads),
       [](Config& c, const std::string& v) {
         return ParseUint<unsigned>(v, 0, 64, c.auth_hash_threads);
       }},
      {"AUTH_HASH_QUEUE", "--auth-hash-queue",
       "password checks that may wait for a hashing thread; beyond it AUTH is answered "
       "AUTH_RATE_LIMITED with retry_after_ms",
       std::to_string(d.auth_hash_queue),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 100'000, c.auth_hash_queue);
       }},
      {"TLS_CLIENT_CA_PATH", "--tls-client-ca",
       "PEM CA bundle: clients must present a certificate it signed (mTLS)", "",
       [](Config& c, const std::string& v) {
         c.tls_client_ca_path = v;
         return std::string{};
       },
       Reload::kTls},
      {"TLS_CLIENT_CN_USER", "--tls-client-cn-user",
       "with mTLS, a client certificate's subject CN is its user (AUTH needs no password)", "false",
       [](Config& c, const std::string& v) { return ParseBool(v, c.tls_client_cn_user); }},
      {"TLS_HANDSHAKE_TIMEOUT", "--tls-handshake-timeout",
       "time a new connection has to complete its TLS handshake",
       FormatDuration(d.tls_handshake_timeout),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.tls_handshake_timeout);
       }},
      {"PROXY_PROTOCOL", "--proxy-protocol",
       "off, or required: every connection starts with a PROXY protocol v1/v2 header", "off",
       [](Config& c, const std::string& v) {
         if (v == "off") {
           c.proxy_protocol = ProxyMode::kOff;
         } else if (v == "required") {
           c.proxy_protocol = ProxyMode::kRequired;
         } else {
           return "'" + v + "' is not one of off, required";
         }
         return std::string{};
       }},
      {"PROXY_TRUSTED_CIDRS", "--proxy-trusted-cidrs",
       "comma-separated networks allowed to send PROXY headers (the load balancers)", "",
       [](Config& c, const std::string& v) { return ParseCidrs(v, c.proxy_trusted); }},
      {"PROXY_HEADER_TIMEOUT", "--proxy-header-timeout",
       "time a new connection has to send its PROXY header", FormatDuration(d.proxy_header_timeout),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.proxy_header_timeout);
       }},
      {"WS_LISTEN_ADDR", "--ws-listen",
       "WebSocket endpoint address, host:port: the same frames, one per binary message "
       "(empty = off)",
       "",
       [](Config& c, const std::string& v) {
         if (v.empty()) {
           c.ws_host.clear();
           return std::string{};
         }
         return ParseHostPort(v, c.ws_host, c.ws_port);
       }},
      {"WS_PORT_FILE", "--ws-port-file",
       "write the bound WebSocket port to this file once listening (before PORT_FILE)", "",
       [](Config& c, const std::string& v) {
         c.ws_port_file = v;
         return std::string{};
       }},
      {"WS_PATH", "--ws-path", "the path WebSocket clients connect to (other paths get 404)",
       d.ws_path,
       [](Config& c, const std::string& v) {
         if (v.empty() || v.front() != '/' || v.size() > 256 ||
             v.find_first_of("?# \t") != std::string::npos) {
           return std::string("'" + v +
                              "' is not a path: starts with /, at most 256 bytes, no "
                              "query, fragment or spaces");
         }
         c.ws_path = v;
         return std::string{};
       }},
      {"WS_ALLOWED_ORIGINS", "--ws-allowed-origins",
       "comma-separated Origins a browser may connect from, e.g. https://app.example.com "
       "(empty = any)",
       "",
       [](Config& c, const std::string& v) {
         c.ws_allowed_origins.clear();
         std::string_view rest = v;
         while (!rest.empty()) {
           const std::size_t comma = rest.find(',');
           std::string_view item = rest.substr(0, comma);
           while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
           while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
           if (!item.empty()) c.ws_allowed_origins.emplace_back(item);
           if (comma == std::string_view::npos) break;
           rest.remove_prefix(comma + 1);
         }
         return std::string{};
       }},
      {"WS_HANDSHAKE_TIMEOUT", "--ws-handshake-timeout",
       "time a new WebSocket connection has to complete its upgrade request",
       FormatDuration(d.ws_handshake_timeout),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.ws_handshake_timeout);
       }},
      {"DRAIN_PERIOD", "--drain-period",
       "on SIGTERM, SERVER_DRAINING goes to the clients spread over this period",
       FormatDuration(d.drain_period),
       [](Config& c, const std::string& v) { return ParseDurationSetting(v, c.drain_period); },
       Reload::kDrain},
      {"DRAIN_DEADLINE", "--drain-deadline",
       "on SIGTERM, the process exits by this time even if output is still queued",
       FormatDuration(d.drain_deadline),
       [](Config& c, const std::string& v) { return ParseDurationSetting(v, c.drain_deadline); },
       Reload::kDrain},
      {"CONFIG_FILE", "--config-file",
       "file of NAME=value settings, below flags and env; re-read on SIGHUP", "",
       [](Config& c, const std::string& v) {
         c.config_file = v;
         return std::string{};
       },
       Reload::kConfigFile},
      {"DATA_DIR", "--data-dir",
       "directory for history snapshots, restored at start (empty = off; not with NATS_URL)", "",
       [](Config& c, const std::string& v) {
         c.data_dir = v;
         return std::string{};
       }},
      {"SNAPSHOT_INTERVAL", "--snapshot-interval",
       "with DATA_DIR: how often history is snapshotted; a crash loses at most this much",
       FormatDuration(d.snapshot_interval),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.snapshot_interval);
       }},
      {"NATS_URL", "--nats-url",
       "multi-instance mode: NATS server(s) with JetStream, comma-separated (empty: one process)",
       "",
       [](Config& c, const std::string& v) {
         c.nats_url = v;
         return std::string{};
       }},
      {"NATS_STREAM", "--nats-stream", "JetStream stream that carries the accepted ticks",
       d.nats_stream,
       [](Config& c, const std::string& v) {
         c.nats_stream = v;
         return std::string{};
       }},
      {"NATS_SUBJECT", "--nats-subject", "subject the instances publish accepted ticks on",
       d.nats_subject,
       [](Config& c, const std::string& v) {
         c.nats_subject = v;
         return std::string{};
       }},
      {"NATS_MAX_AGE", "--nats-max-age",
       "stream retention by age: what a starting instance can replay (0 = unlimited)",
       FormatDuration(d.nats_max_age),
       [](Config& c, const std::string& v) { return ParseDurationSetting(v, c.nats_max_age); }},
      {"NATS_MAX_BYTES", "--nats-max-bytes", "stream retention by size, oldest dropped first",
       std::to_string(d.nats_max_bytes),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint64_t>(v, 1 << 20, std::uint64_t{1} << 50, c.nats_max_bytes);
       }},
      {"NATS_REPLICAS", "--nats-replicas", "copies of the stream in the NATS cluster (1..5)",
       std::to_string(d.nats_replicas),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 5, c.nats_replicas);
       }},
      {"NATS_PUBLISH_TIMEOUT", "--nats-publish-timeout",
       "a PUBLISH the stream has not confirmed by then gets ERROR UNAVAILABLE",
       FormatDuration(d.nats_publish_timeout),
       [](Config& c, const std::string& v) {
         return ParseDurationSetting(v, c.nats_publish_timeout);
       }},
      {"INSTANCE_ID", "--instance-id", "this instance's name in logs and on the stream",
       "host name",
       [](Config& c, const std::string& v) {
         c.instance_id = v;
         return std::string{};
       }},
  };
}

}  // namespace

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || (c >= 'a' && c <= 'z');
}

// One NAME=value line without its line ending, known to be neither blank nor a comment. Fills
// `name` and `value`, or returns why the line is refused. Error texts never repeat the value:
// it may be a password.
std::string ParseConfigLine(std::string_view line, std::string& name, std::string& value) {
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return "control character in the line";
  }
  const auto eq = line.find('=');
  if (eq == std::string_view::npos) return "expected NAME=value";
  std::string_view n = line.substr(0, eq);
  while (!n.empty() && IsBlank(n.front())) n.remove_prefix(1);
  while (!n.empty() && IsBlank(n.back())) n.remove_suffix(1);
  if (n.empty() || !std::all_of(n.begin(), n.end(), IsNameChar)) {
    return "expected NAME=value with NAME of letters, digits and '_'";
  }
  const std::string_view raw = line.substr(eq + 1);  // '#' after a blank here is a comment
  std::string_view v = raw.substr(std::min(raw.size(), raw.find_first_not_of(" \t")));
  if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
    // Quoted: everything up to the same quote, taken as written (no escapes); after it only
    // blanks and an optional comment.
    const char quote = v.front();
    const auto close = v.find(quote, 1);
    if (close == std::string_view::npos) return std::string("no closing ") + quote + " quote";
    std::string_view rest = v.substr(close + 1);
    while (!rest.empty() && IsBlank(rest.front())) rest.remove_prefix(1);
    if (!rest.empty() && rest.front() != '#') {
      return std::string("text after the closing ") + quote +
             " quote (a comment after a value starts with ' #')";
    }
    name.assign(n);
    value.assign(v.substr(1, close - 1));
    return {};
  }
  // Unquoted: up to a '#' that follows a blank (a comment), trimmed. Quotes and any other '#'
  // would be ambiguous (part of the value, or meant as quoting or a comment?): refused.
  std::size_t end = v.size();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '#') {
      const bool after_blank = i > 0 ? IsBlank(v[i - 1]) : v.size() < raw.size();
      if (after_blank) {
        end = i;
        break;
      }
      return "'#' inside an unquoted value: quote the value (NAME=\"...\"), or start a comment "
             "with ' #'";
    }
    if (v[i] == '"' || v[i] == '\'') {
      return "a quote inside an unquoted value: quote the whole value with the other quote";
    }
  }
  v = v.substr(0, end);
  while (!v.empty() && IsBlank(v.back())) v.remove_suffix(1);
  name.assign(n);
  value.assign(v);
  return {};
}

}  // namespace

std::string ParseConfigFileText(std::string_view text, std::map<std::string, std::string>& out) {
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no > kMaxConfigFileLines) {
      return " more than " + std::to_string(kMaxConfigFileLines) + " lines";
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    std::string name;
    std::string value;
    if (auto err = ParseConfigLine(line, name, value); !err.empty()) {
      return std::to_string(line_no) + ": " + err;
    }
    out[std::move(name)] = std::move(value);
  }
  return {};
}

unsigned Config::EffectiveWorkers() const {
  if (workers != 0) return workers;
  // The CPUs this process may run on (taskset, a container's cpuset), not every core of the
  // host: more workers than CPUs only adds context switches.
  unsigned n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
  if (n == 0) n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : std::min(n, 64U);
}

unsigned Config::EffectiveAuthHashThreads() const {
  if (auth_hash_threads != 0) return auth_hash_threads;
  // Enough for a reconnect wave of users whose passwords are not cached yet, while an AUTH
  // flood can take at most this share of the CPUs from the workers.
  return std::max(1U, EffectiveWorkers() / 4);
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::optional<std::string> ValidateMetricsPrefix(std::string_view prefix) {
  if (prefix.size() > kMaxMetricsPrefix) {
    return "at most " + std::to_string(kMaxMetricsPrefix) + " bytes";
  }
  for (char ch : prefix) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == ':';
    if (!ok) return "only letters, digits, '_' and ':' (a Prometheus metric name's characters)";
  }
  if (!prefix.empty() && prefix.front() >= '0' && prefix.front() <= '9') {
    return "must not start with a digit (metric names may not)";
  }
  return std::nullopt;
}

std::optional<std::string> Validate(const Config& c) {
  if (c.users_file.empty() || !c.stream_user.empty() || !c.stream_pass.empty()) {
    if (c.stream_user.empty()) {
      return "STREAM_USER (--stream-user): required (unless USERS_FILE is set); the server does "
             "not run without credentials";
    }
    if (c.stream_pass.empty()) {
      return "STREAM_PASS (--stream-pass): required with STREAM_USER; the server does not run "
             "without credentials";
    }
  }
  if (c.heartbeat_interval.count() <= 0) return "HEARTBEAT_INTERVAL: must be greater than 0";
  if (c.heartbeat_timeout <= c.heartbeat_interval) {
    return "HEARTBEAT_TIMEOUT (--heartbeat-timeout): must be longer than HEARTBEAT_INTERVAL (" +
           FormatDuration(c.heartbeat_timeout) + " <= " + FormatDuration(c.heartbeat_interval) +
           ")";
  }
  if (c.heartbeat_timeout.count() > std::numeric_limits<std::uint32_t>::max()) {
    return "HEARTBEAT_TIMEOUT (--heartbeat-timeout): too long";
  }
  if (c.max_pending_bytes < std::uint64_t{c.max_msg_size} + 5) {
    return "MAX_PENDING_BYTES (--max-pending-bytes): must be at least MAX_MSG_SIZE + 5 (" +
           std::to_string(c.max_msg_size + 5) + ")";
  }
  if (c.tls_cert_path.empty() != c.tls_key_path.empty()) {
    return c.tls_cert_path.empty() ? "TLS_CERT_PATH (--tls-cert): required with TLS_KEY_PATH"
                                   : "TLS_KEY_PATH (--tls-key): required with TLS_CERT_PATH";
  }
  if (!c.web_root.empty() && c.metrics_host.empty()) {
    return "WEB_ROOT (--web-root): needs the operations endpoint (METRICS_ADDR)";
  }
  if (!c.tls_client_ca_path.empty() && c.tls_cert_path.empty()) {
    return "TLS_CLIENT_CA_PATH (--tls-client-ca): needs TLS (TLS_CERT_PATH and TLS_KEY_PATH)";
  }
  if (c.tls_client_cn_user && c.tls_client_ca_path.empty()) {
    return "TLS_CLIENT_CN_USER (--tls-client-cn-user): needs mTLS (TLS_CLIENT_CA_PATH)";
  }
  if (c.tls_handshake_timeout.count() <= 0) return "TLS_HANDSHAKE_TIMEOUT: must be greater than 0";
  if (c.auth_backoff_min.count() <= 0) return "AUTH_BACKOFF_MIN: must be greater than 0";
  if (c.auth_backoff_max < c.auth_backoff_min) {
    return "AUTH_BACKOFF_MAX (--auth-backoff-max): must be at least AUTH_BACKOFF_MIN";
  }
  if (c.auth_backoff_max > std::chrono::hours(24)) {
    return "AUTH_BACKOFF_MAX (--auth-backoff-max): at most 24h";
  }
  if (c.auth_user_delay_max > std::chrono::minutes(1)) {
    return "AUTH_USER_DELAY_MAX (--auth-user-delay-max): at most 1m";
  }
  if (c.proxy_protocol == ProxyMode::kRequired && c.proxy_trusted.empty()) {
    return "PROXY_TRUSTED_CIDRS (--proxy-trusted-cidrs): required with PROXY_PROTOCOL=required "
           "(the load balancers' networks)";
  }
  if (c.proxy_header_timeout.count() <= 0) return "PROXY_HEADER_TIMEOUT: must be greater than 0";
  if (c.ws_handshake_timeout.count() <= 0) return "WS_HANDSHAKE_TIMEOUT: must be greater than 0";
  if (c.max_topics_per_user > c.max_topics) {
    return "MAX_TOPICS_PER_USER (--max-topics-per-user): at most MAX_TOPICS (" +
           std::to_string(c.max_topics) + "); 0 turns the per-user cap off";
  }
  if (c.clustered()) {
    const auto token_ok = [](std::string_view v, bool dots) {
      if (v.empty() || v.size() > 200) return false;
      for (char ch : v) {
        const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!alnum && !(dots && ch == '.')) return false;
      }
      return v.front() != '.' && v.back() != '.' && v.find("..") == std::string_view::npos;
    };
    if (!token_ok(c.nats_stream, false)) {
      return "NATS_STREAM (--nats-stream): letters, digits, '_' and '-' only";
    }
    if (!token_ok(c.nats_subject, true)) {
      return "NATS_SUBJECT (--nats-subject): dot-separated tokens of letters, digits, '_' and '-' "
             "(no wildcards)";
    }
    if (c.nats_publish_timeout.count() <= 0) return "NATS_PUBLISH_TIMEOUT: must be greater than 0";
  }
  if (c.clustered() && !c.data_dir.empty()) {
    return "DATA_DIR (--data-dir): not used in the multi-instance mode (NATS_URL set): the shared "
           "stream holds the history there; leave DATA_DIR empty";
  }
  if (c.snapshot_interval < std::chrono::milliseconds(100) ||
      c.snapshot_interval > std::chrono::hours(24)) {
    return "SNAPSHOT_INTERVAL (--snapshot-interval): between 100ms and 24h";
  }
  if (c.drain_deadline <= c.drain_period) {
    return "DRAIN_DEADLINE (--drain-deadline): must be longer than DRAIN_PERIOD (" +
           FormatDuration(c.drain_deadline) + " <= " + FormatDuration(c.drain_period) + ")";
  }
  return std::nullopt;
}

std::vector<SettingReload> SettingReloads() {
  std::vector<SettingReload> out;
  for (const auto& setting : Settings()) out.push_back({setting.env, setting.reload});
  return out;
}

Reload ReloadOf(std::string_view env_name) {
  static const std::vector<SettingReload> kTable = SettingReloads();
  for (const auto& s : kTable) {
    if (s.env == env_name) return s.reload;
  }
  return Reload::kRestart;
}

bool ReloadsOnSighup(std::string_view env_name) { return ReloadOf(env_name) != Reload::kRestart; }

std::vector<std::string> ChangedSettings(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const auto& s : Settings()) {
    const auto ia = a.given.find(s.env);
    const auto ib = b.given.find(s.env);
    const bool ha = ia != a.given.end();
    const bool hb = ib != b.given.end();
    if (ha != hb || (ha && ia->second != ib->second)) out.emplace_back(s.env);
  }
  return out;
}

ParseResult ParseServerConfig(const std::vector<std::string>& args, const EnvLookup& env) {
  auto settings = Settings();
  CLI::App app{"tickwire-server: stream server for ticks and bars (protocol v1)",
               "tickwire-server"};
  app.set_help_flag("-h,--help", "print this help and exit");
  bool version = false;
  app.add_flag("--version", version, "print the version and exit");
  app.footer(
      "Every setting can also be given as an environment variable (named in brackets); a flag "
      "wins over the environment.");
  std::vector<std::string> values(settings.size());
  std::vector<CLI::Option*> options;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    std::string help = settings[i].help;
    if (settings[i].reload != Reload::kRestart) help += " (reloads on SIGHUP)";
    help += std::string(" [") + settings[i].env + "]";
    if (!settings[i].default_text.empty()) help += " (default " + settings[i].default_text + ")";
    options.push_back(app.add_option(settings[i].flag, values[i], help));
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return ParseExit{0, app.help()};
  } catch (const CLI::ParseError& e) {
    return ParseError{std::string("command line: ") + e.what()};
  }
  if (version) return ParseExit{0, std::string("tickwire-server ") + TICKWIRE_VERSION + "\n"};

  auto given = [&](std::size_t i) -> std::optional<std::string> {
    if (options[i]->count() > 0) return values[i];
    return env(settings[i].env);
  };
  std::map<std::string, std::string> file;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    if (std::string_view(settings[i].env) != "CONFIG_FILE") continue;
    if (auto path = given(i); path && !path->empty()) {
      if (auto err = ReadConfigFile(*path, file); !err.empty()) {
        return ParseError{"CONFIG_FILE (--config-file): " + err};
      }
    }
  }
  std::set<std::string> known;
  for (const auto& s : settings) known.insert(s.env);
  for (const auto& [name, value] : file) {
    if (!known.contains(name) || name == "CONFIG_FILE") {
      return ParseError{"CONFIG_FILE (--config-file): '" + name + "' is not a setting"};
    }
  }

  Config config;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    std::optional<std::string> text = given(i);
    if (!text) {
      if (auto it = file.find(settings[i].env); it != file.end()) text = it->second;
    }
    if (!text) continue;
    config.given[settings[i].env] = *text;
    if (auto err = settings[i].apply(config, *text); !err.empty()) {
      return ParseError{std::string(settings[i].env) + " (" + settings[i].flag + "): " + err};
    }
  }
  if (auto err = Validate(config)) return ParseError{*err};
  return config;
}

}  // namespace tickwire::config
