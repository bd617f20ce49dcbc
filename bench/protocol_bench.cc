// Micro-benchmarks of the per-record protocol paths: encoding a tick record entry, assembling a
// DATA_BATCH, decoding frames from a byte stream, and reading a DATA_BATCH both ways (the raw
// scanner the bench consumers use, and the client's protobuf decode).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "client/codec.h"
#include "protocol/batch_builder.h"
#include "protocol/decoder.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

namespace {

using tickwire::protocol::TickFields;

TickFields SampleTick(std::uint64_t seq) {
  return TickFields{"bench.AAPL",
                    187.25 + static_cast<double>(seq % 100) * 0.01,
                    3,
                    1'700'000'000'000'000'000 + static_cast<std::int64_t>(seq),
                    seq,
                    seq - 1};
}

// One DATA_BATCH frame (header + payload) holding `n` tick records.
std::string BatchFrame(std::size_t n) {
  tickwire::protocol::BatchBuilder builder(tickwire::protocol::kMaxMaxMsgSize);
  std::string entry;
  for (std::size_t i = 1; i <= n; ++i) {
    entry.clear();
    tickwire::protocol::AppendTickRecordEntry(entry, SampleTick(i));
    builder.Append(entry, 1);
  }
  return builder.Finish();
}

std::span<const std::uint8_t> Bytes(const std::string& s, std::size_t offset = 0) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()) + offset, s.size() - offset};
}

void BM_AppendTickRecordEntry(benchmark::State& state) {
  std::string out;
  std::uint64_t seq = 1;
  for (auto _ : state) {
    out.clear();
    tickwire::protocol::AppendTickRecordEntry(out, SampleTick(seq++));
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendTickRecordEntry);

// A SECOND bar with every field set: what a second's close encodes once per topic.
void BM_AppendBarRecordEntry(benchmark::State& state) {
  std::string out;
  std::int64_t start_ms = 1'700'000'000'000;
  for (auto _ : state) {
    out.clear();
    const double o = 187.25 + static_cast<double>(start_ms % 100) * 0.01;
    tickwire::protocol::AppendBarRecordEntry(
        out, tickwire::protocol::BarFields{"bench.AAPL", 1, start_ms, o, o + 0.5, o - 0.25, o + 0.1,
                                           42, 10, o + 0.05});
    start_ms += 1000;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendBarRecordEntry);

void BM_BatchBuilder(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> entries(n);
  for (std::size_t i = 0; i < n; ++i) {
    tickwire::protocol::AppendTickRecordEntry(entries[i], SampleTick(i + 1));
  }
  tickwire::protocol::BatchBuilder builder(tickwire::protocol::kDefaultMaxMsgSize);
  std::uint64_t batch_seq = 1;
  for (auto _ : state) {
    for (const auto& e : entries) {
      if (!builder.Fits(e.size())) benchmark::DoNotOptimize(builder.Finish());
      builder.Append(e, batch_seq++);
    }
    benchmark::DoNotOptimize(builder.Finish());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_BatchBuilder)->Arg(1)->Arg(64)->Arg(1024);

// Feeds a stream of 64 DATA_BATCH frames in `chunk`-byte reads (as a socket would deliver it).
// Complete frames are handed out as views without copying, so the cost is per frame (header
// checks) plus the copy of frames split across reads: items/s counts frames, not bytes.
void BM_FrameDecoderFeed(benchmark::State& state) {
  const auto chunk = static_cast<std::size_t>(state.range(0));
  std::string stream;
  for (int i = 0; i < 64; ++i) stream += BatchFrame(32);
  tickwire::protocol::FrameDecoder decoder(tickwire::protocol::kDefaultMaxMsgSize);
  const auto bytes = Bytes(stream);
  std::size_t frames = 0;
  for (auto _ : state) {
    for (std::size_t pos = 0; pos < bytes.size(); pos += chunk) {
      const auto part = bytes.subspan(pos, std::min(chunk, bytes.size() - pos));
      auto ec = decoder.Feed(part, [&](std::uint8_t, std::span<const std::uint8_t> payload) {
        benchmark::DoNotOptimize(payload.data());
        ++frames;
        return true;
      });
      if (ec) state.SkipWithError("decode error");
    }
  }
  state.SetItemsProcessed(state.iterations() * 64);
  benchmark::DoNotOptimize(frames);
}
BENCHMARK(BM_FrameDecoderFeed)->Arg(512)->Arg(16384)->Arg(65536);

void BM_ScanDataBatch(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string frame = BatchFrame(n);
  const auto payload = Bytes(frame, tickwire::protocol::kHeaderSize);
  for (auto _ : state) {
    std::uint64_t sum = 0;
    auto seq = tickwire::protocol::ScanDataBatch(
        payload, [&](tickwire::protocol::RecordKind, std::span<const std::uint8_t> inner) {
          if (auto t = tickwire::protocol::ParseTickFields(inner)) sum += t->seq;
        });
    benchmark::DoNotOptimize(seq);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ScanDataBatch)->Arg(1)->Arg(64)->Arg(1024);

// The client's decoded path (protobuf parse + plain structs), for comparison with the scanner.
void BM_ClientDecodeBatch(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string frame = BatchFrame(n);
  const auto payload = Bytes(frame, tickwire::protocol::kHeaderSize);
  for (auto _ : state) {
    tickwire::client::Batch batch;
    if (!tickwire::client::codec::DecodeBatch(payload, batch)) state.SkipWithError("decode");
    benchmark::DoNotOptimize(batch.records.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ClientDecodeBatch)->Arg(64)->Arg(1024);

}  // namespace
