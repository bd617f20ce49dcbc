#include "net/worker.h"

#include <boost/asio/post.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "net/connection.h"
#include "observability/log.h"
#include "protocol/frame.h"
#include "protocol/proxy_header.h"

namespace tickwire::net {
namespace {

Clock::duration SweepInterval(const config::Config& c) {
  // Coarse: a tenth of the shortest deadline, within [5 ms, 1 s].
  auto shortest = std::min({c.auth_timeout, c.heartbeat_timeout, c.write_deadline});
  if (c.tls_enabled()) shortest = std::min(shortest, c.tls_handshake_timeout);
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

std::int64_t Worker::WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Worker::Worker(unsigned index, ServerContext& ctx)
    : index_(index),
      ctx_(ctx),
      work_(asio::make_work_guard(io_)),
      // Also holds a peeked PROXY header.
      read_scratch_(std::max<std::size_t>(protocol::kHeaderSize + ctx.config.max_msg_size,
                                          protocol::kProxyV2MaxLength)),
      rng_(std::random_device{}() ^ (std::uint64_t{index} << 32)),
      shard_(index, ShardOptionsFrom(ctx.config)),
      bar_timer_(io_),
      window_timer_(io_),
      sweep_timer_(io_),
      sweep_interval_(SweepInterval(ctx.config)),
      resume_timer_(io_),
      drain_timer_(io_) {}

Worker::~Worker() { Join(); }

void Worker::Start() {
  outbox_ingest_.resize(ctx_.workers.size());
  outbox_output_.resize(ctx_.workers.size());
  marks_.assign(ctx_.workers.size(), 0);
  thread_ = std::thread([this] { Run(); });
}

void Worker::Run() {
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
  // would lose them without a trace. So: one line, written now (not queued), then abort.
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

void Worker::Adopt(asio::ip::tcp::socket socket, TicketPtr ticket) {
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
                                           HexId(rng_()), Clock::now());
  connections_.emplace(id, conn);
  metrics_.OnAccepted();
  conn->Start();
}

void Worker::Forget(std::uint64_t connection_id) { connections_.erase(connection_id); }

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
  if (ctx_.backplane != nullptr) {
    ctx_.backplane->Publish(from, index_, user_name, request_id, ack, std::move(ticks));
    return;
  }
  const auto shards = static_cast<unsigned>(ctx_.workers.size());
  auto tracker = std::make_shared<PublishTracker>();
  tracker->connection = from;
  tracker->worker = index_;
  tracker->request_id = request_id;
  tracker->total = static_cast<std::uint32_t>(ticks.size());
  tracker->ack = ack;
  tracker->remaining = 1;  // this call's own reference, dropped below
  // Split by owner shard, keeping frame order within each shard.
  std::vector<IngestBatch> per_shard(shards);
  if (shards == 1) {
    per_shard[0].ticks = std::move(ticks);
  } else {
    for (auto& t : ticks) {
      per_shard[engine::ShardOf(t.topic, shards)].ticks.push_back(std::move(t));
    }
  }
  for (unsigned s = 0; s < shards; ++s) {
    if (per_shard[s].ticks.empty()) continue;
    tracker->remaining.fetch_add(1);
    per_shard[s].tracker = tracker;
    per_shard[s].user = user;
    if (s == index_) {
      ApplyIngest(per_shard[s]);
    } else {
      outbox_ingest_[s].push_back(std::move(per_shard[s]));
    }
  }
  ReleasePublish(std::move(tracker));
  ScheduleEndOfTurn();
}

void Worker::ApplyReplicated(IngestBatch batch, std::int64_t log_clock_ns) {
  const auto n = static_cast<std::int64_t>(batch.ticks.size());
  ApplyIngest(batch);  // also the log's evictions and refusal counts, with or without ticks
  if (n > 0) ingest_backlog_.fetch_sub(n, std::memory_order_relaxed);
  log_clock_ns_ = std::max(log_clock_ns_, log_clock_ns);
  AdvanceBars();
  ScheduleEndOfTurn();
}

void Worker::ApplyIngest(IngestBatch& batch) {
  for (const auto& topic : batch.forget) shard_.Forget(topic);
  for (std::size_t r = 1; r < engine::kRefusalKinds; ++r) {
    if (batch.refused[r] > 0)
      shard_.CountRefused(static_cast<engine::Refusal>(r), batch.refused[r]);
  }
  const engine::ApplyResult result = shard_.Apply(batch.ticks, current_block_, batch.user);
  if (!batch.tracker) return;
  if (result.refused > 0) {
    // Told to the publisher (ERROR TOPIC_LIMIT, logged as request_rejected) and counted.
    const engine::IngestTick& first = batch.ticks[result.first_refused];
    batch.tracker->AddRefused(static_cast<std::uint32_t>(result.refused), first.index, first.topic,
                              result.reason);
  }
  ReleasePublish(std::move(batch.tracker));
}

void PublishTracker::AddRefused(std::uint32_t n, std::uint32_t index, std::string_view topic,
                                engine::Refusal reason) {
  std::lock_guard lock(mu);
  if (refused == 0 || index < first.index) {
    first.index = index;
    first.topic = std::string(topic);
    first.reason = reason;
  }
  refused += n;
}

void ReportPublish(const PublishTracker& t) {
  const auto c = t.connection.lock();
  if (!c) return;
  if (t.refused > 0) {
    session::PublishRefusal r = t.first;
    r.refused = t.refused;
    r.total = t.total;
    c->OnPublishRefused(t.request_id, r);
  }
  if (t.ack) c->OnPublishApplied(t.request_id, t.total - t.refused);
}

void Worker::ReleasePublish(std::shared_ptr<PublishTracker> tracker) {
  if (tracker->remaining.fetch_sub(1) != 1) return;
  // Last reference: report on the publishing connection's worker. The acq_rel decrement makes
  // every shard's AddRefused visible here.
  if (!tracker->ack && tracker->refused == 0) return;  // nothing to say
  const unsigned to = tracker->worker;
  if (to == index_) {
    ReportPublish(*tracker);
  } else {
    asio::post(ctx_.workers[to]->io(), [tracker = std::move(tracker)] { ReportPublish(*tracker); });
  }
}

template <typename Fn>
void Worker::OnShard(Worker* owner, Fn fn) {
  if (owner == this) {
    fn(shard_);
  } else {
    asio::post(owner->io(), [owner, fn = std::move(fn)] { fn(owner->shard_); });
  }
}

void Worker::PublishInterest(const std::vector<delivery::FanoutTable::InterestChange>& changes) {
  const auto shards = static_cast<unsigned>(ctx_.workers.size());
  const unsigned me = index_;
  for (const auto& ch : changes) {
    // Posted at once, not batched: a SUBSCRIBE_OK may be on the wire right after this, and
    // the owner must see the interest before any tick published in reply to it.
    if (ch.wildcard) {
      for (Worker* w : ctx_.workers) {
        OnShard(w, [ch, me](engine::Shard& s) {
          s.SetWildcardInterest(ch.mode, me, ch.interested, ch.topic);  // "*" or "FX.*"
        });
      }
    } else {
      OnShard(ctx_.workers[engine::ShardOf(ch.topic, shards)],
              [ch, me](engine::Shard& s) { s.SetInterest(ch.topic, ch.mode, me, ch.interested); });
    }
  }
}

void Worker::RequestHistorySlice(unsigned owner, HistorySliceRequest request) {
  Worker* w = ctx_.workers[owner];
  auto queue = [w](HistorySliceRequest& r) {
    w->history_queue_.push_back(std::move(r));
    if (w->history_scheduled_) return;
    w->history_scheduled_ = true;
    asio::post(w->io(), [w] { w->ServeHistorySlices(); });
  };
  if (w == this) {
    queue(request);
    return;
  }
  asio::post(w->io(), [queue, request = std::move(request)]() mutable { queue(request); });
}

void Worker::ServeHistorySlices() {
  history_scheduled_ = false;
  std::size_t served = 0;
  std::size_t skipped = 0;
  while (!history_queue_.empty() && served < kSlicesPerPass && skipped < kSkipsPerPass) {
    HistorySliceRequest r = std::move(history_queue_.front());
    history_queue_.pop_front();
    std::shared_ptr<const engine::HistorySlice> slice;
    if (r.connection.expired()) {
      ++skipped;  // nobody to answer
      continue;
    }
    if (r.cancel->cancelled.load(std::memory_order_relaxed)) {
      ++skipped;  // answered empty, so the subscriber can count its requests out and back
    } else {
      // What this turn produced so far goes out first: the slice reaches the subscriber after
      // every record produced before it was read and before every record produced after.
      ShareCurrentBlock();
      slice = std::make_shared<const engine::HistorySlice>(
          shard_.NextHistorySlice(r.request, std::move(r.cursor), r.limits));
      ++served;
    }
    outbox_output_[r.from].emplace_back(
        HistoryDelivery{std::move(r.connection), r.catchup_id, index_, std::move(slice)});
  }
  if (!history_queue_.empty()) {
    // The rest waits for a later pass: whatever else is queued on this loop runs first.
    history_scheduled_ = true;
    asio::post(io_, [this] { ServeHistorySlices(); });
  }
  ScheduleEndOfTurn();
}

void Worker::DeliverOwnerOutput(std::vector<OwnerOutput>& output) {
  for (auto& item : output) {
    if (auto* block = std::get_if<engine::RecordBlockPtr>(&item)) {
      fanout_.Deliver(*block, index_);
      continue;
    }
    auto& d = std::get<HistoryDelivery>(item);
    if (auto c = d.connection.lock()) c->OnHistorySlice(d.catchup_id, d.owner, std::move(d.slice));
  }
}

void Worker::HandleInbox(unsigned from, std::int64_t mark, std::vector<IngestBatch>& ingest,
                         std::vector<OwnerOutput>& output) {
  std::int64_t applied = 0;
  for (auto& batch : ingest) {
    applied += static_cast<std::int64_t>(batch.ticks.size());
    ApplyIngest(batch);
  }
  if (applied > 0) ingest_backlog_.fetch_sub(applied, std::memory_order_relaxed);
  DeliverOwnerOutput(output);
  // Every tick `from` accepted before `mark` was in this post or an earlier one.
  marks_[from] = std::max(marks_[from], mark);
  AdvanceBars();
  ScheduleEndOfTurn();
}

void Worker::AdvanceBars() {
  if (ctx_.backplane != nullptr) {
    if (shard_.AdvanceWatermark(log_clock_ns_, current_block_) > 0) ScheduleEndOfTurn();
    return;
  }
  std::int64_t watermark = WallNs();
  for (unsigned w = 0; w < marks_.size(); ++w) {
    if (w != index_) watermark = std::min(watermark, marks_[w]);
  }
  if (shard_.AdvanceWatermark(watermark, current_block_) > 0) ScheduleEndOfTurn();
}

void Worker::ArmBarClock() {
  // Wake just after the next SECOND boundary + close delay (minute boundaries are among them).
  const std::int64_t delay = std::int64_t{ctx_.config.bar_close_delay_ms} * engine::kNsPerMs;
  const std::int64_t now = WallNs();
  constexpr std::int64_t kSecond = 1000 * engine::kNsPerMs;
  const std::int64_t next = (engine::FloorDiv(now - delay, kSecond) + 1) * kSecond + delay;
  bar_timer_.expires_after(std::chrono::nanoseconds(next - now) + std::chrono::microseconds(200));
  bar_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    force_marks_ = true;  // tell every worker how far this one has got, even when idle
    AdvanceBars();
    ScheduleEndOfTurn();
    ArmBarClock();
  });
}

void Worker::ScheduleEndOfTurn() {
  if (end_of_turn_scheduled_) return;
  end_of_turn_scheduled_ = true;
  asio::post(io_, [this] { EndOfTurn(); });
}

void Worker::ShareCurrentBlock() {
  if (current_block_.empty()) return;
  engine::WorkerMask dest = 0;
  for (const auto& e : current_block_.entries) dest |= e.workers;
  // These records go out in this block; the shard writes on into a recycled one.
  auto filled = block_pool_->Take();
  std::swap(*filled, current_block_);
  const engine::RecordBlockPtr block = block_pool_->Share(std::move(filled));
  for (unsigned w = 0; w < ctx_.workers.size(); ++w) {
    if ((dest & engine::WorkerBit(w)) != 0) outbox_output_[w].emplace_back(block);
  }
}

void Worker::EndOfTurn() {
  end_of_turn_scheduled_ = false;
  // 1. Records this shard produced this turn: encoded once, shared with every interested worker.
  ShareCurrentBlock();
  // 2. This worker's own share of them, and the history slices served to its own connections,
  // in the order they were produced.
  if (!outbox_output_[index_].empty()) {
    auto output = std::move(outbox_output_[index_]);
    outbox_output_[index_].clear();
    DeliverOwnerOutput(output);
  }
  // 3. BATCH_WINDOW_MS=0: flush what this turn added.
  if (!dirty_.empty()) {
    auto dirty = std::move(dirty_);
    dirty_.clear();
    const auto now = Clock::now();
    for (auto& weak : dirty) {
      if (auto c = weak.lock()) c->FlushBatch(now, true);
    }
  }
  // 4. One post per destination worker carrying everything queued for it this turn, and this
  // worker's mark: every tick it accepted so far is in this post or an earlier one.
  const std::int64_t mark = WallNs();
  const bool force = force_marks_;
  force_marks_ = false;
  for (unsigned w = 0; w < ctx_.workers.size(); ++w) {
    if (w == index_) continue;
    if (!force && outbox_ingest_[w].empty() && outbox_output_[w].empty()) continue;
    Worker* dest = ctx_.workers[w];
    std::int64_t ticks = 0;
    for (const auto& batch : outbox_ingest_[w])
      ticks += static_cast<std::int64_t>(batch.ticks.size());
    if (ticks > 0) dest->ingest_backlog_.fetch_add(ticks, std::memory_order_relaxed);
    asio::post(dest->io(), [dest, from = index_, mark, ingest = std::move(outbox_ingest_[w]),
                            output = std::move(outbox_output_[w])]() mutable {
      dest->HandleInbox(from, mark, ingest, output);
    });
    outbox_ingest_[w].clear();
    outbox_output_[w].clear();
  }
}

bool Worker::IngestCongested() const {
  if (ctx_.backplane != nullptr && ctx_.backplane->Congested()) return true;
  for (const Worker* w : ctx_.workers) {
    if (w->ingest_backlog_.load(std::memory_order_relaxed) > kIngestHighWater) return true;
  }
  return false;
}

void Worker::PauseUntilUncongested(const ConnectionPtr& c) {
  paused_.push_back(c);
  if (resume_timer_armed_) return;
  resume_timer_armed_ = true;
  resume_timer_.expires_after(std::chrono::milliseconds(1));
  resume_timer_.async_wait([this](const boost::system::error_code& ec) {
    resume_timer_armed_ = false;
    if (ec) return;
    bool clear = ctx_.backplane == nullptr || !ctx_.backplane->Congested();
    for (const Worker* w : ctx_.workers) {
      if (w->ingest_backlog_.load(std::memory_order_relaxed) > kIngestHighWater / 2) clear = false;
    }
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
  dirty_.push_back(c);
  ScheduleEndOfTurn();
}

void Worker::ScheduleBatchFlush(const ConnectionPtr& c, Clock::time_point deadline) {
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
  metrics_.active_topics.Set(static_cast<std::int64_t>(shard_.topic_count()));
  // The shard counts on the same thread; publish the increments since the last sweep.
  const auto& st = shard_.stats();
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
