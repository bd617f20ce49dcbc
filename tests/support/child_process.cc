#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "support/wait.h"

namespace tickwire::testing {
namespace {

using std::chrono::milliseconds;

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Forks and execs `argv` with stdin from `in_path` and stdout+stderr to `out_path`. Everything
// the child needs is prepared before fork (only async-signal-safe calls after it).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& in_path,
            const std::string& out_path) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int in = open(in_path.c_str(), O_RDONLY);
  const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) _exit(126);
  dup2(in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  execvp(cargv[0], cargv.data());
  constexpr char kMsg[] = "exec failed\n";
  [[maybe_unused]] auto n = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  _exit(127);
}

bool TryReap(pid_t pid, std::optional<int>& code) {
  if (code) return true;
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid) {
    code = DecodeStatus(status);
    return true;
  }
  return false;
}

int KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return DecodeStatus(status);
}

}  // namespace

bool InPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string p(path);
  std::size_t start = 0;
  while (start <= p.size()) {
    const auto end = p.find(':', start);
    const std::string dir = p.substr(start, end == std::string::npos ? end : end - start);
    if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input,
                         milliseconds timeout) {
  CommandResult result;
  TempDir dir;
  const std::string in_path = dir.File("stdin");
  const std::string out_path = dir.File("output");
  {
    const int fd = open(in_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return result;
    std::size_t off = 0;
    while (off < input.size()) {
      const ssize_t n = write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    close(fd);
  }
  const pid_t pid = Spawn(argv, in_path, out_path);
  if (pid < 0) {
    result.output = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  std::optional<int> code;
  if (!WaitUntil([&] { return TryReap(pid, code); }, timeout, milliseconds(5))) {
    code = KillAndReap(pid);
    result.output = "(killed after " + std::to_string(timeout.count()) + " ms)\n";
  }
  result.exit_code = *code;
  result.output += ReadFileOrEmpty(out_path);
  return result;
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Start() {
  const std::string in_path = "/dev/null";
  pid_ = Spawn(argv_, in_path, dir_.File("output"));
  if (pid_ < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  return true;
}

bool ChildProcess::Running() { return pid_ > 0 && !TryReap(pid_, exit_code_); }

int ChildProcess::Stop(milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (TryReap(pid_, exit_code_)) return *exit_code_;
  // Our own child, not yet reaped: the PID cannot have been reused.
  kill(pid_, SIGTERM);
  if (WaitUntil([&] { return TryReap(pid_, exit_code_); }, grace, milliseconds(5))) {
    return *exit_code_;
  }
  exit_code_ = KillAndReap(pid_);
  return *exit_code_;
}

std::string ChildProcess::Output() const { return ReadFileOrEmpty(dir_.File("output")); }

}  // namespace tickwire::testing
