#include "delivery/subscriber_stream.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "engine/topic.h"
#include "protocol/batch_builder.h"
#include "protocol/wire.h"

namespace tickwire::delivery {

SubscriberStream::SubscriberStream(StreamHost& host, const Subscriptions& subscriptions,
                                   StreamParams params)
    : host_(host), subscriptions_(subscriptions), params_(params), batcher_(params.max_msg_size) {}

void SubscriberStream::DeliverRecord(const engine::RecordBlock& block,
                                     const engine::RecordBlock::Entry& e) {
  if (stopped_) return;
  if (!catchups_.empty()) {
    const std::string_view topic = block.Topic(e);
    for (auto& c : catchups_) {
      if (!c->Covers(topic, e.mode)) continue;
      WithCatchUp(*c, [&](CatchUp& cu, const CatchUp::Emit& emit) {
        cu.OnLive(topic, e.key, block.EntryBytes(e), emit);
      });
      if (!stopped_ && held_bytes_ + host_.QueuedBytes() > params_.max_pending_bytes) {
        host_.PendingLimitExceeded();
      }
      return;
    }
  }
  Append(block.EntryBytes(e));
}

void SubscriberStream::DeliverRun(const engine::RecordBlockPtr& block,
                                  std::span<const engine::RecordBlock::Entry> run) {
  if (stopped_) return;
  if (!catchups_.empty()) {
    for (const auto& e : run) DeliverRecord(*block, e);
    return;
  }
  const std::size_t run_bytes = run.back().offset + run.back().length - run.front().offset;
  if (run_bytes >= kShareRunBytes) {
    // A long run (a burst from one producer, a second's bars for "*"): frames that point into
    // the shared block, written with a gather write; nothing copied per subscriber. What is
    // open goes first, so batch_seq and record order stay as written.
    const auto now = std::chrono::steady_clock::now();
    if (!batcher_.empty()) {
      QueueBatch(batcher_.Finish(), now);
      if (stopped_) return;
    }
    const std::size_t max = params_.max_msg_size - protocol::kMaxBatchSeqField;
    for (std::size_t i = 0; i < run.size();) {
      std::size_t bytes = run[i].length;
      std::size_t j = i + 1;
      while (j < run.size() && bytes + run[j].length <= max) bytes += run[j++].length;
      const std::string_view tail(block->bytes.data() + run[i].offset, bytes);
      std::string head = batcher_.SharedFrameHead(bytes, j - i);
      if (!host_.QueueSharedFrame(std::move(head), block, tail,
                                  {now, static_cast<std::uint32_t>(j - i)})) {
        return;
      }
      i = j;
    }
    host_.StartOutput();
    return;
  }
  std::size_t i = 0;
  while (i < run.size()) {
    // As many of the run's entries as the open frame takes, copied in one go.
    const std::size_t room = batcher_.room();
    std::size_t bytes = 0;
    std::size_t j = i;
    while (j < run.size() && bytes + run[j].length <= room) bytes += run[j++].length;
    if (j == i) {
      // The open frame is full: cut it; its records are ready now.
      QueueBatch(batcher_.Finish(), std::chrono::steady_clock::now());
      if (stopped_) return;  // the cut frame overflowed the queue
      continue;
    }
    const bool opened =
        batcher_.AppendRun(std::string_view(block->bytes.data() + run[i].offset, bytes), j - i);
    if (opened) OnFrameOpened();
    i = j;
  }
}

void SubscriberStream::DeliverWatermark(engine::Mode interval, std::string_view entry) {
  if (stopped_) return;
  for (const auto& c : catchups_) {
    if (c->mode() == interval) {
      // Its held bars may belong to intervals this watermark covers.
      held_watermark_[static_cast<std::size_t>(interval)].assign(entry);
      return;
    }
  }
  Append(entry);
}

void SubscriberStream::ReleaseWatermark(engine::Mode mode) {
  auto& held = held_watermark_[static_cast<std::size_t>(mode)];
  if (held.empty() || stopped_) return;
  for (const auto& c : catchups_) {
    if (c->mode() == mode) return;
  }
  // What the catch-up held went out when it ended, so this follows every bar it covers.
  std::string entry = std::move(held);
  held.clear();
  Append(entry);
}

void SubscriberStream::Append(std::string_view entry) {
  // A frame cut full before its window ended: its records are ready now.
  const bool opened = batcher_.Add(entry, [this](std::string frame) {
    QueueBatch(std::move(frame), std::chrono::steady_clock::now());
  });
  if (stopped_) return;  // the cut frame overflowed the queue
  if (opened) OnFrameOpened();
}

void SubscriberStream::OnFrameOpened() {
  const std::uint32_t window = host_.BatchWindowMs();  // may change on SIGHUP
  // With a window of 0 the records are ready when the frame opens; the end of the turn writes
  // them.
  batch_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(window);
  if (window == 0) {
    if (!flush_marked_) {
      flush_marked_ = true;
      host_.FlushAtEndOfTurn();
    }
  } else {
    host_.FlushAt(batch_deadline_);
  }
}

void SubscriberStream::FlushBatch(TimePoint now, bool force) {
  flush_marked_ = false;
  if (stopped_ || batcher_.empty()) return;
  if (!force && now < batch_deadline_) return;  // a newer frame; its own deadline is queued
  // Records are ready for delivery when their window ends (a forced flush: now).
  QueueBatch(batcher_.Finish(), std::min(now, batch_deadline_));
}

void SubscriberStream::FlushForDrain() {
  if (stopped_ || batcher_.empty()) return;
  // Not counted as a batch written on time: the drain cuts its window short.
  if (host_.QueueFrame(batcher_.Finish(), {})) host_.StartOutput();
}

void SubscriberStream::QueueBatch(std::string frame, TimePoint ready) {
  if (host_.QueueFrame(std::move(frame), {ready, batcher_.finished_records()})) {
    host_.StartOutput();
  }
}

void SubscriberStream::Stop() { stopped_ = true; }

void SubscriberStream::CancelCatchUps() {
  for (auto& c : catchups_) c->cancel()->cancelled.store(true, std::memory_order_relaxed);
  catchups_.clear();
  held_bytes_ = 0;
}

bool SubscriberStream::Covered(std::string_view topic, engine::Mode mode,
                               std::uint64_t except) const {
  for (const auto& [id, sub] : subscriptions_) {
    if (id == except || sub.mode != mode) continue;
    if (sub.wildcard || std::binary_search(sub.topics.begin(), sub.topics.end(), topic)) {
      return true;
    }
    if (sub.patterns > 0 && engine::ListHasPatternFor(sub.topics, topic)) return true;
  }
  return false;
}

template <typename Fn>
void SubscriberStream::WithCatchUp(CatchUp& c, Fn&& fn) {
  const std::uint64_t before = c.held_bytes();
  const CatchUp::Emit emit = [this](std::string_view entry) {
    if (!stopped_) Append(entry);
  };
  fn(c, emit);
  held_bytes_ = held_bytes_ - before + c.held_bytes();
}

void SubscriberStream::OnSubscribed(std::uint64_t id, const Subscription& sub) {
  if (!sub.WantsHistory()) return;  // live only
  // Exactly one Record.history_end follows the history (PROTOCOL S8c): below when no replay
  // runs, else when the replay completes.
  CatchUp::EndReport report;
  CatchUp::Scope scope;
  scope.resume = sub.resume;
  scope.resume_from_ns = sub.resume_from_ns;
  if (sub.resume_stale) {
    // Positions of a gone stream (S7a): what followed each is lost, and every topic's retained
    // ticks are new to the client.
    for (auto& p : scope.resume) {
      if (p.after_seq != 0 || p.topic_epoch != 0) {
        report.epoch_changed = true;
        report.AddLost(engine::LostRange{p.topic, p.after_seq + 1, 0, p.topic_epoch});
      }
      p.after_seq = 0;
      p.topic_epoch = 0;
    }
  }
  const std::size_t retained = sub.mode == engine::Mode::kTick     ? params_.history_ticks
                               : sub.mode == engine::Mode::kSecond ? params_.history_second_bars
                                                                   : params_.history_minute_bars;
  if (retained == 0) {  // nothing is retained in this mode: live at once
    report.retention = true;
    EmitHistoryEnd(id, report);
    return;
  }
  scope.wildcard = sub.wildcard;
  if (sub.wildcard || sub.patterns > 0) {
    // Topics other subscriptions already deliver stay live; everything else catches up.
    for (const auto& [other_id, other] : subscriptions_) {
      if (other_id == id || other.mode != sub.mode) continue;
      if (other.wildcard) {  // "*" in this mode is live already: nothing to catch up
        EmitHistoryEnd(id, report);
        return;
      }
      for (const auto& t : other.topics) {
        const std::string_view prefix = engine::PrefixOf(t);
        if (prefix.empty()) {
          scope.excluded.insert(t);
        } else {
          scope.excluded_prefixes.emplace_back(prefix);
        }
      }
    }
  }
  if (!sub.wildcard) {
    for (const auto& t : sub.topics) {
      const std::string_view prefix = engine::PrefixOf(t);
      if (!prefix.empty()) {
        scope.prefixes.emplace_back(prefix);
      } else if (!Covered(t, sub.mode, id)) {
        scope.topics.insert(t);
      }
    }
  }
  auto catchup = std::make_unique<CatchUp>(next_catchup_++, id, sub.mode, std::move(scope),
                                           sub.backfill, sub.since_ms, params_.shards);
  if (catchup->complete()) {  // everything it covers is delivered live already
    EmitHistoryEnd(id, report);
    return;
  }
  catchup->end_report() = std::move(report);
  catchups_.push_back(std::move(catchup));
  PumpCatchUps();
}

void SubscriberStream::EmitHistoryEnd(std::uint64_t subscription_id,
                                      const CatchUp::EndReport& report) {
  if (stopped_) return;
  protocol::HistoryEndFields f;
  f.subscription_id = subscription_id;
  f.truncated = report.truncated();
  f.retention = report.retention;
  f.backfill_limit = report.backfill_limit;
  f.epoch_changed = report.epoch_changed;
  // The record must fit one DATA_BATCH with room to spare: ranges past half of MAX_MSG_SIZE are
  // only counted.
  const std::size_t budget = params_.max_msg_size / 2;
  std::size_t bytes = 64;
  std::vector<protocol::LostRangeFields> lost;
  std::uint64_t omitted = report.lost_omitted;
  for (const auto& r : report.lost) {
    const std::size_t more = protocol::LostRangeEntryBound(r.topic);
    if (bytes + more > budget) {
      ++omitted;
      continue;
    }
    bytes += more;
    lost.push_back(protocol::LostRangeFields{r.topic, r.from_seq, r.to_seq, r.topic_epoch});
  }
  f.lost = lost;
  f.lost_omitted = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(omitted, std::numeric_limits<std::uint32_t>::max()));
  std::string entry;
  protocol::AppendHistoryEndRecordEntry(entry, f);
  Append(entry);
  ++history_ends_;
}

void SubscriberStream::OnUnsubscribed(std::uint64_t id) {
  for (std::size_t i = 0; i < catchups_.size(); ++i) {
    if (catchups_[i]->subscription_id() == id) {
      DropCatchUp(i, id);
      return;
    }
  }
}

std::uint64_t SubscriberStream::CatchUpThreshold() const {
  // Keep the queue short so history never trips the pending-output limit on its own.
  return std::min<std::uint64_t>(256 * 1024, params_.max_pending_bytes / 4);
}

std::size_t SubscriberStream::SliceBytes() const {
  return static_cast<std::size_t>(
      std::clamp<std::uint64_t>(CatchUpThreshold() / kMaxSlicesInFlight, 1024, 64 * 1024));
}

void SubscriberStream::OnOutputWritten() {
  if (!catchups_.empty()) PumpCatchUps();
}

void SubscriberStream::PumpCatchUps() {
  if (stopped_) return;
  const std::uint64_t threshold = CatchUpThreshold();
  const std::size_t slice_bytes = SliceBytes();
  // Oldest catch-up first; within one, its owner shards in turn.
  for (auto& c : catchups_) {
    for (;;) {
      if (slices_in_flight_ >= kMaxSlicesInFlight) return;
      // Room for what is queued and every slice on its way (one request always, when the queue
      // is below the threshold, so a small MAX_PENDING_BYTES still makes progress).
      const std::uint64_t queued = host_.QueuedBytes();
      if (queued + std::uint64_t{slices_in_flight_ + 1} * slice_bytes > threshold &&
          (slices_in_flight_ > 0 || queued >= threshold)) {
        return;
      }
      CatchUp::SliceRequest next;
      if (!c->NextRequest(next)) break;
      ++slices_in_flight_;
      host_.RequestHistorySlice(c->id(), std::move(next),
                                engine::SliceLimits{slice_bytes, kSliceSteps}, c->cancel());
    }
  }
}

void SubscriberStream::OnHistorySlice(std::uint64_t catch_up_id, unsigned owner,
                                      std::shared_ptr<const engine::HistorySlice> slice) {
  if (slices_in_flight_ > 0) --slices_in_flight_;
  if (stopped_) return;
  if (slice != nullptr) {
    for (std::size_t i = 0; i < catchups_.size(); ++i) {
      CatchUp& c = *catchups_[i];
      if (c.id() != catch_up_id) continue;
      const engine::Mode c_mode = c.mode();
      bool complete = false;
      WithCatchUp(c, [&](CatchUp& cu, const CatchUp::Emit& emit) {
        complete = cu.OnSlice(owner, *slice, emit);
      });
      if (complete) {
        // After its last replayed record (and what was held for it): the end of its history.
        EmitHistoryEnd(c.subscription_id(), c.end_report());
        catchups_.erase(catchups_.begin() + static_cast<std::ptrdiff_t>(i));
        ReleaseWatermark(c_mode);
      }
      break;
    }
  }
  PumpCatchUps();
}

void SubscriberStream::DropCatchUp(std::size_t index, std::uint64_t removed_subscription) {
  std::unique_ptr<CatchUp> c = std::move(catchups_[index]);
  catchups_.erase(catchups_.begin() + static_cast<std::ptrdiff_t>(index));
  // Held records of topics another subscription still delivers go out now; the rest (and the
  // unsent history) belonged to the subscription being removed.
  const engine::Mode mode = c->mode();
  WithCatchUp(*c, [&](CatchUp& cu, const CatchUp::Emit& emit) {
    cu.Abandon(
        [&](std::string_view topic) {
          return !stopped_ && Covered(topic, mode, removed_subscription);
        },
        emit);
  });
  ReleaseWatermark(mode);
}

}  // namespace tickwire::delivery
