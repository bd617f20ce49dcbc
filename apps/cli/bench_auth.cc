// tickwire bench auth: an AUTH flood against one user name from many source addresses (posed
// with PROXY v2 headers), while a real user keeps logging in and an authenticated connection
// keeps sending HEARTBEATs. Reports what the flood got (guesses checked per second, per address,
// refusals) and what everybody else saw (heartbeat round trips, the real user's login times from
// its usual address and from new ones, and whether it was ever refused).
//
// With --spawn the bench starts the server itself with a users file holding the target user
// (PBKDF2 with --iterations) and PROXY_PROTOCOL=required for 127.0.0.1, so one process can pose
// as any number of addresses.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "auth/password_hash.h"
#include "bench_common.h"
#include "client/codec.h"
#include "commands.h"
#include "common.h"
#include "latency_histogram.h"
#include "protocol/frame.h"
#include "spawned_server.h"

namespace tickwire::cli {
namespace {

using protocol::FrameType;

struct AuthFlags {
  ConnectionFlags conn;
  BenchRunFlags run;
  std::string target = "target";  // the user name under attack
  std::string target_pass;        // its password (made up with --spawn)
  std::uint32_t iterations = auth::kDefaultIterations;
  int addresses = 256;  // sources the flood comes from
  int attackers = 16;   // guessing connections at a time
  bool unknown_names = false;
  bool proxy = false;  // pose as those sources with PROXY v2 headers
};

// A PROXY v2 header for a TCP4 connection from `source` (host order).
std::string ProxyV2(std::uint32_t source) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // v2, PROXY
  h += '\x11';  // TCP over IPv4
  h += '\0';
  h += '\x0c';
  for (int shift = 24; shift >= 0; shift -= 8) h += static_cast<char>(source >> shift);
  h += std::string("\x0a\x00\x00\x01\x0f\xa0\x1e\xc6", 8);  // to 10.0.0.1, ports 4000, 7878
  return h;
}

std::string AuthFrame(const std::string& user, const std::string& pass) {
  return client::codec::EncodeAuth(user, pass, "tickwire-bench-auth");
}

// A blocking connection with a read deadline: just enough for one AUTH or a heartbeat loop.
class Probe {
 public:
  ~Probe() { Close(); }
  bool Connect(const HostPort& to) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(to.port);
    if (inet_pton(AF_INET, to.host.c_str(), &a.sin_addr) != 1) return false;
    return connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool Send(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // One frame within `timeout_ms`; false on timeout, close or error.
  bool Read(std::uint8_t& type, std::string& payload, int timeout_ms) {
    std::string head;
    if (!ReadExact(head, protocol::kHeaderSize, timeout_ms)) return false;
    const std::uint32_t len =
        protocol::DecodeLength(reinterpret_cast<const std::uint8_t*>(head.data()));
    if (len == 0 || len > (1u << 24)) return false;
    type = static_cast<std::uint8_t>(head[4]);
    return ReadExact(payload, len - 1, timeout_ms);
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  bool ReadExact(std::string& out, std::size_t n, int timeout_ms) {
    out.assign(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      const ssize_t r = recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }
  int fd_ = -1;
};

// What one AUTH came back with.
enum class Outcome { kOk, kFailed, kRefusedAddress, kRefusedBusy, kOther };

Outcome TryAuth(const HostPort& to, const std::string& header, const std::string& user,
                const std::string& pass) {
  Probe p;
  if (!p.Connect(to) || !p.Send(header + AuthFrame(user, pass))) return Outcome::kOther;
  std::uint8_t type = 0;
  std::string payload;
  if (!p.Read(type, payload, 30'000)) return Outcome::kOther;
  if (type == static_cast<std::uint8_t>(FrameType::kAuthOk)) return Outcome::kOk;
  if (type != static_cast<std::uint8_t>(FrameType::kError)) return Outcome::kOther;
  const auto e = client::codec::DecodeError(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
  if (!e) return Outcome::kOther;
  if (e->code == client::ErrorCode::kAuthFailed) return Outcome::kFailed;
  if (e->code == client::ErrorCode::kAuthRateLimited) {
    return e->message.find("busy") != std::string::npos ? Outcome::kRefusedBusy
                                                        : Outcome::kRefusedAddress;
  }
  return Outcome::kOther;
}

std::string Ms(std::uint64_t us) { return fmt::format("{:.1f}", static_cast<double>(us) / 1000); }

int RunAuth(AuthFlags f) {
  const auto times = f.run.ParseTimes();
  if (!times) return 2;
  if (!CheckFlags(f.addresses >= 1 && f.attackers >= 1, "--addresses and --attackers >= 1")) {
    return 2;
  }
  std::unique_ptr<SpawnedServer> server;
  std::filesystem::path dir;
  if (!f.run.spawn.empty()) {
    // The server gets a users file with the target, and takes PROXY headers from us.
    char tmpl[] = "/tmp/tickwire-bench-auth-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      PrintError("cannot make a temporary directory for the users file");
      return 1;
    }
    dir = tmpl;
    if (f.target_pass.empty()) f.target_pass = fmt::format("pw-{}", std::random_device{}());
    std::ofstream(dir / "users") << f.target << " "
                                 << auth::FormatPasswordHash(
                                        auth::HashPassword(f.target_pass, f.iterations))
                                 << " subscribe=*\n";
    std::vector<std::string> env = {"USERS_FILE=" + (dir / "users").string(),
                                    "PROXY_PROTOCOL=required", "PROXY_TRUSTED_CIDRS=127.0.0.1/32",
                                    "LOG_LEVEL=warn"};
    env.insert(env.end(), f.run.server_env.begin(), f.run.server_env.end());
    f.run.server_env = env;
    f.proxy = true;
  }
  int rc = 0;
  const auto base = StartBench(f.run, f.conn, "tickwire-bench-auth", server, rc);
  if (!base) return rc;
  if (f.target_pass.empty()) {  // no users file of ours: attack STREAM_USER itself
    f.target = base->username;
    f.target_pass = base->password;
  }
  const HostPort to{base->host, base->port};
  auto header = [&](std::uint32_t source) { return f.proxy ? ProxyV2(source) : std::string(); };
  constexpr std::uint32_t kUsual = 0xC0000201;  // 192.0.2.1: where the real user logs in
  constexpr std::uint32_t kFresh = 0x64400000;  // 100.64.0.0/10: a new address each time
  constexpr std::uint32_t kFlood = 0xC6120000;  // 198.18.0.0/15: the flood's addresses

  // The real user logs in once from its usual address before the flood.
  if (TryAuth(to, header(kUsual), f.target, f.target_pass) != Outcome::kOk) {
    StopBenchServer(server);
    PrintError("the target's password does not work (--target, --target-pass)");
    return 1;
  }
  // The watcher: authenticated, one HEARTBEAT at a time, every 20 ms.
  Probe watcher;
  std::uint8_t type = 0;
  std::string payload;
  if (!watcher.Connect(to) ||
      !watcher.Send(header(kUsual + 1) + AuthFrame(base->username, base->password)) ||
      !watcher.Read(type, payload, 10'000) ||
      type != static_cast<std::uint8_t>(FrameType::kAuthOk)) {
    StopBenchServer(server);
    PrintError("the watcher could not authenticate (--user, --pass)");
    return 1;
  }

  Measurement m(times->warmup, times->duration, ServerPid(f.run, server.get()));
  std::atomic<bool> done{false};
  auto measured = [&] {
    const auto now = BenchClock::now();
    return now >= m.window_start() && now < m.end();
  };
  std::mutex mu;
  LatencyHistogram heartbeat_rtt, usual_login, fresh_login;
  std::uint64_t heartbeat_lost = 0, usual_refused = 0, fresh_refused = 0;
  std::vector<std::atomic<std::uint64_t>> counts(5);
  std::vector<std::atomic<std::uint32_t>> per_address(static_cast<std::size_t>(f.addresses));
  std::atomic<std::uint64_t> next_attempt{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < f.attackers; ++t) {
    threads.emplace_back([&] {
      while (!done.load() && !StopRequested()) {
        const std::uint64_t k = next_attempt.fetch_add(1);
        const auto a = static_cast<std::uint32_t>(k % static_cast<std::uint64_t>(f.addresses));
        const std::string user = f.unknown_names ? fmt::format("nobody-{}", k % 1000) : f.target;
        const Outcome o = TryAuth(to, header(kFlood + a), user, fmt::format("guess-{}", k));
        if (!measured()) continue;
        ++counts[static_cast<std::size_t>(o)];
        if (o == Outcome::kFailed) ++per_address[a];
      }
    });
  }
  threads.emplace_back([&] {  // the real user: every 100 ms, alternately usual and new address
    for (std::uint32_t n = 0; !done.load() && !StopRequested(); ++n) {
      const bool usual = n % 2 == 0;
      const auto t0 = BenchClock::now();
      const Outcome o = TryAuth(to, header(usual ? kUsual : kFresh + n), f.target, f.target_pass);
      const auto took = BenchClock::now() - t0;
      if (measured()) {
        std::lock_guard lock(mu);
        (usual ? usual_login : fresh_login).Record(took.count());
        if (o != Outcome::kOk) ++(usual ? usual_refused : fresh_refused);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  threads.emplace_back([&] {  // the watcher's heartbeats
    for (std::int64_t n = 1; !done.load() && !StopRequested(); ++n) {
      const auto t0 = BenchClock::now();
      std::uint8_t ty = 0;
      std::string p;
      const bool ok = watcher.Send(client::codec::EncodeHeartbeat(n)) &&
                      watcher.Read(ty, p, 10'000) &&
                      ty == static_cast<std::uint8_t>(FrameType::kHeartbeat);
      const auto took = BenchClock::now() - t0;
      if (measured()) {
        std::lock_guard lock(mu);
        heartbeat_rtt.Record(took.count());
        if (!ok) ++heartbeat_lost;
      }
      if (!ok) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const bool finished = m.Run([&] {
    return fmt::format("{} guesses checked, {} refused", counts[1].load(),
                       counts[2].load() + counts[3].load());
  });
  done = true;
  for (auto& t : threads) t.join();
  watcher.Close();

  BenchReport r;
  r.scenario = "auth";
  r.summary =
      fmt::format("{} guessing connections from {} addresses at {}{}", f.attackers, f.addresses,
                  f.unknown_names ? "unknown names" : "'" + f.target + "'",
                  f.run.spawn.empty() ? "" : fmt::format(" ({} PBKDF2 iterations)", f.iterations));
  m.Fill(r);
  std::uint32_t most = 0;
  for (const auto& a : per_address) most = std::max(most, a.load());
  auto extra = [&](std::string key, std::string label, std::string value) {
    r.extras.push_back({std::move(key), std::move(label), std::move(value)});
  };
  const std::uint64_t attempts = counts[0] + counts[1] + counts[2] + counts[3] + counts[4];
  extra("addresses", "flood addresses", std::to_string(f.addresses));
  extra("attempts", "flood AUTHs answered", std::to_string(attempts));
  extra("guesses", "guesses checked (AUTH_FAILED)", std::to_string(counts[1].load()));
  extra("guesses_per_s", "guesses checked per second",
        fmt::format("{:.1f}", r.PerSecond(counts[1])));
  extra("guesses_max_per_address", "most guesses from one address", std::to_string(most));
  extra("refused_address", "refused: address over budget", std::to_string(counts[2].load()));
  extra("refused_busy", "refused: hashing queue full", std::to_string(counts[3].load()));
  extra("flood_other", "flood AUTHs with no answer", std::to_string(counts[4].load()));
  extra("heartbeat_p50_ms", "heartbeat round trip p50 (ms)", Ms(heartbeat_rtt.Quantile(0.5)));
  extra("heartbeat_p99_ms", "heartbeat round trip p99 (ms)", Ms(heartbeat_rtt.Quantile(0.99)));
  extra("heartbeat_max_ms", "heartbeat round trip max (ms)", Ms(heartbeat_rtt.Quantile(1)));
  extra("heartbeat_lost", "heartbeats unanswered", std::to_string(heartbeat_lost));
  extra("usual_logins", "real user logins, usual address", std::to_string(usual_login.total()));
  extra("usual_login_max_ms", "  slowest (ms)", Ms(usual_login.Quantile(1)));
  extra("usual_refused", "  refused", std::to_string(usual_refused));
  extra("fresh_logins", "real user logins, new address", std::to_string(fresh_login.total()));
  extra("fresh_login_max_ms", "  slowest (ms)", Ms(fresh_login.Quantile(1)));
  extra("fresh_refused", "  refused", std::to_string(fresh_refused));
  if (usual_refused + fresh_refused + heartbeat_lost > 0) {
    r.first_error = "the real user was refused, or a heartbeat went unanswered";
    r.integrity.errors = usual_refused + fresh_refused + heartbeat_lost;
  }
  StopBenchServer(server);
  if (!dir.empty()) std::filesystem::remove_all(dir);
  return FinishBench(r, f.run.json, !finished);
}

}  // namespace

void RegisterBenchAuth(CLI::App& bench, int& exit_code) {
  auto flags = std::make_shared<AuthFlags>();
  auto& cmd = AddTickwireBench(
      bench, "auth",
      "AUTH flood from many addresses against one user: guesses checked, and what the real user "
      "and an authenticated connection saw meanwhile",
      flags->conn, flags->run);
  cmd.add_option("--target", flags->target, "User name the flood guesses at")
      ->capture_default_str();
  cmd.add_option("--target-pass", flags->target_pass,
                 "Its password, for the real user's logins (made up with --spawn; without "
                 "either, STREAM_USER is the target)");
  cmd.add_option("--iterations", flags->iterations,
                 "With --spawn: PBKDF2 iterations of the target's password hash")
      ->capture_default_str();
  cmd.add_option("--addresses", flags->addresses, "Source addresses the flood comes from")
      ->capture_default_str();
  cmd.add_option("--attackers", flags->attackers, "Guessing connections at a time")
      ->capture_default_str();
  cmd.add_flag("--unknown-names", flags->unknown_names,
               "Guess at user names that do not exist instead of --target");
  cmd.add_flag("--proxy", flags->proxy,
               "Send PROXY v2 headers to pose as the flood's addresses (on with --spawn; the "
               "server needs PROXY_PROTOCOL=required for 127.0.0.1)");
  cmd.callback([flags, &exit_code] { exit_code = RunAuth(*flags); });
}

}  // namespace tickwire::cli
