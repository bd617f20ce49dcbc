// The deployment files against the real server and a real Prometheus: every metric the
// dashboard and the alert rules name is one the server exports, every dashboard query parses
// in Prometheus, and Prometheus loaded with the project's alert rules sees the heartbeat
// timeout alert go pending and then firing when a test causes heartbeat timeouts.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "deploy/deploy_support.h"
#include "support/child_process.h"
#include "support/http_client.h"
#include "support/json.h"
#include "support/loopback.h"
#include "support/raw_client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string& kDeploy = DeployDir();

// Names of the metric families and series in a scrape (histogram _bucket/_sum/_count included).
std::set<std::string> ScrapedNames(const std::string& text) {
  std::set<std::string> names;
  for (const auto& [series, value] : ParseMetrics(text)) {
    names.insert(series.substr(0, series.find('{')));
  }
  return names;
}

// Metric names a PromQL expression selects: identifiers directly followed by '{' or '['.
std::set<std::string> SelectedNames(const std::string& expr) {
  std::set<std::string> names;
  static const std::regex kSelector(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[\{\[])");
  for (std::sregex_iterator it(expr.begin(), expr.end(), kSelector), end; it != end; ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

std::vector<std::string> DashboardExprs() {
  std::vector<std::string> exprs;
  std::string why;
  auto dash = ParseJson(ReadAll(kDeploy + "/grafana/dashboards/tickwire.json"), &why);
  EXPECT_TRUE(dash) << "dashboard JSON: " << why;
  if (!dash) return exprs;
  for (const auto& panel : dash->as_object().at("panels").as_array()) {
    const auto& p = panel.as_object();
    EXPECT_FALSE(StringField(p, "title").empty());
    const auto* targets = p.if_contains("targets");
    EXPECT_TRUE(targets != nullptr && !targets->as_array().empty())
        << "panel without queries: " << StringField(p, "title");
    if (targets == nullptr) continue;
    for (const auto& t : targets->as_array()) exprs.push_back(StringField(t.as_object(), "expr"));
  }
  return exprs;
}

// The text of every `expr:` in alerts.yml (single-line or folded over the lines after it).
std::string AlertExprs() {
  std::istringstream in(ReadAll(kDeploy + "/prometheus/alerts.yml"));
  static const std::regex kNextKey(R"(^\s*(for|labels|annotations|- alert):)");
  std::string exprs;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (const auto pos = line.find("expr:"); pos != std::string::npos) {
      inside = true;
      exprs += line.substr(pos + 5) + "\n";
    } else if (inside && !std::regex_search(line, kNextKey)) {
      exprs += line + "\n";
    } else {
      inside = false;
    }
  }
  EXPECT_NE(exprs.find("heartbeat_timeouts_total"), std::string::npos) << exprs;
  return exprs;
}

// Grafana's variables replaced so Prometheus can run the query.
std::string Concrete(std::string expr) {
  for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"$__rate_interval", "1m"}, {"$job", ".*"}, {"$instance", ".*"}}) {
    for (auto pos = expr.find(var); pos != std::string::npos; pos = expr.find(var)) {
      expr.replace(pos, var.size(), value);
    }
  }
  return expr;
}

std::string UrlEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

TEST(DashboardTest, EveryQueriedMetricIsExportedAndTheRunbookPanelsExist) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  const HttpResult scrape = HttpGet(server.metrics_port(), "/metrics");
  ASSERT_EQ(scrape.status, 200u) << scrape.error;
  auto exported = ScrapedNames(scrape.body);
  // The multi-instance families exist only with NATS_URL set; here one nobody listens on: they
  // are exported while the server retries.
  ServerProcess clustered(EnvOverrides{{"NATS_URL", "nats://127.0.0.1:1"}});
  ASSERT_TRUE(clustered.Start()) << clustered.error();
  const HttpResult clustered_scrape = HttpGet(clustered.metrics_port(), "/metrics");
  ASSERT_EQ(clustered_scrape.status, 200u) << clustered_scrape.error;
  for (const auto& n : ScrapedNames(clustered_scrape.body)) exported.insert(n);

  const auto exprs = DashboardExprs();
  ASSERT_FALSE(exprs.empty());
  std::set<std::string> used;
  for (const auto& e : exprs) {
    for (const auto& n : SelectedNames(e)) used.insert(n);
  }
  for (const auto& n : used) EXPECT_TRUE(exported.count(n)) << "dashboard queries " << n;
  // The runbook's dashboard: active_connections, publish_latency_ms, bytes_sent_total, plus
  // heartbeat timeouts, drops by reason and records in/out.
  for (const char* n : {"active_connections", "publish_latency_ms_bucket", "bytes_sent_total",
                        "heartbeat_timeouts_total", "connection_drops_total",
                        "records_published_total", "records_delivered_total"}) {
    EXPECT_TRUE(used.count(n)) << "no dashboard panel shows " << n;
  }

  // The alert rules name exported metrics too (up is Prometheus' own).
  for (const auto& n : SelectedNames(AlertExprs())) {
    if (n == "up") continue;
    EXPECT_TRUE(exported.count(n)) << "alerts.yml uses " << n;
  }
  EXPECT_EQ(server.Stop(), 0);
}

// A real Prometheus scraping a real server every second, with the project's alert rules (their
// `for:` holds shortened to 2 s so the test takes seconds, the expressions unchanged).
class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InPath("prometheus")) << "prometheus missing: run scripts/setup.sh";
    server_ = std::make_unique<ServerProcess>(EnvOverrides{
        {"HEARTBEAT_INTERVAL", "200ms"}, {"HEARTBEAT_TIMEOUT", "600ms"}, {"LOG_LEVEL", "warn"}});
    ASSERT_TRUE(server_->Start()) << server_->error();

    const std::string rules = std::regex_replace(ReadAll(kDeploy + "/prometheus/alerts.yml"),
                                                 std::regex(R"(for: \d+[smh])"), "for: 2s");
    std::ofstream(dir_.File("alerts.yml")) << rules;
    std::ofstream(dir_.File("prometheus.yml"))
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "rule_files:\n  - " << dir_.File("alerts.yml") << "\n"
        << "scrape_configs:\n  - job_name: tickwire\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << server_->metrics_port() << "']\n";
    // The port is free when picked; should another process take it first, try again.
    for (int attempt = 0; attempt < 3 && port_ == 0; ++attempt) {
      const std::uint16_t port = FreePort();
      auto p = std::make_unique<ChildProcess>(std::vector<std::string>{
          "prometheus", "--config.file=" + dir_.File("prometheus.yml"),
          "--storage.tsdb.path=" + dir_.File("data-" + std::to_string(attempt)),
          "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"});
      ASSERT_TRUE(p->Start()) << p->error();
      if (WaitUntil([&] { return HttpGet(port, "/-/ready", seconds(1)).status == 200; },
                    seconds(20), milliseconds(100))) {
        port_ = port;
        prometheus_ = std::move(p);
      }
    }
    ASSERT_NE(port_, 0) << "prometheus did not become ready";
  }

  void TearDown() override {
    if (HasFailure() && prometheus_) std::cerr << "prometheus output:\n" << prometheus_->Output();
    if (prometheus_) prometheus_->Stop();
    if (server_) {
      EXPECT_EQ(server_->Stop(), 0) << server_->Describe();
    }
  }

  std::optional<boost::json::value> Api(const std::string& target) {
    const HttpResult r = HttpGet(port_, target);
    if (r.status != 200) return std::nullopt;
    return ParseJson(r.body);
  }

  // The value of the query's first result, or NaN when there is none.
  double Query(const std::string& query) {
    auto v = Api("/api/v1/query?query=" + UrlEncode(query));
    if (!v) return NAN;
    const auto& result = v->as_object().at("data").as_object().at("result").as_array();
    if (result.empty()) return NAN;
    return std::stod(
        std::string(result.at(0).as_object().at("value").as_array().at(1).as_string()));
  }

  // The state of the named alert ("pending", "firing"), or empty when it is not active.
  std::string AlertState(const std::string& name) {
    auto v = Api("/api/v1/alerts");
    if (!v) return "?";
    for (const auto& a : v->as_object().at("data").as_object().at("alerts").as_array()) {
      const auto& o = a.as_object();
      if (StringField(o.at("labels").as_object(), "alertname") == name) {
        return StringField(o, "state");
      }
    }
    return {};
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ChildProcess> prometheus_;
  std::uint16_t port_ = 0;
};

TEST_F(PrometheusTest, HeartbeatTimeoutsFireTheRunbookAlertAndDashboardQueriesParse) {
  // Scraped, and the rules evaluated over a quiet server: no alert.
  ASSERT_TRUE(WaitUntil([&] { return Query("up{job=\"tickwire\"}") == 1; }, seconds(20),
                        milliseconds(200)));
  ASSERT_TRUE(WaitUntil([&] { return Query("count_over_time(heartbeat_timeouts_total[1m])") >= 3; },
                        seconds(20), milliseconds(200)));
  EXPECT_EQ(AlertState("TickwireHeartbeatTimeoutSpike"), "");

  // Every dashboard query is valid PromQL to this Prometheus.
  for (const auto& expr : DashboardExprs()) {
    const HttpResult r = HttpGet(port_, "/api/v1/query?query=" + UrlEncode(Concrete(expr)));
    EXPECT_EQ(r.status, 200u) << expr << "\n" << r.body;
  }

  // More heartbeat timeouts than the rule's threshold (10), all at once.
  constexpr int kSilent = 12;
  std::vector<RawClient> clients(kSilent);
  for (auto& c : clients) {
    ASSERT_TRUE(c.Connect(server_->port()));
    ASSERT_TRUE(c.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  }
  for (auto& c : clients) {
    ASSERT_TRUE(c.ExpectFatal(tickwire::v1::HEARTBEAT_TIMEOUT, nullptr, milliseconds(3000)));
  }
  ASSERT_TRUE(WaitUntil([&] { return Query("heartbeat_timeouts_total") == kSilent; }, seconds(10),
                        milliseconds(200)));

  std::set<std::string> seen;
  const bool fired = WaitUntil(
      [&] {
        const std::string state = AlertState("TickwireHeartbeatTimeoutSpike");
        if (!state.empty()) seen.insert(state);
        return state == "firing";
      },
      seconds(30), milliseconds(100));
  EXPECT_TRUE(fired) << "alert states seen: " << seen.size();
  EXPECT_TRUE(seen.count("pending")) << "the alert should hold in pending for its `for:` first";
}

}  // namespace
}  // namespace tickwire::testing
