#include "observability/metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "observability/http_server.h"
#include "observability/log.h"

namespace tickwire::obs {
namespace {

constexpr std::array<std::uint64_t, 3> kBounds = {1000, 2000, 5000};

TEST(Histogram, BucketsAreUpperBoundsInclusive) {
  Histogram<3> h(kBounds);
  for (std::uint64_t v :
       std::initializer_list<std::uint64_t>{0, 1000, 1001, 2000, 4999, 5000, 5001, 1000000}) {
    h.Observe(v);
  }
  EXPECT_EQ(h.bucket(0), 2u);  // 0, 1000
  EXPECT_EQ(h.bucket(1), 2u);  // 1001, 2000
  EXPECT_EQ(h.bucket(2), 2u);  // 4999, 5000
  EXPECT_EQ(h.bucket(3), 2u);  // +Inf
  EXPECT_EQ(h.sum(), 0u + 1000 + 1001 + 2000 + 4999 + 5000 + 5001 + 1'000'000);
}

TEST(Histogram, AccumulateMergesWritersCumulativelyAndScales) {
  Histogram<3> a(kBounds);
  Histogram<3> b(kBounds);
  a.Observe(500);
  a.Observe(3000);
  b.Observe(1500);
  b.Observe(9000);
  HistogramSnapshot s;
  Accumulate(a, 1000.0, s);
  Accumulate(b, 1000.0, s);
  EXPECT_EQ(s.upper_bounds, (std::vector<double>{1, 2, 5}));
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_DOUBLE_EQ(s.sum, 14.0);
}

TEST(Counter, OneWriterManyReadersSeeMonotoneValues) {
  Counter c;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!stop.load()) {
      const auto v = c.Get();
      EXPECT_GE(v, last);
      last = v;
    }
  });
  for (int i = 0; i < 100'000; ++i) ++c;
  stop = true;
  reader.join();
  EXPECT_EQ(c.Get(), 100'000u);
}

TEST(Exposition, RendersCountersGaugesAndHistogramsInTextFormat) {
  Exposition e;
  e.CounterFamily("things_total", "Things \"counted\".");
  e.Sample(3, {{"reason", "a\"b"}});
  e.GaugeFamily("level", "A level.");
  e.Sample(-2);
  HistogramSnapshot h;
  h.upper_bounds = {1, 5};
  h.cumulative = {1, 2, 3};
  h.sum = 7.5;
  e.HistogramFamily("wait_ms", "Waits.");
  e.Sample(h);
  const std::string text = e.Render();
  EXPECT_NE(text.find("# TYPE things_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("things_total{reason=\"a\\\"b\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("level -2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("wait_ms_bucket{le=\"5\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("wait_ms_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("wait_ms_count 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("wait_ms_sum 7.5\n"), std::string::npos) << text;
}

TEST(Exposition, PrefixGoesBeforeEveryFamilyAndSampleName) {
  Exposition e("tickwire_");
  e.CounterFamily("things_total", "Things.");
  e.Sample(3, {{"reason", "a"}});
  HistogramSnapshot h;
  h.upper_bounds = {1};
  h.cumulative = {1, 2};
  h.sum = 2;
  e.HistogramFamily("wait_ms", "Waits.");
  e.Sample(h);
  const std::string text = e.Render();
  EXPECT_NE(text.find("# HELP tickwire_things_total Things.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE tickwire_things_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tickwire_things_total{reason=\"a\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tickwire_wait_ms_bucket{le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tickwire_wait_ms_sum 2\n"), std::string::npos) << text;
  // Every line names a prefixed family: no sample or comment escaped the prefix.
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::string name = line.starts_with("# ") ? line.substr(7) : line;
    EXPECT_TRUE(name.starts_with("tickwire_")) << line;
  }
  // No prefix: the names as given.
  Exposition plain;
  plain.GaugeFamily("level", "A level.");
  plain.Sample(1);
  EXPECT_EQ(plain.Render(), "# HELP level A level.\n# TYPE level gauge\nlevel 1\n");
}

TEST(LogLimiter, AdmitsTheBudgetPerSecondAndReportsEverySuppressedLine) {
  LogLimiter l(3);
  std::uint64_t report = 99;
  int admitted = 0;
  std::uint64_t reported = 0;
  for (int i = 0; i < 10; ++i) {
    if (l.Admit(5'000 + i, report)) {
      ++admitted;
      reported += report;
    }
  }
  EXPECT_EQ(admitted, 3);
  EXPECT_EQ(reported, 0u);
  // Next second: a fresh budget, and the first line carries the 7 suppressed before it.
  ASSERT_TRUE(l.Admit(6'000, report));
  EXPECT_EQ(report, 7u);
  for (int i = 0; i < 5; ++i) l.Admit(6'001 + i, report);
  EXPECT_EQ(l.TakeSuppressed(), 3u);
  EXPECT_EQ(l.TakeSuppressed(), 0u);
}

TEST(LogLimiter, ZeroMeansUnlimited) {
  LogLimiter l(0);
  std::uint64_t report = 0;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(l.Admit(1, report));
  EXPECT_EQ(l.TakeSuppressed(), 0u);
}

TEST(HttpServer, ParseTargetDecodesQueryParameters) {
  const auto r = HttpServer::ParseTarget("/connz?sort=bytes_in&limit=5&x=a%20b+c&bad=%zz&flag");
  EXPECT_EQ(r.path, "/connz");
  EXPECT_EQ(r.query.at("sort"), "bytes_in");
  EXPECT_EQ(r.query.at("limit"), "5");
  EXPECT_EQ(r.query.at("x"), "a b c");
  EXPECT_EQ(r.query.at("bad"), "%zz");
  EXPECT_EQ(r.query.at("flag"), "");
  EXPECT_EQ(HttpServer::ParseTarget("/metrics").path, "/metrics");
  EXPECT_TRUE(HttpServer::ParseTarget("/metrics").query.empty());
}

}  // namespace
}  // namespace tickwire::obs
