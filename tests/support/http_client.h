#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace tickwire::testing {

// What an HTTP request returned. status is 0 when no response arrived (error says why).
struct HttpResult {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;
};

// One blocking HTTP/1.1 request to 127.0.0.1:`port` (Connection: close), bounded by `timeout`
// for connect, send and receive together. Built on Boost.Beast.
HttpResult HttpRequestTo(std::uint16_t port, const std::string& method, const std::string& target,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));
inline HttpResult HttpGet(std::uint16_t port, const std::string& target,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  return HttpRequestTo(port, "GET", target, timeout);
}

// Prometheus text exposition parsed into "name{labels}" -> value, with labels as written
// (e.g. `connection_drops_total{reason="auth_failed"}`); comment lines skipped.
std::map<std::string, double> ParseMetrics(const std::string& text);

// The value of `series` in a scrape, or NaN when it is missing.
double MetricValue(const std::map<std::string, double>& metrics, const std::string& series);

}  // namespace tickwire::testing
