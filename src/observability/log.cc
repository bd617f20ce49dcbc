#include "observability/log.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/wall_clock.h"

namespace tickwire::obs {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  std::uint32_t min = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, min = 0x80, cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, min = 0x800, cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, min = 0x10000, cp = c & 0x07u;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void AppendTimestamp(std::string& out) {
  const std::int64_t now_ns = common::WallClockNs();
  const auto secs = static_cast<std::time_t>(now_ns / 1'000'000'000);
  const std::int64_t micros = now_ns / 1'000 % 1'000'000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<long long>(micros));
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

void SetLogLevel(Level level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const std::size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  out.push_back('"');
}

namespace {

std::string FormatLine(Level level, std::string_view event, std::string_view msg,
                       std::initializer_list<Field> fields, const Field* extra) {
  std::string line;
  line.reserve(160);
  line += "{\"ts\":\"";
  AppendTimestamp(line);
  line += "\",\"level\":\"";
  line += LevelName(level);
  line += "\",\"event\":";
  AppendJsonString(line, event);
  line += ",\"msg\":";
  AppendJsonString(line, msg);
  auto append = [&line](const Field& f) {
    line.push_back(',');
    AppendJsonString(line, f.key);
    line.push_back(':');
    std::visit(
        [&line](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            AppendJsonString(line, v);
          } else if constexpr (std::is_same_v<T, bool>) {
            line += v ? "true" : "false";
          } else if constexpr (std::is_same_v<T, double>) {
            if (std::isfinite(v)) {
              char buf[32];
              const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
              line.append(buf, static_cast<std::size_t>(n));
            } else {
              line += "null";
            }
          } else {
            line += std::to_string(v);
          }
        },
        f.value);
  };
  for (const Field& f : fields) append(f);
  if (extra != nullptr) append(*extra);
  line += "}\n";
  return line;
}

// Writes all of `lines` to `fd` (writev, IOV_MAX at a time). False when the descriptor
// fails; `written` is the number of whole lines written.
bool WriteLines(int fd, const std::vector<std::string>& lines, std::size_t& written) {
  written = 0;
  std::size_t offset = 0;  // into lines[written]
  std::vector<iovec> iov;
  while (written < lines.size()) {
    iov.clear();
    for (std::size_t i = written; i < lines.size() && iov.size() < IOV_MAX; ++i) {
      const std::size_t skip = i == written ? offset : 0;
      iov.push_back({const_cast<char*>(lines[i].data() + skip), lines[i].size() - skip});
    }
    const ssize_t n = ::writev(fd, iov.data(), static_cast<int>(iov.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{};
      p.fd = fd;
      p.events = POLLOUT;
      ::poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) return false;  // stdout gone: logging must never take the server down
    auto left = static_cast<std::size_t>(n);
    while (left > 0) {
      const std::size_t rest = lines[written].size() - offset;
      if (left < rest) {
        offset += left;
        left = 0;
      } else {
        left -= rest;
        offset = 0;
        ++written;
      }
    }
  }
  return true;
}

void WriteDirect(const std::string& line) {
  std::size_t ignored = 0;
  WriteLines(STDOUT_FILENO, {line}, ignored);
}

// The process-wide writer, once started. Never destroyed: a thread may still be logging, or
// the writer's thread still blocked on stdout, while the process exits.
std::atomic<LogWriter*> g_writer{nullptr};

void WriteLine(std::string line) {
  if (LogWriter* w = g_writer.load(std::memory_order_acquire)) {
    w->Push(std::move(line));
  } else {
    WriteDirect(line);
  }
}

constexpr std::uint32_t kDefaultNoisyLimit = 20;

LogLimiter& Limiter(Noisy kind) {
  static std::array<LogLimiter, static_cast<std::size_t>(Noisy::kCount)> limiters;
  [[maybe_unused]] static const bool defaults_set = [] {
    for (auto& l : limiters) l.set_limit(kDefaultNoisyLimit);
    return true;
  }();
  return limiters[static_cast<std::size_t>(kind)];
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string FormatLogLine(Level level, std::string_view event, std::string_view msg,
                          std::initializer_list<Field> fields) {
  return FormatLine(level, event, msg, fields, nullptr);
}

void Log(Level level, std::string_view event, std::string_view msg,
         std::initializer_list<Field> fields) {
  if (!LogEnabled(level)) return;
  WriteLine(FormatLine(level, event, msg, fields, nullptr));
}

std::string_view NoisyName(Noisy kind) {
  switch (kind) {
    case Noisy::kAuth:
      return "auth";
    case Noisy::kProtocol:
      return "protocol";
    case Noisy::kSlowConsumer:
      return "slow_consumer";
    case Noisy::kDisconnect:
      return "disconnect";
    case Noisy::kHandshake:
      return "handshake";
    case Noisy::kHttp:
      return "http";
    case Noisy::kCount:
      break;
  }
  return "unknown";
}

bool LogLimiter::Admit(std::int64_t now_ms, std::uint64_t& report) {
  const std::uint32_t limit = limit_.load(std::memory_order_relaxed);
  if (limit != 0) {
    const std::int64_t window = now_ms / 1000;
    std::int64_t seen = window_.load(std::memory_order_relaxed);
    // The first caller of a new window resets the budget. A racing caller may still count
    // against the old window; the budget is approximate, the accounting is exact.
    if (seen != window && window_.compare_exchange_strong(seen, window)) used_.store(0);
    if (used_.fetch_add(1, std::memory_order_relaxed) >= limit) {
      suppressed_.fetch_add(1);
      return false;
    }
  }
  report = suppressed_.exchange(0);
  return true;
}

void SetNoisyLogLimit(std::uint32_t lines_per_second) {
  for (int k = 0; k < static_cast<int>(Noisy::kCount); ++k) {
    Limiter(static_cast<Noisy>(k)).set_limit(lines_per_second);
  }
}

void LogNoisy(Noisy kind, Level level, std::string_view event, std::string_view msg,
              std::initializer_list<Field> fields) {
  if (!LogEnabled(level)) return;
  std::uint64_t suppressed = 0;
  if (!Limiter(kind).Admit(NowMs(), suppressed)) return;
  if (suppressed == 0) {
    WriteLine(FormatLine(level, event, msg, fields, nullptr));
  } else {
    const Field extra("suppressed", suppressed);
    WriteLine(FormatLine(level, event, msg, fields, &extra));
  }
}

void FlushSuppressedLogs() {
  for (int k = 0; k < static_cast<int>(Noisy::kCount); ++k) {
    const auto kind = static_cast<Noisy>(k);
    const std::uint64_t n = Limiter(kind).TakeSuppressed();
    if (n == 0 || !LogEnabled(Level::kWarn)) continue;
    WriteLine(FormatLine(Level::kWarn, "log_suppressed",
                         "similar lines were suppressed by the log rate limit",
                         {{"kind", NoisyName(kind)}, {"suppressed", n}}, nullptr));
  }
}

struct LogWriter::State {
  State(int f, std::size_t cap) : fd(f), capacity(cap) {}

  void Run() {
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait(lock, [&] { return !queue.empty() || unreported != 0 || stopping; });
      if (queue.empty() && unreported == 0) break;  // stopping, and everything is written
      std::vector<std::string> batch;
      batch.swap(queue);
      const std::uint64_t report = std::exchange(unreported, 0);
      lock.unlock();
      std::size_t written = 0;
      const bool ok = WriteLines(fd, batch, written);
      std::size_t bytes = 0;
      for (const auto& l : batch) bytes += l.size();
      if (ok && report != 0 && LogEnabled(Level::kWarn)) {
        const Field count("dropped", report);
        const std::string line =
            FormatLine(Level::kWarn, "log_dropped",
                       "log lines were dropped: the log output did not keep up", {count}, nullptr);
        std::size_t ignored = 0;
        WriteLines(fd, {line}, ignored);
      }
      lock.lock();
      if (!ok) {
        // The descriptor failed: what was not written is lost, counted, and reported (with
        // the drops not reported yet) once output flows again.
        const std::uint64_t lost = batch.size() - written;
        dropped.fetch_add(lost, std::memory_order_relaxed);
        unreported += lost + report;
      }
      queued_bytes -= bytes;
      drained.notify_all();
    }
    done = true;
    drained.notify_all();
  }

  const int fd;
  const std::size_t capacity;
  std::mutex mu;
  std::condition_variable wake;     // the thread: lines, a drop to report, or stop
  std::condition_variable drained;  // Stop(): a batch was written, or the thread ended
  std::vector<std::string> queue;   // lines not yet taken by the thread
  std::size_t queued_bytes = 0;     // queued and being written: what the capacity bounds
  std::uint64_t unreported = 0;     // dropped since the last log_dropped line
  bool stopping = false;
  bool done = false;  // the thread has ended
  std::atomic<std::uint64_t> dropped{0};
};

LogWriter::LogWriter(int fd, std::size_t capacity) : state_(std::make_shared<State>(fd, capacity)) {
  // The thread takes no signals (they stay with the threads that wait for them), and a write
  // to a closed pipe fails with EPIPE instead of killing the process.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread([state = state_] { state->Run(); }).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

LogWriter::~LogWriter() {
  if (!stopped_) Stop(std::chrono::milliseconds::max());
}

bool LogWriter::Push(std::string line) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  if (s.done) {
    lock.unlock();
    std::size_t ignored = 0;
    return WriteLines(s.fd, {line}, ignored);
  }
  if (s.queued_bytes + line.size() > s.capacity) {
    ++s.unreported;
    s.dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  s.queued_bytes += line.size();
  s.queue.push_back(std::move(line));
  const bool first = s.queue.size() == 1;
  lock.unlock();
  if (first) s.wake.notify_one();  // the thread waits only while the queue is empty
  return true;
}

bool LogWriter::Stop(std::chrono::milliseconds timeout) {
  stopped_ = true;
  State& s = *state_;
  std::unique_lock lock(s.mu);
  s.stopping = true;
  s.wake.notify_one();
  const auto finished = [&] { return s.done; };
  if (timeout == std::chrono::milliseconds::max()) {
    s.drained.wait(lock, finished);
    return true;
  }
  return s.drained.wait_for(lock, timeout, finished);
}

std::uint64_t LogWriter::dropped() const { return state_->dropped.load(std::memory_order_relaxed); }

void StartLogWriter(std::size_t capacity) {
  if (g_writer.load() != nullptr) return;
  g_writer.store(new LogWriter(STDOUT_FILENO, capacity), std::memory_order_release);
}

bool StopLogWriter(std::chrono::milliseconds timeout) {
  LogWriter* w = g_writer.load(std::memory_order_acquire);
  return w == nullptr || w->Stop(timeout);
}

std::uint64_t LogLinesDropped() {
  const LogWriter* w = g_writer.load(std::memory_order_acquire);
  return w == nullptr ? 0 : w->dropped();
}

}  // namespace tickwire::obs
