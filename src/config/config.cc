#include "config/config.h"

#include <charconv>
#include <cstdlib>
#include <limits>
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

std::vector<Setting> Settings() {
  const Config d;
  return {
      {"STREAM_USER", "--stream-user", "username clients must send in AUTH (required)", "",
       [](Config& c, const std::string& v) {
         c.stream_user = v;
         return std::string{};
       }},
      {"STREAM_PASS", "--stream-pass", "password clients must send in AUTH (required)", "",
       [](Config& c, const std::string& v) {
         c.stream_pass = v;
         return std::string{};
       }},
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
       }},
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
       "output bytes a connection may have queued before it is dropped as a slow consumer",
       std::to_string(d.max_pending_bytes),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint64_t>(v, 1, std::uint64_t{1} << 40, c.max_pending_bytes);
       }},
      {"WORKERS", "--workers", "worker threads, each with its own event loop (0 = one per core)",
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
       "topics kept; beyond it the least recently published topic (and its history) is evicted",
       std::to_string(d.max_topics),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 100'000'000, c.max_topics);
       }},
      {"MAX_BACKFILL_RECORDS", "--max-backfill-records",
       "most history records one subscription receives (the newest of each topic are kept)",
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
       "connections still waiting to AUTH; beyond it new ones are accepted and closed at once",
       std::to_string(d.max_unauth_connections),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 1, 10'000'000, c.max_unauth_connections);
       }},
      {"TLS_CERT_PATH", "--tls-cert", "PEM certificate chain for TLS on the stream port", "",
       [](Config& c, const std::string& v) {
         c.tls_cert_path = v;
         return std::string{};
       }},
      {"TLS_KEY_PATH", "--tls-key", "PEM private key for TLS on the stream port", "",
       [](Config& c, const std::string& v) {
         c.tls_key_path = v;
         return std::string{};
       }},
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
       }},
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
      {"LOG_RATE_LIMIT", "--log-rate-limit",
       "log lines per second for each kind of client-caused noisy event (0 = unlimited)",
       std::to_string(d.log_rate_limit),
       [](Config& c, const std::string& v) {
         return ParseUint<std::uint32_t>(v, 0, 1'000'000, c.log_rate_limit);
       }},
  };
}

}  // namespace

unsigned Config::EffectiveWorkers() const {
  if (workers != 0) return workers;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : std::min(hw, 64U);
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

std::optional<std::string> Validate(const Config& c) {
  if (c.stream_user.empty()) {
    return "STREAM_USER (--stream-user): required; the server does not run without credentials";
  }
  if (c.stream_pass.empty()) {
    return "STREAM_PASS (--stream-pass): required; the server does not run without credentials";
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
  if (!c.tls_cert_path.empty() || !c.tls_key_path.empty()) {
    return "TLS_CERT_PATH/TLS_KEY_PATH: TLS on the stream port is not available in this build; "
           "unset both to serve plain TCP";
  }
  return std::nullopt;
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
    std::string help = std::string(settings[i].help) + " [" + settings[i].env + "]";
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

  Config config;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    std::optional<std::string> text;
    if (options[i]->count() > 0) {
      text = values[i];
    } else {
      text = env(settings[i].env);
    }
    if (!text) continue;
    if (auto err = settings[i].apply(config, *text); !err.empty()) {
      return ParseError{std::string(settings[i].env) + " (" + settings[i].flag + "): " + err};
    }
  }
  if (auto err = Validate(config)) return ParseError{*err};
  return config;
}

}  // namespace tickwire::config
