#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace tickwire::testing {

// The result of running a command to completion.
struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it could not be started
  std::string output;  // stdout and stderr, interleaved
};

// Runs `argv` (argv[0] looked up in PATH) with `input` on stdin, and waits at most `timeout`
// (then kills it). For tools such as promtool and amtool.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// True when `name` is an executable in PATH.
bool InPath(const std::string& name);

// A long-running helper process (e.g. a real Prometheus) owned by a test: stdout and stderr go
// to a file in a private temp dir; it dies with the test process (PR_SET_PDEATHSIG); Stop()
// and the destructor signal only this child's own PID.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv) : argv_(std::move(argv)) {}
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool Start();
  // SIGTERM, then SIGKILL after `grace`. Returns the exit code.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  bool Running();
  // The child's PID while it runs (-1 before Start()).
  pid_t pid() const { return pid_; }
  std::string Output() const;
  const std::string& error() const { return error_; }

 private:
  std::vector<std::string> argv_;
  TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string error_;
};

}  // namespace tickwire::testing
