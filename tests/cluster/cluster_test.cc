// Multi-instance mode end to end: nats-server (JetStream) + three tickwire instances + haproxy,
// all real processes on loopback. Producers and consumers connect through the balancer.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "cluster/cluster_harness.h"
#include "support/http_client.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using namespace std::chrono_literals;
using client::Mode;

bool ToolsPresent() { return InPath("nats-server") && InPath("haproxy"); }

// Publishes `count` ticks on each of `topics`, `per_frame` per acked frame, price = running
// index (unique per producer via `base`); returns the prices the server acknowledged.
std::vector<double> PublishAcked(client::Client& c, const std::vector<std::string>& topics,
                                 int count, int per_frame, double base,
                                 std::chrono::milliseconds pause = 0ms) {
  std::vector<double> acked;
  int n = 0;
  while (n < count) {
    std::vector<client::Tick> frame;
    for (int k = 0; k < per_frame && n < count; ++k, ++n) {
      client::Tick t;
      t.topic = topics[static_cast<std::size_t>(n) % topics.size()];
      t.price = base + n;
      t.size = 1;
      frame.push_back(t);
    }
    auto r = c.Publish(frame, true);
    if (r.ok()) {
      for (const auto& t : frame) acked.push_back(t.price);
    }
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  return acked;
}

// Per topic: the ticks in arrival order must chain (prev_seq = the previous tick's seq) with
// strictly rising seq. Returns a description of the first break, or empty.
// The instance (0..instances-1) whose /connz lists a connection named `client_name`; -1: none.
int InstanceServing(Cluster& cluster, int instances, std::string_view client_name) {
  const std::string quoted = "\"" + std::string(client_name) + "\"";
  for (int i = 0; i < instances; ++i) {
    if (HttpGet(cluster.metrics_port(i), "/connz", 2s).body.find(quoted) != std::string::npos) {
      return i;
    }
  }
  return -1;
}

std::string CheckChains(const std::vector<client::Tick>& ticks) {
  std::map<std::string, std::uint64_t> last;
  for (const auto& t : ticks) {
    auto it = last.find(t.topic);
    if (it != last.end()) {
      if (t.seq <= it->second) {
        return t.topic + ": seq " + std::to_string(t.seq) + " after " + std::to_string(it->second);
      }
      if (t.prev_seq != it->second) {
        return t.topic + ": prev_seq " + std::to_string(t.prev_seq) + " but last seq " +
               std::to_string(it->second);
      }
    }
    last[t.topic] = t.seq;
  }
  return {};
}

// Ticks and bars as comparable keys.
using TickKey = std::tuple<std::string, std::uint64_t, std::uint64_t, double, std::int64_t>;
std::vector<TickKey> Keys(const std::vector<client::Tick>& ticks) {
  std::vector<TickKey> out;
  for (const auto& t : ticks) out.emplace_back(t.topic, t.seq, t.prev_seq, t.price, t.ts_ns);
  std::sort(out.begin(), out.end());
  return out;
}
using BarKey =
    std::tuple<std::string, std::int64_t, double, double, double, double, double, std::uint64_t>;
std::vector<BarKey> Keys(const std::vector<client::Bar>& bars) {
  std::vector<BarKey> out;
  for (const auto& b : bars) {
    out.emplace_back(b.topic, b.start_ms, b.open, b.high, b.low, b.close, b.volume, b.count);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ClusterTest, EveryInstanceDeliversTheSameTicksAndBars) {
  if (!ToolsPresent()) GTEST_SKIP() << "nats-server or haproxy missing (scripts/setup.sh)";
  Cluster cluster(3);
  const std::string started = cluster.Start();
  ASSERT_TRUE(started.empty()) << started << cluster.Describe();

  // On every instance (through its own balancer frontend): ticks and SECOND bars of everything.
  std::vector<Consumer> ticks, bars;
  for (int i = 0; i < 3; ++i) {
    std::string err;
    ticks.push_back(Subscribe(cluster.instance_frontend_port(i), "ticks-" + std::to_string(i),
                              Mode::kTick, {"*"}, false, err));
    ASSERT_TRUE(err.empty()) << err;
    bars.push_back(Subscribe(cluster.instance_frontend_port(i), "bars-" + std::to_string(i),
                             Mode::kSecond, {"*"}, false, err));
    ASSERT_TRUE(err.empty()) << err;
  }

  // Three producers, one entering through each instance, on shared and own topics at once.
  constexpr int kPerProducer = 1500;
  std::vector<std::thread> producers;
  std::atomic<int> acked{0};
  for (int p = 0; p < 3; ++p) {
    producers.emplace_back([&, p] {
      auto c = client::Client::Connect(
          ClusterClientOptions(cluster.instance_frontend_port(p), "producer", false));
      if (!c.ok()) return;
      const std::vector<std::string> topics = {"shared.a", "shared.b", "own" + std::to_string(p)};
      auto got = PublishAcked(*c.value(), topics, kPerProducer, 50, p * 1e6, 20ms);
      acked += static_cast<int>(got.size());
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_EQ(acked.load(), 3 * kPerProducer) << cluster.Describe();

  // Every tick reaches every instance's consumer; bars close once the log clock passes.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return ticks[i].log->tick_count() == 3 * kPerProducer; }, 15s))
        << "instance " << i << " delivered " << ticks[i].log->tick_count();
  }
  const auto bar_ticks = [](const Consumer& c) {
    std::uint64_t n = 0;
    for (const auto& b : c.log->Bars()) n += b.count;
    return n;
  };
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return bar_ticks(bars[i]) == 3 * kPerProducer; }, 10s))
        << "instance " << i << " bars hold " << bar_ticks(bars[i]) << " ticks";
  }
  const auto ref_ticks = ticks[0].log->Ticks();
  EXPECT_EQ(CheckChains(ref_ticks), "");
  for (std::size_t i = 1; i < 3; ++i) {
    const auto got = ticks[i].log->Ticks();
    EXPECT_EQ(CheckChains(got), "") << "instance " << i;
    EXPECT_TRUE(Keys(got) == Keys(ref_ticks)) << "instance " << i << " ticks differ";
    EXPECT_TRUE(Keys(bars[i].log->Bars()) == Keys(bars[0].log->Bars()))
        << "instance " << i << " bars differ";
  }
  // Each topic's ticks are unique by seq (no duplicate) and the chain has no gap.
  std::set<std::pair<std::string, std::uint64_t>> seqs;
  for (const auto& t : ref_ticks) seqs.emplace(t.topic, t.seq);
  EXPECT_EQ(seqs.size(), ref_ticks.size());

  // Watermarks (PROTOCOL S8d) come from the log clock too: on every instance, once one covers
  // the newest bar, no bar arrived after a watermark covering its second.
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("instance " + std::to_string(i));
    std::int64_t newest = 0;
    for (const auto& b : bars[i].log->Bars()) newest = std::max(newest, b.start_ms);
    ASSERT_TRUE(WaitUntil(
        [&] {
          const auto marks = bars[i].log->Watermarks();
          return !marks.empty() && marks.back().watermark.start_ms >= newest;
        },
        10s));
    const auto got = bars[i].log->Bars();
    const auto marks = bars[i].log->Watermarks();
    for (std::size_t m = 1; m < marks.size(); ++m) {
      EXPECT_GT(marks[m].watermark.start_ms, marks[m - 1].watermark.start_ms);
    }
    for (const auto& m : marks) {
      EXPECT_EQ(m.watermark.interval, Mode::kSecond);
      for (std::size_t b = m.bars_before; b < got.size(); ++b) {
        EXPECT_GT(got[b].start_ms, m.watermark.start_ms)
            << got[b].topic << " after the watermark of " << m.watermark.start_ms;
      }
    }
  }
}

TEST(ClusterTest, KilledInstanceConsumersResumeThroughTheBalancer) {
  if (!ToolsPresent()) GTEST_SKIP() << "nats-server or haproxy missing (scripts/setup.sh)";
  Cluster cluster(3);
  const std::string started = cluster.Start();
  ASSERT_TRUE(started.empty()) << started << cluster.Describe();

  // A consumer that reconnects (through the same balancer) when its instance goes away.
  std::string err;
  Consumer via_lb =
      Subscribe(cluster.balancer_port(), "via-lb", Mode::kTick, {"fail.a", "fail.b"}, true, err);
  ASSERT_TRUE(err.empty()) << err;
  const int target = InstanceServing(cluster, 3, "via-lb");
  ASSERT_GE(target, 0) << "via-lb not found in any /connz";

  // The producer enters through another instance and keeps publishing while `target` dies.
  auto producer = client::Client::Connect(
      ClusterClientOptions(cluster.instance_frontend_port((target + 1) % 3), "producer", false));
  ASSERT_TRUE(producer.ok()) << producer.error().ToString();
  std::vector<double> acked;
  std::thread pub([&] {
    acked = PublishAcked(*producer.value(), {"fail.a", "fail.b"}, 2000, 20, 0, 5ms);
  });
  ASSERT_TRUE(WaitUntil([&] { return via_lb.log->tick_count() > 300; }, 10s));
  cluster.KillInstance(target);  // kill -9, mid-stream
  pub.join();
  ASSERT_EQ(acked.size(), 2000U) << cluster.Describe();

  // Nothing acked is missing after the resume (the client drops what it already had).
  auto has_all = [&](const Consumer& c) {
    std::set<double> prices;
    for (const auto& t : c.log->Ticks()) prices.insert(t.price);
    return prices.size() == acked.size();
  };
  EXPECT_TRUE(WaitUntil([&] { return has_all(via_lb); }, 20s))
      << "via-lb has " << via_lb.log->tick_count() << " of " << acked.size() << "\n"
      << cluster.Describe();
  const auto got = via_lb.log->Ticks();
  EXPECT_EQ(CheckChains(got), "");
  std::set<std::pair<std::string, std::uint64_t>> seqs;
  for (const auto& t : got) seqs.emplace(t.topic, t.seq);
  EXPECT_EQ(seqs.size(), got.size()) << "duplicates delivered";
  EXPECT_EQ(via_lb.client->stats().tick_gaps, 0U);
  EXPECT_GE(via_lb.client->stats().reconnects, 1U);
}

// PROTOCOL S8c resume_from_ns in multi-instance mode: the position is on the shared log's clock,
// the same on every instance, so a consumer whose instance dies resumes on another one and still
// gets the back-dated ticks of a topic created while it was away (no position, below any
// since_ms), once each.
TEST(ClusterTest, BackDatedTicksOfATopicNewWhileAwayFollowToAnotherInstance) {
  if (!ToolsPresent()) GTEST_SKIP() << "nats-server or haproxy missing (scripts/setup.sh)";
  Cluster cluster(3);
  const std::string started = cluster.Start();
  ASSERT_TRUE(started.empty()) << started << cluster.Describe();

  auto log = std::make_shared<RecordLog>();
  auto options = ClusterClientOptions(cluster.balancer_port(), "away", true);
  options.reconnect.initial_backoff = 1000ms;  // away for a second after its instance dies
  options.reconnect.max_backoff = 1000ms;
  options.reconnect.jitter = 0;
  options.on_batch = [log](const client::Batch& b) { log->Add(b); };
  options.on_error = [](const client::Error&) {};
  auto connected = client::Client::Connect(options);
  ASSERT_TRUE(connected.ok()) << connected.error().ToString();
  auto consumer = std::move(connected).value();
  ASSERT_TRUE(consumer->Subscribe(Mode::kTick, {"*"}).ok());
  const int target = InstanceServing(cluster, 3, "away");
  ASSERT_GE(target, 0) << "the consumer is not in any /connz";
  auto producer = client::Client::Connect(
      ClusterClientOptions(cluster.instance_frontend_port((target + 1) % 3), "producer", false));
  ASSERT_TRUE(producer.ok()) << producer.error().ToString();
  const std::vector<client::Tick> seen = {{"away.seen", 1, 1, 0, 0, 0, 0}};
  ASSERT_TRUE(producer.value()->Publish(seen, true).ok());
  ASSERT_TRUE(WaitUntil([&] { return log->tick_count() == 1; }, 10s));

  cluster.KillInstance(target);
  const std::int64_t minute_ago = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() -
                                  60'000'000'000;
  std::vector<client::Tick> back_dated;
  for (int i = 0; i < 5; ++i) back_dated.push_back({"away.new", 10.0 + i, 1, minute_ago, 0, 0, 0});
  ASSERT_TRUE(producer.value()->Publish(back_dated, true).ok());
  ASSERT_TRUE(WaitUntil([&] { return log->tick_count() >= 6; }, 20s))
      << log->tick_count() << " ticks\n"
      << cluster.Describe();
  std::this_thread::sleep_for(300ms);  // nothing more may come
  std::vector<double> prices;
  for (const auto& t : log->Ticks()) {
    if (t.topic == "away.new") {
      prices.push_back(t.price);
      EXPECT_EQ(t.ts_ns, minute_ago);
    }
  }
  EXPECT_EQ(prices, (std::vector<double>{10, 11, 12, 13, 14}));
  EXPECT_EQ(CheckChains(log->Ticks()), "");
  EXPECT_GE(consumer->stats().reconnects, 1U);
}

TEST(ClusterTest, RollingRestartWithDrainLosesNothing) {
  if (!ToolsPresent()) GTEST_SKIP() << "nats-server or haproxy missing (scripts/setup.sh)";
  Cluster cluster(3);
  const std::string started = cluster.Start();
  ASSERT_TRUE(started.empty()) << started << cluster.Describe();

  std::string err;
  std::vector<Consumer> consumers;
  for (int k = 0; k < 3; ++k) {
    consumers.push_back(Subscribe(cluster.balancer_port(), "roll-" + std::to_string(k), Mode::kTick,
                                  {"roll"}, true, err));
    ASSERT_TRUE(err.empty()) << err;
  }
  // A producer through the balancer that retries a frame the server refused or did not ack.
  std::atomic<bool> stop{false};
  std::vector<double> acked;
  std::thread pub([&] {
    auto c =
        client::Client::Connect(ClusterClientOptions(cluster.balancer_port(), "roll-pub", true));
    if (!c.ok()) return;
    for (int n = 0; !stop; ++n) {
      client::Tick t;
      t.topic = "roll";
      t.price = n;
      t.size = 1;
      for (int attempt = 0; attempt < 200 && !stop; ++attempt) {
        if (c.value()->Publish(std::span<const client::Tick>(&t, 1), true).ok()) {
          acked.push_back(t.price);
          break;
        }
        std::this_thread::sleep_for(20ms);
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(cluster.StopInstance(i), 0) << cluster.Describe();
    ASSERT_TRUE(cluster.StartInstance(i)) << cluster.Describe();
    ASSERT_TRUE(cluster.WaitReady(i, true, 15s)) << cluster.Describe();
    ASSERT_TRUE(WaitUntil([&] { return cluster.BalancerRoutesTo(i); }, 10s));
  }
  std::this_thread::sleep_for(500ms);
  stop = true;
  pub.join();
  ASSERT_GT(acked.size(), 100U);

  for (auto& c : consumers) {
    auto has_all = [&] {
      std::set<double> prices;
      for (const auto& t : c.log->Ticks()) prices.insert(t.price);
      return std::all_of(acked.begin(), acked.end(), [&](double p) { return prices.count(p); });
    };
    EXPECT_TRUE(WaitUntil(has_all, 20s)) << "a consumer misses acked ticks";
    const auto got = c.log->Ticks();
    EXPECT_EQ(CheckChains(got), "");
    EXPECT_EQ(c.client->stats().tick_gaps, 0U);
    EXPECT_GE(c.client->stats().reconnects, 1U);
  }
  // Every restarted instance rebuilt its history from the log: the same retained ticks, with the
  // same numbers, on each of them.
  std::vector<Consumer> history;
  for (int i = 0; i < 3; ++i) {
    history.push_back(Subscribe(cluster.instance_frontend_port(i), "history", Mode::kTick, {"roll"},
                                false, err, /*since_ms=*/1));
    ASSERT_TRUE(err.empty()) << err;
  }
  const std::size_t retained = std::min<std::size_t>(consumers[0].log->Ticks().size(), 1024);
  for (auto& h : history) {
    EXPECT_TRUE(WaitUntil([&] { return h.log->tick_count() == retained; }, 10s))
        << h.log->tick_count() << " of " << retained;
  }
  EXPECT_TRUE(Keys(history[1].log->Ticks()) == Keys(history[0].log->Ticks()));
  EXPECT_TRUE(Keys(history[2].log->Ticks()) == Keys(history[0].log->Ticks()));
}

TEST(ClusterTest, BackplaneOutageTurnsInstancesNotReadyAndPublishesFail) {
  if (!ToolsPresent()) GTEST_SKIP() << "nats-server or haproxy missing (scripts/setup.sh)";
  Cluster cluster(3);
  const std::string started = cluster.Start();
  ASSERT_TRUE(started.empty()) << started << cluster.Describe();

  std::string err;
  Consumer consumer =
      Subscribe(cluster.instance_frontend_port(1), "outage-sub", Mode::kTick, {"out"}, false, err);
  ASSERT_TRUE(err.empty()) << err;
  auto producer = client::Client::Connect(
      ClusterClientOptions(cluster.instance_frontend_port(0), "outage-pub", false));
  ASSERT_TRUE(producer.ok());
  client::Tick t;
  t.topic = "out";
  t.price = 1;
  t.size = 1;
  ASSERT_TRUE(producer.value()->Publish(std::span<const client::Tick>(&t, 1), true).ok());

  cluster.StopNats();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster.WaitReady(i, false, 10s)) << "instance " << i << " still ready";
  }
  // While it is down, a PUBLISH gets ERROR UNAVAILABLE (non-fatal), never silence.
  t.price = 2;
  auto refused = producer.value()->Publish(std::span<const client::Tick>(&t, 1), true);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, client::ErrorCode::kUnavailable) << refused.error().ToString();
  EXPECT_FALSE(refused.error().fatal);
  const auto metrics = ParseMetrics(HttpGet(cluster.metrics_port(0), "/metrics").body);
  EXPECT_EQ(MetricValue(metrics, "backplane_connected"), 0);
  EXPECT_GE(MetricValue(metrics, "backplane_publish_failures_total{reason=\"unavailable\"}"), 1);

  ASSERT_TRUE(cluster.StartNats());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster.WaitReady(i, true, 20s)) << "instance " << i << " did not recover\n"
                                                 << cluster.Describe();
  }
  t.price = 3;
  auto again = producer.value()->Publish(std::span<const client::Tick>(&t, 1), true);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  ASSERT_TRUE(WaitUntil([&] { return consumer.log->tick_count() == 2; }, 10s));
  const auto got = consumer.log->Ticks();
  EXPECT_EQ(got[0].price, 1);
  EXPECT_EQ(got[1].price, 3);
  EXPECT_EQ(got[1].prev_seq, got[0].seq);
}

TEST(ClusterTest, TopicCapIsDecidedInLogOrderAndAlikeOnEveryInstance) {
  if (!ToolsPresent()) GTEST_SKIP() << "nats-server or haproxy missing (scripts/setup.sh)";
  // 8 topics per instance. Each process hashes topic names with its own key, so caps split over
  // workers would refuse different topics on each instance; the log's topic cap may not.
  Cluster cluster(2, {{"MAX_TOPICS", "8"}, {"WORKERS", "2"}});
  const std::string started = cluster.Start();
  ASSERT_TRUE(started.empty()) << started << cluster.Describe();
  std::vector<Consumer> ticks;
  for (int i = 0; i < 2; ++i) {
    std::string err;
    ticks.push_back(Subscribe(cluster.instance_frontend_port(i), "ticks-" + std::to_string(i),
                              Mode::kTick, {"*"}, false, err));
    ASSERT_TRUE(err.empty()) << err;
  }
  // Two producers, one per instance, each frame naming 6 new topics and its own known one.
  // Server-stamped ticks keep their bars open, so once 8 topics exist the new ones are refused.
  std::atomic<std::uint64_t> sent{0}, accepted{0}, topic_limit_errors{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      auto c = client::Client::Connect(
          ClusterClientOptions(cluster.instance_frontend_port(p), "producer", false));
      if (!c.ok()) return;
      for (int f = 0; f < 10; ++f) {
        std::vector<client::Tick> frame;
        for (int k = 0; k < 6; ++k) {
          client::Tick t;
          t.topic = "new." + std::to_string(p) + "." + std::to_string(f * 6 + k);
          t.price = 1;
          t.size = 1;
          frame.push_back(t);
        }
        client::Tick own;
        own.topic = "own." + std::to_string(p);
        own.price = 2;
        own.size = 1;
        frame.push_back(own);
        auto r = c.value()->Publish(frame, true);
        if (!r.ok()) continue;
        sent += frame.size();
        accepted += r.value();
      }
      // Each frame with refused ticks was reported to its producer.
      while (auto ev = c.value()->Next(0ms)) {
        if (auto* e = std::get_if<client::Error>(&*ev);
            e && e->code == client::ErrorCode::kTopicLimit) {
          ++topic_limit_errors;
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_EQ(sent.load(), 2u * 10 * 7) << cluster.Describe();
  EXPECT_LT(accepted.load(), sent.load());
  EXPECT_GE(topic_limit_errors.load(), 1u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return ticks[i].log->tick_count() == accepted.load(); }, 15s))
        << "instance " << i << " delivered " << ticks[i].log->tick_count() << " of "
        << accepted.load();
  }
  // Both instances applied exactly the same ticks, refused the same ones, and hold no more
  // topics than the cap.
  EXPECT_TRUE(Keys(ticks[1].log->Ticks()) == Keys(ticks[0].log->Ticks())) << "ticks differ";
  EXPECT_EQ(CheckChains(ticks[0].log->Ticks()), "");
  std::set<std::string> topics;
  for (const auto& t : ticks[0].log->Ticks()) topics.insert(t.topic);
  EXPECT_LE(topics.size(), 16u);  // 8, or 16 if a minute boundary freed the first ones
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          const auto m = ParseMetrics(HttpGet(cluster.metrics_port(i), "/metrics").body);
          return MetricValue(m, "ticks_refused_total{reason=\"topic_limit\"}") ==
                     static_cast<double>(sent.load() - accepted.load()) &&
                 MetricValue(m, "active_topics") > 0 && MetricValue(m, "active_topics") <= 8;
        },
        5s))
        << "instance " << i;
  }
}

}  // namespace
}  // namespace tickwire::testing
