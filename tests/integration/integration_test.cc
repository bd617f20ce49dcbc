#include "integration/integration_test.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <iterator>

#include "support/http_client.h"
#include "support/wait.h"

namespace tickwire::testing {

EnvOverrides DefaultIntegrationEnv() {
  return {
      {"HEARTBEAT_INTERVAL", "10s"}, {"HEARTBEAT_TIMEOUT", "30s"}, {"AUTH_TIMEOUT_MS", "5000"},
      {"BATCH_WINDOW_MS", "5"},      {"LOG_LEVEL", "debug"},
  };
}

::testing::AssertionResult ReadTicks(RawClient& client, std::size_t count, milliseconds timeout,
                                     Delivery& delivery) {
  const auto deadline = steady_clock::now() + timeout;
  while (delivery.ticks.size() < count) {
    const ReadResult r = client.ReadFrame(Remaining(deadline));
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "got " << delivery.ticks.size() << " of " << count << " ticks, then "
             << ReadStatusName(r.status) << " " << r.detail;
    }
    const auto arrived = steady_clock::now();
    if (r.frame.frame_type() != protocol::FrameType::kDataBatch) {
      return ::testing::AssertionFailure()
             << "expected DATA_BATCH but got " << DescribeFrame(r.frame) << " after "
             << delivery.ticks.size() << " ticks";
    }
    auto batch = DecodeBatch(r.frame);
    if (!batch) return ::testing::AssertionFailure() << "DATA_BATCH does not parse";
    if (batch->batch_seq != delivery.next_batch_seq) {
      return ::testing::AssertionFailure()
             << "batch_seq " << batch->batch_seq << ", expected " << delivery.next_batch_seq;
    }
    ++delivery.next_batch_seq;
    if (!batch->bars.empty()) {
      return ::testing::AssertionFailure() << "unexpected Bar records in a TICK subscription";
    }
    delivery.frame_payload_sizes.push_back(r.frame.payload.size());
    delivery.frame_tick_counts.push_back(batch->ticks.size());
    delivery.frame_arrivals.push_back(arrived);
    for (auto& t : batch->ticks) delivery.ticks.push_back(std::move(t));
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult CheckSequence(const std::vector<v1::Tick>& ticks,
                                         std::uint64_t first_seq) {
  std::uint64_t want = first_seq;
  for (std::size_t i = 0; i < ticks.size(); ++i, ++want) {
    if (ticks[i].seq() != want || ticks[i].prev_seq() != want - 1) {
      return ::testing::AssertionFailure()
             << "tick " << i << " of topic " << ticks[i].topic() << ": seq=" << ticks[i].seq()
             << " prev_seq=" << ticks[i].prev_seq() << ", expected seq=" << want
             << " prev_seq=" << want - 1;
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<v1::Tick> TicksOf(const std::vector<v1::Tick>& ticks, const std::string& topic) {
  std::vector<v1::Tick> out;
  std::copy_if(ticks.begin(), ticks.end(), std::back_inserter(out),
               [&](const v1::Tick& t) { return t.topic() == topic; });
  return out;
}

::testing::AssertionResult IntegrationTest::Start(const EnvOverrides& env) {
  EnvOverrides merged = DefaultIntegrationEnv();
  for (const auto& [k, v] : env) merged[k] = v;
  server_ = std::make_unique<ServerProcess>(merged);
  if (!server_->Start()) return ::testing::AssertionFailure() << server_->error();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IntegrationTest::Connect(RawClient& client) {
  if (!server_) return ::testing::AssertionFailure() << "server not started";
  if (!client.Connect(server_->port())) {
    return ::testing::AssertionFailure() << client.last_error() << "\n" << server_->Describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IntegrationTest::ConnectAuthed(RawClient& client, v1::AuthOk* auth_ok) {
  if (auto r = Connect(client); !r) return r;
  return client.Authenticate(ServerProcess::kUser, ServerProcess::kPass, auth_ok);
}

std::string IntegrationTest::Topic(const std::string& suffix) const {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name() + "." + suffix;
  // Parameterized names contain '/', which is not a topic character.
  std::replace(name.begin(), name.end(), '/', '.');
  // Topic names are at most 128 bytes; the tail keeps the distinguishing parts.
  if (name.size() > 128) name.erase(0, name.size() - 128);
  return name;
}

IntegrationTest::Metrics IntegrationTest::Scrape() {
  const HttpResult r = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(r.status, 200u) << r.error;
  return ParseMetrics(r.body);
}

::testing::AssertionResult IntegrationTest::Reaches(const std::string& series, double want,
                                                    milliseconds timeout) {
  double last = NAN;
  const bool ok = WaitUntil(
      [&] {
        last = MetricValue(Scrape(), series);
        return last == want;
      },
      timeout, milliseconds(20));
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << series << " is " << last << ", expected " << want;
}

double IntegrationTest::Get(const Metrics& m, const std::string& series) {
  const double v = MetricValue(m, series);
  EXPECT_FALSE(std::isnan(v)) << "no series " << series;
  return v;
}

void IntegrationTest::TearDown() {
  if (!server_) return;
  // A test that failed shows what the server said; a server that crashed fails the test.
  if (HasFailure()) {
    std::cerr << server_->Describe() << std::endl;
  }
  if (auto code = server_->ExitCode(); code && *code != 0) {
    ADD_FAILURE() << "tickwire-server died during the test: " << server_->Describe();
  }
  // Stop() also checks that every line the server logged, whatever the test sent it, is a JSON
  // object (so does every other ServerProcess a test starts, when it stops).
  const int code = server_->Stop();
  EXPECT_EQ(code, 0) << "tickwire-server did not exit 0 on SIGTERM\n" << server_->Describe();
}

}  // namespace tickwire::testing
