#include "support/http_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

namespace tickwire::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void SetSocketTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

HttpResult HttpRequestTo(std::uint16_t port, const std::string& method, const std::string& target,
                         std::chrono::milliseconds timeout) {
  HttpResult result;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.open(asio::ip::tcp::v4(), ec);
  if (ec) {
    result.error = "open: " + ec.message();
    return result;
  }
  SetSocketTimeout(socket.native_handle(), timeout);
  socket.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) {
    result.error = "connect: " + ec.message();
    return result;
  }
  http::request<http::empty_body> req(http::string_to_verb(method), target, 11);
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::connection, "close");
  http::write(socket, req, ec);
  if (ec) {
    result.error = "write: " + ec.message();
    return result;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);
  http::read(socket, buffer, parser, ec);
  if (ec) {
    result.error = "read: " + ec.message();
    return result;
  }
  const auto& res = parser.get();
  result.status = res.result_int();
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    result.headers[name] = std::string(field.value());
  }
  result.body = res.body();
  return result;
}

std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const std::string value = line.substr(space + 1);
    double v = 0;
    if (value == "+Inf") {
      v = std::numeric_limits<double>::infinity();
    } else if (value == "NaN") {
      v = std::numeric_limits<double>::quiet_NaN();
    } else {
      v = std::stod(value);
    }
    out[line.substr(0, space)] = v;
  }
  return out;
}

double MetricValue(const std::map<std::string, double>& metrics, const std::string& series) {
  auto it = metrics.find(series);
  return it == metrics.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

}  // namespace tickwire::testing
