#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tickwire::testing {

// Helpers shared by the deployment tests (deploy_test.cc, haproxy_test.cc, image_root_test.cc).

// The deploy/ folder of the source tree.
const std::string& DeployDir();

// Whole contents of `path`; a test failure when it cannot be read.
std::string ReadAll(const std::string& path);

// The local port of a connected socket (0 on error).
std::uint16_t LocalPort(int fd);

// The `remote` of every connection a server lists on /connz (its metrics port); empty when
// the listing cannot be read.
std::vector<std::string> ConnzRemotes(std::uint16_t metrics_port);

}  // namespace tickwire::testing
