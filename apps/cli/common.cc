#include "common.h"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <ctime>

#include <fmt/core.h>

#include "config/duration.h"
#include "observability/log.h"

namespace tickwire::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true, std::memory_order_relaxed); }

}  // namespace

std::string ExitCodesHelp() {
  return "Exit codes: 0 done; 1 runtime or server error (connect, TLS, AUTH, a refused request, "
         "the connection lost for good, a failed bench check); 2 usage error (bad flags or "
         "arguments, missing credentials); 3 partial (pub skipped input lines, topics stopped "
         "at --timeout); 130 bench or topics interrupted.";
}

void AddConnectionFlags(CLI::App& cmd, ConnectionFlags& flags) {
  constexpr const char* kGroup = "Connection";
  cmd.add_option("--addr", flags.addr, "Server address host:port")
      ->envname("TICKWIRE_ADDR")
      ->capture_default_str()
      ->group(kGroup);
  cmd.add_option("--user", flags.user, "User name (required)")
      ->envname("STREAM_USER")
      ->group(kGroup);
  cmd.add_option("--pass", flags.pass,
                 "Password (required, unless a client certificate is the credential)")
      ->envname("STREAM_PASS")
      ->group(kGroup);
  cmd.add_option("--name", flags.name, "Client name the server logs")->group(kGroup);
  cmd.add_flag("--tls", flags.tls,
               "Connect with TLS, verifying the server against the system's CAs (or --ca)")
      ->envname("TICKWIRE_TLS")
      ->group(kGroup);
  cmd.add_option("--ca", flags.ca_file,
                 "PEM file of the CAs that sign the server's certificate (implies --tls)")
      ->envname("TICKWIRE_TLS_CA")
      ->check(CLI::ExistingFile)
      ->group(kGroup);
  cmd.add_option("--cert", flags.cert_file,
                 "PEM client certificate, for servers that require mutual TLS (implies --tls; "
                 "needs --key)")
      ->envname("TICKWIRE_TLS_CERT")
      ->check(CLI::ExistingFile)
      ->group(kGroup);
  cmd.add_option("--key", flags.key_file, "PEM private key of --cert")
      ->envname("TICKWIRE_TLS_KEY")
      ->check(CLI::ExistingFile)
      ->group(kGroup);
}

std::optional<HostPort> ParseHostPort(std::string_view addr) {
  HostPort hp;
  std::string_view port;
  if (!addr.empty() && addr.front() == '[') {
    const auto close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
      return std::nullopt;
    }
    hp.host = std::string(addr.substr(1, close - 1));
    port = addr.substr(close + 2);
  } else {
    const auto colon = addr.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    hp.host = std::string(addr.substr(0, colon));
    port = addr.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (hp.host.empty() || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return std::nullopt;
  }
  hp.port = static_cast<std::uint16_t>(value);
  return hp;
}

std::optional<client::ClientOptions> MakeClientOptions(const ConnectionFlags& flags,
                                                       const std::string& default_name,
                                                       std::string& error) {
  auto hp = ParseHostPort(flags.addr);
  if (!hp) {
    error = "invalid --addr '" + flags.addr + "': expected host:port";
    return std::nullopt;
  }
  if (flags.user.empty()) {
    error = "no credentials: set STREAM_USER and STREAM_PASS, or pass --user and --pass";
    return std::nullopt;
  }
  // With TLS_CLIENT_CN_USER the server takes the user from the client certificate and does not
  // check the password.
  if (flags.pass.empty() && flags.cert_file.empty()) {
    error = "no password for user '" + flags.user + "': set STREAM_PASS or pass --pass";
    return std::nullopt;
  }
  if (flags.cert_file.empty() != flags.key_file.empty()) {
    error = "--cert and --key go together (TICKWIRE_TLS_CERT and TICKWIRE_TLS_KEY)";
    return std::nullopt;
  }
  client::ClientOptions o;
  o.host = hp->host;
  o.port = hp->port;
  o.username = flags.user;
  o.password = flags.pass;
  o.client_name = flags.name.empty() ? default_name : flags.name;
  o.tls.enabled = flags.tls || !flags.ca_file.empty() || !flags.cert_file.empty();
  o.tls.ca_file = flags.ca_file;
  o.tls.cert_file = flags.cert_file;
  o.tls.key_file = flags.key_file;
  return o;
}

std::unique_ptr<client::Client> ConnectOrReport(const client::ClientOptions& options) {
  auto connected = client::Client::Connect(options);
  if (!connected.ok()) {
    PrintError(connected.error().ToString());
    return nullptr;
  }
  return std::move(connected).value();
}

void PrintClosed(const client::Closed& closed) {
  PrintError("connection closed: " +
             (closed.reason ? closed.reason->ToString() : std::string("by client")));
}

void EnableReconnect(client::ClientOptions& options, const std::string& what) {
  options.reconnect.enabled = true;
  options.on_connection = [what](const client::ConnectionEvent& e) {
    using Type = client::ConnectionEvent::Type;
    if (e.type == Type::kRetrying) {
      PrintError(fmt::format("{}: {}; reconnecting in {:.1f} s (attempt {})", what,
                             e.reason.ToString(), static_cast<double>(e.delay.count()) / 1000.0,
                             e.attempt));
    } else if (e.type == Type::kReconnected) {
      PrintError(
          fmt::format("{}: reconnected; {} resumed", what, Plural(e.resubscribed, "subscription")));
    }
  };
}

std::optional<std::chrono::milliseconds> ParseDurationFlag(const std::string& text) {
  return config::ParseDuration(text);
}

void InstallStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }

namespace {
std::string FormatTime(std::int64_t seconds, std::int64_t fraction, int digits) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:0{}}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction, digits);
}
}  // namespace

std::string FormatTimeNs(std::int64_t ts_ns) {
  std::int64_t s = ts_ns / 1'000'000'000;
  std::int64_t ns = ts_ns % 1'000'000'000;
  if (ns < 0) {
    ns += 1'000'000'000;
    --s;
  }
  return FormatTime(s, ns, 9);
}

std::string FormatTimeMs(std::int64_t ts_ms) {
  std::int64_t s = ts_ms / 1000;
  std::int64_t ms = ts_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --s;
  }
  return FormatTime(s, ms, 3);
}

void AppendJson(std::string& out, std::string_view s) { obs::AppendJsonString(out, s); }

std::string Plural(std::uint64_t n, std::string_view singular, std::string_view plural) {
  if (n == 1) return fmt::format("1 {}", singular);
  if (plural.empty()) return fmt::format("{} {}s", n, singular);
  return fmt::format("{} {}", n, plural);
}

void PrintError(std::string_view message) {
  std::fprintf(stderr, "tickwire: %.*s\n", static_cast<int>(message.size()), message.data());
}

std::optional<client::ClientOptions> ProducerOptions(const client::ClientOptions& base,
                                                     const std::string& pub_addr) {
  auto o = base;
  o.client_name = base.client_name + "-pub";
  if (pub_addr.empty()) return o;
  auto hp = ParseHostPort(pub_addr);
  if (!hp) return std::nullopt;
  o.host = hp->host;
  o.port = hp->port;
  return o;
}

}  // namespace tickwire::cli
