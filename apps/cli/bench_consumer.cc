#include "bench_consumer.h"

#include <thread>

#include <fmt/core.h>

namespace tickwire::cli {

bool BenchSession::Open(const BenchRunFlags& run, const ConnectionFlags& conn,
                        const std::string& client_name) {
  const auto times = run.ParseTimes();
  if (!times) {
    exit_code_ = 2;
    return false;
  }
  times_ = *times;
  auto base = StartBench(run, conn, client_name, server_, exit_code_);
  if (!base) return false;
  base_ = *base;
  server_pid_ = ServerPid(run, server_.get());
  pool_ = std::make_unique<IoPool>(run.io_threads);
  return true;
}

void BenchSession::Close() {
  consumers.clear();
  if (pool_) pool_->Stop();
  StopBenchServer(server_);
}

int BenchSession::Fail(const std::string& message) {
  PrintError(message);
  Close();
  return kExitFailure;
}

PublishOutcome RunPublisherWith(Measurement& m, double rate, std::size_t batch,
                                std::uint64_t max_inflight, std::size_t consumers,
                                const std::function<std::optional<std::uint64_t>()>& slowest,
                                const std::function<std::uint64_t()>& received,
                                const PublishFn& publish) {
  PublishOutcome o;
  std::atomic<std::uint64_t> published_total{0};
  std::atomic<std::uint64_t> published_window{0};
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    Pacer pacer(rate, batch, max_inflight, slowest, m.end());
    std::uint64_t sent = 0;
    while (!stop.load(std::memory_order_relaxed) && BenchClock::now() < m.end()) {
      const std::size_t n = pacer.Next(sent);
      if (n == 0) continue;
      const std::int64_t ts = RealtimeNs();
      if (auto err = publish(sent, n, ts); !err.empty()) {
        o.error = err;
        break;
      }
      sent += n;
      published_total.fetch_add(n, std::memory_order_relaxed);
      if (m.window().Contains(ts)) published_window.fetch_add(n, std::memory_order_relaxed);
    }
  });
  std::uint64_t last_pub = 0, last_recv = 0;
  o.finished = m.Run([&] {
    const auto pub = published_total.load(std::memory_order_relaxed);
    const auto recv = received();
    std::string line =
        fmt::format("published {}/s, delivered {}/s", pub - last_pub, recv - last_recv);
    last_pub = pub;
    last_recv = recv;
    return line;
  });
  stop = true;
  publisher.join();
  // Drain: everything published should reach every consumer; wait at most 3 s for it.
  const std::uint64_t expected = published_total.load() * consumers;
  const auto drain_deadline = BenchClock::now() + std::chrono::seconds(3);
  while (received() < expected && BenchClock::now() < drain_deadline && !StopRequested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::uint64_t got = received();
  o.lost = expected > got ? expected - got : 0;
  o.published = published_window.load();
  o.published_total = published_total.load();
  return o;
}

std::string ConnectTickConsumers(const client::ClientOptions& base, boost::asio::io_context& io,
                                 int n, const std::vector<std::string>& topics,
                                 const Window& window,
                                 std::vector<std::unique_ptr<TickConsumer>>& out) {
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<TickConsumer>(window);
    auto o = base;
    o.client_name = fmt::format("{}-sub-{}", base.client_name, i);
    o.io_context = &io;
    TickConsumer* raw = c.get();
    o.on_raw_batch = [raw](std::uint64_t, std::span<const std::uint8_t> p) { raw->OnBatch(p); };
    o.on_error = [raw](const client::Error& e) { raw->counters.OnError(e.ToString(), e.fatal); };
    auto r = client::Client::Connect(o);
    if (!r.ok()) return fmt::format("consumer {} connect: {}", i, r.error().ToString());
    c->client = std::move(r).value();
    auto sub = c->client->Subscribe(client::Mode::kTick, topics);
    if (!sub.ok()) return fmt::format("consumer {} subscribe: {}", i, sub.error().ToString());
    out.push_back(std::move(c));
  }
  return {};
}

}  // namespace tickwire::cli
