#include "spawned_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace tickwire::cli {

std::optional<ProcStats> ReadProcStats(pid_t pid) {
  ProcStats s;
  {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    // Fields after the parenthesised command name (which may contain spaces).
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
      if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    const long ticks = sysconf(_SC_CLK_TCK);
    s.cpu_seconds =
        static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) s.peak_rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return s;
}

SpawnedServer::~SpawnedServer() { Stop(); }

bool SpawnedServer::Start(const std::string& binary, const std::map<std::string, std::string>& env,
                          std::chrono::milliseconds timeout, std::string& error) {
  if (access(binary.c_str(), X_OK) != 0) {
    error = "cannot execute " + binary + ": " + std::strerror(errno);
    return false;
  }
  char tmpl[] = "/tmp/tickwire-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error = std::string("mkdtemp: ") + std::strerror(errno);
    return false;
  }
  dir_ = tmpl;
  port_file_ = dir_ + "/port";
  log_path_ = dir_ + "/server.log";

  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  merged["LISTEN_ADDR"] = "127.0.0.1:0";
  merged["PORT_FILE"] = port_file_;
  // The WebSocket endpoint, when asked for, reports its port too (written before PORT_FILE).
  const bool ws = env.count("WS_LISTEN_ADDR") != 0;
  if (ws) merged["WS_PORT_FILE"] = dir_ + "/ws_port";
  // The metrics endpoint's default port is fixed; a bench server must not collide with another
  // server on this host (or another bench), so it takes a free one unless --server-env says.
  if (env.count("METRICS_ADDR") == 0) merged["METRICS_ADDR"] = "127.0.0.1:0";
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string argv0 = binary;
  char* argv[] = {argv0.data(), nullptr};

  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    error = "open " + log_path_ + ": " + std::strerror(errno);
    return false;
  }
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    close(log_fd);
    return false;
  }
  if (pid_ == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    // As many sockets as the hard limit allows (the conns bench holds thousands).
    rlimit fds{};
    if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
      fds.rlim_cur = fds.rlim_max;
      setrlimit(RLIMIT_NOFILE, &fds);
    }
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  close(log_fd);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Reap(false)) {
      keep_dir_ = true;
      error = "server exited before listening (" + StatusText() + "); log: " + log_path_;
      return false;
    }
    std::ifstream in(port_file_);
    unsigned port = 0;
    if (in >> port && port > 0 && port <= 65535) {
      port_ = static_cast<std::uint16_t>(port);
      std::ifstream ws_in(dir_ + "/ws_port");
      unsigned ws_port = 0;
      if (ws && ws_in >> ws_port && ws_port > 0 && ws_port <= 65535) {
        ws_port_ = static_cast<std::uint16_t>(ws_port);
      }
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling with a deadline
  }
  keep_dir_ = true;
  error = "server did not write " + port_file_ + " within " + std::to_string(timeout.count()) +
          " ms; log: " + log_path_;
  Stop();
  return false;
}

bool SpawnedServer::Reap(bool block) {
  if (pid_ <= 0 || reaped_) return reaped_;
  const pid_t r = waitpid(pid_, &status_, block ? 0 : WNOHANG);
  if (r == pid_) reaped_ = true;
  return reaped_;
}

std::string SpawnedServer::StatusText() const {
  if (!reaped_) return "running";
  if (WIFEXITED(status_)) return "exit " + std::to_string(WEXITSTATUS(status_));
  if (WIFSIGNALED(status_)) return "signal " + std::to_string(WTERMSIG(status_));
  return "unknown";
}

std::string SpawnedServer::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return "not started";
  if (!Reap(false)) {
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (!Reap(false) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!Reap(false)) {
      kill(pid_, SIGKILL);
      keep_dir_ = true;
      Reap(true);
    }
  }
  if (reaped_ && !(WIFEXITED(status_) && WEXITSTATUS(status_) == 0)) keep_dir_ = true;
  if (!dir_.empty() && !keep_dir_) {
    unlink(port_file_.c_str());
    unlink(log_path_.c_str());
    rmdir(dir_.c_str());
    dir_.clear();
  }
  return StatusText();
}

}  // namespace tickwire::cli
