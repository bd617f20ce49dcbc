// The container image's runtime layer without a container engine: deploy/docker/
// collect-runtime.sh copies the release binaries and the libraries they load into an empty
// directory, and tickwire-server runs from that directory as its root (chroot as uid 65532, the
// image's `nonroot` user; or `unshare -r --root` without root), with no /etc, /dev or /proc and
// nothing from the host's environment. A client on the host authenticates, subscribes,
// publishes and receives its tick over loopback TCP, and /healthz answers.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "deploy/deploy_support.h"
#include "support/child_process.h"
#include "support/http_client.h"
#include "support/raw_client.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kUser = "image";
constexpr const char* kPass = "image-pass";

std::string CliBinary() {
#ifdef TICKWIRE_CLI_BIN
  return TICKWIRE_CLI_BIN;
#else
  return {};
#endif
}

// The full path of `name` in PATH, or empty.
std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + name;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// The top-level entries of `dir`, sorted.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ImageRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.File("root");
    std::vector<std::string> collect = {DeployDir() + "/docker/collect-runtime.sh", "--strip",
                                        ServerProcess::BinaryPath()};
    if (!CliBinary().empty()) collect.push_back(CliBinary());
    collect.push_back(root_);
    const CommandResult r = RunCommand(collect, {}, seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Binaries, libraries and the loader: nothing else.
    EXPECT_EQ(Entries(root_), (std::vector<std::string>{"lib64", "usr"})) << r.output;

    // chroot as root (CI), dropping to the image's user; else a user namespace.
    const std::vector<std::vector<std::string>> runners = {
        {"chroot", "--userspec=65532:65532", root_}, {"unshare", "-r", "--root=" + root_}};
    std::string tried;
    for (auto runner : runners) {
      const std::string tool = runner[0];
      runner[0] = Which(tool);
      if (runner[0].empty()) continue;
      auto argv = runner;
      argv.push_back("/usr/local/bin/tickwire-server");
      argv.push_back("--version");
      const CommandResult v = RunCommand(argv, {}, seconds(10));
      if (v.exit_code == 0 && v.output.find("tickwire-server") != std::string::npos) {
        runner_ = runner;
        break;
      }
      tried += tool + ": " + v.output;
    }
    if (runner_.empty()) {
      GTEST_SKIP() << "cannot run a program in another root here (neither chroot, which needs "
                      "root, nor an unprivileged user namespace is permitted):\n"
                   << tried;
    }
  }

  // Runs `program` (a path inside the root) with `args` and only the variables in `env`.
  std::vector<std::string> Command(const std::vector<std::string>& env, const std::string& program,
                                   const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {"env", "-i"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), runner_.begin(), runner_.end());
    argv.push_back(program);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  TempDir dir_;
  std::string root_;
  std::vector<std::string> runner_;
};

TEST_F(ImageRootTest, TheServerRunsFromTheCollectedRootAlone) {
  // Only the test needs a writable directory, to learn the ports the server picked.
  const std::string tmp = root_ + "/tmp";
  ASSERT_EQ(mkdir(tmp.c_str(), 01777), 0);
  ASSERT_EQ(chmod(tmp.c_str(), 01777), 0);
  ChildProcess server(
      Command({"STREAM_USER=" + std::string(kUser), "STREAM_PASS=" + std::string(kPass),
               "LISTEN_ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0", "PORT_FILE=/tmp/port",
               "METRICS_PORT_FILE=/tmp/metrics-port", "WORKERS=2"},
              "/usr/local/bin/tickwire-server"));
  ASSERT_TRUE(server.Start()) << server.error();
  std::uint16_t port = 0;
  std::uint16_t metrics = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const std::string p = ReadFileOrEmpty(tmp + "/port");
        if (p.empty() || p.back() != '\n') return false;
        port = static_cast<std::uint16_t>(std::stoi(p));
        metrics = static_cast<std::uint16_t>(std::stoi(ReadFileOrEmpty(tmp + "/metrics-port")));
        return true;
      },
      seconds(10), milliseconds(20)))
      << server.Output();

  // As the image's user, when started through chroot.
  if (runner_[0].ends_with("/chroot")) {
    const std::string status = ReadFileOrEmpty("/proc/" + std::to_string(server.pid()) + "/status");
    EXPECT_NE(status.find("\nUid:\t65532\t65532\t65532\t65532\n"), std::string::npos) << status;
  }

  const HttpResult health = HttpGet(metrics, "/healthz");
  EXPECT_EQ(health.status, 200u) << health.error;
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(HttpGet(metrics, "/readyz").status, 200u);

  RawClient consumer;
  ASSERT_TRUE(consumer.Connect(port)) << consumer.last_error();
  ASSERT_TRUE(consumer.Authenticate(kUser, kPass));
  ASSERT_TRUE(consumer.Subscribe(1, v1::MODE_TICK, {"IMAGE"}));
  RawClient producer;
  ASSERT_TRUE(producer.Connect(port)) << producer.last_error();
  ASSERT_TRUE(producer.Authenticate(kUser, kPass));
  ASSERT_TRUE(producer.PublishAcked(2, {MakeTick("IMAGE", 42.5, 7)}));
  const ReadResult r = consumer.ReadFrame(seconds(5));
  ASSERT_TRUE(r.ok()) << ReadStatusName(r.status) << " " << r.detail;
  const auto batch = DecodeBatch(r.frame);
  ASSERT_TRUE(batch) << DescribeFrame(r.frame);
  ASSERT_EQ(batch->ticks.size(), 1u);
  EXPECT_EQ(batch->ticks[0].topic(), "IMAGE");
  EXPECT_EQ(batch->ticks[0].price(), 42.5);

  EXPECT_EQ(server.Stop(seconds(10)), 0) << server.Output();
  EXPECT_NE(server.Output().find("\"event\":\"server_exit\""), std::string::npos)
      << server.Output();
}

TEST_F(ImageRootTest, TheCliHashesAPasswordFromTheCollectedRoot) {
  if (CliBinary().empty()) GTEST_SKIP() << "this build has no tickwire CLI";
  const CommandResult r =
      RunCommand(Command({}, "/usr/local/bin/tickwire", {"passwd"}), "image-pass\n", seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("pbkdf2-sha256$", 0), 0u) << r.output;
}

}  // namespace
}  // namespace tickwire::testing
