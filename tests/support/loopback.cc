#include "support/loopback.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <thread>
#include <vector>

#include "support/http_client.h"

namespace tickwire::testing {
namespace {

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
  return fields;
}

}  // namespace

std::uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

bool WaitForListener(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in addr = Loopback(port);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::map<std::string, HaproxyStatsRow> HaproxyServers(std::uint16_t stats_port,
                                                      const std::string& backend) {
  std::map<std::string, HaproxyStatsRow> rows;
  const HttpResult r = HttpGet(stats_port, "/stats;csv", std::chrono::seconds(2));
  if (r.status != 200) return rows;
  std::stringstream in(r.body);
  std::string line;
  if (!std::getline(in, line) || line.rfind("# ", 0) != 0) return rows;
  const auto columns = SplitCsv(line.substr(2));
  while (std::getline(in, line)) {
    const auto fields = SplitCsv(line);
    HaproxyStatsRow row;
    for (std::size_t i = 0; i < columns.size() && i < fields.size(); ++i) {
      row[columns[i]] = fields[i];
    }
    if (row["pxname"] == backend && row["svname"] != "BACKEND" && row["svname"] != "FRONTEND") {
      rows[row["svname"]] = row;
    }
  }
  return rows;
}

}  // namespace tickwire::testing
