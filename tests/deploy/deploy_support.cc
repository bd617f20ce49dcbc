#include "deploy/deploy_support.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "support/http_client.h"
#include "support/json.h"

namespace tickwire::testing {

const std::string& DeployDir() {
  static const std::string dir = TICKWIRE_DEPLOY_DIR;
  return dir;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

std::vector<std::string> ConnzRemotes(std::uint16_t metrics_port) {
  std::vector<std::string> remotes;
  const HttpResult r = HttpGet(metrics_port, "/connz?limit=10000");
  if (r.status != 200) return remotes;
  auto v = ParseJson(r.body);
  if (!v || !v->is_object()) return remotes;
  const auto* conns = v->as_object().if_contains("connections");
  if (conns == nullptr || !conns->is_array()) return remotes;
  for (const auto& c : conns->as_array()) {
    if (c.is_object()) remotes.push_back(StringField(c.as_object(), "remote"));
  }
  return remotes;
}

}  // namespace tickwire::testing
