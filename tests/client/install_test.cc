// The client library as a package: `cmake --install` into a temporary prefix, then the program
// of docs/CLIENT.md (consumer/tail.cc) built against the installed files only, once with
// find_package(tickwire CONFIG) and once with pkg-config, and run against the real server.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/raw_client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using namespace std::chrono_literals;

const std::string kConsumerDir = std::string(TICKWIRE_SOURCE_DIR) + "/tests/client/consumer";

::testing::AssertionResult Ran(const CommandResult& r, const std::string& what) {
  if (r.exit_code == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " exited " << r.exit_code << ":\n" << r.output;
}

// Publishes one tick through a raw connection.
::testing::AssertionResult PublishOne(std::uint16_t port, const std::string& topic,
                                      std::uint32_t request_id) {
  RawClient producer;
  if (!producer.Connect(port)) {
    return ::testing::AssertionFailure() << "connect: " << producer.last_error();
  }
  if (auto ok = producer.Authenticate(ServerProcess::kUser, ServerProcess::kPass); !ok) return ok;
  return producer.PublishAcked(request_id, {MakeTick(topic, 187.25, 100)});
}

// `tail` with the server's credentials in its environment (and TAIL_COUNT when not empty).
std::vector<std::string> TailCommand(const std::string& binary, std::uint16_t port,
                                     const std::string& topic, const std::string& count) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   std::string("STREAM_USER=") + ServerProcess::kUser,
                                   std::string("STREAM_PASS=") + ServerProcess::kPass};
  if (!count.empty()) argv.push_back("TAIL_COUNT=" + count);
  for (const auto& a : {binary, std::string("127.0.0.1"), std::to_string(port), topic}) {
    argv.push_back(a);
  }
  return argv;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(ClientInstallTest, InstalledPackageBuildsWithCMakeAndPkgConfigAndRuns) {
  TempDir dir;
  const std::string prefix = dir.File("prefix");
  ASSERT_TRUE(Ran(RunCommand({TICKWIRE_CMAKE_COMMAND, "--install", TICKWIRE_BUILD_DIR,
                              "--component", "development", "--prefix", prefix}),
                  "cmake --install"));

  // find_package(tickwire CONFIG) -> tickwire::client.
  const std::string build = dir.File("build");
  ASSERT_TRUE(Ran(RunCommand({TICKWIRE_CMAKE_COMMAND, "-S", kConsumerDir, "-B", build, "-G",
                              TICKWIRE_CMAKE_GENERATOR,
                              std::string("-DCMAKE_MAKE_PROGRAM=") + TICKWIRE_MAKE_PROGRAM,
                              std::string("-DCMAKE_CXX_COMPILER=") + TICKWIRE_CXX_COMPILER,
                              "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + prefix},
                             {}, 120s),
                  "configuring the consumer"));
  ASSERT_TRUE(Ran(RunCommand({TICKWIRE_CMAKE_COMMAND, "--build", build}, {}, 120s),
                  "building the consumer with CMake"));

  // pkg-config tickwire-client, nothing else on the include or library path.
  const std::string pc_tail = dir.File("tail-pc");
  const std::string pc_dir = prefix + "/" + TICKWIRE_INSTALL_LIBDIR + "/pkgconfig";
  ASSERT_TRUE(
      Ran(RunCommand({"/bin/sh", "-c",
                      std::string(TICKWIRE_CXX_COMPILER) + " -std=c++20 -O1 " + kConsumerDir +
                          "/tail.cc -o " + pc_tail + " $(PKG_CONFIG_PATH=" + pc_dir + " " +
                          TICKWIRE_PKG_CONFIG + " --cflags --libs tickwire-client)"},
                     {}, 120s),
          "building the consumer with pkg-config"));

  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  // The CMake-built program: it keeps waiting through a quiet second, prints the tick published
  // after it and stops at TAIL_COUNT.
  {
    ChildProcess tail(TailCommand(build + "/tail", server.port(), "install.cmake", "1"));
    ASSERT_TRUE(tail.Start()) << tail.error();
    ASSERT_TRUE(
        WaitUntil([&] { return Contains(tail.Output(), "no ticks in the last second"); }, 10s))
        << tail.Output();
    ASSERT_TRUE(tail.Running()) << tail.Output();
    ASSERT_TRUE(PublishOne(server.port(), "install.cmake", 1));
    ASSERT_TRUE(WaitUntil([&] { return !tail.Running(); }, 10s)) << tail.Output();
    EXPECT_EQ(tail.Stop(), 0) << tail.Output();
    EXPECT_TRUE(Contains(tail.Output(), "install.cmake 187.25 100 seq 1\n")) << tail.Output();
  }
  // The pkg-config-built program, without a count: it ends only when the connection does (here
  // the server's drain: SERVER_DRAINING, fatal), not at a quiet second.
  ChildProcess tail(TailCommand(pc_tail, server.port(), "install.pc", ""));
  ASSERT_TRUE(tail.Start()) << tail.error();
  ASSERT_TRUE(
      WaitUntil([&] { return Contains(tail.Output(), "no ticks in the last second"); }, 10s))
      << tail.Output();
  ASSERT_TRUE(PublishOne(server.port(), "install.pc", 1));
  ASSERT_TRUE(
      WaitUntil([&] { return Contains(tail.Output(), "install.pc 187.25 100 seq 1\n"); }, 10s))
      << tail.Output();
  EXPECT_TRUE(tail.Running()) << tail.Output();
  EXPECT_EQ(server.Stop(), 0);
  ASSERT_TRUE(WaitUntil([&] { return !tail.Running(); }, 10s)) << tail.Output();
  EXPECT_EQ(tail.Stop(), 1) << tail.Output();
  EXPECT_TRUE(Contains(tail.Output(), "closed: server error SERVER_DRAINING")) << tail.Output();
}

// docs/CLIENT.md shows the program and its CMakeLists.txt as they are here: what the reader
// copies is what the test above builds and runs.
TEST(ClientInstallTest, ClientDocShowsTheTestedProgramVerbatim) {
  const std::string doc = ReadFileOrEmpty(std::string(TICKWIRE_SOURCE_DIR) + "/docs/CLIENT.md");
  ASSERT_FALSE(doc.empty());
  const std::string program = ReadFileOrEmpty(kConsumerDir + "/tail.cc");
  ASSERT_FALSE(program.empty());
  EXPECT_TRUE(Contains(doc, "```cpp\n" + program + "```\n"))
      << "docs/CLIENT.md does not contain tests/client/consumer/tail.cc verbatim";
  const std::string cmake = ReadFileOrEmpty(kConsumerDir + "/CMakeLists.txt");
  const auto body = cmake.find("cmake_minimum_required");
  ASSERT_NE(body, std::string::npos);
  EXPECT_TRUE(Contains(doc, "```cmake\n" + cmake.substr(body) + "```\n"))
      << "docs/CLIENT.md does not contain tests/client/consumer/CMakeLists.txt from "
         "cmake_minimum_required on";
}

}  // namespace
}  // namespace tickwire::testing
