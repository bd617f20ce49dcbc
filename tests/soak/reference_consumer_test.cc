// The reference consumer (docs/RELIABILITY.md, PROTOCOL S7a, S8b, S8c): a consumer that keeps
// books. Two producers publish random streams to one embedded server with DATA_DIR: hot topics
// with ticks back-dated out of order, a burst topic that outruns the tick history while the
// consumer is away, and a pool of cold topics (stamped ten minutes back, so they hold no open
// bar) larger than MAX_TOPICS, so topics are evicted and created again under new numberings.
// The consumer under test is the client library with reconnect on, subscribed to TICK `*`;
// the server drops it again and again (it never heartbeats), restarts once with SIGTERM (a
// clean snapshot) and once with kill -9 (the last periodic one).
//
// The test is the independent reference: a ledger of every tick the producers had acknowledged
// (each carries a unique identity in its price), checked against what the consumer received
// and what it was told. For every acknowledged tick, the consumer either received it, or was
// told on the wire that it missed it (a LostRange of its topic, or a stream epoch change after
// a crash); within a numbering no seq arrives twice, seqs ascend, and every gap is a reported
// range. Bounded: TICKWIRE_REFERENCE_SECONDS (default 18) of publishing, then at most 20 s to
// settle.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::client {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using tickwire::testing::EnvOverrides;
using tickwire::testing::ServerProcess;
using tickwire::testing::TempDir;

constexpr int kHotTopics = 4;
constexpr int kColdTopics = 40;  // more than MAX_TOPICS: cold topics are evicted and recreated
constexpr std::int64_t kIdsPerProducer = 1'000'000'000;

std::int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::chrono::seconds PublishFor() {
  const char* env = std::getenv("TICKWIRE_REFERENCE_SECONDS");
  const int s = env != nullptr ? std::atoi(env) : 0;
  return std::chrono::seconds(s > 0 ? s : 18);
}

// What the producers know: every identity they sent, and whether the server acknowledged it.
class Ledger {
 public:
  enum class State : std::uint8_t { kSent, kAcked, kRefused, kUnknown };
  struct Entry {
    std::string topic;
    State state = State::kSent;
    steady_clock::time_point sent_at;
  };

  void Sent(std::int64_t id, const std::string& topic) {
    std::lock_guard lock(mu_);
    entries_[id] = Entry{topic, State::kSent, steady_clock::now()};
  }
  void Mark(std::int64_t id, State s) {
    std::lock_guard lock(mu_);
    entries_[id].state = s;
  }
  std::unordered_map<std::int64_t, Entry> Copy() const {
    std::lock_guard lock(mu_);
    return entries_;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::int64_t, Entry> entries_;
};

// What the consumer received and was told, in arrival order.
struct Books {
  struct Got {
    std::string topic;
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
    std::int64_t id = 0;
  };
  std::vector<Got> ticks;
  std::vector<LostRange> lost;
  std::vector<steady_clock::time_point> lost_at;  // when each range was reported
  std::size_t history_ends = 0;
  std::size_t retention_reports = 0;
  std::size_t epoch_reports = 0;
  // Steady times at which a reconnect found another stream epoch (a crash restore).
  std::vector<steady_clock::time_point> stream_changes;
  std::size_t errors = 0;
  steady_clock::time_point last_tick = steady_clock::now();
};

class ReferenceConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ServerProcess::BinaryPath().empty()) GTEST_SKIP() << "no tickwire-server in this build";
    ASSERT_TRUE(StartServer(0));
    port_ = server_->port();
  }

  bool StartServer(std::uint16_t port) {
    server_ = std::make_unique<ServerProcess>(
        EnvOverrides{{"LISTEN_ADDR", "127.0.0.1:" + std::to_string(port)},
                     {"DATA_DIR", data_.path() + "/data"},
                     {"SNAPSHOT_INTERVAL", "200ms"},
                     {"MAX_TOPICS", "16"},
                     {"HISTORY_TICKS", "256"},
                     {"HEARTBEAT_INTERVAL", "300ms"},
                     {"HEARTBEAT_TIMEOUT", "1500ms"},
                     {"BATCH_WINDOW_MS", "2"}});
    if (!server_->Start()) {
      ADD_FAILURE() << server_->error();
      return false;
    }
    return true;
  }

  ClientOptions Options(const std::string& name) const {
    ClientOptions o;
    o.port = port_;
    o.username = ServerProcess::kUser;
    o.password = ServerProcess::kPass;
    o.client_name = name;
    o.connect_timeout = milliseconds(3000);
    o.request_timeout = milliseconds(3000);
    return o;
  }

  std::unique_ptr<Client> ConnectRetrying(const std::string& name, steady_clock::time_point until) {
    while (steady_clock::now() < until && !stop_producers_) {
      auto r = Client::Connect(Options(name));
      if (r.ok()) return std::move(r).value();
      std::this_thread::sleep_for(milliseconds(50));
    }
    return nullptr;
  }

  // One producer: single-topic frames (all applied or, at the topic cap, all refused), acked.
  void Produce(int k, steady_clock::time_point end) {
    std::mt19937_64 rng(0xC0FFEE + static_cast<std::uint64_t>(k));
    std::int64_t next_id = (k + 1) * kIdsPerProducer;
    std::unique_ptr<Client> pub = ConnectRetrying("producer" + std::to_string(k), end);
    while (steady_clock::now() < end && !stop_producers_) {
      if (!pub) {
        pub = ConnectRetrying("producer" + std::to_string(k), end);
        continue;
      }
      const auto kind = rng() % 20;
      std::string topic;
      std::size_t n = 1 + rng() % 8;
      std::int64_t ts = WallNs();
      if (kind < 3) {  // the burst topic: outruns HISTORY_TICKS while the consumer is away
        topic = "R.burst";
        n = 60;
      } else if (kind < 14) {  // hot: stamped up to 3 s back, out of order
        topic = "R.hot." + std::to_string(rng() % kHotTopics);
        ts -= static_cast<std::int64_t>(rng() % 3'000'000'000ULL);
      } else if (kind < 18) {  // cold: ten minutes back, late for every bar, evictable
        topic = "R.cold." + std::to_string(rng() % kColdTopics);
        ts -= 600'000'000'000LL;
      } else {  // cold under a fresh name: created, soon evicted, perhaps never seen
        topic = "R.fresh." + std::to_string(k) + "." + std::to_string(next_id / 40);
        ts -= 600'000'000'000LL;
      }
      std::vector<Tick> ticks;
      std::vector<std::int64_t> ids;
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t id = next_id++;
        ledger_.Sent(id, topic);
        ids.push_back(id);
        ticks.push_back(Tick{topic, static_cast<double>(id), 1, ts, 0, 0, 0});
      }
      auto acked = pub->Publish(ticks, true);
      if (!acked.ok()) {  // lost connection, drain, crash: applied or not, nobody knows
        for (auto id : ids) ledger_.Mark(id, Ledger::State::kUnknown);
        pub.reset();
        continue;
      }
      const std::uint32_t applied = acked.value();
      EXPECT_TRUE(applied == 0 || applied == n) << topic << " " << applied << "/" << n;
      for (auto id : ids) {
        ledger_.Mark(id, applied == n ? Ledger::State::kAcked : Ledger::State::kRefused);
      }
      std::this_thread::sleep_for(milliseconds(2 + rng() % 8));
    }
  }

  void Consume(Client& c) {
    while (!stop_consumer_) {
      auto ev = c.Next(milliseconds(100));
      if (!ev) continue;
      std::lock_guard lock(books_mu_);
      if (auto* b = std::get_if<Batch>(&*ev)) {
        for (const auto& rec : b->records) {
          const auto* t = std::get_if<Tick>(&rec);
          if (t == nullptr) continue;
          books_.ticks.push_back(
              {t->topic, t->topic_epoch, t->seq, static_cast<std::int64_t>(t->price)});
          books_.last_tick = steady_clock::now();
        }
        for (const auto& e : b->history_ends) {
          ++books_.history_ends;
          if (e.retention) ++books_.retention_reports;
          if (e.epoch_changed) ++books_.epoch_reports;
          EXPECT_EQ(e.lost_omitted, 0u);
          books_.lost.insert(books_.lost.end(), e.lost.begin(), e.lost.end());
          books_.lost_at.insert(books_.lost_at.end(), e.lost.size(), steady_clock::now());
        }
      } else if (std::holds_alternative<Error>(*ev)) {
        ++books_.errors;  // lost connections and refused publishes, reported as they happen
      } else {
        ADD_FAILURE() << "the consumer closed";
        return;
      }
    }
  }

  void Restart(bool crash) {
    if (crash) {
      crash_at_ = steady_clock::now();
      ASSERT_EQ(::kill(server_->pid(), SIGKILL), 0);
      ASSERT_TRUE(server_->WaitForExit(milliseconds(5000)).has_value());
    } else {
      EXPECT_EQ(server_->Stop(milliseconds(10'000)), 0);
    }
    ASSERT_TRUE(StartServer(port_));
  }

  TempDir data_;
  std::unique_ptr<ServerProcess> server_;
  std::uint16_t port_ = 0;
  Ledger ledger_;
  std::mutex books_mu_;
  Books books_;
  std::atomic<bool> stop_producers_{false};
  std::atomic<bool> stop_consumer_{false};
  steady_clock::time_point crash_at_;
};

TEST_F(ReferenceConsumerTest, EveryAcknowledgedTickIsReceivedOnceOrReportedLost) {
  auto o = Options("reference");
  o.heartbeat_interval = milliseconds(60'000);  // never: the server drops it every 1.5 s
  o.reconnect.enabled = true;
  o.reconnect.initial_backoff = milliseconds(400);  // away 200-400 ms each time
  o.reconnect.max_backoff = milliseconds(400);
  o.reconnect.jitter = 0.5;
  o.on_connection = [this](const ConnectionEvent& e) {
    if (e.type == ConnectionEvent::Type::kReconnected && e.stream_epoch_changed) {
      std::lock_guard lock(books_mu_);
      books_.stream_changes.push_back(steady_clock::now());
    }
  };
  auto r = Client::Connect(o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  auto consumer = std::move(r).value();
  ASSERT_TRUE(consumer->Subscribe(Mode::kTick, {"*"}).ok());
  std::thread reader([&] { Consume(*consumer); });

  const auto publish_for = PublishFor();
  const auto start = steady_clock::now();
  const auto end = start + publish_for;
  std::vector<std::thread> producers;
  for (int k = 0; k < 2; ++k) producers.emplace_back([&, k] { Produce(k, end); });

  // A clean restart at a third of the run, a crash at two thirds.
  std::this_thread::sleep_until(start + publish_for / 3);
  Restart(false);
  std::this_thread::sleep_until(start + publish_for * 2 / 3);
  Restart(true);
  for (auto& p : producers) p.join();

  // Settle: until nothing new arrived for 2 s (the consumer keeps being dropped and resuming).
  const auto settle_until = steady_clock::now() + milliseconds(20'000);
  while (steady_clock::now() < settle_until) {
    {
      std::lock_guard lock(books_mu_);
      if (steady_clock::now() - books_.last_tick > milliseconds(2000)) break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  stop_consumer_ = true;
  reader.join();
  const ClientStats stats = consumer->stats();
  consumer->Close();
  if (HasFatalFailure()) return;

  const auto ledger = ledger_.Copy();
  std::lock_guard lock(books_mu_);
  const Books& b = books_;

  // Reported losses, by topic and by numbering.
  std::map<std::string, std::vector<const LostRange*>> lost_by_topic;
  for (const auto& l : b.lost) lost_by_topic[l.topic].push_back(&l);
  auto reported = [&](const std::string& topic, std::uint64_t epoch, std::uint64_t seq) {
    for (const LostRange* l : lost_by_topic[topic]) {
      if (l->topic_epoch == epoch && l->from_seq <= seq && (l->to_seq == 0 || seq <= l->to_seq)) {
        return true;
      }
    }
    return false;
  };

  // 1. Within a numbering: each seq once, ascending, and every gap reported.
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> last_seq;
  std::size_t gaps = 0;
  for (const auto& t : b.ticks) {
    ASSERT_NE(t.epoch, 0u) << t.topic;
    std::uint64_t& last = last_seq[{t.topic, t.epoch}];
    ASSERT_GT(t.seq, last) << t.topic << " epoch " << t.epoch << ": seq " << t.seq << " after "
                           << last << " (a duplicate or out of order)";
    for (std::uint64_t s = last + 1; s < t.seq; ++s) {
      ++gaps;
      ASSERT_TRUE(reported(t.topic, t.epoch, s))
          << t.topic << " epoch " << t.epoch << ": seq " << s << " missed and never reported "
          << "(next received " << t.seq << "); its ranges: " << [&] {
               std::string out;
               for (const LostRange* l : lost_by_topic[t.topic]) {
                 out += std::to_string(l->topic_epoch) + ":" + std::to_string(l->from_seq) + "-" +
                        std::to_string(l->to_seq) + " ";
               }
               return out;
             }();
    }
    last = t.seq;
  }

  // 2. Identities: what was received, and how often.
  std::unordered_map<std::int64_t, std::vector<const Books::Got*>> received;
  for (const auto& t : b.ticks) received[t.id].push_back(&t);

  // 3. Every acknowledged tick was received, or its loss was told: a LostRange of its topic or,
  // for a tick acknowledged before the crash, the stream epoch change the crash brought.
  std::map<std::string, std::uint64_t> missing_by_topic;
  std::size_t acked = 0;
  std::size_t missing_told_by_crash = 0;
  std::size_t redelivered_after_crash = 0;
  steady_clock::duration oldest_crash_loss{0};
  std::size_t unexplained = 0;
  for (const auto& [id, e] : ledger) {
    const auto it = received.find(id);
    const std::size_t copies = it == received.end() ? 0 : it->second.size();
    if (e.state == Ledger::State::kRefused) {
      EXPECT_EQ(copies, 0u) << "refused tick " << id << " of " << e.topic << " was delivered";
      continue;
    }
    if (copies > 1) {
      // Only across a crash restore: the restored history is numbered again (new epochs).
      std::set<std::uint64_t> epochs;
      for (const auto* g : it->second) epochs.insert(g->epoch);
      EXPECT_EQ(epochs.size(), copies)
          << "tick " << id << " of " << e.topic << " received twice in one numbering";
      EXPECT_FALSE(b.stream_changes.empty()) << "tick " << id << " received twice, no crash";
      ++redelivered_after_crash;
    }
    if (e.state != Ledger::State::kAcked) continue;
    ++acked;
    if (copies > 0) continue;
    // Told by a range of its topic that reached the consumer after the tick was published.
    bool by_range = false;
    for (std::size_t i = 0; i < b.lost.size() && !by_range; ++i) {
      by_range = b.lost[i].topic == e.topic && b.lost_at[i] > e.sent_at;
    }
    if (by_range) {
      ++missing_by_topic[e.topic];
      continue;
    }
    // Told by the crash: acknowledged within the snapshot interval (and the round that was
    // writing) before the kill, and the consumer was told the stream epoch changed.
    const bool by_crash = !b.stream_changes.empty() && e.sent_at <= crash_at_ &&
                          crash_at_ - e.sent_at < milliseconds(3000);
    if (by_crash) {
      ++missing_told_by_crash;
      oldest_crash_loss = std::max(oldest_crash_loss, crash_at_ - e.sent_at);
      continue;
    }
    ADD_FAILURE()
        << "acknowledged tick " << id << " of " << e.topic << " sent "
        << std::chrono::duration_cast<milliseconds>(steady_clock::now() - e.sent_at).count()
        << " ms ago: neither received nor reported";
    if (++unexplained >= 10) break;
  }
  // What a topic missed fits in what was reported for it (ranges of bounded length), unless a
  // range runs to the end of a numbering.
  for (const auto& [topic, missing] : missing_by_topic) {
    std::uint64_t told = 0;
    bool open_ended = false;
    for (const LostRange* l : lost_by_topic[topic]) {
      if (l->to_seq == 0) {
        open_ended = true;
      } else {
        told += l->to_seq - l->from_seq + 1;
      }
    }
    EXPECT_TRUE(open_ended || missing <= told)
        << topic << ": " << missing << " acknowledged ticks missed, " << told << " reported";
  }
  // No identity arrives that nobody sent.
  for (const auto& [id, copies] : received) {
    EXPECT_TRUE(ledger.count(id) > 0) << "received tick " << id << " that was never published";
  }

  std::size_t missed = 0;
  for (const auto& [topic, n] : missing_by_topic) missed += n;
  std::cout << "[reference] " << publish_for.count() << " s: " << acked << " acknowledged ticks, "
            << b.ticks.size() << " received, " << gaps << " seq gaps reported, " << missed
            << " missed and reported by range, " << missing_told_by_crash
            << " missed and told by the crash's stream epoch change, " << redelivered_after_crash
            << " re-delivered under new numbering after it (oldest loss "
            << std::chrono::duration_cast<milliseconds>(oldest_crash_loss).count()
            << " ms before the crash); " << stats.disconnects << " disconnects, "
            << stats.reconnects << " resumes, " << b.history_ends << " history ends ("
            << b.retention_reports << " retention, " << b.epoch_reports << " epoch changed), "
            << stats.topic_epoch_changes << " topic numbering changes seen live\n";

  // The run exercised what it is meant to: drops, both restarts, a retention cut, eviction.
  EXPECT_GE(stats.disconnects, 5u);
  EXPECT_EQ(b.stream_changes.size(), 1u) << "the crash restore changes the stream epoch once";
  EXPECT_GE(b.retention_reports, 1u) << "the burst topic should outrun the history once";
  EXPECT_GE(stats.topic_epoch_changes + b.epoch_reports, 1u) << "no cold topic was evicted";
  EXPECT_GT(acked, 1000u);
}

}  // namespace
}  // namespace tickwire::client
