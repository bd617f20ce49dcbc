#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace tickwire::obs {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One key/value of a log line. String values are escaped; client-supplied text is safe here.
struct Field {
  std::string_view key;
  std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool> value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <typename T>
  requires std::is_integral_v<T> && std::is_signed_v<T> Field(std::string_view k, T v)
      : key(k), value(static_cast<std::int64_t>(v)) {}
  template <typename T>
  requires std::is_integral_v<T> && std::is_unsigned_v<T> &&
      (!std::is_same_v<T, bool>)Field(std::string_view k, T v)
      : key(k), value(static_cast<std::uint64_t>(v)) {}
};

void SetLogLevel(Level level);
bool LogEnabled(Level level);

// Writes one JSON object per line to stdout: {"ts":..., "level":..., "event":..., "msg":...,
// fields...}. Lines from threads never mix. Once StartLogWriter() has run, the line is queued
// for the log writer's thread and Log() never waits for stdout; before that (tools, tests) it
// is written at once with a single write(2).
void Log(Level level, std::string_view event, std::string_view msg,
         std::initializer_list<Field> fields = {});

// Writes lines to a file descriptor from its own thread, through a buffer of at most
// `capacity` bytes, so that whoever logs never waits for the descriptor (a stalled stdout: a
// full pipe, a stuck log shipper). When the buffer is full a line is dropped and counted; once
// output flows again the thread writes one "log_dropped" line saying how many were dropped.
// Lines are written in the order they were queued.
class LogWriter {
 public:
  LogWriter(int fd, std::size_t capacity);
  // Stop() with no time limit, unless Stop() was called already (then a thread still blocked on
  // the descriptor is left to itself).
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Queues `line` (one complete line, '\n' included). Any thread. False, and counted, when
  // the buffer has no room for it; never blocks on the descriptor.
  bool Push(std::string line);
  // Writes out what is queued, waiting at most `timeout` for the descriptor, and ends the
  // thread. True when everything was written. On a timeout the thread is left blocked in its
  // write (it owns its state, so this object may go); lines pushed afterwards are still queued
  // for it while there is room, and written by the caller directly once the thread has ended.
  // Stop may be called again to wait longer.
  bool Stop(std::chrono::milliseconds timeout);
  // Lines dropped so far (buffer full, or the descriptor failed).
  std::uint64_t dropped() const;

 private:
  struct State;
  std::shared_ptr<State> state_;      // shared with the thread
  std::atomic<bool> stopped_{false};  // Stop() may come from any thread (Worker::Fatal)
};

// Bytes of log lines the process-wide writer buffers before it drops lines: at about 300 bytes
// a line, some 3,500 lines.
inline constexpr std::size_t kLogBufferBytes = 1024 * 1024;
// Starts the process-wide LogWriter on stdout; from then on Log() and LogNoisy() queue their
// lines. Call once, early (the server does, after reading its settings).
void StartLogWriter(std::size_t capacity = kLogBufferBytes);
// Flushes and stops it, waiting at most `timeout` for stdout; true when everything was written.
// Call last, before the process exits.
bool StopLogWriter(std::chrono::milliseconds timeout);
// Lines the process-wide writer has dropped (the log_lines_dropped_total metric).
std::uint64_t LogLinesDropped();

// Appends `s` as a JSON string literal (quotes included). Control characters are escaped and
// invalid UTF-8 bytes become U+FFFD, so the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);

// Renders a log line without writing it (used by Log and by tests).
std::string FormatLogLine(Level level, std::string_view event, std::string_view msg,
                          std::initializer_list<Field> fields);

// Events that a hostile or broken client can cause at will. Each kind has its own budget of
// lines per second, so a flood of them cannot flood the log (and a flood of one kind does not
// hide the others).
enum class Noisy : int {
  kAuth = 0,      // closes for failed, missing, late or rate-limited AUTH
  kProtocol,      // closes for protocol violations, and rejected requests
  kSlowConsumer,  // slow consumers dropped
  kDisconnect,    // closes the client chose: it closed or reset, or stopped heartbeating
  kHandshake,     // PROXY header and TLS handshake failures, and their closes
  kHttp,          // operations endpoint connections closed by the server (slow, or evicted)
  kCount
};
std::string_view NoisyName(Noisy kind);

// A budget of `limit` lines per one-second window (0 = unlimited). Lock-free and callable from
// any thread; every event is either admitted or counted as suppressed, and each suppressed
// event is reported exactly once (by a later admitted line or by TakeSuppressed).
class LogLimiter {
 public:
  explicit LogLimiter(std::uint32_t limit = 0) : limit_(limit) {}
  void set_limit(std::uint32_t limit) { limit_.store(limit, std::memory_order_relaxed); }

  // True when a line may be written at `now_ms`; then `report` is the number of lines
  // suppressed since the last report, for the admitted line to carry.
  bool Admit(std::int64_t now_ms, std::uint64_t& report);
  // Suppressed lines not yet reported; resets the count.
  std::uint64_t TakeSuppressed() { return suppressed_.exchange(0); }

 private:
  std::atomic<std::uint32_t> limit_;
  std::atomic<std::int64_t> window_{-1};  // current one-second window (now_ms / 1000)
  std::atomic<std::uint32_t> used_{0};    // lines admitted in the current window
  std::atomic<std::uint64_t> suppressed_{0};
};

// Lines per second allowed for each Noisy kind (0 = unlimited; default 20).
void SetNoisyLogLimit(std::uint32_t lines_per_second);
// Log() through the budget of `kind`. A line that follows suppressed ones carries
// "suppressed": N.
void LogNoisy(Noisy kind, Level level, std::string_view event, std::string_view msg,
              std::initializer_list<Field> fields = {});
// Writes one "log_suppressed" line for each kind that has suppressed lines not yet reported
// (so a flood that stops is still accounted for). The server calls it about once a second.
void FlushSuppressedLogs();

}  // namespace tickwire::obs
