#include "bench_consumer.h"

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
  return 1;
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
