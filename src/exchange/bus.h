#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/shard.h"
#include "exchange/publish_tracker.h"

namespace tickwire::obs {
class Exposition;
}

namespace tickwire::exchange {

class Exchange;

// Where accepted ticks go and what closes bars: the one seam between the embedded mode
// (LocalBus: straight to this process's owner shards, bars closed by the workers' marks) and the
// multi-instance mode (cluster::NatsBus: a shared ordered log applied in log order on every
// instance, bars closed by the log's clock). Workers hold a Bus and never ask which one.
class Bus {
 public:
  virtual ~Bus() = default;

  // Runs on the publishing worker (`at`). Takes one validated PUBLISH frame of `user`'s (named
  // `user_name`); every tick carries the same accepted_ns. On that worker follow: when ticks were
  // refused, PublishOrigin::OnPublishRefused; with `ack`, OnPublishApplied once this instance has
  // applied the frame; on failure (multi-instance mode: log unreachable, rejected, not confirmed
  // in time) instead OnPublishFailed, whether or not `ack` was set.
  virtual void Publish(Exchange& at, const std::shared_ptr<PublishOrigin>& origin,
                       engine::UserId user, std::string_view user_name, std::uint32_t request_id,
                       bool ack, std::vector<engine::IngestTick> ticks) = 0;
  // How far `at`'s shard may close bar buckets: every tick accepted before the returned wall
  // time (ns since the Unix epoch) has been applied to it. Runs on `at`'s worker.
  virtual std::int64_t Watermark(const Exchange& at) const = 0;
  // A place in the accept order (PROTOCOL S8c, SubscribeOk.resume_from_ns) at or below that of
  // every tick any shard applies after this call: an interest registered after it sees only
  // ticks at or after it. Runs on `at`'s worker.
  virtual std::int64_t ResumeFrom(const Exchange& at) const = 0;
  // Shard `shard` has applied the log up to the log clock `ns` (multi-instance mode; runs on
  // that shard's worker).
  virtual void LogClockApplied(unsigned /*shard*/, std::int64_t /*ns*/) {}
  // Too many frames waiting for the bus: producers stop being read (any thread).
  virtual bool Congested() const = 0;
  // Appends the bus's metric families (scrape thread).
  virtual void AppendMetrics(obs::Exposition& out) const = 0;
};

// The embedded mode: one process, no external service.
class LocalBus final : public Bus {
 public:
  // Splits the frame over the owner shards (Exchange::IngestLocal).
  void Publish(Exchange& at, const std::shared_ptr<PublishOrigin>& origin, engine::UserId user,
               std::string_view user_name, std::uint32_t request_id, bool ack,
               std::vector<engine::IngestTick> ticks) override;
  // The oldest mark among the other workers', and this worker's own clock.
  std::int64_t Watermark(const Exchange& at) const override;
  // The wall clock now: every shard stamps the ticks it applies with its own reading of the same
  // clock, never below its previous one, and applies later than this.
  std::int64_t ResumeFrom(const Exchange& at) const override;
  bool Congested() const override { return false; }
  void AppendMetrics(obs::Exposition&) const override {}
};

}  // namespace tickwire::exchange
