// What happens when a handler one worker posted to another throws (docs/RELIABILITY.md): the
// process says so in one line and aborts, instead of losing the ingest batch, records or ack
// that handler carried and carrying on.
#include "net/worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>

#include "common/wall_clock.h"
#include "delivery/subscriber.h"
#include "engine/topic.h"

namespace tickwire::net {
namespace {

// A subscriber whose delivery fails, as a bug in a connection's delivery path would.
class ThrowingSubscriber : public delivery::Subscriber {
 public:
  void DeliverRecord(const engine::RecordBlock&, const engine::RecordBlock::Entry&) override {
    throw std::runtime_error("injected fault while delivering a record block");
  }
};

// Two workers; a subscriber on worker 1 for a topic worker 0 owns; a tick on worker 0. Its
// record block reaches worker 1 in a cross-worker post (HandleInbox), whose delivery throws.
void DeliverABlockThatThrows() {
  ServerContext ctx;
  ctx.config.workers = 2;
  Worker w0(0, ctx);
  Worker w1(1, ctx);
  ctx.workers = {&w0, &w1};
  w0.Start();
  w1.Start();
  std::string topic;
  for (int i = 0; topic.empty(); ++i) {
    const std::string name = "fault." + std::to_string(i);
    if (engine::ShardOf(name, 2) == 0) topic = name;
  }
  ThrowingSubscriber subscriber;
  std::promise<void> subscribed;
  boost::asio::post(w1.io(), [&] {
    std::vector<delivery::FanoutTable::InterestChange> changes;
    const std::vector<std::string> topics = {topic};
    w1.fanout().Add(&subscriber, engine::Mode::kTick, topics, false, changes);
    w1.PublishInterest(changes);  // posted to worker 0 before the tick below
    subscribed.set_value();
  });
  subscribed.get_future().wait();
  boost::asio::post(w0.io(), [&] {
    const std::int64_t now = common::WallClockNs();
    w0.Ingest(nullptr, 0, "", 1, false, {engine::IngestTick{topic, 1.0, 1.0, now, now}});
  });
  // The process ends within this; returning would fail the death test.
  std::this_thread::sleep_for(std::chrono::seconds(20));
}

TEST(WorkerDeathTest, AnExceptionInACrossWorkerHandlerEndsTheProcessLoudly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(DeliverABlockThatThrows(),
               "\"event\":\"worker_fault\".*\"worker\":1.*injected fault while delivering");
}

}  // namespace
}  // namespace tickwire::net
