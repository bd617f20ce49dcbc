#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/shard.h"

namespace tickwire::obs {
class Exposition;
}

namespace tickwire::net {

class Connection;

// Multi-instance mode: where the ticks a connection publishes go instead of straight to this
// process's owner shards. An implementation puts each accepted PUBLISH frame on a shared ordered
// log and applies the log, in its order, to every instance's shards (Worker::ApplyReplicated),
// so that every instance folds the same bars and numbers ticks the same way.
class Backplane {
 public:
  virtual ~Backplane() = default;

  // Runs on the publishing connection's worker (`worker`). Takes one validated PUBLISH frame of
  // `user`'s; every tick carries the same accepted_ns. On that worker follow: when the log's
  // topic cap refused ticks of it, Connection::OnPublishRefused; with `ack`,
  // Connection::OnPublishApplied once this instance has applied the frame; on failure (backplane
  // down, rejected, not confirmed in time) instead Connection::OnPublishFailed, whether or not
  // `ack` was set. Nothing else is said for a frame without `ack` that succeeded.
  virtual void Publish(const std::shared_ptr<Connection>& from, unsigned worker,
                       std::string_view user, std::uint32_t request_id, bool ack,
                       std::vector<engine::IngestTick> ticks) = 0;
  // Too many frames waiting for the backplane: producers stop being read (any thread).
  virtual bool Congested() const = 0;
  // Appends the backplane's metric families (scrape thread).
  virtual void AppendMetrics(obs::Exposition& out) const = 0;
};

}  // namespace tickwire::net
