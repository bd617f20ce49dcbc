#include "net/worker.h"

#include <boost/asio/post.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/wall_clock.h"
#include "net/connection.h"
#include "observability/log.h"
#include "protocol/frame.h"
#include "protocol/proxy_header.h"
#include "protocol/wire.h"

namespace tickwire::net {
namespace {

Clock::duration SweepInterval(const config::Config& c) {
  // Coarse: a tenth of the shortest deadline, within [5 ms, 1 s].
  auto shortest = std::min({c.auth_timeout, c.heartbeat_timeout, c.write_deadline});
  if (c.tls_enabled()) shortest = std::min(shortest, c.tls_handshake_timeout);
  if (c.ws_enabled()) shortest = std::min(shortest, c.ws_handshake_timeout);
  if (c.proxy_protocol == config::ProxyMode::kRequired) {
    shortest = std::min(shortest, c.proxy_header_timeout);
  }
  return std::clamp<Clock::duration>(shortest / 10, std::chrono::milliseconds(5),
                                     std::chrono::seconds(1));
}

std::string HexId(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = kHex[v & 0xF];
  return s;
}

engine::ShardOptions ShardOptionsFrom(const config::Config& c) {
  const std::size_t shards = c.EffectiveWorkers();
  auto share = [shards](std::size_t total) { return (total + shards - 1) / shards; };
  engine::ShardOptions o;
  o.close_delay_ns = std::int64_t{c.bar_close_delay_ms} * engine::kNsPerMs;
  o.second_bars = c.history_second_bars;
  o.minute_bars = c.history_minute_bars;
  o.ticks = c.history_ticks;
  if (!c.clustered()) {
    o.max_topics = share(c.max_topics);
    o.max_topics_per_user = share(c.max_topics_per_user);
  } else {
    // Multi-instance mode: the shared log's topic directory enforces both caps over the whole
    // instance, in log order, the same on every instance (cluster/topic_directory.h); a shard
    // holds a subset of the directory's topics, so the whole cap here is never reached.
    o.max_topics = c.max_topics;
  }
  o.max_backfill_records = share(c.max_backfill_records);
  return o;
}

}  // namespace

Worker::Worker(unsigned index, ServerContext& ctx)
    : index_(index),
      ctx_(ctx),
      work_(asio::make_work_guard(io_)),
      // Also holds a peeked PROXY header.
      read_scratch_(std::max<std::size_t>(protocol::kHeaderSize + ctx.config.max_msg_size,
                                          protocol::kProxyV2MaxLength)),
      rng_(std::random_device{}() ^ (std::uint64_t{index} << 32)),
      exchange_(index, ShardOptionsFrom(ctx.config), ctx.poster, *ctx.bus, *this,
                ctx.ingest_backlog, &common::WallClockNs),
      bar_timer_(io_),
      window_timer_(io_),
      sweep_timer_(io_),
      sweep_interval_(SweepInterval(ctx.config)),
      resume_timer_(io_),
      drain_timer_(io_) {}

Worker::~Worker() { Join(); }

void Worker::Start() {
  exchange_.set_watermarks(ctx_.config.watermarks);
  exchange_.Start();
  thread_ = std::thread([this] { Run(); });
}

void Worker::Run() {
  owner_.Bind();
  exchange_.BindThread();
  ArmSweep();
  ArmBarClock();
  try {
    io_.run();
  } catch (const std::exception& e) {
    Fatal(index_, e.what());
  } catch (...) {
    Fatal(index_, "an exception of unknown type");
  }
}

void Worker::Fatal(unsigned worker, std::string_view what) noexcept {
  // A bug, not bad input (input errors never throw, and a frame handler that throws ends only
  // its connection, see Session::OnFrame). The handler that threw may have been applying ticks
  // another worker posted here, delivering records or history, or reporting an ack: carrying on
  // would lose them without a trace. So: the lines queued before it are flushed (waiting a
  // bounded time for stdout), then one line, written now (not queued), then abort.
  obs::StopLogWriter(std::chrono::milliseconds(500));
  const std::string line = obs::FormatLogLine(
      obs::Level::kError, "worker_fault",
      "an exception escaped a worker's event loop; aborting so that nothing is lost silently",
      {{"worker", worker}, {"what", what}});
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = ::write(fd, line.data() + off, line.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
  }
  std::abort();
}

void Worker::Stop() {
  work_.reset();
  io_.stop();
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Adopt(asio::ip::tcp::socket socket, TicketPtr ticket, Transport transport) {
  const auto& c = ctx_.config;
  boost::system::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(c.tcp_nodelay), ec);
  if (c.so_sndbuf > 0)
    socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(c.so_sndbuf)), ec);
  if (c.so_rcvbuf > 0)
    socket.set_option(asio::socket_base::receive_buffer_size(static_cast<int>(c.so_rcvbuf)), ec);
  socket.non_blocking(true, ec);
  if (ec || draining_) {
    // A dead socket, or one accepted just before the listener stopped (draining): dropping it
    // closes it.
    admission().Released(ticket);
    return;
  }
  const std::uint64_t id = (next_connection_++ << 6) | index_;
  ticket->connection_id = id;
  auto conn = std::make_shared<Connection>(*this, std::move(socket), std::move(ticket), id,
                                           HexId(rng_()), Clock::now(), transport);
  connections_.emplace(id, conn);
  metrics_.OnAccepted(transport);
  conn->Start();
}

void Worker::Forget(std::uint64_t connection_id) {
  TICKWIRE_ASSERT_OWNER(owner_);
  connections_.erase(connection_id);
}

void Worker::EvictWaiting(const TicketPtr& ticket) {
  Worker* owner = ctx_.workers[ticket->worker];
  // Posted even to this worker: the caller may be in the middle of another connection's work.
  // The adoption of the ticket's connection was posted there earlier, so it has run by then.
  asio::post(owner->io(), [owner, ticket] {
    const auto it = owner->connections_.find(ticket->connection_id);
    if (ticket->connection_id != 0 && it != owner->connections_.end()) {
      it->second->EvictWaiting();
    }
  });
}

void Worker::CollectConnectionKeys(Clock::time_point now, ConnzQuery::Sort sort,
                                   std::vector<ConnectionKey>& out) const {
  out.reserve(out.size() + connections_.size());
  for (const auto& [id, c] : connections_) {
    out.push_back({id, index_, SortKey(c->Counters(now), sort)});
  }
}

void Worker::CollectConnections(const std::vector<std::uint64_t>& ids, Clock::time_point now,
                                const ConnzQuery& query, std::vector<ConnectionInfo>& out) const {
  for (const std::uint64_t id : ids) {
    if (auto it = connections_.find(id); it != connections_.end()) {
      out.push_back(it->second->Info(now, query));
    }
  }
}

void Worker::CloseAll() {
  // Safe to iterate: closing defers deregistration to a posted Cleanup.
  for (auto& [id, c] : connections_) c->Drain();
}

void Worker::BeginDrain(Clock::duration period) {
  draining_ = true;
  drain_order_.clear();
  for (auto& [id, c] : connections_) drain_order_.push_back(c);
  std::shuffle(drain_order_.begin(), drain_order_.end(), rng_);
  drain_next_ = 0;
  drain_start_ = Clock::now();
  drain_period_ = period;
  DrainDue();
}

void Worker::DrainDue() {
  const auto n = drain_order_.size();
  const auto now = Clock::now();
  // Connection i is due at start + period * i / n: the first at once, the last a step before
  // the end of the period.
  while (drain_next_ < n) {
    const auto due = drain_start_ + drain_period_ * static_cast<std::int64_t>(drain_next_) /
                                        static_cast<std::int64_t>(n);
    if (due > now) {
      drain_timer_.expires_at(due);
      drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) DrainDue();
      });
      return;
    }
    if (auto c = drain_order_[drain_next_].lock()) {
      // Clients are told to come back after a short random pause, so that those drained at the
      // same moment on different workers do not reconnect in step.
      c->Drain(static_cast<std::uint32_t>(100 + rng_() % 900));
    }
    ++drain_next_;
  }
  drain_order_.clear();
}

void Worker::Ingest(const ConnectionPtr& from, engine::UserId user, std::string_view user_name,
                    std::uint32_t request_id, bool ack, std::vector<engine::IngestTick> ticks) {
  TICKWIRE_ASSERT_OWNER(owner_);
  exchange_.Publish(from, user, user_name, request_id, ack, std::move(ticks));
}

void AsioPoster::Post(unsigned to, exchange::Op op) {
  // One named operation, run by the destination's Exchange.
  struct Run {
    Worker* worker;
    exchange::Op op;
    void operator()() { worker->exchange().Handle(std::move(op)); }
  };
  Worker* w = workers_[to];
  asio::post(w->io(), Run{w, std::move(op)});
}

void Worker::DeliverRecords(const engine::RecordBlockPtr& block) { fanout_.Deliver(block, index_); }

void Worker::DeliverWatermark(engine::Mode interval, std::int64_t start_ms) {
  if (fanout_.mode_subscribers(interval) == 0) return;
  // Encoded once per worker and interval; each connection copies a dozen bytes.
  std::string entry;
  protocol::AppendWatermarkRecordEntry(
      entry, protocol::WatermarkFields{static_cast<std::uint32_t>(interval), start_ms});
  fanout_.DeliverWatermark(interval, entry);
}

void Worker::ArmBarClock() {
  // Wake just after the next SECOND boundary + close delay (minute boundaries are among them).
  const std::int64_t delay = std::int64_t{ctx_.config.bar_close_delay_ms} * engine::kNsPerMs;
  const std::int64_t now = common::WallClockNs();
  const std::int64_t next = exchange::Exchange::NextBarClockNs(now, delay);
  bar_timer_.expires_after(std::chrono::nanoseconds(next - now) + std::chrono::microseconds(200));
  bar_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    exchange_.OnBarClock();
    ArmBarClock();
  });
}

void Worker::FlushTurn() {
  if (dirty_.empty()) return;
  auto dirty = std::move(dirty_);
  dirty_.clear();
  const auto now = Clock::now();
  for (auto& weak : dirty) {
    if (auto c = weak.lock()) c->FlushBatch(now, true);
  }
}

void Worker::PauseUntilUncongested(const ConnectionPtr& c) {
  TICKWIRE_ASSERT_OWNER(owner_);
  paused_.push_back(c);
  if (resume_timer_armed_) return;
  resume_timer_armed_ = true;
  resume_timer_.expires_after(std::chrono::milliseconds(1));
  resume_timer_.async_wait([this](const boost::system::error_code& ec) {
    resume_timer_armed_ = false;
    if (ec) return;
    const bool clear = exchange_.IngestCleared();
    auto paused = std::move(paused_);
    paused_.clear();
    for (auto& weak : paused) {
      auto conn = weak.lock();
      if (!conn) continue;
      if (clear) {
        conn->ResumeReading();
      } else {
        PauseUntilUncongested(conn);
      }
    }
  });
}

void Worker::MarkDirty(const ConnectionPtr& c) {
  TICKWIRE_ASSERT_OWNER(owner_);
  dirty_.push_back(c);
  exchange_.ScheduleEndOfTurn();
}

void Worker::ScheduleBatchFlush(const ConnectionPtr& c, Clock::time_point deadline) {
  TICKWIRE_ASSERT_OWNER(owner_);
  windows_.emplace_back(deadline, c);
  ArmWindowTimer();
}

void Worker::ArmWindowTimer() {
  if (window_timer_armed_ || windows_.empty()) return;
  window_timer_armed_ = true;
  window_timer_.expires_at(windows_.front().first);
  window_timer_.async_wait([this](const boost::system::error_code& ec) {
    window_timer_armed_ = false;
    if (ec) return;
    OnWindowTimer();
  });
}

void Worker::OnWindowTimer() {
  const auto now = Clock::now();
  while (!windows_.empty() && windows_.front().first <= now) {
    auto weak = std::move(windows_.front().second);
    windows_.pop_front();
    if (auto c = weak.lock()) c->FlushBatch(now, false);
  }
  ArmWindowTimer();
}

void Worker::ArmSweep() {
  sweep_timer_.expires_after(sweep_interval_);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    Sweep();
    ArmSweep();
  });
}

void Worker::Sweep() {
  const auto now = Clock::now();
  for (auto& [id, c] : connections_) c->CheckTimers(now);
  const engine::Shard& shard = exchange_.shard();
  metrics_.active_topics.Set(static_cast<std::int64_t>(shard.topic_count()));
  // The shard counts on the same thread; publish the increments since the last sweep.
  const auto& st = shard.stats();
  auto sync = [](obs::Counter& c, std::uint64_t v) { c.Add(v - c.Get()); };
  sync(metrics_.late_ticks[0], st.late_second);
  sync(metrics_.late_ticks[1], st.late_minute);
  sync(metrics_.bars_closed[0], st.bars_second);
  sync(metrics_.bars_closed[1], st.bars_minute);
  sync(metrics_.topics_evicted, st.topics_evicted);
  for (std::size_t r = 1; r < engine::kRefusalKinds; ++r) {
    sync(metrics_.ticks_refused[r], st.ticks_refused[r]);
  }
  sync(metrics_.backfills_truncated, st.backfills_truncated);
}

}  // namespace tickwire::net
