#include "support/server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "support/json.h"
#include "support/wait.h"

namespace tickwire::testing {

std::optional<std::uint64_t> ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
        line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return std::nullopt;
}
namespace {

using std::chrono::milliseconds;

// Variables passed through from the test's environment when set (sanitizer and coverage runs).
constexpr const char* kPassThrough[] = {"ASAN_OPTIONS",     "UBSAN_OPTIONS",     "TSAN_OPTIONS",
                                        "LSAN_OPTIONS",     "LLVM_PROFILE_FILE", "GCOV_PREFIX",
                                        "GCOV_PREFIX_STRIP"};

// Last `max_lines` lines of `text`.
std::string Tail(const std::string& text, std::size_t max_lines) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t n = 0; n < max_lines && pos > 0; ++n) {
    const auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return pos == 0 ? text : text.substr(pos + 1);
}

// Port number from PORT_FILE contents; nullopt while the file is empty or incomplete.
std::optional<std::uint16_t> ParsePort(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  unsigned long value = 0;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 6) {
    value = value * 10 + static_cast<unsigned long>(text[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

ServerProcess::ServerProcess(EnvOverrides overrides) : overrides_(std::move(overrides)) {}

ServerProcess::~ServerProcess() { Stop(); }

std::string ServerProcess::BinaryPath() {
  if (const char* env = std::getenv("TICKWIRE_SERVER_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef TICKWIRE_SERVER_BIN
  return TICKWIRE_SERVER_BIN;
#else
  return {};
#endif
}

bool ServerProcess::Spawn() {
  if (pid_ > 0) {
    error_ = "already started";
    return false;
  }
  const std::string binary = BinaryPath();
  if (binary.empty()) {
    error_ =
        "no tickwire-server binary: the build has no tickwire-server target and "
        "TICKWIRE_SERVER_BIN is not set";
    return false;
  }
  if (access(binary.c_str(), X_OK) != 0) {
    error_ = "tickwire-server binary not executable: " + binary + ": " + std::strerror(errno);
    return false;
  }

  std::map<std::string, std::string> env = {
      {"STREAM_USER", kUser},
      {"STREAM_PASS", kPass},
      {"LISTEN_ADDR", "127.0.0.1:0"},
      {"PORT_FILE", dir_.File("port")},
      {"WORKERS", "2"},
      {"METRICS_ADDR", "127.0.0.1:0"},
      {"METRICS_PORT_FILE", dir_.File("metrics_port")},
      // Written only when a test turns the WebSocket endpoint on (WS_LISTEN_ADDR).
      {"WS_PORT_FILE", dir_.File("ws_port")},
      // Tests stop servers often: drain at once unless a test sets a period.
      {"DRAIN_PERIOD", "0s"},
  };
  for (const char* name : kPassThrough) {
    if (const char* v = std::getenv(name); v != nullptr) env[name] = v;
  }
  for (const auto& [name, value] : overrides_) {
    if (value) {
      env[name] = *value;
    } else {
      env.erase(name);
    }
  }

  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed (the test process may have other threads).
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string argv0 = binary;
  std::vector<char*> argv = {argv0.data(), nullptr};
  const std::string out_path = dir_.File("stdout.log");
  const std::string err_path = dir_.File("stderr.log");
  const pid_t parent = getpid();
  int out_pipe[2] = {-1, -1};
  if (stall_stdout_) {
    // Close-on-exec both ends, so that no other child inherits them (dup2 clears it on the
    // child's stdout).
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
      error_ = std::string("pipe2: ") + std::strerror(errno);
      return false;
    }
    fcntl(out_pipe[1], F_SETPIPE_SZ, 4096);
    // The log file exists (empty) until the pipe is read.
    const int f = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f >= 0) close(f);
  }

  const pid_t pid = fork();
  if (pid < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Child. Die with the test process; restore default dispositions and an empty mask so the
    // server starts as it would from a shell.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    const int in = open("/dev/null", O_RDONLY);
    const int out =
        out_pipe[1] >= 0 ? out_pipe[1] : open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execve(argv0.c_str(), argv.data(), envp.data());
    constexpr char kMsg[] = "execve of tickwire-server failed\n";
    [[maybe_unused]] auto n = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  pid_ = pid;
  if (stall_stdout_) {
    close(out_pipe[1]);
    stdout_pipe_ = out_pipe[0];
  }
  return true;
}

void ServerProcess::ResumeStdout() {
  if (stdout_pipe_ < 0 || stdout_reader_.joinable()) return;
  stdout_reader_ = std::thread([fd = stdout_pipe_, path = dir_.File("stdout.log")] {
    const int out = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF: the server exited
      if (out >= 0) {
        [[maybe_unused]] const ssize_t w = write(out, buf, static_cast<std::size_t>(n));
      }
    }
    if (out >= 0) close(out);
  });
}

bool ServerProcess::Start(milliseconds timeout) {
  if (!Spawn()) return false;
  const std::string port_file = [&] {
    auto it = overrides_.find("PORT_FILE");
    return it != overrides_.end() && it->second ? *it->second : dir_.File("port");
  }();
  // A port counts once the file ends with a newline, or reads the same on two polls in a row
  // (in case the server writes no newline), so a half-written number is never taken.
  std::string last;
  const bool ready = WaitUntil(
      [&] {
        if (Reap()) return true;
        const std::string text = ReadFileOrEmpty(port_file);
        const bool stable = !text.empty() && (text.back() == '\n' || text == last);
        last = text;
        if (!stable) return false;
        if (auto p = ParsePort(text)) {
          port_ = *p;
          return true;
        }
        return false;
      },
      timeout, milliseconds(5));
  if (port_ != 0 && !exit_code_) {
    // The server writes METRICS_PORT_FILE before PORT_FILE.
    const auto it = overrides_.find("METRICS_PORT_FILE");
    const std::string metrics_file =
        it != overrides_.end() ? it->second.value_or("") : dir_.File("metrics_port");
    if (auto p = ParsePort(ReadFileOrEmpty(metrics_file))) metrics_port_ = *p;
    // And WS_PORT_FILE before PORT_FILE too.
    const auto ws = overrides_.find("WS_PORT_FILE");
    const std::string ws_file =
        ws != overrides_.end() ? ws->second.value_or("") : dir_.File("ws_port");
    if (auto p = ParsePort(ReadFileOrEmpty(ws_file))) ws_port_ = *p;
    return true;
  }
  std::ostringstream why;
  if (exit_code_) {
    why << "tickwire-server exited with code " << *exit_code_ << " before writing PORT_FILE";
  } else if (!ready) {
    why << "tickwire-server did not write a port to " << port_file << " within " << timeout.count()
        << " ms";
  }
  why << "; stderr: " << Tail(Stderr(), 5) << "; stdout: " << Tail(Logs(), 5);
  error_ = why.str();
  return false;
}

bool ServerProcess::Reap() {
  if (pid_ <= 0) return true;
  if (exit_code_) return true;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeStatus(status);
    return true;
  }
  return false;
}

std::optional<int> ServerProcess::ExitCode() {
  Reap();
  return exit_code_;
}

std::optional<int> ServerProcess::WaitForExit(milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  WaitUntil([&] { return Reap(); }, timeout, milliseconds(2));
  return exit_code_;
}

int ServerProcess::Stop(milliseconds grace) {
  if (pid_ <= 0) return -1;
  ResumeStdout();  // a server blocked on its log output still exits, and its log is kept
  if (!Reap()) {
    // Our own child, not yet reaped: the PID cannot have been reused.
    kill(pid_, SIGTERM);
    if (!WaitForExit(grace)) {
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      exit_code_ = DecodeStatus(status);
    }
  }
  if (stdout_reader_.joinable()) {
    stdout_reader_.join();  // the pipe is at EOF once the server has exited
    close(stdout_pipe_);
    stdout_pipe_ = -1;
  }
  CheckLogsOnce();
  return *exit_code_;
}

void ServerProcess::CheckLogsOnce() {
  if (logs_checked_) return;
  logs_checked_ = true;
  const LogCheck check = CheckJsonLogLines(Logs());
  if (!check.error.empty()) {
    ADD_FAILURE() << "tickwire-server pid " << pid_ << " wrote a bad log line: stdout "
                  << check.error;
  }
  // A crash or a sanitizer report fails the test that ran the server, whatever it asserted:
  // tests signal servers with SIGTERM and SIGKILL only, and a ThreadSanitizer report does not
  // stop the process by itself.
  const int code = exit_code_.value_or(0);
  bool crashed = false;
  for (const int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) crashed |= code == 128 + sig;
  const std::string err = Stderr();
  bool reported = false;
  for (const char* marker :
       {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
        "ThreadSanitizer: CHECK", "runtime error:"}) {
    reported |= err.find(marker) != std::string::npos;
  }
  if (crashed || reported) {
    ADD_FAILURE() << "tickwire-server pid " << pid_
                  << (crashed ? " crashed" : " reported a sanitizer finding") << "\n"
                  << Describe() << "\n--- stderr (head) ---\n"
                  << err.substr(0, 6000);
  }
}

std::string ServerProcess::Logs() const { return ReadFileOrEmpty(dir_.File("stdout.log")); }

std::string ServerProcess::Stderr() const { return ReadFileOrEmpty(dir_.File("stderr.log")); }

std::string ServerProcess::Describe() {
  std::ostringstream out;
  out << "tickwire-server pid " << pid_;
  if (auto code = ExitCode()) {
    out << " exited with " << *code;
  } else {
    out << " running on port " << port_;
  }
  out << "\n--- stderr (tail) ---\n"
      << Tail(Stderr(), 10) << "\n--- stdout (tail) ---\n"
      << Tail(Logs(), 10);
  return out.str();
}

}  // namespace tickwire::testing
