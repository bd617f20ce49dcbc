#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/raw_client.h"
#include "support/server_process.h"
#include "support/wait.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::testing {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
namespace v1 = tickwire::v1;

// Settings every integration server starts with unless a test overrides them: heartbeats slow
// enough never to interfere with tests that do not exercise them.
EnvOverrides DefaultIntegrationEnv();

// Ticks read from DATA_BATCH frames on one connection, with per-frame facts for batching checks.
// Stateful across calls so batch_seq continuity is checked over the connection's whole life.
struct Delivery {
  std::vector<v1::Tick> ticks;
  std::vector<std::size_t> frame_payload_sizes;
  std::vector<std::size_t> frame_tick_counts;
  std::vector<steady_clock::time_point> frame_arrivals;
  std::uint64_t next_batch_seq = 1;  // batch_seq the next DATA_BATCH must carry
};

// Reads DATA_BATCH frames until `delivery` holds at least `count` ticks or `timeout` passes.
// Fails on any other frame, a batch_seq gap, or an unparsable batch.
::testing::AssertionResult ReadTicks(RawClient& client, std::size_t count, milliseconds timeout,
                                     Delivery& delivery);

// Checks that `ticks` of one topic carry seq first_seq, first_seq+1, ... with prev_seq = seq - 1.
::testing::AssertionResult CheckSequence(const std::vector<v1::Tick>& ticks,
                                         std::uint64_t first_seq = 1);

// Ticks of `topic` in arrival order.
std::vector<v1::Tick> TicksOf(const std::vector<v1::Tick>& ticks, const std::string& topic);

// Base fixture: starts a real server per test and connects clients to it.
class IntegrationTest : public ::testing::Test {
 protected:
  // Starts the server with DefaultIntegrationEnv() plus `env`. Use with ASSERT_TRUE.
  ::testing::AssertionResult Start(const EnvOverrides& env = {});
  // Connects `client` to the server; with Auth also authenticates it.
  ::testing::AssertionResult Connect(RawClient& client);
  ::testing::AssertionResult ConnectAuthed(RawClient& client, v1::AuthOk* auth_ok = nullptr);

  // A topic name unique to the running test ("Suite.Name.suffix" with '/' replaced).
  std::string Topic(const std::string& suffix = "t") const;

  // One scrape of the server's /metrics: "name{labels}" -> value.
  using Metrics = std::map<std::string, double>;
  Metrics Scrape();
  // Counters that move when a connection closes are updated by its cleanup, a moment after
  // the client sees the close: waits until `series` equals `want`.
  ::testing::AssertionResult Reaches(const std::string& series, double want,
                                     milliseconds timeout = milliseconds(3000));
  // The value of `series` in `m`; fails the test when the series is missing.
  static double Get(const Metrics& m, const std::string& series);

  void TearDown() override;

  std::unique_ptr<ServerProcess> server_;
};

}  // namespace tickwire::testing
