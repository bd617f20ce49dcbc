#include "idle_connections.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>

#include "bench_common.h"
#include "bench_report.h"
#include "client/codec.h"
#include "common.h"
#include "protocol/frame.h"

namespace tickwire::cli {

namespace asio = boost::asio;

std::string TickwireIdleProtocol::Hello(std::size_t index) const {
  std::string hello =
      client::codec::EncodeAuth(user_, pass_, "tickwire-bench-idle-" + std::to_string(index));
  if (!topic_.empty()) {
    hello += client::codec::EncodeSubscribe(1, client::Mode::kTick, {topic_}, 0, 0);
  }
  return hello;
}

std::string TickwireIdleProtocol::Keepalive() const { return client::codec::EncodeHeartbeat(1); }

IdleReplies TickwireIdleProtocol::Feed(IdleParseState& state, std::string_view data) const {
  IdleReplies r;
  while (!data.empty()) {
    if (state.skip > 0) {
      const auto n = std::min<std::size_t>(state.skip, data.size());
      state.skip -= static_cast<std::uint32_t>(n);
      data.remove_prefix(n);
      continue;
    }
    const auto n = std::min<std::size_t>(protocol::kHeaderSize - state.held, data.size());
    std::memcpy(state.head.data() + state.held, data.data(), n);
    state.held = static_cast<std::uint8_t>(state.held + n);
    data.remove_prefix(n);
    if (state.held < protocol::kHeaderSize) break;
    state.held = 0;
    const auto* header = reinterpret_cast<const std::uint8_t*>(state.head.data());
    const std::uint32_t length = protocol::DecodeLength(header);
    if (length == 0) {
      r.error = true;
      break;
    }
    state.skip = length - 1;  // the payload: the type says all an idle connection needs
    switch (static_cast<protocol::FrameType>(header[protocol::kLengthSize])) {
      case protocol::FrameType::kAuthOk:
      case protocol::FrameType::kSubscribeOk:
        ++r.replies;
        break;
      case protocol::FrameType::kError:
        r.error = true;
        break;
      default:  // HEARTBEAT echoes
        break;
    }
  }
  return r;
}

struct IdleConnectionPool::Conn {
  explicit Conn(asio::io_context& io, std::size_t i) : socket(io), index(i) {}
  asio::ip::tcp::socket socket;
  IdleParseState parse;
  std::size_t index;
  int replies = 0;
  bool ready = false;
  bool dead = false;
};

IdleConnectionPool::IdleConnectionPool(const IdleProtocol& protocol,
                                       std::chrono::milliseconds keepalive)
    : protocol_(protocol),
      keepalive_(keepalive),
      keepalive_bytes_(protocol.Keepalive()),
      answer_bytes_(protocol.Answer()),
      io_(1),
      timer_(io_) {}

IdleConnectionPool::~IdleConnectionPool() { StopAndCountAlive(); }

void IdleConnectionPool::Start(const std::string& host, std::uint16_t port, std::size_t n,
                               std::size_t concurrency) {
  endpoint_ = asio::ip::tcp::endpoint(asio::ip::make_address(host), port);
  conns_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) conns_.push_back(std::make_unique<Conn>(io_, i));
  concurrency_ = std::max<std::size_t>(1, concurrency);
  asio::post(io_, [this] {
    Launch();
    ArmKeepalive();
  });
  thread_ = std::thread([this] { io_.run(); });
}

void IdleConnectionPool::Launch() {
  while (in_handshake_ < concurrency_ && next_ < conns_.size()) {
    Conn& c = *conns_[next_++];
    ++in_handshake_;
    c.socket.async_connect(endpoint_, [this, &c](const boost::system::error_code& ec) {
      if (ec) return Fail(c, "connect: " + ec.message());
      OnConnected(c);
    });
  }
}

void IdleConnectionPool::OnConnected(Conn& c) {
  boost::system::error_code ec;
  c.socket.non_blocking(true, ec);
  if (!ec) c.socket.set_option(asio::ip::tcp::no_delay(true), ec);
  if (ec) return Fail(c, "socket options: " + ec.message());
  counts_.connected.fetch_add(1, std::memory_order_relaxed);
  if (!Write(c, protocol_.Hello(c.index))) return;
  WaitRead(c);
}

void IdleConnectionPool::WaitRead(Conn& c) {
  c.socket.async_wait(asio::socket_base::wait_read,
                      [this, &c](const boost::system::error_code& ec) {
                        if (ec == asio::error::operation_aborted || c.dead) return;
                        if (ec) return Fail(c, "wait: " + ec.message());
                        OnReadable(c);
                      });
}

void IdleConnectionPool::OnReadable(Conn& c) {
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = c.socket.read_some(asio::buffer(scratch_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec == asio::error::eof) return Fail(c, "closed by the server");
    if (ec) return Fail(c, "read: " + ec.message());
    const IdleReplies r = protocol_.Feed(c.parse, std::string_view(scratch_.data(), n));
    if (r.error) return Fail(c, "the server answered with an error");
    for (int i = 0; i < r.answers_due; ++i) {
      if (!Write(c, answer_bytes_)) return;
    }
    c.replies += r.replies;
    if (!c.ready && c.replies >= protocol_.RepliesToReady()) {
      c.ready = true;
      counts_.ready.fetch_add(1, std::memory_order_relaxed);
      --in_handshake_;
      Launch();
    }
    if (n < scratch_.size()) break;
  }
  WaitRead(c);
}

void IdleConnectionPool::Fail(Conn& c, const std::string& why) {
  if (c.dead) return;
  c.dead = true;
  counts_.failed.fetch_add(1, std::memory_order_relaxed);
  if (first_error_.empty()) first_error_ = "connection " + std::to_string(c.index) + ": " + why;
  boost::system::error_code ignored;
  c.socket.close(ignored);
  if (!c.ready) {
    --in_handshake_;
    Launch();
  }
}

bool IdleConnectionPool::Write(Conn& c, std::string_view bytes) {
  boost::system::error_code ec;
  // A few hundred bytes at most into a socket that holds far more: written whole or failed.
  const std::size_t n = c.socket.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec || n != bytes.size()) {
    Fail(c, ec ? "write: " + ec.message() : std::string("short write"));
    return false;
  }
  return true;
}

void IdleConnectionPool::ArmKeepalive() {
  timer_.expires_after(keepalive_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    for (auto& c : conns_) {
      if (!c->ready || c->dead) continue;
      if (Write(*c, keepalive_bytes_)) counts_.keepalives.fetch_add(1, std::memory_order_relaxed);
    }
    ArmKeepalive();
  });
}

std::uint64_t IdleConnectionPool::StopAndCountAlive() {
  if (!stopped_) {
    stopped_ = true;
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t alive = 0;
  for (const auto& c : conns_) alive += c->ready && !c->dead ? 1u : 0u;
  return alive;
}

std::string IdleConnectionPool::first_error() const { return first_error_; }

void AddConnsFlags(CLI::App& cmd, ConnsFlags& flags) {
  cmd.add_option("--connections", flags.connections, "Idle connections to open")
      ->capture_default_str();
  cmd.add_option("--concurrency", flags.concurrency, "Handshakes in flight at once")
      ->capture_default_str();
  cmd.add_option("--heartbeat", flags.keepalive, "Keepalive period (HEARTBEAT, PING)")
      ->capture_default_str();
  cmd.add_option("--duration", flags.hold, "How long to hold them once all are ready")
      ->capture_default_str();
  cmd.add_option("--setup-timeout", flags.setup_timeout, "Longest wait for all to be ready")
      ->capture_default_str();
  cmd.add_flag("--json", flags.json, "Print one JSON object instead of a table");
  cmd.add_option("--server-pid", flags.server_pid, "PID of the server, for its RSS");
}

std::optional<ConnsOptions> ConnsFlags::Options() const {
  const auto k = ParseDurationFlag(keepalive);
  const auto h = ParseDurationFlag(hold);
  const auto s = ParseDurationFlag(setup_timeout);
  if (!k || !h || !s || k->count() <= 0 || connections == 0) {
    PrintError("invalid --heartbeat, --duration, --setup-timeout or --connections");
    return std::nullopt;
  }
  return ConnsOptions{connections, concurrency, *k, *h, *s};
}

BenchReport RunIdleConnections(const IdleProtocol& protocol, const std::string& host,
                               std::uint16_t port, const ConnsOptions& options,
                               std::optional<int> server_pid, bool& interrupted) {
  RaiseFdLimit();
  BenchReport r;
  r.scenario = "conns";
  ConnsFigures figures;
  figures.requested = options.connections;
  auto server_stats = [&]() -> std::optional<ProcStats> {
    if (!server_pid) return std::nullopt;
    return ReadProcStats(static_cast<pid_t>(*server_pid));
  };
  const auto before = server_stats();
  if (before) figures.rss_before_kb = before->rss_kb;
  const double cpu0 = SelfCpuSeconds();

  IdleConnectionPool pool(protocol, options.keepalive);
  const auto t0 = BenchClock::now();
  pool.Start(host, port, options.connections, options.concurrency);
  const auto& counts = pool.counts();
  auto settled = [&] { return counts.ready.load() + counts.failed.load() >= options.connections; };
  auto line = [&](const char* phase) {
    std::fprintf(stderr, "[%5.1fs] %s: %llu connected, %llu ready, %llu failed, %llu keepalives\n",
                 std::chrono::duration<double>(BenchClock::now() - t0).count(), phase,
                 static_cast<unsigned long long>(counts.connected.load()),
                 static_cast<unsigned long long>(counts.ready.load()),
                 static_cast<unsigned long long>(counts.failed.load()),
                 static_cast<unsigned long long>(counts.keepalives.load()));
  };
  // Setup: until every connection is ready (or failed), a stop signal, or the timeout.
  auto next_report = t0 + std::chrono::seconds(1);
  while (!settled() && !StopRequested() && BenchClock::now() < t0 + options.setup_timeout) {
    if (BenchClock::now() >= next_report) {
      line("setup");
      next_report += std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  figures.setup_seconds = std::chrono::duration<double>(BenchClock::now() - t0).count();
  // Hold: the connections sit idle but for their keepalives.
  Measurement m(std::chrono::milliseconds(0), options.hold, server_pid);
  interrupted = StopRequested() || !m.Run([&] {
    return "hold: " + std::to_string(counts.ready.load()) + " ready, " +
           std::to_string(counts.failed.load()) + " failed, " +
           std::to_string(counts.keepalives.load()) + " keepalives";
  });
  const auto after = server_stats();
  if (after) figures.rss_after_kb = after->rss_kb;
  figures.ready = counts.ready.load();
  figures.keepalives = counts.keepalives.load();
  figures.alive = pool.StopAndCountAlive();
  m.Fill(r);
  r.bench_cpu = SelfCpuSeconds() - cpu0;  // setup included: that is where the work is
  if (figures.ready < figures.requested || figures.alive < figures.requested) {
    r.integrity.errors += figures.requested - std::min(figures.requested, figures.alive);
    r.first_error = pool.first_error();
    if (r.first_error.empty()) r.first_error = "not every connection was ready in time";
  }
  r.conns = figures;
  return r;
}

}  // namespace tickwire::cli
