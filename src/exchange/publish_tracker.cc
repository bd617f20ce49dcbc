#include "exchange/publish_tracker.h"

#include <string>

namespace tickwire::exchange {

std::shared_ptr<PublishTracker> MakePublishTracker(std::weak_ptr<PublishOrigin> origin,
                                                   unsigned worker, std::uint32_t request_id,
                                                   std::uint32_t total, bool ack,
                                                   unsigned references) {
  auto t = std::make_shared<PublishTracker>();
  t->origin = std::move(origin);
  t->worker = worker;
  t->request_id = request_id;
  t->total = total;
  t->ack = ack;
  t->remaining.store(references, std::memory_order_relaxed);
  return t;
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
  const auto origin = t.origin.lock();
  if (!origin) return;
  if (t.refused > 0) {
    session::PublishRefusal r = t.first;
    r.refused = t.refused;
    r.total = t.total;
    origin->OnPublishRefused(t.request_id, r);
  }
  if (t.ack) {
    origin->OnPublishApplied(t.request_id, t.total - t.refused,
                             t.late.load(std::memory_order_relaxed));
  }
}

}  // namespace tickwire::exchange
