// The fault soak (docs/RELIABILITY.md): one real server, for TICKWIRE_SOAK_SECONDS (default 60),
// under healthy load (producers, consumers that check every tick and bar, subscription churn)
// while misbehaving clients cycle through every way of going wrong: vanishing mid-frame, garbage
// bytes, failed AUTH, not reading, not heartbeating, not authenticating. At the end the healthy
// consumers must have lost nothing, every misbehaving client must have seen its ERROR and been
// logged with the matching close reason, the server's file descriptors must be back at the
// baseline, its peak RSS under the bound, and it must still be running and exit 0.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/frame.h"
#include "support/bar_fold.h"
// Boost.JSON (compiled once, in the support library): the log lines are parsed with a real JSON
// parser, not searched for substrings.
#include "support/http_client.h"
#include "support/json.h"
#include "support/raw_client.h"
#include "support/sanitizers.h"
#include "support/server_process.h"
#include "support/wait.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::testing {
namespace {

namespace v1 = tickwire::v1;
using protocol::FrameType;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Settings.

constexpr int kTopicCount = 50;
constexpr int kProducerCount = 3;
constexpr int kTicksPerPublish = 10;
constexpr milliseconds kPublishPace{4};  // between one producer's acked PUBLISHes
// Healthy clients heartbeat well inside HEARTBEAT_INTERVAL (1 s) and HEARTBEAT_TIMEOUT (3 s).
constexpr milliseconds kHeartbeatEvery{400};
constexpr milliseconds kHeartbeatTimeout{3000};
constexpr milliseconds kAuthTimeout{1000};
constexpr milliseconds kWriteDeadline{2000};
constexpr std::int64_t kBarCloseDelayMs = 500;
// Longest the test waits for any one reply it expects; generous for sanitized builds on a busy
// machine. Expected replies normally arrive in well under a millisecond.
constexpr milliseconds kReplyDeadline{10000};
// Pacing of the short misbehaver loops (vanish, garbage, failed AUTH).
constexpr milliseconds kMisbehaverPace{40};
// Topics the exact-topic TICK consumer subscribes to.
constexpr std::array<int, 5> kExactTopics = {0, 7, 13, 21, 42};

EnvOverrides SoakServerEnv() {
  return {
      {"WORKERS", "2"},
      {"HEARTBEAT_INTERVAL", "1s"},
      {"HEARTBEAT_TIMEOUT", "3s"},
      {"AUTH_TIMEOUT_MS", "1000"},
      {"MAX_PENDING_BYTES", "262144"},
      {"WRITE_DEADLINE_MS", "2000"},
      {"BAR_CLOSE_DELAY_MS", std::to_string(kBarCloseDelayMs)},
      // A fixed, small send buffer: a consumer that stops reading stalls the server's write
      // after 64 KiB instead of after whatever the kernel's autotuning allows.
      {"SO_SNDBUF", "65536"},
      {"LOG_LEVEL", "info"},
      // Every close line is kept (the default rate limit would suppress most of the floods'),
      // so the log can be checked against what the test caused.
      {"LOG_RATE_LIMIT", "0"},
      // The failed-AUTH loop comes from one address: a server with the AUTH rate limiter must
      // still check every attempt (AUTH_FAILED, not AUTH_RATE_LIMITED). Servers without it
      // ignore these variables.
      {"AUTH_FAIL_BUDGET_ADDR", "1000000"},
      {"AUTH_FAIL_BUDGET_USER", "1000000"},
  };
}

int SoakSeconds() {
  const char* env = std::getenv("TICKWIRE_SOAK_SECONDS");
  if (env == nullptr || *env == '\0') return 60;
  const int s = std::atoi(env);
  return std::max(s, 5);
}

// Bound on the server's peak RSS (VmHWM). See docs/RELIABILITY.md for the measured figures the
// bound was chosen from. Sanitizer runtimes add shadow memory and quarantine, so sanitized
// builds get their own bound. TICKWIRE_SOAK_RSS_MB overrides both.
std::uint64_t RssBoundKb() {
  if (const char* env = std::getenv("TICKWIRE_SOAK_RSS_MB"); env != nullptr && *env != '\0') {
    return static_cast<std::uint64_t>(std::atoll(env)) * 1024;
  }
  return (kSanitized ? 1024 : 64) * 1024ull;
}

// ---------------------------------------------------------------------------------------------
// Ticks the producers publish. Each carries who published it and its number: price =
// 1000 + n * kProducerCount + producer, where n = 1, 2, 3, ... counts that producer's ticks on
// that topic, and size follows n. A consumer can therefore check per topic and producer that
// it got 1, 2, 3, ... unaltered, besides the server's own seq numbers.

std::string TopicName(int index) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "soak.t%02d", index);
  return buf;
}

// Index of a soak topic, or -1.
int TopicIndex(const std::string& topic) {
  if (topic.size() != 8 || topic.compare(0, 6, "soak.t") != 0) return -1;
  if (topic[6] < '0' || topic[6] > '9' || topic[7] < '0' || topic[7] > '9') return -1;
  const int i = (topic[6] - '0') * 10 + (topic[7] - '0');
  return i < kTopicCount ? i : -1;
}

double EncodePrice(int producer, std::uint64_t n) {
  return 1000.0 + static_cast<double>(n * kProducerCount + static_cast<std::uint64_t>(producer));
}
double EncodeSize(std::uint64_t n) { return 0.1 * static_cast<double>(1 + n % 7); }

// Producer and number of a published tick; false when the tick is not one a producer made.
bool DecodeTick(const v1::Tick& t, int* producer, std::uint64_t* n) {
  const double v = t.price() - 1000.0;
  if (!(v >= kProducerCount) || v != std::floor(v) || v > 9e15) return false;
  const auto x = static_cast<std::uint64_t>(v);
  *producer = static_cast<int>(x % kProducerCount);
  *n = x / kProducerCount;
  return t.size() == EncodeSize(*n);
}

std::uint64_t Mix(std::uint64_t h, std::uint64_t v) {
  // FNV-1a over the 8 bytes of v.
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ull;
  }
  return h;
}

std::uint64_t Bits(double d) {
  std::uint64_t u = 0;
  std::memcpy(&u, &d, sizeof(u));
  return u;
}

// ---------------------------------------------------------------------------------------------
// Shared state of one soak run.

// Failures found on client threads; the main thread reports them. gtest assertions stay on the
// main thread.
class Failures {
 public:
  void Add(const std::string& who, const std::string& what) {
    std::lock_guard lock(mu_);
    ++count_;
    if (messages_.size() < 30) messages_.push_back(who + ": " + what);
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::vector<std::string> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  mutable std::mutex mu_;
  std::size_t count_ = 0;
  std::vector<std::string> messages_;
};

struct Soak {
  std::uint16_t port = 0;
  Failures failures;
  std::atomic<std::uint64_t> connections{0};  // TCP connections the test opened

  // Connects and counts the connection.
  bool Connect(RawClient& c) {
    if (!c.Connect(port)) return false;
    connections.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // A connection the test ended in a way the server logs as conn_close `reason`.
  void Caused(const std::string& reason) {
    std::lock_guard lock(mu);
    ++caused[reason];
  }
  std::map<std::string, std::uint64_t> CausedCounts() {
    std::lock_guard lock(mu);
    return caused;
  }

  std::mutex mu;
  std::map<std::string, std::uint64_t> caused;
};

std::string Describe(const ReadResult& r) {
  if (r.ok()) return DescribeFrame(r.frame);
  return std::string(ReadStatusName(r.status)) + (r.detail.empty() ? "" : " " + r.detail);
}

bool SendHeartbeat(RawClient& c, std::int64_t ts_ms) {
  v1::Heartbeat hb;
  hb.set_ts_ms(ts_ms);
  return c.SendFrame(FrameType::kHeartbeat, hb);
}

std::optional<v1::Error> ParseError(const Frame& f) {
  if (f.frame_type() != FrameType::kError) return std::nullopt;
  v1::Error e;
  if (!e.ParseFromString(f.payload)) return std::nullopt;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Healthy producers.

class Producer {
 public:
  Producer(Soak& soak, int index) : soak_(soak), index_(index) {
    next_.fill(0);
    thread_ = std::thread([this] { Run(); });
  }
  ~Producer() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // After Stop(): ticks published (and acked) per topic.
  const std::array<std::uint64_t, kTopicCount>& published() const { return next_; }
  std::uint64_t ticks() const { return ticks_.load(); }
  std::int64_t newest_ts_ns() const { return newest_ts_ns_.load(); }

 private:
  void Run() {
    const std::string who = "producer " + std::to_string(index_);
    RawClient c;
    if (!soak_.Connect(c)) return soak_.failures.Add(who, "connect: " + c.last_error());
    if (auto r = c.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !r) {
      return soak_.failures.Add(who, r.message());
    }
    std::mt19937_64 rng(static_cast<std::uint64_t>(index_) * 7919 + 1);
    auto last_heartbeat = steady_clock::now();
    std::uint32_t request_id = 0;
    while (!stop_) {
      std::vector<v1::Tick> frame;
      for (int i = 0; i < kTicksPerPublish; ++i) {
        const int topic = static_cast<int>(rng() % kTopicCount);
        const std::uint64_t n = ++next_[static_cast<std::size_t>(topic)];
        // Half the ticks are stamped by the server; the other half by the producer, 50-400 ms
        // ahead, so a bucket's open and close are decided by ts_ns and not by arrival order.
        // Stamped that far ahead, a tick is late only if the server accepts it more than
        // 550 ms after it was stamped.
        std::int64_t ts = 0;
        if (rng() % 2 == 0) {
          ts = NowNs() + static_cast<std::int64_t>(50 + rng() % 350) * 1'000'000;
          if (ts > newest_ts_ns_.load()) newest_ts_ns_ = ts;
        }
        frame.push_back(MakeTick(TopicName(topic), EncodePrice(index_, n), EncodeSize(n), ts));
      }
      if (auto r = c.PublishAcked(++request_id, frame); !r) {
        return soak_.failures.Add(who,
                                  "PUBLISH " + std::to_string(request_id) + ": " + r.message());
      }
      ticks_ += frame.size();
      if (steady_clock::now() - last_heartbeat >= kHeartbeatEvery) {
        if (auto r = c.HeartbeatRoundTrip(NowMs()); !r) return soak_.failures.Add(who, r.message());
        last_heartbeat = steady_clock::now();
      }
      std::this_thread::sleep_for(kPublishPace);  // pacing only
    }
    c.Close();
    soak_.Caused("client_closed");
  }

  Soak& soak_;
  const int index_;
  std::array<std::uint64_t, kTopicCount> next_;  // owned by the thread until Stop()
  std::atomic<std::uint64_t> ticks_{0};
  std::atomic<std::int64_t> newest_ts_ns_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Healthy consumers: a thread per connection reads every frame as it arrives, heartbeats, checks
// batch_seq continuity and hands each record to OnTick/OnBar (under mu_).

class Consumer {
 public:
  Consumer(Soak& soak, std::string name, v1::Mode mode, std::vector<std::string> topics)
      : soak_(soak), name_(std::move(name)), mode_(mode), topics_(std::move(topics)) {}
  // Derived classes call Stop() in their destructors: the thread calls their overrides.
  virtual ~Consumer() { Stop(); }
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Connects, authenticates and subscribes (on the calling thread), then starts reading.
  ::testing::AssertionResult Start() {
    if (!soak_.Connect(c_)) return ::testing::AssertionFailure() << name_ << ": connect";
    if (auto r = c_.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !r) return r;
    if (auto r = c_.Subscribe(1, mode_, topics_); !r) return r;
    thread_ = std::thread([this] { Run(); });
    return ::testing::AssertionSuccess();
  }
  // Keeps reading for a quiet period (anything more that arrives is still checked), proves the
  // connection healthy with a heartbeat round trip, and closes it.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool finished_cleanly() const { return clean_end_.load(); }
  std::uint64_t records() const { return records_.load(); }
  const std::string& name() const { return name_; }

 protected:
  virtual void OnTick(const v1::Tick& t) = 0;
  virtual void OnBar(const v1::Bar& b) = 0;
  void Fail(const std::string& what) { soak_.failures.Add(name_, what); }

  std::mutex mu_;

 private:
  void Run() {
    auto last_heartbeat = steady_clock::now() - kHeartbeatEvery;
    int unanswered = 0;
    std::optional<steady_clock::time_point> stop_seen;
    constexpr std::int64_t kFinalTs = -424242;
    bool final_sent = false;
    while (true) {
      const auto now = steady_clock::now();
      if (stop_ && !stop_seen) stop_seen = now;
      if (stop_seen && !final_sent && now - *stop_seen >= milliseconds(300)) {
        if (!SendHeartbeat(c_, kFinalTs)) return Fail("final HEARTBEAT: " + c_.last_error());
        final_sent = true;
      }
      if (stop_seen && now - *stop_seen >= kReplyDeadline) {
        return Fail("no echo of the final HEARTBEAT");
      }
      if (!final_sent && now - last_heartbeat >= kHeartbeatEvery) {
        if (!SendHeartbeat(c_, NowMs())) return Fail("HEARTBEAT: " + c_.last_error());
        last_heartbeat = now;
        if (++unanswered > 10) return Fail("10 HEARTBEATs without an echo");
      }
      ReadResult r = c_.ReadFrame(milliseconds(50));
      if (r.status == ReadStatus::kTimeout) continue;
      if (!r.ok()) return Fail("connection lost: " + Describe(r));
      if (r.frame.frame_type() == FrameType::kHeartbeat) {
        v1::Heartbeat hb;
        hb.ParseFromString(r.frame.payload);
        if (hb.ts_ms() == kFinalTs) break;
        unanswered = 0;
        continue;
      }
      if (r.frame.frame_type() != FrameType::kDataBatch) {
        return Fail("unexpected " + DescribeFrame(r.frame));
      }
      auto batch = DecodeBatch(r.frame);
      if (!batch) return Fail("DATA_BATCH does not parse");
      if (batch->batch_seq != next_batch_seq_) {
        return Fail("batch_seq " + std::to_string(batch->batch_seq) + ", expected " +
                    std::to_string(next_batch_seq_));
      }
      ++next_batch_seq_;
      std::lock_guard lock(mu_);
      for (const auto& t : batch->ticks) OnTick(t);
      for (const auto& b : batch->bars) OnBar(b);
      records_ += batch->ticks.size() + batch->bars.size();
    }
    c_.Close();
    soak_.Caused("client_closed");
    clean_end_ = true;
  }

  Soak& soak_;
  const std::string name_;
  const v1::Mode mode_;
  const std::vector<std::string> topics_;
  RawClient c_;
  std::uint64_t next_batch_seq_ = 1;
  std::atomic<std::uint64_t> records_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> clean_end_{false};
  std::thread thread_;
};

// TICK subscriber: per topic seq 1, 2, 3, ... with prev_seq = seq - 1, and per topic and
// producer the producer's numbers 1, 2, 3, ... (no gap, no duplicate, no reordering, no altered
// tick). Optionally folds the ticks into the reference SECOND bars.
class TickConsumer : public Consumer {
 public:
  TickConsumer(Soak& soak, std::string name, std::vector<std::string> topics, bool fold)
      : Consumer(soak, std::move(name), v1::MODE_TICK, topics), fold_(fold) {
    for (const auto& t : topics) {
      if (t == "*") {
        allowed_.fill(true);
      } else {
        allowed_[static_cast<std::size_t>(TopicIndex(t))] = true;
      }
    }
  }

  ~TickConsumer() override { Stop(); }

  struct TopicState {
    std::uint64_t last_seq = 0;
    std::array<std::uint64_t, kProducerCount> last_n{};
    std::uint64_t digest = 14695981039346656037ull;
  };

  // Snapshots (taken under the lock).
  std::array<TopicState, kTopicCount> topics() {
    std::lock_guard lock(mu_);
    return state_;
  }
  std::uint64_t ticks() {
    std::lock_guard lock(mu_);
    return ticks_;
  }
  std::size_t bar_count() {
    std::lock_guard lock(mu_);
    return fold_bars_.size();
  }
  std::map<BarKey, v1::Bar> reference_bars() {
    std::lock_guard lock(mu_);
    return fold_bars_.Bars();
  }

 protected:
  void OnTick(const v1::Tick& t) override {
    const int topic = TopicIndex(t.topic());
    if (topic < 0 || !allowed_[static_cast<std::size_t>(topic)]) {
      return Fail("tick of a topic not subscribed: " + t.ShortDebugString());
    }
    TopicState& s = state_[static_cast<std::size_t>(topic)];
    if (t.seq() != s.last_seq + 1 || t.prev_seq() != s.last_seq) {
      return Fail(t.topic() + ": seq " + std::to_string(t.seq()) + " prev_seq " +
                  std::to_string(t.prev_seq()) + " after seq " + std::to_string(s.last_seq));
    }
    s.last_seq = t.seq();
    int producer = 0;
    std::uint64_t n = 0;
    if (!DecodeTick(t, &producer, &n)) {
      return Fail("a tick no producer published: " + t.ShortDebugString());
    }
    auto& last_n = s.last_n[static_cast<std::size_t>(producer)];
    if (n != last_n + 1) {
      return Fail(t.topic() + ": producer " + std::to_string(producer) + " tick " +
                  std::to_string(n) + " after " + std::to_string(last_n));
    }
    last_n = n;
    if (t.ts_ns() <= 0) return Fail("tick without ts_ns: " + t.ShortDebugString());
    s.digest = Mix(Mix(Mix(Mix(s.digest, t.seq()), Bits(t.price())), Bits(t.size())),
                   static_cast<std::uint64_t>(t.ts_ns()));
    ++ticks_;
    if (fold_) fold_bars_.Add(t);
  }
  void OnBar(const v1::Bar& b) override { Fail("bar in a TICK subscription: " + b.topic()); }

 private:
  const bool fold_;
  std::array<bool, kTopicCount> allowed_{};
  std::array<TopicState, kTopicCount> state_{};
  std::uint64_t ticks_ = 0;
  ReferenceBarFold fold_bars_;
};

// SECOND subscriber to "*": per topic ascending start_ms; keeps the bars for the final compare.
class BarConsumer : public Consumer {
 public:
  explicit BarConsumer(Soak& soak) : Consumer(soak, "SECOND * consumer", v1::MODE_SECOND, {"*"}) {}
  ~BarConsumer() override { Stop(); }

  std::size_t bar_count() {
    std::lock_guard lock(mu_);
    return bars_.size();
  }
  std::vector<v1::Bar> bars() {
    std::lock_guard lock(mu_);
    return bars_;
  }

 protected:
  void OnTick(const v1::Tick& t) override { Fail("tick in a SECOND subscription: " + t.topic()); }
  void OnBar(const v1::Bar& b) override {
    const int topic = TopicIndex(b.topic());
    if (topic < 0) return Fail("bar of an unknown topic: " + b.ShortDebugString());
    auto& last = last_start_[static_cast<std::size_t>(topic)];
    if (b.start_ms() <= last || b.start_ms() % 1000 != 0) {
      return Fail(b.topic() + ": bar start_ms " + std::to_string(b.start_ms()) + " after " +
                  std::to_string(last));
    }
    last = b.start_ms();
    bars_.push_back(b);
  }

 private:
  std::array<std::int64_t, kTopicCount> last_start_{};
  std::vector<v1::Bar> bars_;
};

// ---------------------------------------------------------------------------------------------
// Subscription churn: a healthy connection that keeps subscribing (TICK, SECOND, MINUTE; exact
// topics or "*"; some with backfill or since_ms) and unsubscribing while reading what arrives.
// It must stay healthy: every SUBSCRIBE answered, batch_seq continuous, no ERROR.

class Churner {
 public:
  Churner(Soak& soak, int index) : soak_(soak), index_(index) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Churner() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t subscribes() const { return subscribes_.load(); }
  std::uint64_t unsubscribes() const { return unsubscribes_.load(); }
  std::uint64_t records() const { return records_.load(); }

 private:
  // Reads frames until `deadline`, or until a frame of `want` type arrives (returned). DATA_BATCH
  // and HEARTBEAT echoes are consumed and checked; anything else is a failure (nullopt, failed_).
  std::optional<Frame> Pump(RawClient& c, steady_clock::time_point deadline,
                            std::optional<FrameType> want) {
    while (!failed_) {
      const auto now = steady_clock::now();
      if (now >= deadline) return std::nullopt;
      if (now - last_heartbeat_ >= kHeartbeatEvery) {
        if (!SendHeartbeat(c, NowMs())) return Fail("HEARTBEAT: " + c.last_error());
        last_heartbeat_ = now;
      }
      ReadResult r = c.ReadFrame(std::min(Remaining(deadline), milliseconds(50)));
      if (r.status == ReadStatus::kTimeout) continue;
      if (!r.ok()) return Fail("connection lost: " + Describe(r));
      if (want && r.frame.frame_type() == *want) return std::move(r.frame);
      if (r.frame.frame_type() == FrameType::kHeartbeat) continue;
      if (r.frame.frame_type() != FrameType::kDataBatch) {
        return Fail("unexpected " + DescribeFrame(r.frame));
      }
      auto batch = DecodeBatch(r.frame);
      if (!batch) return Fail("DATA_BATCH does not parse");
      if (batch->batch_seq != next_batch_seq_++) return Fail("batch_seq gap");
      for (const auto& t : batch->ticks) {
        if (TopicIndex(t.topic()) < 0) return Fail("tick of an unknown topic " + t.topic());
      }
      for (const auto& b : batch->bars) {
        if (TopicIndex(b.topic()) < 0) return Fail("bar of an unknown topic " + b.topic());
      }
      records_ += batch->ticks.size() + batch->bars.size();
    }
    return std::nullopt;
  }

  std::nullopt_t Fail(const std::string& what) {
    if (!failed_) soak_.failures.Add("churn " + std::to_string(index_), what);
    failed_ = true;
    return std::nullopt;
  }

  void Run() {
    RawClient c;
    if (!soak_.Connect(c)) return (void)Fail("connect: " + c.last_error());
    if (auto r = c.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !r) {
      return (void)Fail(r.message());
    }
    std::mt19937_64 rng(static_cast<std::uint64_t>(index_) + 101);
    std::vector<std::uint64_t> subs;
    std::uint32_t request_id = 0;
    last_heartbeat_ = steady_clock::now();
    while (!stop_ && !failed_) {
      Pump(c, steady_clock::now() + milliseconds(20 + rng() % 150), std::nullopt);
      if (failed_) break;
      if (subs.size() < 2 || (subs.size() < 5 && rng() % 2 == 0)) {
        v1::Subscribe s;
        s.set_request_id(++request_id);
        const v1::Mode modes[] = {v1::MODE_TICK, v1::MODE_SECOND, v1::MODE_MINUTE};
        s.set_mode(modes[rng() % 3]);
        const bool wildcard = rng() % 4 == 0;
        if (wildcard) {
          s.add_topics("*");
        } else {
          const int n = 1 + static_cast<int>(rng() % 5);
          for (int i = 0; i < n; ++i)
            s.add_topics(TopicName(static_cast<int>(rng() % kTopicCount)));
        }
        switch (rng() % 4) {
          case 0:
            s.set_backfill(1 + static_cast<std::uint32_t>(rng() % 20));
            break;
          case 1:
            if (!wildcard) s.set_since_ms(NowMs() - 1000);
            break;
          default:
            break;
        }
        if (!c.SendFrame(FrameType::kSubscribe, s)) return (void)Fail("SUBSCRIBE send");
        auto ok = Pump(c, steady_clock::now() + kReplyDeadline, FrameType::kSubscribeOk);
        if (failed_) break;
        if (!ok) return (void)Fail("no SUBSCRIBE_OK for " + s.ShortDebugString());
        v1::SubscribeOk sok;
        if (!sok.ParseFromString(ok->payload) || sok.request_id() != request_id) {
          return (void)Fail("SUBSCRIBE_OK for another request");
        }
        subs.push_back(sok.subscription_id());
        ++subscribes_;
      } else {
        const std::size_t i = rng() % subs.size();
        v1::Unsubscribe u;
        u.set_request_id(++request_id);
        u.set_subscription_id(subs[i]);
        subs.erase(subs.begin() + static_cast<std::ptrdiff_t>(i));
        if (!c.SendFrame(FrameType::kUnsubscribe, u)) return (void)Fail("UNSUBSCRIBE send");
        ++unsubscribes_;
      }
    }
    if (failed_) return;
    // Still healthy at the end: unsubscribe everything, and a heartbeat round trip.
    for (const auto id : subs) {
      v1::Unsubscribe u;
      u.set_request_id(++request_id);
      u.set_subscription_id(id);
      if (!c.SendFrame(FrameType::kUnsubscribe, u)) return (void)Fail("UNSUBSCRIBE send");
      ++unsubscribes_;
    }
    constexpr std::int64_t kFinalTs = -777;
    if (!SendHeartbeat(c, kFinalTs)) return (void)Fail("final HEARTBEAT");
    const auto deadline = steady_clock::now() + kReplyDeadline;
    while (true) {
      auto hb = Pump(c, deadline, FrameType::kHeartbeat);
      if (!hb) return (void)Fail("no echo of the final HEARTBEAT");
      v1::Heartbeat echo;
      if (echo.ParseFromString(hb->payload) && echo.ts_ms() == kFinalTs) break;
    }
    c.Close();
    soak_.Caused("client_closed");
  }

  Soak& soak_;
  const int index_;
  std::atomic<bool> stop_{false};
  bool failed_ = false;
  steady_clock::time_point last_heartbeat_;
  std::uint64_t next_batch_seq_ = 1;
  std::atomic<std::uint64_t> subscribes_{0};
  std::atomic<std::uint64_t> unsubscribes_{0};
  std::atomic<std::uint64_t> records_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Misbehaving clients. Each attempt is one connection, bounded in time, and returns what
// happened: whether the client saw what the contract says (the right ERROR, then the close),
// the conn_close reason the server should log for it, and a short outcome label for the table.

struct Outcome {
  bool connected = false;
  bool ok = false;
  std::string error;    // when !ok
  std::string reason;   // conn_close reason the server should log
  std::string outcome;  // e.g. "AUTH_REQUIRED", for the summary
};

Outcome Fatal(const std::string& reason, const std::string& outcome) {
  Outcome o;
  o.connected = true;
  o.ok = true;
  o.reason = reason;
  o.outcome = outcome;
  return o;
}

Outcome Broken(const std::string& reason, const std::string& what) {
  Outcome o;
  o.connected = true;
  o.ok = false;
  o.reason = reason;
  o.error = what;
  return o;
}

// The next frames must be ERROR{code, fatal} and then the close.
Outcome ExpectFatalClose(RawClient& c, v1::ErrorCode code, const std::string& reason,
                         const std::string& context) {
  if (auto r = c.ExpectFatal(code, nullptr, kReplyDeadline); !r) {
    return Broken(reason, context + ": " + r.message());
  }
  return Fatal(reason, v1::ErrorCode_Name(code));
}

std::string FrameBytes(FrameType type, const std::string& payload) {
  std::string f(protocol::kHeaderSize, '\0');
  const auto length = static_cast<std::uint32_t>(payload.size() + 1);
  f[0] = static_cast<char>(length >> 24);
  f[1] = static_cast<char>(length >> 16);
  f[2] = static_cast<char>(length >> 8);
  f[3] = static_cast<char>(length);
  f[4] = static_cast<char>(type);
  return f + payload;
}

std::string AuthPayload(const std::string& user, const std::string& pass) {
  v1::Auth a;
  a.set_username(user);
  a.set_password(pass);
  a.set_client_name("soak-misbehaver");
  return a.SerializeAsString();
}

// Connect and vanish in the middle of a frame. The server reads EOF (or a reset) with a partial
// frame buffered: client_closed (io_error if a write of its own failed first). The partial
// PUBLISH carries ticks no producer made: if any of it were applied, the TICK consumers fail.
Outcome Vanish(Soak& soak, std::mt19937_64& rng, std::uint64_t i) {
  RawClient c;
  if (!soak.Connect(c)) return Outcome{false, false, "connect: " + c.last_error(), "", ""};
  const std::string reason = "client_closed";
  const int variant = static_cast<int>(i % 4);
  if (variant == 0) {
    const std::string auth = FrameBytes(FrameType::kAuth, AuthPayload("test", "secret"));
    if (!c.SendBytes(auth.substr(0, 1 + rng() % (auth.size() - 1)))) {
      return Broken(reason, "send: " + c.last_error());
    }
    c.Close();
    return Fatal(reason, "partial AUTH");
  }
  if (auto r = c.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !r) {
    return Broken(reason, r.message());
  }
  if (variant == 1) {
    v1::Publish p;
    p.set_request_id(1);
    for (int k = 0; k < 5; ++k) {
      *p.add_ticks() = MakeTick(TopicName(static_cast<int>(rng() % kTopicCount)), -1.0, 1.0);
    }
    const std::string frame = FrameBytes(FrameType::kPublish, p.SerializeAsString());
    if (!c.SendBytes(frame.substr(0, frame.size() - 1 - rng() % 10))) {
      return Broken(reason, "send: " + c.last_error());
    }
    c.Close();
    return Fatal(reason, "partial PUBLISH");
  }
  if (variant == 2) {
    // Subscribed to everything, gone with unread data: the close is a reset.
    if (auto r = c.Subscribe(1, v1::MODE_TICK, {"*"}); !r) return Broken(reason, r.message());
    const ReadResult r = c.ReadFrame(milliseconds(200));
    if (r.status == ReadStatus::kClosed || r.status == ReadStatus::kError) {
      return Broken(reason, "dropped before vanishing: " + Describe(r));
    }
    v1::Heartbeat hb;
    hb.set_ts_ms(1);
    const std::string frame = FrameBytes(FrameType::kHeartbeat, hb.SerializeAsString());
    if (!c.SendBytes(frame.substr(0, 3))) return Broken(reason, "send: " + c.last_error());
    c.Close();
    return Fatal(reason, "reset while subscribed");
  }
  // Abortive close (RST) in the middle of a SUBSCRIBE.
  v1::Subscribe s;
  s.set_request_id(1);
  s.set_mode(v1::MODE_SECOND);
  s.add_topics(TopicName(1));
  const std::string frame = FrameBytes(FrameType::kSubscribe, s.SerializeAsString());
  if (!c.SendBytes(frame.substr(0, 6))) return Broken(reason, "send: " + c.last_error());
  linger lg{1, 0};
  setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  c.Close();
  return Fatal(reason, "reset mid SUBSCRIBE");
}

// Garbage of every kind the decoder and the session reject fatally.
Outcome Garbage(Soak& soak, std::mt19937_64& rng, std::uint64_t i) {
  RawClient c;
  if (!soak.Connect(c)) return Outcome{false, false, "connect: " + c.last_error(), "", ""};
  const int variant = static_cast<int>(i % 10);
  auto send = [&](const std::string& bytes) { return c.SendBytes(bytes); };
  auto authed = [&]() -> ::testing::AssertionResult {
    return c.Authenticate(ServerProcess::kUser, ServerProcess::kPass);
  };
  switch (variant) {
    case 0: {  // a valid frame, but not AUTH, first
      v1::Subscribe s;
      s.set_request_id(1);
      s.set_mode(v1::MODE_TICK);
      s.add_topics("*");
      if (!send(FrameBytes(FrameType::kSubscribe, s.SerializeAsString()))) break;
      return ExpectFatalClose(c, v1::AUTH_REQUIRED, "auth_required", "SUBSCRIBE first");
    }
    case 1:  // length 0
      if (!send(std::string(4, '\0'))) break;
      return ExpectFatalClose(c, v1::MALFORMED_FRAME, "malformed_frame", "length 0");
    case 2: {  // AUTH whose payload is not a protobuf message (invalid wire types)
      std::string junk(1 + rng() % 40, '\xff');
      if (!send(FrameBytes(FrameType::kAuth, junk))) break;
      return ExpectFatalClose(c, v1::MALFORMED_FRAME, "malformed_frame", "AUTH junk payload");
    }
    case 3: {  // a type byte not in the contract, random payload
      std::string payload(rng() % 100, '\0');
      for (auto& ch : payload) ch = static_cast<char>(rng());
      std::string f = FrameBytes(FrameType::kAuth, payload);
      f[4] = static_cast<char>(0x0B + rng() % (0xF5));  // 0x0B .. 0xFF
      if (!send(f)) break;
      return ExpectFatalClose(c, v1::UNKNOWN_FRAME_TYPE, "unknown_frame_type", "unknown type");
    }
    case 4: {  // a declared length far over MAX_MSG_SIZE: rejected from the header alone
      const std::uint32_t length = 65538 + static_cast<std::uint32_t>(rng() % 0x7fff0000u);
      std::string h = {static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                       static_cast<char>(length >> 8), static_cast<char>(length), '\x01'};
      if (!send(h)) break;
      return ExpectFatalClose(c, v1::FRAME_TOO_LARGE, "frame_too_large", "huge length");
    }
    case 5: {  // a protocol version this server does not speak
      v1::Auth a;
      a.set_username(ServerProcess::kUser);
      a.set_password(ServerProcess::kPass);
      a.set_protocol_version(99);
      if (!send(FrameBytes(FrameType::kAuth, a.SerializeAsString()))) break;
      return ExpectFatalClose(c, v1::INVALID_REQUEST, "invalid_request", "protocol_version 99");
    }
    case 6: {  // after AUTH: a frame type only servers send
      if (auto r = authed(); !r) return Broken("invalid_request", r.message());
      if (!send(FrameBytes(FrameType::kDataBatch, ""))) break;
      return ExpectFatalClose(c, v1::INVALID_REQUEST, "invalid_request", "DATA_BATCH from client");
    }
    case 7: {  // after AUTH: a truncated varint in SUBSCRIBE
      if (auto r = authed(); !r) return Broken("malformed_frame", r.message());
      if (!send(FrameBytes(FrameType::kSubscribe, std::string("\x08\x80", 2)))) break;
      return ExpectFatalClose(c, v1::MALFORMED_FRAME, "malformed_frame", "truncated varint");
    }
    case 8: {  // after AUTH: an oversized HEARTBEAT header
      if (auto r = authed(); !r) return Broken("frame_too_large", r.message());
      const std::uint32_t length = 65537 + 1 + static_cast<std::uint32_t>(rng() % 1000);
      std::string h = {static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                       static_cast<char>(length >> 8), static_cast<char>(length), '\x09'};
      if (!send(h)) break;
      return ExpectFatalClose(c, v1::FRAME_TOO_LARGE, "frame_too_large", "HEARTBEAT too large");
    }
    default: {  // after AUTH: random bytes behind an unknown type byte
      if (auto r = authed(); !r) return Broken("unknown_frame_type", r.message());
      std::string payload(1 + rng() % 200, '\0');
      for (auto& ch : payload) ch = static_cast<char>(rng());
      std::string f = FrameBytes(FrameType::kAuth, payload);
      f[4] = static_cast<char>(0x0B + rng() % (0xF5));
      if (!send(f)) break;
      return ExpectFatalClose(c, v1::UNKNOWN_FRAME_TYPE, "unknown_frame_type", "random bytes");
    }
  }
  return Broken("", "garbage variant " + std::to_string(variant) + ": send: " + c.last_error());
}

// AUTH with wrong credentials.
Outcome AuthFail(Soak& soak, std::mt19937_64& rng, std::uint64_t i) {
  RawClient c;
  if (!soak.Connect(c)) return Outcome{false, false, "connect: " + c.last_error(), "", ""};
  std::string user = "intruder" + std::to_string(rng() % 1000);
  std::string pass = "guess" + std::to_string(i);
  if (i % 3 == 1) user = ServerProcess::kUser;  // the right user, a wrong password
  if (i % 3 == 2) user.clear(), pass.clear();   // nothing at all
  if (!c.SendBytes(FrameBytes(FrameType::kAuth, AuthPayload(user, pass)))) {
    return Broken("auth_failed", "send: " + c.last_error());
  }
  return ExpectFatalClose(c, v1::AUTH_FAILED, "auth_failed", "wrong credentials");
}

// Never AUTH: silent, a slowloris trickling an AUTH frame one byte at a time, or half a header.
Outcome NoAuth(Soak& soak, std::mt19937_64& rng, std::uint64_t i) {
  (void)rng;
  RawClient c;
  const auto start = steady_clock::now();
  if (!soak.Connect(c)) return Outcome{false, false, "connect: " + c.last_error(), "", ""};
  const std::string reason = "auth_timeout";
  const int variant = static_cast<int>(i % 3);
  if (variant == 1) {
    // Slowloris: one byte every 150 ms; the whole frame would take far longer than
    // AUTH_TIMEOUT_MS. Stop trickling once something arrives.
    const std::string auth = FrameBytes(FrameType::kAuth, AuthPayload("test", "secret"));
    for (std::size_t k = 0; k < auth.size() - 1; ++k) {
      if (!c.SendBytes(auth.substr(k, 1))) break;  // the server closed: read what it said
      const ReadResult r = c.ReadFrame(milliseconds(150));
      if (r.status != ReadStatus::kTimeout) {
        if (!r.ok()) return Broken(reason, "slowloris: " + Describe(r));
        auto e = ParseError(r.frame);
        if (!e || e->code() != v1::AUTH_TIMEOUT || !e->fatal()) {
          return Broken(
              reason, "slowloris: expected ERROR{AUTH_TIMEOUT} but got " + DescribeFrame(r.frame));
        }
        if (auto closed = c.ExpectClosed(kReplyDeadline); !closed) {
          return Broken(reason, std::string("slowloris: ") + closed.message());
        }
        if (steady_clock::now() - start < kAuthTimeout - milliseconds(50)) {
          return Broken(reason, "slowloris: AUTH_TIMEOUT before AUTH_TIMEOUT_MS");
        }
        return Fatal(reason, "AUTH_TIMEOUT");
      }
    }
    return Broken(reason, "slowloris: the whole AUTH frame trickled in without AUTH_TIMEOUT");
  }
  if (variant == 2 && !c.SendBytes(std::string("\0\0", 2))) {
    return Broken(reason, "send: " + c.last_error());
  }
  Outcome o =
      ExpectFatalClose(c, v1::AUTH_TIMEOUT, reason, variant == 0 ? "silent" : "half header");
  if (o.ok && steady_clock::now() - start < kAuthTimeout - milliseconds(50)) {
    return Broken(reason, "AUTH_TIMEOUT before AUTH_TIMEOUT_MS");
  }
  return o;
}

// Authenticate, subscribe, read, but never send HEARTBEAT.
Outcome NoHeartbeat(Soak& soak, std::mt19937_64& rng, std::uint64_t i) {
  (void)i;
  RawClient c;
  if (!soak.Connect(c)) return Outcome{false, false, "connect: " + c.last_error(), "", ""};
  const std::string reason = "heartbeat_timeout";
  if (auto r = c.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !r) {
    return Broken(reason, r.message());
  }
  const auto authed = steady_clock::now();
  if (auto r = c.Subscribe(1, v1::MODE_TICK, {TopicName(static_cast<int>(rng() % kTopicCount))});
      !r) {
    return Broken(reason, r.message());
  }
  const auto deadline = authed + kHeartbeatTimeout + kReplyDeadline;
  while (true) {
    const ReadResult r = c.ReadFrame(Remaining(deadline));
    if (!r.ok()) return Broken(reason, "expected ERROR{HEARTBEAT_TIMEOUT}, got " + Describe(r));
    if (r.frame.frame_type() == FrameType::kDataBatch) continue;
    auto e = ParseError(r.frame);
    if (!e || e->code() != v1::HEARTBEAT_TIMEOUT || !e->fatal()) {
      return Broken(reason, "expected ERROR{HEARTBEAT_TIMEOUT}, got " + DescribeFrame(r.frame));
    }
    break;
  }
  // The server counts from AUTH, which it processed before this client saw AUTH_OK; the margin
  // covers this thread being descheduled in between, and still tells 3 s from the 1 s interval.
  if (steady_clock::now() - authed < kHeartbeatTimeout - milliseconds(500)) {
    return Broken(reason, "HEARTBEAT_TIMEOUT before HEARTBEAT_TIMEOUT");
  }
  if (auto closed = c.ExpectClosed(kReplyDeadline); !closed) {
    return Broken(reason, std::string("after HEARTBEAT_TIMEOUT: ") + closed.message());
  }
  return Fatal(reason, "HEARTBEAT_TIMEOUT");
}

// Subscribe to every tick with a tiny receive buffer, then either stop reading or read one
// frame every 20 ms (a quarter of what a busy stream sends: frames leave every BATCH_WINDOW_MS),
// heartbeating all along, so the only reason to drop it is the output it does not take. The
// server must drop it as a slow consumer: ERROR{SLOW_CONSUMER} when the pending-output limit
// trips (it reaches the client only if the write in flight still completes), or a plain close
// when a write misses WRITE_DEADLINE_MS. What did arrive must be in order.
//
// Variants: 0 stops reading; 1 reads slowly and heartbeats every 2.5 s (inside the 3 s timeout,
// and usually not at all before it is dropped); 2 reads slowly and heartbeats every 400 ms. The
// summary shows how often each saw the ERROR: a HEARTBEAT that arrives after the server stopped
// reading makes its close a reset, which discards the queued ERROR (docs/RELIABILITY.md).
Outcome SlowConsumer(Soak& soak, std::mt19937_64& rng, std::uint64_t i) {
  (void)rng;
  RawClient c;
  c.SetReceiveBuffer(2048);
  if (!soak.Connect(c)) return Outcome{false, false, "connect: " + c.last_error(), "", ""};
  const std::string reason = "slow_consumer";
  if (auto r = c.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !r) {
    return Broken(reason, r.message());
  }
  if (auto r = c.Subscribe(1, v1::MODE_TICK, {"*"}); !r) return Broken(reason, r.message());
  const int kind = static_cast<int>(i % 3);
  const bool trickle = kind != 0;
  const milliseconds heartbeat_every = kind == 1 ? milliseconds(2500) : kHeartbeatEvery;
  const std::string variant = kind == 0   ? "stopped: "
                              : kind == 1 ? "slow, HB 2.5 s: "
                                          : "slow, HB 0.4 s: ";
  if (!trickle) {
    // Stall. A HEARTBEAT send fails once the server has closed the connection (its kernel
    // answers with a reset); after WRITE_DEADLINE_MS plus a wide margin, go and look anyway.
    const auto stall_end = steady_clock::now() + kWriteDeadline + milliseconds(6000);
    while (steady_clock::now() < stall_end) {
      if (!SendHeartbeat(c, NowMs())) break;
      std::this_thread::sleep_for(milliseconds(250));  // pacing: a stalled reader does nothing
    }
  }
  // Read: DATA_BATCH in order, HEARTBEAT echoes, at most one ERROR{SLOW_CONSUMER}, then the
  // close (possibly in the middle of a frame: a write was cut off).
  std::uint64_t next_batch_seq = 1;
  std::map<std::string, std::uint64_t> last_seq;
  bool saw_error = false;
  const auto deadline = steady_clock::now() + (trickle ? 2 : 1) * kReplyDeadline;
  auto last_heartbeat = steady_clock::now();
  while (true) {
    if (trickle && !saw_error) {
      std::this_thread::sleep_for(milliseconds(20));  // pacing: the slow reader's rate
      if (steady_clock::now() - last_heartbeat >= heartbeat_every) {
        SendHeartbeat(c, NowMs());  // fails once the server has closed; the read tells
        last_heartbeat = steady_clock::now();
      }
    }
    const ReadResult r = c.ReadFrame(Remaining(deadline));
    if (r.status == ReadStatus::kClosed ||
        (r.status == ReadStatus::kError && r.detail.find("inside a frame") != std::string::npos)) {
      break;
    }
    if (!r.ok()) return Broken(reason, variant + "not dropped as a slow consumer: " + Describe(r));
    if (saw_error) {
      return Broken(reason, variant + "a frame after the fatal ERROR: " + DescribeFrame(r.frame));
    }
    if (auto e = ParseError(r.frame)) {
      if (e->code() != v1::SLOW_CONSUMER || !e->fatal()) {
        return Broken(reason,
                      variant + "expected ERROR{SLOW_CONSUMER}, got " + DescribeFrame(r.frame));
      }
      saw_error = true;
      continue;
    }
    if (r.frame.frame_type() == FrameType::kHeartbeat) continue;
    auto batch = DecodeBatch(r.frame);
    if (!batch) return Broken(reason, variant + "unexpected " + DescribeFrame(r.frame));
    if (batch->batch_seq != next_batch_seq++) return Broken(reason, variant + "batch_seq gap");
    for (const auto& t : batch->ticks) {
      auto [it, first] = last_seq.try_emplace(t.topic(), t.seq());
      if (!first && t.seq() != it->second + 1) {
        return Broken(reason, variant + t.topic() + ": seq " + std::to_string(t.seq()) + " after " +
                                  std::to_string(it->second));
      }
      it->second = t.seq();
    }
  }
  return Fatal(reason, variant + (saw_error ? "ERROR" : "closed"));
}

using Attempt = Outcome (*)(Soak&, std::mt19937_64&, std::uint64_t);

// One kind of misbehaving client, run in a loop on `threads` threads until told to stop.
class Misbehaver {
 public:
  Misbehaver(Soak& soak, std::string name, std::string expect, Attempt attempt, int threads,
             milliseconds pace)
      : soak_(soak), name_(std::move(name)), expect_(std::move(expect)) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, attempt, t, pace] {
        std::mt19937_64 rng(std::hash<std::string>{}(name_) + static_cast<std::uint64_t>(t));
        for (std::uint64_t i = static_cast<std::uint64_t>(t); !stop_; i += 7) {
          Outcome o = attempt(soak_, rng, i);
          Record(o);
          if (pace.count() > 0) std::this_thread::sleep_for(pace);  // pacing only
        }
      });
    }
  }
  ~Misbehaver() {
    RequestStop();
    Join();
  }
  // Each thread finishes the attempt it is in, then stops.
  void RequestStop() { stop_ = true; }
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  const std::string& name() const { return name_; }
  const std::string& expect() const { return expect_; }
  std::uint64_t runs() const { return runs_.load(); }
  std::uint64_t ok() const { return ok_.load(); }
  std::map<std::string, std::uint64_t> outcomes() {
    std::lock_guard lock(mu_);
    return outcomes_;
  }

 private:
  void Record(const Outcome& o) {
    ++runs_;
    if (!o.ok) {
      soak_.failures.Add(name_, o.error);
      return;
    }
    ++ok_;
    soak_.Caused(o.reason);
    std::lock_guard lock(mu_);
    ++outcomes_[o.outcome];
  }

  Soak& soak_;
  const std::string name_;
  const std::string expect_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> runs_{0};
  std::atomic<std::uint64_t> ok_{0};
  std::mutex mu_;
  std::map<std::string, std::uint64_t> outcomes_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------------------------
// The server process from the outside: fds and memory.

std::optional<std::uint64_t> CountFds(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) return std::nullopt;
  std::uint64_t n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return std::nullopt;
    ++n;
  }
  return n;
}

// A "VmRSS:"-style field of /proc/<pid>/status, in kB.
std::optional<std::uint64_t> StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
        line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return std::nullopt;
}

// Samples the server's RSS and fd count every 250 ms.
class Monitor {
 public:
  explicit Monitor(pid_t pid) : pid_(pid) {
    thread_ = std::thread([this] {
      while (!stop_) {
        Sample();
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, milliseconds(250), [this] { return stop_.load(); });
      }
    });
  }
  ~Monitor() { Stop(); }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    Sample();
  }
  std::uint64_t peak_rss_kb() const { return peak_rss_kb_.load(); }
  std::uint64_t peak_fds() const { return peak_fds_.load(); }

 private:
  void Sample() {
    if (auto rss = StatusKb(pid_, "VmHWM")) {
      peak_rss_kb_ = std::max(peak_rss_kb_.load(), *rss);
    }
    if (auto rss = StatusKb(pid_, "VmRSS")) {
      peak_rss_kb_ = std::max(peak_rss_kb_.load(), *rss);
    }
    if (auto fds = CountFds(pid_)) peak_fds_ = std::max(peak_fds_.load(), *fds);
  }

  const pid_t pid_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<std::uint64_t> peak_rss_kb_{0};
  std::atomic<std::uint64_t> peak_fds_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// The server log.

struct LogSummary {
  std::uint64_t lines = 0;
  std::uint64_t bad_lines = 0;
  std::string first_bad;
  std::map<std::string, std::uint64_t> events;
  std::map<std::string, std::uint64_t> levels;
  std::map<std::string, std::uint64_t> close_reasons;  // conn_close lines by "reason"
  std::vector<std::string> errors;                     // level "error" lines
  // Slow consumers by conn_id, by the limit that dropped them: MAX_PENDING_BYTES or the write
  // deadline (one slow_consumer line each).
  std::set<std::uint64_t> over_pending;
  std::set<std::uint64_t> missed_deadline;
  // slow_consumer closes whose final ERROR a stuck write kept from the client.
  std::uint64_t slow_error_not_written = 0;
};

std::string StringMember(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->as_string());
}

LogSummary ParseLog(const std::string& text) {
  LogSummary s;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++s.lines;
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) {
      if (s.bad_lines++ == 0) s.first_bad = line;
      continue;
    }
    const auto& o = v.as_object();
    const std::string event = StringMember(o, "event");
    const std::string level = StringMember(o, "level");
    ++s.events[event];
    ++s.levels[level];
    if (event == "conn_close") {
      const std::string reason = StringMember(o, "reason");
      ++s.close_reasons[reason];
      if (reason == "slow_consumer" &&
          StringMember(o, "detail").ends_with("the ERROR was not written")) {
        ++s.slow_error_not_written;
      }
    }
    if (level == "error" && s.errors.size() < 10) s.errors.push_back(line);
    if (event == "slow_consumer") {
      const auto* id = o.if_contains("conn_id");
      const std::uint64_t conn = id != nullptr && id->is_uint64() ? id->as_uint64()
                                 : id != nullptr && id->is_int64()
                                     ? static_cast<std::uint64_t>(id->as_int64())
                                     : 0;
      if (StringMember(o, "reason") == "write deadline missed") {
        s.missed_deadline.insert(conn);
      } else {
        s.over_pending.insert(conn);
      }
    }
  }
  return s;
}

std::uint64_t Count(const std::map<std::string, std::uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// Cheap count while waiting; the final check parses every line.
std::uint64_t CountConnClose(const std::string& text) {
  std::uint64_t n = 0;
  for (std::size_t pos = 0; (pos = text.find("\"conn_close\"", pos)) != std::string::npos; ++pos) {
    ++n;
  }
  return n;
}

std::string Mb(std::uint64_t kb) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << static_cast<double>(kb) / 1024.0 << " MB";
  return o.str();
}

// ---------------------------------------------------------------------------------------------

TEST(FaultSoakTest, HealthyClientsLoseNothingWhileMisbehavingClientsAreDropped) {
  const int seconds = SoakSeconds();
  const auto run_started = steady_clock::now();
  ServerProcess server(SoakServerEnv());
  ASSERT_TRUE(server.Start()) << server.error();
  const pid_t pid = server.pid();
  Soak soak;
  soak.port = server.port();

  // Baseline: the server's descriptors before any client connects.
  std::optional<std::uint64_t> fd_baseline;
  ASSERT_TRUE(
      WaitUntil([&] { return (fd_baseline = CountFds(pid)).has_value(); }, milliseconds(2000)));
  Monitor monitor(pid);

  std::vector<std::string> exact_topics;
  for (int t : kExactTopics) exact_topics.push_back(TopicName(t));

  // Healthy consumers first, so they see every tick from seq 1.
  TickConsumer all_ticks(soak, "TICK * consumer", {"*"}, /*fold=*/true);
  TickConsumer some_ticks(soak, "TICK exact consumer", exact_topics, /*fold=*/false);
  BarConsumer bars(soak);
  ASSERT_TRUE(all_ticks.Start());
  ASSERT_TRUE(some_ticks.Start());
  ASSERT_TRUE(bars.Start());

  std::cout << "[soak] " << seconds << " s against tickwire-server pid " << pid << " on port "
            << soak.port << (kSanitized ? " (sanitized build)" : "") << std::endl;
  const auto load_started = steady_clock::now();
  std::vector<std::unique_ptr<Producer>> producers;
  for (int p = 0; p < kProducerCount; ++p) producers.push_back(std::make_unique<Producer>(soak, p));
  std::vector<std::unique_ptr<Churner>> churners;
  for (int k = 0; k < 2; ++k) churners.push_back(std::make_unique<Churner>(soak, k));
  std::vector<std::unique_ptr<Misbehaver>> misbehavers;
  misbehavers.push_back(std::make_unique<Misbehaver>(
      soak, "vanish mid-frame", "client_closed/io_error", &Vanish, 1, kMisbehaverPace));
  misbehavers.push_back(std::make_unique<Misbehaver>(soak, "garbage bytes", "fatal ERROR by kind",
                                                     &Garbage, 1, kMisbehaverPace));
  misbehavers.push_back(std::make_unique<Misbehaver>(soak, "failed AUTH", "auth_failed", &AuthFail,
                                                     1, kMisbehaverPace));
  misbehavers.push_back(std::make_unique<Misbehaver>(soak, "never AUTH (incl. slowloris)",
                                                     "auth_timeout", &NoAuth, 2, milliseconds(0)));
  misbehavers.push_back(std::make_unique<Misbehaver>(soak, "never HEARTBEAT", "heartbeat_timeout",
                                                     &NoHeartbeat, 2, milliseconds(0)));
  misbehavers.push_back(std::make_unique<Misbehaver>(soak, "stops reading", "slow_consumer",
                                                     &SlowConsumer, 2, milliseconds(0)));

  // Run for the duration, or until something fails or the server dies.
  const auto end = load_started + std::chrono::seconds(seconds);
  auto next_progress = load_started + std::chrono::seconds(15);
  bool server_alive = true;
  while (steady_clock::now() < end && soak.failures.count() == 0) {
    if (!(server_alive = server.Running())) break;
    if (steady_clock::now() >= next_progress) {
      std::uint64_t ticks = 0;
      for (const auto& p : producers) ticks += p->ticks();
      std::cout << "[soak] "
                << std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() -
                                                                    load_started)
                       .count()
                << " s: " << ticks << " ticks published, " << soak.connections.load()
                << " connections, RSS peak " << Mb(monitor.peak_rss_kb()) << std::endl;
      next_progress += std::chrono::seconds(15);
    }
    std::this_thread::sleep_for(milliseconds(100));  // the run's own pacing
  }
  const auto load_ended = steady_clock::now();
  ASSERT_TRUE(server_alive) << "the server died during the soak\n" << server.Describe();

  // Wind down: misbehavers (each finishes its attempt), churn, then producers (all acked).
  for (auto& m : misbehavers) m->RequestStop();
  for (auto& m : misbehavers) m->Join();
  for (auto& c : churners) c->Stop();
  for (auto& p : producers) p->Stop();
  std::array<std::uint64_t, kTopicCount> per_topic{};
  std::array<std::array<std::uint64_t, kProducerCount>, kTopicCount> per_topic_producer{};
  std::uint64_t published = 0;
  std::int64_t newest_ts_ns = NowNs();
  for (int p = 0; p < kProducerCount; ++p) {
    for (int t = 0; t < kTopicCount; ++t) {
      const auto n =
          producers[static_cast<std::size_t>(p)]->published()[static_cast<std::size_t>(t)];
      per_topic[static_cast<std::size_t>(t)] += n;
      per_topic_producer[static_cast<std::size_t>(t)][static_cast<std::size_t>(p)] = n;
      published += n;
    }
    newest_ts_ns = std::max(newest_ts_ns, producers[static_cast<std::size_t>(p)]->newest_ts_ns());
  }
  std::uint64_t published_exact = 0;
  for (int t : kExactTopics) published_exact += per_topic[static_cast<std::size_t>(t)];

  // Every acked tick reaches the TICK consumers; then every bar closes: the newest tick's second
  // end + BAR_CLOSE_DELAY_MS, plus a margin.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return soak.failures.count() > 0 ||
               (all_ticks.ticks() >= published && some_ticks.ticks() >= published_exact);
      },
      kReplyDeadline, milliseconds(20)))
      << "TICK * consumer has " << all_ticks.ticks() << " of " << published
      << " ticks; exact consumer " << some_ticks.ticks() << " of " << published_exact;
  const std::int64_t last_close_ms = (newest_ts_ns / 1'000'000'000 + 1) * 1000 + kBarCloseDelayMs;
  const auto bars_deadline =
      milliseconds(std::max<std::int64_t>(0, last_close_ms - NowMs())) + kReplyDeadline;
  EXPECT_TRUE(WaitUntil(
      [&] { return soak.failures.count() > 0 || bars.bar_count() >= all_ticks.bar_count(); },
      bars_deadline, milliseconds(20)))
      << "SECOND * consumer has " << bars.bar_count() << " of " << all_ticks.bar_count() << " bars";
  all_ticks.Stop();
  some_ticks.Stop();
  bars.Stop();
  const auto checks_started = steady_clock::now();

  // Healthy consumers lost nothing.
  const auto all_state = all_ticks.topics();
  const auto some_state = some_ticks.topics();
  for (int t = 0; t < kTopicCount; ++t) {
    const auto& s = all_state[static_cast<std::size_t>(t)];
    EXPECT_EQ(s.last_seq, per_topic[static_cast<std::size_t>(t)]) << TopicName(t);
    for (int p = 0; p < kProducerCount; ++p) {
      EXPECT_EQ(s.last_n[static_cast<std::size_t>(p)],
                per_topic_producer[static_cast<std::size_t>(t)][static_cast<std::size_t>(p)])
          << TopicName(t) << " producer " << p;
    }
  }
  for (int t : kExactTopics) {
    const auto& s = some_state[static_cast<std::size_t>(t)];
    EXPECT_EQ(s.last_seq, per_topic[static_cast<std::size_t>(t)]) << TopicName(t);
    EXPECT_EQ(s.digest, all_state[static_cast<std::size_t>(t)].digest)
        << TopicName(t) << ": the exact-topic consumer got other ticks than the * consumer";
  }
  const auto want_bars = all_ticks.reference_bars();
  const auto got_bars = bars.bars();
  EXPECT_TRUE(SameBars(got_bars, want_bars));
  EXPECT_TRUE(all_ticks.finished_cleanly() && some_ticks.finished_cleanly() &&
              bars.finished_cleanly());

  // Client-side failures of any thread (misbehavers that did not see their ERROR included).
  const auto failures = soak.failures.messages();
  EXPECT_EQ(soak.failures.count(), 0u) << [&] {
    std::string all;
    for (const auto& f : failures) all += "\n  " + f;
    return all;
  }();

  // Every connection closed and logged; the server's descriptors back at the baseline.
  const std::uint64_t connections = soak.connections.load();
  EXPECT_TRUE(WaitUntil([&] { return CountConnClose(server.Logs()) >= connections; },
                        kReplyDeadline, milliseconds(50)))
      << CountConnClose(server.Logs()) << " conn_close lines for " << connections << " connections";
  std::optional<std::uint64_t> fd_end;
  EXPECT_TRUE(WaitUntil([&] { return (fd_end = CountFds(pid)) == fd_baseline; }, kReplyDeadline,
                        milliseconds(50)))
      << "server fds: baseline " << *fd_baseline << ", now " << fd_end.value_or(0);
  monitor.Stop();
  const std::uint64_t peak_rss_kb = monitor.peak_rss_kb();
  EXPECT_LE(peak_rss_kb, RssBoundKb())
      << "server peak RSS " << Mb(peak_rss_kb) << " over the bound " << Mb(RssBoundKb());

  // The server's own account: every close with the reason the test caused.
  const std::string log_text = server.Logs();
  const LogSummary log = ParseLog(log_text);
  EXPECT_EQ(log.bad_lines, 0u) << "log lines that are not JSON objects, first: " << log.first_bad;
  EXPECT_TRUE(log.errors.empty()) << "error-level log lines, first: " << log.errors.front();
  const auto caused = soak.CausedCounts();
  std::uint64_t logged_closes = 0;
  for (const auto& [reason, n] : log.close_reasons) logged_closes += n;
  EXPECT_EQ(logged_closes, connections) << "conn_close lines vs connections the test opened";
  auto logged = [&](const std::string& reason) { return Count(log.close_reasons, reason); };
  for (const auto& [reason, n] : caused) {
    if (reason == "client_closed") {
      // A client that vanishes can be noticed by a failed write first.
      EXPECT_GE(logged("client_closed") + logged("io_error"), n) << reason;
    } else {
      EXPECT_GE(logged(reason), n) << reason;
    }
  }
  // The metrics count every close by the same reasons as the log.
  const auto metrics = ParseMetrics(HttpGet(server.metrics_port(), "/metrics").body);
  for (const auto& [reason, n] : log.close_reasons) {
    EXPECT_EQ(MetricValue(metrics, "connection_drops_total{reason=\"" + reason + "\"}"),
              static_cast<double>(n))
        << reason;
  }

  // Still running, and a clean exit.
  ASSERT_TRUE(server.Running()) << server.Describe();
  const int exit_code = server.Stop();
  EXPECT_EQ(exit_code, 0) << server.Describe();

  // Summary.
  const auto secs = [](steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
  };
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  out << "\n=== fault soak summary ===\n";
  out << "duration        " << secs(load_ended - load_started) << " s of load ("
      << secs(steady_clock::now() - run_started) << " s in all)"
      << (kSanitized ? ", sanitized build" : "") << "\n";
  out << "\nclients                         connections  verified  outcomes\n";
  auto row = [&](const std::string& kind, std::uint64_t n, std::uint64_t ok,
                 const std::string& detail) {
    out << "  " << std::left << std::setw(30) << kind << std::right << std::setw(11) << n
        << std::setw(10) << ok << "  " << detail << "\n";
  };
  row("producers (acked PUBLISH)", kProducerCount, kProducerCount,
      std::to_string(published) + " ticks on " + std::to_string(kTopicCount) + " topics");
  row("TICK * consumer", 1, all_ticks.finished_cleanly() ? 1 : 0,
      std::to_string(all_ticks.records()) + " ticks checked");
  row("TICK exact consumer", 1, some_ticks.finished_cleanly() ? 1 : 0,
      std::to_string(some_ticks.records()) + " ticks checked (" +
          std::to_string(kExactTopics.size()) + " topics)");
  row("SECOND * consumer", 1, bars.finished_cleanly() ? 1 : 0,
      std::to_string(got_bars.size()) + " bars checked against the reference fold");
  std::uint64_t churn_sub = 0, churn_unsub = 0, churn_records = 0;
  for (const auto& c : churners) {
    churn_sub += c->subscribes();
    churn_unsub += c->unsubscribes();
    churn_records += c->records();
  }
  row("subscription churn", churners.size(), churners.size(),
      std::to_string(churn_sub) + " SUBSCRIBE, " + std::to_string(churn_unsub) + " UNSUBSCRIBE, " +
          std::to_string(churn_records) + " records");
  for (const auto& m : misbehavers) {
    std::string detail;
    for (const auto& [outcome, n] : m->outcomes()) {
      detail += (detail.empty() ? "" : ", ") + outcome + " " + std::to_string(n);
    }
    row(m->name(), m->runs(), m->ok(), detail);
  }
  out << "  " << std::left << std::setw(30) << "total" << std::right << std::setw(11) << connections
      << "\n";
  out << "\nserver conn_close by reason     logged    caused by the test\n";
  std::set<std::string> reasons;
  for (const auto& [r, n] : log.close_reasons) reasons.insert(r);
  for (const auto& [r, n] : caused) reasons.insert(r);
  for (const auto& r : reasons) {
    auto c = caused.find(r);
    out << "  " << std::left << std::setw(30) << r << std::right << std::setw(8) << logged(r)
        << std::setw(10) << (c == caused.end() ? 0 : c->second) << "\n";
  }
  out << "  (client_closed caused = vanishing clients + healthy clients closing at the end;\n"
         "   the server may log a vanished client as io_error)\n";
  const std::uint64_t slow_drops = log.over_pending.size() + log.missed_deadline.size();
  const std::uint64_t error_written = slow_drops - std::min(slow_drops, log.slow_error_not_written);
  std::uint64_t error_seen = 0;
  for (const auto& m : misbehavers) {
    if (m->expect() != "slow_consumer") continue;
    for (const auto& [outcome, n] : m->outcomes()) {
      if (outcome.ends_with("ERROR")) error_seen += n;
    }
  }
  out << "\nslow consumers  " << log.over_pending.size() << " over MAX_PENDING_BYTES, "
      << log.missed_deadline.size() << " write deadline missed; ERROR{SLOW_CONSUMER} written "
      << error_written << " times, cut off by a stuck write " << log.slow_error_not_written
      << " times, seen by the client " << error_seen << " times\n";
  out << "\nserver log      " << log.lines << " lines, " << Count(log.events, "slow_consumer")
      << " slow_consumer warnings, " << Count(log.events, "protocol_error") << " protocol_error\n";
  out << "peak RSS        " << Mb(peak_rss_kb) << " (bound " << Mb(RssBoundKb()) << ")\n";
  out << "server fds      baseline " << *fd_baseline << ", peak " << monitor.peak_fds() << ", end "
      << fd_end.value_or(0) << "\n";
  out << "exit code       " << exit_code << "\n";
  out << "checks          " << secs(steady_clock::now() - checks_started) << " s\n";
  std::cout << out.str() << std::flush;
}

}  // namespace
}  // namespace tickwire::testing
