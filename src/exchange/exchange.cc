#include "exchange/exchange.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace tickwire::exchange {

#ifdef TICKWIRE_THREAD_CHECKS
void OwnerThreadViolation(const char* file, int line) noexcept {
  std::fprintf(stderr, "%s:%d: worker-owned state touched off its worker's thread\n", file, line);
  std::abort();
}
#endif

Exchange::Exchange(unsigned index, const engine::ShardOptions& shard_options, Poster& poster,
                   Bus& bus, Host& host, IngestBacklog& backlog, WallClock wall_clock)
    : index_(index),
      poster_(poster),
      bus_(bus),
      host_(host),
      backlog_(backlog),
      wall_clock_(wall_clock),
      shard_(index, shard_options) {}

void Exchange::Start() {
  const unsigned n = poster_.workers();
  outbox_ingest_.resize(n);
  outbox_output_.resize(n);
  marks_.assign(n, 0);
  closed_second_.assign(n, std::numeric_limits<std::int64_t>::min());
  closed_minute_.assign(n, std::numeric_limits<std::int64_t>::min());
}

void Exchange::Handle(Op&& op) {
  TICKWIRE_ASSERT_OWNER(owner_);
  std::visit(
      [this](auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, InboxPost>) {
          HandleInbox(o);
        } else if constexpr (std::is_same_v<T, InterestPost>) {
          ApplyInterest(o.from, o.change);
        } else if constexpr (std::is_same_v<T, SliceRequestPost>) {
          QueueSliceRequest(std::move(*o.request));
        } else if constexpr (std::is_same_v<T, ServeSlicesPost>) {
          ServeHistorySlices();
        } else if constexpr (std::is_same_v<T, PublishReportPost>) {
          ReportPublish(*o.tracker);
        } else if constexpr (std::is_same_v<T, PublishFailedPost>) {
          if (auto origin = o.origin.lock()) {
            origin->OnPublishFailed(o.request_id, o.message, o.retry_after_ms);
          }
        } else if constexpr (std::is_same_v<T, ReplicatedPost>) {
          ApplyReplicated(o);
        } else {
          static_assert(std::is_same_v<T, EndOfTurnPost>);
          EndOfTurn();
        }
      },
      op);
}

void Exchange::IngestLocal(const std::shared_ptr<PublishOrigin>& origin, engine::UserId user,
                           std::uint32_t request_id, bool ack,
                           std::vector<engine::IngestTick> ticks) {
  TICKWIRE_ASSERT_OWNER(owner_);
  const unsigned shards = poster_.workers();
  // This call's own reference, dropped below once every part has been handed out.
  auto tracker = MakePublishTracker(origin, index_, request_id,
                                    static_cast<std::uint32_t>(ticks.size()), ack, 1);
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
    tracker->remaining.fetch_add(1, std::memory_order_relaxed);
    per_shard[s].tracker = tracker;
    per_shard[s].user = user;
    if (s == index_) {
      ApplyIngest(per_shard[s], wall_clock_());
    } else {
      outbox_ingest_[s].push_back(std::move(per_shard[s]));
    }
  }
  ReleasePublish(std::move(tracker));
  ScheduleEndOfTurn();
}

void Exchange::ApplyReplicated(ReplicatedPost& post) {
  const auto n = static_cast<std::int64_t>(post.batch.ticks.size());
  // Also the log's evictions and refusal counts, with or without ticks. The log's clock orders
  // the ticks (S8c resume_from_ns): the same on every instance.
  ApplyIngest(post.batch, post.log_clock_ns);
  bus_.LogClockApplied(index_, shard_.order_clock_ns());
  if (n > 0) backlog_.Applied(index_, n);
  log_clock_ns_ = std::max(log_clock_ns_, post.log_clock_ns);
  AdvanceBars();
  ScheduleEndOfTurn();
}

void Exchange::ApplyIngest(IngestBatch& batch, std::int64_t order_ns) {
  shard_.AdvanceOrderClock(order_ns);
  for (const auto& topic : batch.forget) shard_.Forget(topic);
  for (std::size_t r = 1; r < engine::kRefusalKinds; ++r) {
    if (batch.refused[r] > 0)
      shard_.CountRefused(static_cast<engine::Refusal>(r), batch.refused[r]);
  }
  const engine::ApplyResult result = shard_.Apply(batch.ticks, current_block_, batch.user);
  if (!batch.tracker) return;
  if (result.late > 0) {
    batch.tracker->late.fetch_add(static_cast<std::uint32_t>(result.late),
                                  std::memory_order_relaxed);
  }
  if (result.refused > 0) {
    // Told to the publisher (ERROR TOPIC_LIMIT, logged as request_rejected) and counted.
    const engine::IngestTick& first = batch.ticks[result.first_refused];
    batch.tracker->AddRefused(static_cast<std::uint32_t>(result.refused), first.index, first.topic,
                              result.reason);
  }
  ReleasePublish(std::move(batch.tracker));
}

void Exchange::ReleasePublish(std::shared_ptr<PublishTracker> tracker) {
  if (!tracker->Release()) return;
  // Last reference: report on the origin's worker (the acq_rel release made every shard's
  // AddRefused visible here).
  if (!tracker->HasReport()) return;
  const unsigned to = tracker->worker;
  if (to == index_) {
    ReportPublish(*tracker);
  } else {
    poster_.Post(to, PublishReportPost{std::move(tracker)});
  }
}

void Exchange::PublishInterest(const std::vector<delivery::FanoutTable::InterestChange>& changes) {
  TICKWIRE_ASSERT_OWNER(owner_);
  const unsigned shards = poster_.workers();
  for (const auto& ch : changes) {
    if (ch.wildcard) {
      for (unsigned w = 0; w < shards; ++w) {
        if (w == index_) {
          ApplyInterest(index_, ch);
        } else {
          poster_.Post(w, InterestPost{index_, ch});
        }
      }
    } else if (const unsigned owner = engine::ShardOf(ch.topic, shards); owner == index_) {
      ApplyInterest(index_, ch);
    } else {
      poster_.Post(owner, InterestPost{index_, ch});
    }
  }
}

void Exchange::ApplyInterest(unsigned from, const delivery::FanoutTable::InterestChange& change) {
  if (change.wildcard) {
    shard_.SetWildcardInterest(change.mode, from, change.interested,
                               change.topic);  // "*" or "FX.*"
  } else {
    shard_.SetInterest(change.topic, change.mode, from, change.interested);
  }
}

void Exchange::RequestHistorySlice(unsigned owner, HistorySliceRequest request) {
  TICKWIRE_ASSERT_OWNER(owner_);
  if (owner == index_) {
    QueueSliceRequest(std::move(request));
  } else {
    poster_.Post(owner,
                 SliceRequestPost{std::make_unique<HistorySliceRequest>(std::move(request))});
  }
}

void Exchange::QueueSliceRequest(HistorySliceRequest&& request) {
  history_queue_.push_back(std::move(request));
  if (history_scheduled_) return;
  history_scheduled_ = true;
  poster_.Post(index_, ServeSlicesPost{});
}

void Exchange::ServeHistorySlices() {
  history_scheduled_ = false;
  std::size_t served = 0;
  std::size_t skipped = 0;
  while (!history_queue_.empty() && served < kSlicesPerPass && skipped < kSkipsPerPass) {
    HistorySliceRequest r = std::move(history_queue_.front());
    history_queue_.pop_front();
    std::shared_ptr<const engine::HistorySlice> slice;
    if (r.receiver.expired()) {
      ++skipped;  // nobody to answer
      continue;
    }
    if (r.cancel && r.cancel->cancelled.load(std::memory_order_relaxed)) {
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
        HistoryDelivery{std::move(r.receiver), r.catchup_id, index_, std::move(slice)});
  }
  if (!history_queue_.empty()) {
    // The rest waits for a later pass: whatever else is queued on this loop runs first.
    history_scheduled_ = true;
    poster_.Post(index_, ServeSlicesPost{});
  }
  ScheduleEndOfTurn();
}

void Exchange::DeliverOwnerOutput(std::vector<OwnerOutput>& output) {
  for (auto& item : output) {
    if (auto* block = std::get_if<engine::RecordBlockPtr>(&item)) {
      host_.DeliverRecords(*block);
      continue;
    }
    auto& d = std::get<HistoryDelivery>(item);
    if (auto r = d.receiver.lock()) r->OnHistorySlice(d.catchup_id, d.owner, std::move(d.slice));
  }
}

void Exchange::HandleInbox(InboxPost& post) {
  std::int64_t applied = 0;
  const std::int64_t now = post.ingest.empty() ? 0 : wall_clock_();  // one reading per post
  for (auto& batch : post.ingest) {
    applied += static_cast<std::int64_t>(batch.ticks.size());
    ApplyIngest(batch, now);
  }
  if (applied > 0) backlog_.Applied(index_, applied);
  DeliverOwnerOutput(post.output);
  // Every bar `from` closed before these was in this post's output or an earlier one.
  OnShardClosed(post.from, post.closed_second_ms, post.closed_minute_ms);
  // Every tick `from` accepted before `mark` was in this post or an earlier one.
  marks_[post.from] = std::max(marks_[post.from], post.mark);
  AdvanceBars();
  ScheduleEndOfTurn();
}

void Exchange::AdvanceBars() {
  if (shard_.AdvanceWatermark(bus_.Watermark(*this), current_block_) > 0) ScheduleEndOfTurn();
}

void Exchange::OnBarClock() {
  TICKWIRE_ASSERT_OWNER(owner_);
  force_marks_ = true;  // tell every worker how far this one has got, even when idle
  AdvanceBars();
  ScheduleEndOfTurn();
}

std::int64_t Exchange::NextBarClockNs(std::int64_t now_ns, std::int64_t close_delay_ns) {
  // Just after the next SECOND boundary + close delay (minute boundaries are among them).
  constexpr std::int64_t kSecond = 1000 * engine::kNsPerMs;
  return (engine::FloorDiv(now_ns - close_delay_ns, kSecond) + 1) * kSecond + close_delay_ns;
}

void Exchange::ScheduleEndOfTurn() {
  TICKWIRE_ASSERT_OWNER(owner_);
  if (end_of_turn_scheduled_) return;
  end_of_turn_scheduled_ = true;
  poster_.Post(index_, EndOfTurnPost{});
}

void Exchange::ShareCurrentBlock() {
  if (current_block_.empty()) return;
  engine::WorkerMask dest = 0;
  for (const auto& e : current_block_.entries) dest |= e.workers;
  // These records go out in this block; the shard writes on into a recycled one.
  auto filled = block_pool_->Take();
  std::swap(*filled, current_block_);
  const engine::RecordBlockPtr block = block_pool_->Share(std::move(filled));
  for (unsigned w = 0; w < outbox_output_.size(); ++w) {
    if ((dest & engine::WorkerBit(w)) != 0) outbox_output_[w].emplace_back(block);
  }
}

void Exchange::OnShardClosed(unsigned from, std::int64_t second_ms, std::int64_t minute_ms) {
  if (!watermarks_) return;
  // Most posts carry what the last one from `from` did: two compares, nothing else.
  if (second_ms <= closed_second_[from] && minute_ms <= closed_minute_[from]) return;
  closed_second_[from] = std::max(closed_second_[from], second_ms);
  closed_minute_[from] = std::max(closed_minute_[from], minute_ms);
  const std::int64_t second = *std::min_element(closed_second_.begin(), closed_second_.end());
  const std::int64_t minute = *std::min_element(closed_minute_.begin(), closed_minute_.end());
  // Bars of SECOND first: a consumer of both sees a second final before its minute. Values at
  // or before the epoch come from the marks every worker starts with (0, or a log clock of 0):
  // nothing real has closed yet.
  if (second > delivered_second_ && second > 0) {
    delivered_second_ = second;
    host_.DeliverWatermark(engine::Mode::kSecond, second - 1000);
  }
  if (minute > delivered_minute_ && minute > 0) {
    delivered_minute_ = minute;
    host_.DeliverWatermark(engine::Mode::kMinute, minute - 60'000);
  }
}

std::int64_t Exchange::WatermarkMs(engine::Mode interval) const {
  const std::int64_t closed =
      interval == engine::Mode::kMinute ? delivered_minute_ : delivered_second_;
  if (closed == std::numeric_limits<std::int64_t>::min()) return 0;
  return closed - (interval == engine::Mode::kMinute ? 60'000 : 1000);
}

void Exchange::EndOfTurn() {
  end_of_turn_scheduled_ = false;
  // How far the shard has closed bars: every bar of those buckets is in current_block_ or was
  // shared before, so it goes out ahead of (or in) the posts below.
  const std::int64_t closed_second = shard_.second_closed_before_ms();
  const std::int64_t closed_minute = shard_.minute_closed_before_ms();
  // 1. Records this shard produced this turn: encoded once, shared with every interested worker.
  ShareCurrentBlock();
  // 2. This worker's own share of them, and the history slices served to its own subscribers,
  // in the order they were produced; then this worker's watermarks, behind every bar of them.
  if (!outbox_output_[index_].empty()) {
    auto output = std::move(outbox_output_[index_]);
    outbox_output_[index_].clear();
    DeliverOwnerOutput(output);
  }
  OnShardClosed(index_, closed_second, closed_minute);
  // 3. The worker's own end of turn (flushes what this turn added).
  host_.FlushTurn();
  // 4. One post per destination worker carrying everything queued for it this turn, and this
  // worker's mark: every tick it accepted so far is in this post or an earlier one.
  const std::int64_t mark = wall_clock_();
  bool force = force_marks_;
  force_marks_ = false;
  if (watermarks_ && (closed_second != sent_second_ || closed_minute != sent_minute_)) {
    // The shard closed an interval: every worker hears of it now, not at the next bar clock
    // (once per second per pair of workers, however many connections and topics).
    force = true;
    sent_second_ = closed_second;
    sent_minute_ = closed_minute;
  }
  const auto n = static_cast<unsigned>(outbox_output_.size());
  for (unsigned w = 0; w < n; ++w) {
    if (w == index_) continue;
    if (!force && outbox_ingest_[w].empty() && outbox_output_[w].empty()) continue;
    std::int64_t ticks = 0;
    for (const auto& batch : outbox_ingest_[w])
      ticks += static_cast<std::int64_t>(batch.ticks.size());
    if (ticks > 0) backlog_.Add(w, ticks);
    poster_.Post(w, InboxPost{index_, mark, closed_second, closed_minute,
                              std::move(outbox_ingest_[w]), std::move(outbox_output_[w])});
    outbox_ingest_[w].clear();
    outbox_output_[w].clear();
  }
}

bool Exchange::IngestCongested() const {
  return bus_.Congested() || backlog_.Over(poster_.workers(), IngestBacklog::kHighWater);
}

bool Exchange::IngestCleared() const {
  return !bus_.Congested() && !backlog_.Over(poster_.workers(), IngestBacklog::kHighWater / 2);
}

void LocalBus::Publish(Exchange& at, const std::shared_ptr<PublishOrigin>& origin,
                       engine::UserId user, std::string_view, std::uint32_t request_id, bool ack,
                       std::vector<engine::IngestTick> ticks) {
  at.IngestLocal(origin, user, request_id, ack, std::move(ticks));
}

std::int64_t LocalBus::ResumeFrom(const Exchange& at) const { return at.WallNow(); }

std::int64_t LocalBus::Watermark(const Exchange& at) const {
  std::int64_t watermark = at.WallNow();
  const auto& marks = at.marks();
  for (unsigned w = 0; w < marks.size(); ++w) {
    if (w != at.index()) watermark = std::min(watermark, marks[w]);
  }
  return watermark;
}

}  // namespace tickwire::exchange
