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

void AddConnectionFlags(CLI::App& cmd, ConnectionFlags& flags) {
  cmd.add_option("--addr", flags.addr, "Server address host:port")
      ->envname("TICKWIRE_ADDR")
      ->capture_default_str();
  cmd.add_option("--user", flags.user, "Username")->envname("STREAM_USER");
  cmd.add_option("--pass", flags.pass, "Password")->envname("STREAM_PASS");
  cmd.add_option("--name", flags.name, "Client name the server logs");
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
  client::ClientOptions o;
  o.host = hp->host;
  o.port = hp->port;
  o.username = flags.user;
  o.password = flags.pass;
  o.client_name = flags.name.empty() ? default_name : flags.name;
  return o;
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
      PrintError(fmt::format("{}: reconnected; {} subscription{} resumed", what, e.resubscribed,
                             e.resubscribed == 1 ? "" : "s"));
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
