#include "cluster/nats_bus.h"

#include <nats/nats.h>
#include <unistd.h>

#include <limits>
#include <optional>
#include <random>

#include "cluster/backplane_frame.h"
#include "common/wall_clock.h"
#include "engine/bar.h"
#include "exchange/exchange.h"
#include "observability/metrics.h"
#include "tickwire/v1/backplane.pb.h"

namespace tickwire::cluster {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kNonceHeader = "Tickwire-Nonce";
constexpr std::uint32_t kRetryAfterMs = 1000;

std::string DefaultOrigin(const std::string& instance_id) {
  std::string base = instance_id;
  if (base.empty()) {
    char host[256] = {};
    base = gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0' ? host : "tickwire";
  }
  // A per-start suffix: frames a previous run of this instance left in the log never match
  // this run's producers.
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%08x", rd());
  return base + "/" + suffix;
}

std::string StatusText(natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0') out += std::string(": ") + last;
  if (jerr != 0) out += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  return out;
}

}  // namespace

NatsBus::NatsBus(const config::Config& config, exchange::Poster& poster,
                 exchange::IngestBacklog& backlog, std::function<void(bool)> on_ready)
    : config_(config),
      poster_(poster),
      backlog_(backlog),
      on_ready_(std::move(on_ready)),
      origin_(DefaultOrigin(config.instance_id)),
      subject_(config.nats_subject),
      directory_(config.max_topics, config.max_topics_per_user,
                 std::int64_t{config.bar_close_delay_ms} * engine::kNsPerMs),
      shard_clock_(std::make_unique<std::atomic<std::int64_t>[]>(config.EffectiveWorkers())) {}

NatsBus::~NatsBus() { Stop(); }

std::string NatsBus::Start() {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, config_.nats_url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, origin_.c_str());
  // Reconnect forever with back-off and jitter; a server that is down at start is retried too.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK) s = natsOptions_SetReconnectJitter(opts, 250, 1000);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
  // A silent server is noticed within about 3 s.
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, 1000);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 2);
  if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, &OnConnected, this);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &OnDisconnected, this);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &OnReconnected, this);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return "NATS_URL (--nats-url): " + StatusText(s);
  }
  s = natsConnection_Connect(&nc_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return "NATS_URL (--nats-url): " + StatusText(s);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;  // stream and consumer requests
  jo.PublishAsync.MaxPending = static_cast<int64_t>(kMaxPendingFrames) * 2;
  jo.PublishAsync.AckHandler = &OnPubAck;
  jo.PublishAsync.AckHandlerClosure = this;
  jo.PublishAsync.StallWait = 5;  // never reached: Congested() stops producers first
  s = natsConnection_JetStream(&js_, nc_, &jo);
  if (s != NATS_OK) return "NATS_URL (--nats-url): JetStream context: " + StatusText(s);
  obs::Log(obs::Level::kInfo, "backplane_start", "multi-instance mode: connecting to NATS",
           {{"nats_url", config_.nats_url},
            {"stream", config_.nats_stream},
            {"subject", subject_},
            {"origin", origin_}});
  if (natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED) OnConnected(nc_, this);
  control_ = std::thread([this] { ControlLoop(); });
  return {};
}

void NatsBus::Stop() {
  if (stopping_.exchange(true)) return;
  Wake();
  if (control_.joinable()) control_.join();
  if (js_ != nullptr && connected_) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 1000;
    js_PublishAsyncComplete(js_, &po);
  }
  std::unordered_map<std::uint64_t, PendingFrame> left;
  {
    std::lock_guard lock(pending_mu_);
    left.swap(pending_);
  }
  for (auto& [nonce, frame] : left) {
    Fail(std::move(frame), kUnavailable, "server stopping; the frame may or may not be applied");
  }
  // Closed first: no libnats thread touches the subscription afterwards. The server drops
  // the ephemeral consumer by itself.
  if (nc_ != nullptr) natsConnection_Close(nc_);
  if (sub_ != nullptr) natsSubscription_Destroy(sub_);
  sub_ = nullptr;
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) natsConnection_Destroy(nc_);
  js_ = nullptr;
  nc_ = nullptr;
  connected_ = false;
  UpdateReadiness();
}

void NatsBus::Wake() {
  std::lock_guard lock(control_mu_);
  control_cv_.notify_all();
}

void NatsBus::OnConnected(natsConnection*, void* self) {
  auto* b = static_cast<NatsBus*>(self);
  if (b->connected_.exchange(true)) return;
  obs::Log(obs::Level::kInfo, "backplane_connected", "connected to NATS");
  // The first connection creates the stream and the subscription. After a reconnect the
  // ordered consumer recreates itself from the last message it delivered (libnats does that on
  // its own thread; tearing the subscription down meanwhile races with it), and the control
  // thread only waits until this instance has caught up again.
  if (b->has_subscription_) {
    b->need_catchup_check_ = true;
  } else {
    b->need_setup_ = true;
  }
  b->Wake();
}

void NatsBus::OnDisconnected(natsConnection*, void* self) {
  auto* b = static_cast<NatsBus*>(self);
  if (!b->connected_.exchange(false)) return;
  b->disconnects_.fetch_add(1, std::memory_order_relaxed);
  b->caught_up_ = false;  // others may publish meanwhile: catch up before taking clients again
  obs::Log(b->stopping_ ? obs::Level::kInfo : obs::Level::kWarn, "backplane_disconnected",
           "lost the NATS connection: not ready; PUBLISH gets ERROR UNAVAILABLE until it is back");
  b->UpdateReadiness();
}

void NatsBus::OnReconnected(natsConnection* nc, void* self) {
  auto* b = static_cast<NatsBus*>(self);
  b->connected_ = false;  // OnConnected logs and sets it again
  OnConnected(nc, self);
}

void NatsBus::UpdateReadiness() {
  const bool now = !stopping_ && connected_ && subscribed_ && caught_up_;
  if (ready_.exchange(now) == now) return;
  obs::Log(now ? obs::Level::kInfo : obs::Level::kWarn, "backplane_ready",
           now ? "caught up with the stream: ready" : "backplane not ready",
           {{"ready", now}, {"applied_seq", applied_seq_metric_.load()}});
  if (on_ready_) on_ready_(now);
}

bool NatsBus::SetUp() {
  subscribed_ = false;
  caught_up_ = false;
  UpdateReadiness();

  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {subject_.c_str()};
  sc.Name = config_.nats_stream.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  sc.Retention = js_LimitsPolicy;
  sc.Discard = js_DiscardOld;
  sc.MaxAge = static_cast<int64_t>(config_.nats_max_age.count()) * 1'000'000;
  sc.MaxBytes = static_cast<int64_t>(config_.nats_max_bytes);
  sc.Replicas = config_.nats_replicas;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
  if (s != NATS_OK && jerr == JSStreamNameExistErr) {
    // Exists with other limits: this instance's settings win (all instances should agree).
    jerr = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&si, js_, &sc, nullptr, &jerr);
  }
  if (s != NATS_OK) {
    std::uint64_t suppressed = 0;
    if (error_log_.Admit(common::WallClockNs() / 1'000'000, suppressed)) {
      obs::Log(obs::Level::kError, "backplane_stream_error", "cannot create or update the stream",
               {{"stream", config_.nats_stream}, {"error", StatusText(s, jerr)}});
    }
    return false;
  }
  const std::uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);

  std::uint64_t start;
  {
    std::lock_guard lock(apply_mu_);
    start = applied_seq_;
  }
  if (last < start) {
    obs::Log(obs::Level::kError, "backplane_stream_reset",
             "the stream is behind what this instance applied (deleted or purged?): new messages "
             "at or below the applied sequence are skipped",
             {{"stream_last_seq", last}, {"applied_seq", start}});
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = config_.nats_stream.c_str();
  so.Ordered = true;
  if (start == 0) {
    so.Config.DeliverPolicy = js_DeliverAll;
  } else {
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = start + 1;
  }
  jerr = static_cast<jsErrCode>(0);
  s = js_Subscribe(&sub_, js_, subject_.c_str(), &OnMessage, this, nullptr, &so, &jerr);
  if (s != NATS_OK) {
    sub_ = nullptr;
    std::uint64_t suppressed = 0;
    if (error_log_.Admit(common::WallClockNs() / 1'000'000, suppressed)) {
      obs::Log(obs::Level::kError, "backplane_subscribe_error", "cannot consume the stream",
               {{"stream", config_.nats_stream}, {"error", StatusText(s, jerr)}});
    }
    return false;
  }
  // The library's default limits would drop messages of a fast stream during a replay.
  natsSubscription_SetPendingLimits(sub_, 1 << 20, 1 << 30);
  if (last <= start) caught_up_ = true;
  subscribed_ = true;
  has_subscription_ = true;
  obs::Log(obs::Level::kInfo, "backplane_subscribed", "consuming the stream",
           {{"stream", config_.nats_stream}, {"from_seq", start + 1}, {"stream_last_seq", last}});
  UpdateReadiness();
  return true;
}

bool NatsBus::CaughtUpWithStream() {
  if (caught_up_) return true;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&si, js_, config_.nats_stream.c_str(), nullptr, &jerr) != NATS_OK) {
    return false;
  }
  const std::uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  {
    std::lock_guard lock(apply_mu_);
    if (applied_seq_ < last) return false;  // a delivery with nothing pending will say so
  }
  caught_up_ = true;
  UpdateReadiness();
  return true;
}

void NatsBus::ControlLoop() {
  const std::int64_t delay_ns = std::int64_t{config_.bar_close_delay_ms} * engine::kNsPerMs;
  constexpr std::int64_t kSecondNs = 1'000'000'000;
  auto next_mark = [delay_ns] {
    const std::int64_t now = common::WallClockNs();
    return (engine::FloorDiv(now - delay_ns, kSecondNs) + 1) * kSecondNs + delay_ns + 1'000'000;
  };
  std::int64_t mark_at = next_mark();
  auto retry_at = Clock::now();
  auto check_at = Clock::now();
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    {
      std::unique_lock lock(control_mu_);
      control_cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    if (stopping_) break;
    if (connected_ && need_setup_ && Clock::now() >= retry_at) {
      need_setup_ = false;
      if (SetUp()) {
        backoff = std::chrono::milliseconds(100);
      } else {
        need_setup_ = true;
        static thread_local std::mt19937 rng{std::random_device{}()};
        retry_at = Clock::now() + backoff +
                   std::chrono::milliseconds(rng() % static_cast<unsigned>(backoff.count() + 1));
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
    }
    if (connected_ && need_catchup_check_ && Clock::now() >= check_at) {
      check_at = Clock::now() + std::chrono::milliseconds(200);
      if (CaughtUpWithStream()) need_catchup_check_ = false;
    }
    ExpireOverdue();
    if (common::WallClockNs() >= mark_at) {
      if (connected_) PublishClockMark();
      mark_at = next_mark();
    }
  }
}

void NatsBus::PublishClockMark() {
  v1::BackplaneFrame frame;
  frame.set_origin(origin_);
  frame.set_accepted_ns(common::WallClockNs());
  const std::string data = frame.SerializeAsString();
  natsMsg* msg = nullptr;
  if (natsMsg_Create(&msg, subject_.c_str(), nullptr, data.data(), static_cast<int>(data.size())) !=
      NATS_OK) {
    return;
  }
  if (js_PublishMsgAsync(js_, &msg, nullptr) == NATS_OK) {
    clock_marks_.fetch_add(1, std::memory_order_relaxed);
  }
  natsMsg_Destroy(msg);  // no-op when the library took it
}

void NatsBus::ExpireOverdue() {
  const auto now = Clock::now();
  std::vector<PendingFrame> overdue;
  {
    std::lock_guard lock(pending_mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        overdue.push_back(std::move(it->second));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& f : overdue) {
    Fail(std::move(f), kTimeout,
         "the backplane did not confirm the frame within NATS_PUBLISH_TIMEOUT; it may still be "
         "applied");
  }
}

void NatsBus::Fail(PendingFrame frame, FailReason reason, std::string message) {
  failures_[reason].fetch_add(1, std::memory_order_relaxed);
  if (frame.worker >= poster_.workers()) return;
  poster_.Post(frame.worker, exchange::PublishFailedPost{std::move(frame.origin), frame.request_id,
                                                         std::move(message), kRetryAfterMs});
}

void NatsBus::Publish(exchange::Exchange& at, const std::shared_ptr<exchange::PublishOrigin>& from,
                      engine::UserId, std::string_view user, std::uint32_t request_id, bool ack,
                      std::vector<engine::IngestTick> ticks) {
  PendingFrame frame{from,       at.index(),
                     request_id, static_cast<std::uint32_t>(ticks.size()),
                     ack,        Clock::now() + config_.nats_publish_timeout};
  if (!connected_ || !subscribed_ || stopping_) {
    failures_[kUnavailable].fetch_add(1, std::memory_order_relaxed);
    from->OnPublishFailed(request_id,
                          "the backplane is unavailable; nothing of this frame was applied",
                          kRetryAfterMs);
    return;
  }
  const std::uint64_t nonce = next_nonce_.fetch_add(1, std::memory_order_relaxed) + 1;
  v1::BackplaneFrame out;
  out.set_origin(origin_);
  out.set_nonce(nonce);
  out.set_accepted_ns(ticks.empty() ? common::WallClockNs() : ticks.front().accepted_ns);
  out.set_user(std::string(user));
  out.mutable_ticks()->Reserve(static_cast<int>(ticks.size()));
  for (auto& t : ticks) {
    auto* bt = out.add_ticks();
    bt->set_topic(std::move(t.topic));
    bt->set_price(t.price);
    bt->set_size(t.size);
    bt->set_ts_ns(t.ts_ns);
  }
  const std::string data = out.SerializeAsString();
  const std::string nonce_text = std::to_string(nonce);
  natsMsg* msg = nullptr;
  natsStatus s =
      natsMsg_Create(&msg, subject_.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kNonceHeader, nonce_text.c_str());
  {
    std::lock_guard lock(pending_mu_);
    pending_.emplace(nonce, std::move(frame));
  }
  if (s == NATS_OK) s = js_PublishMsgAsync(js_, &msg, nullptr);
  natsMsg_Destroy(msg);  // no-op when the library took it
  if (s == NATS_OK) {
    published_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::optional<PendingFrame> failed;
  {
    std::lock_guard lock(pending_mu_);
    if (auto it = pending_.find(nonce); it != pending_.end()) {
      failed = std::move(it->second);
      pending_.erase(it);
    }
  }
  if (failed) {
    failures_[kUnavailable].fetch_add(1, std::memory_order_relaxed);
    from->OnPublishFailed(request_id, "the backplane did not take the frame: " + StatusText(s),
                          kRetryAfterMs);
  }
}

void NatsBus::OnPubAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self) {
  auto* b = static_cast<NatsBus*>(self);
  const char* nonce_text = nullptr;
  if (msg == nullptr || natsMsgHeader_Get(msg, kNonceHeader, &nonce_text) != NATS_OK ||
      nonce_text == nullptr) {
    natsMsg_Destroy(msg);  // a clock mark
    return;
  }
  const std::uint64_t nonce = std::strtoull(nonce_text, nullptr, 10);
  std::optional<PendingFrame> failed;
  {
    std::lock_guard lock(b->pending_mu_);
    auto it = b->pending_.find(nonce);
    if (it != b->pending_.end()) {
      if (pa == nullptr || pae != nullptr) {
        failed = std::move(it->second);
        b->pending_.erase(it);
      } else if (!it->second.ack) {
        b->pending_.erase(it);  // stored; nothing more to say to the producer
      }
      // Stored and acked: PUBLISH_ACK follows once this instance has applied it (Apply).
    }
  }
  if (failed) {
    std::string why = "the backplane rejected the frame";
    if (pae != nullptr) {
      why += ": ";
      why += pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
    }
    b->Fail(std::move(*failed), kRejected, why + "; nothing of this frame was applied");
  }
  natsMsg_Destroy(msg);
}

void NatsBus::OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  auto* b = static_cast<NatsBus*>(self);
  // Back-pressure: a shard that falls behind holds the consumer (the stream keeps the rest).
  // Before apply_mu_, which the control thread takes too.
  b->WaitForShards();
  b->Apply(msg);
  natsMsg_Destroy(msg);
}

void NatsBus::WaitForShards() {
  const unsigned shards = poster_.workers();
  while (!stopping_ && backlog_.Over(shards, exchange::IngestBacklog::kHighWater)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::int64_t NatsBus::Watermark(const exchange::Exchange& at) const { return at.log_clock_ns(); }

std::int64_t NatsBus::ResumeFrom(const exchange::Exchange& /*at*/) const {
  std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
  for (unsigned s = 0; s < poster_.workers(); ++s) {
    oldest = std::min(oldest, shard_clock_[s].load(std::memory_order_acquire));
  }
  return std::max<std::int64_t>(oldest, 1);  // 1: nothing applied yet, every tick is after it
}

void NatsBus::LogClockApplied(unsigned shard, std::int64_t ns) {
  shard_clock_[shard].store(ns, std::memory_order_release);
}

void NatsBus::Apply(natsMsg* msg) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) return;
  const std::uint64_t seq = meta->Sequence.Stream;
  const std::uint64_t left = meta->NumPending;
  jsMsgMetaData_Destroy(meta);

  std::lock_guard lock(apply_mu_);
  consumer_pending_.store(left, std::memory_order_relaxed);
  if (seq <= applied_seq_) return;  // seen before a resubscription
  const auto shards = poster_.workers();
  auto frame = DecodeBackplaneFrame(
      std::span(reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)),
                static_cast<std::size_t>(std::max(natsMsg_GetDataLength(msg), 0))),
      seq);
  if (!frame) {
    std::uint64_t suppressed = 0;
    if (error_log_.Admit(common::WallClockNs() / 1'000'000, suppressed)) {
      obs::Log(obs::Level::kError, "backplane_bad_message",
               "a stream message does not parse as a tickwire frame; skipped",
               {{"stream_seq", seq}});
    }
    applied_seq_ = seq;
    return;
  }
  const std::int64_t clock_before = log_clock_ns_;
  const bool clock_moved = frame->accepted_ns > log_clock_ns_;
  log_clock_ns_ = std::max(log_clock_ns_, frame->accepted_ns);

  const std::size_t n = frame->ticks.size();
  // The log's topic cap, in log order: the same decisions on every instance.
  AdmittedFrame admitted = AdmitFrame(*frame, seq, clock_before, directory_, shards);
  std::vector<exchange::IngestBatch> batches(shards);
  for (unsigned s = 0; s < shards; ++s) {
    batches[s].ticks = std::move(admitted.by_shard[s]);
    batches[s].forget = std::move(admitted.forget[s]);
  }
  batches[0].refused = admitted.refused;  // counted once, by worker 0's shard
  // A frame this process accepted: its producer may be waiting for PUBLISH_ACK, or must hear
  // of refused ticks.
  if (frame->nonce != 0 && frame->origin == origin_) {
    std::optional<PendingFrame> mine;
    {
      std::lock_guard plock(pending_mu_);
      if (auto it = pending_.find(frame->nonce); it != pending_.end()) {
        mine = std::move(it->second);
        pending_.erase(it);
      }
    }
    if (mine && (mine->ack || admitted.refused_total > 0)) {
      unsigned parts = 0;
      for (const auto& batch : batches) parts += batch.ticks.empty() ? 0U : 1U;
      auto tracker = exchange::MakePublishTracker(std::move(mine->origin), mine->worker,
                                                  mine->request_id, mine->count, mine->ack, parts);
      if (admitted.refused_total > 0) {
        tracker->AddRefused(admitted.refused_total, admitted.first_refused_index,
                            admitted.first_refused_topic, admitted.first_refused_reason);
      }
      for (auto& batch : batches) {
        if (!batch.ticks.empty()) batch.tracker = tracker;
      }
      if (parts == 0) poster_.Post(mine->worker, exchange::PublishReportPost{tracker});
    }
  }
  const std::int64_t clock = log_clock_ns_;
  for (unsigned w = 0; w < shards; ++w) {
    exchange::IngestBatch& batch = batches[w];
    const auto count = static_cast<std::int64_t>(batch.ticks.size());
    if (count == 0 && !clock_moved && batch.forget.empty() &&
        (w != 0 || admitted.refused_total == 0)) {
      continue;
    }
    backlog_.Add(w, count);
    poster_.Post(w, exchange::ReplicatedPost{std::move(batch), clock});
  }
  applied_seq_ = seq;
  applied_seq_metric_.store(seq, std::memory_order_relaxed);
  applied_frames_.fetch_add(1, std::memory_order_relaxed);
  applied_ticks_.fetch_add(n, std::memory_order_relaxed);
  if (left == 0 && !caught_up_) {
    caught_up_ = true;
    UpdateReadiness();
  }
}

bool NatsBus::Congested() const { return pending_frames() > kMaxPendingFrames; }

std::size_t NatsBus::pending_frames() const {
  std::lock_guard lock(pending_mu_);
  return pending_.size();
}

void NatsBus::AppendMetrics(obs::Exposition& e) const {
  const auto get = [](const std::atomic<std::uint64_t>& v) {
    return static_cast<double>(v.load(std::memory_order_relaxed));
  };
  e.GaugeFamily("backplane_connected", "1 while the NATS connection is up (multi-instance mode).");
  e.Sample(connected_ ? 1 : 0);
  e.GaugeFamily("backplane_ready",
                "1 while connected, consuming the stream and caught up with it.");
  e.Sample(ready_ ? 1 : 0);
  e.CounterFamily("backplane_disconnects_total", "NATS connections lost.");
  e.Sample(get(disconnects_));
  e.CounterFamily("backplane_frames_published_total",
                  "PUBLISH frames handed to the stream by this instance.");
  e.Sample(get(published_));
  e.CounterFamily("backplane_publish_failures_total",
                  "PUBLISH frames answered ERROR UNAVAILABLE, by reason.");
  e.Sample(get(failures_[kUnavailable]), {{"reason", "unavailable"}});
  e.Sample(get(failures_[kRejected]), {{"reason", "rejected"}});
  e.Sample(get(failures_[kTimeout]), {{"reason", "timeout"}});
  e.GaugeFamily("backplane_pending_frames",
                "Frames published by this instance and not yet confirmed or applied.");
  e.Sample(static_cast<double>(pending_frames()));
  e.CounterFamily("backplane_frames_applied_total",
                  "Stream messages (frames of every instance) applied to this instance's shards.");
  e.Sample(get(applied_frames_));
  e.CounterFamily("backplane_ticks_applied_total", "Ticks applied from the stream.");
  e.Sample(get(applied_ticks_));
  e.CounterFamily("backplane_clock_marks_total", "Clock marks this instance wrote to the stream.");
  e.Sample(get(clock_marks_));
  e.GaugeFamily("backplane_applied_seq",
                "Stream sequence of the last message applied (equal on instances in step).");
  e.Sample(get(applied_seq_metric_));
  e.GaugeFamily("backplane_consumer_lag",
                "Stream messages not yet delivered to this instance (at the last delivery).");
  e.Sample(get(consumer_pending_));
}

}  // namespace tickwire::cluster
