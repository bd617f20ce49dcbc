// tickwire sub: subscribe and print records, as text or JSON lines.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "common.h"

namespace tickwire::cli {
namespace {

struct SubFlags {
  ConnectionFlags conn;
  std::string mode = "tick";
  bool json = false;
  std::uint64_t count = 0;  // 0 = unlimited
  std::string duration;     // empty = unlimited
  std::uint32_t backfill = 0;
  std::int64_t since_ms = 0;
  std::vector<std::string> topics;
};

void AppendRecordText(std::string& out, const client::Record& r) {
  if (const auto* t = std::get_if<client::Tick>(&r)) {
    out += fmt::format("{} {} price={} size={} seq={}\n", FormatTimeNs(t->ts_ns), t->topic,
                       t->price, t->size, t->seq);
  } else {
    const auto& b = std::get<client::Bar>(r);
    out += fmt::format("{} {} O={} H={} L={} C={} volume={} count={} vwap={}\n",
                       FormatTimeMs(b.start_ms), b.topic, b.open, b.high, b.low, b.close, b.volume,
                       b.count, b.vwap);
  }
}

void AppendRecordJson(std::string& out, const client::Record& r) {
  if (const auto* t = std::get_if<client::Tick>(&r)) {
    out += "{\"type\":\"tick\",\"topic\":";
    AppendJson(out, t->topic);
    out += fmt::format(",\"price\":{},\"size\":{},\"ts_ns\":{},\"seq\":{},\"prev_seq\":{}}}\n",
                       t->price, t->size, t->ts_ns, t->seq, t->prev_seq);
  } else {
    const auto& b = std::get<client::Bar>(r);
    out += "{\"type\":\"bar\",\"interval\":\"";
    out += client::ModeName(b.interval);
    out += "\",\"topic\":";
    AppendJson(out, b.topic);
    out += fmt::format(
        ",\"start_ms\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\"volume\":{},"
        "\"count\":{},\"vwap\":{}}}\n",
        b.start_ms, b.open, b.high, b.low, b.close, b.volume, b.count, b.vwap);
  }
}

int RunSub(const SubFlags& f) {
  client::Mode mode = client::Mode::kTick;
  if (f.mode == "second") {
    mode = client::Mode::kSecond;
  } else if (f.mode == "minute") {
    mode = client::Mode::kMinute;
  }
  std::optional<std::chrono::milliseconds> duration;
  if (!f.duration.empty()) {
    duration = ParseDurationFlag(f.duration);
    if (!duration) {
      PrintError("invalid --duration '" + f.duration + "' (use e.g. 10s, 500ms)");
      return 2;
    }
  }
  std::string error;
  auto options = MakeClientOptions(f.conn, "tickwire-sub", error);
  if (!options) {
    PrintError(error);
    return 2;
  }
  InstallStopSignals();
  auto connected = client::Client::Connect(*options);
  if (!connected.ok()) {
    PrintError(connected.error().ToString());
    return 1;
  }
  auto& c = *connected.value();
  auto sub = c.Subscribe(mode, f.topics, f.backfill, f.since_ms);
  if (!sub.ok()) {
    PrintError("subscribe: " + sub.error().ToString());
    return 1;
  }

  const auto start = std::chrono::steady_clock::now();
  std::uint64_t printed = 0;
  std::string out;
  while (!StopRequested()) {
    if (f.count != 0 && printed >= f.count) break;
    auto wait = std::chrono::milliseconds(100);
    if (duration) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          start + *duration - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      wait = std::min(wait, left);
    }
    auto ev = c.Next(wait);
    if (!ev) continue;
    if (auto* batch = std::get_if<client::Batch>(&*ev)) {
      out.clear();
      for (const auto& r : batch->records) {
        if (f.count != 0 && printed >= f.count) break;
        if (f.json) {
          AppendRecordJson(out, r);
        } else {
          AppendRecordText(out, r);
        }
        ++printed;
      }
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
    } else if (auto* err = std::get_if<client::Error>(&*ev)) {
      if (!err->fatal) PrintError("warning: " + err->ToString());  // fatal ones end in Closed
    } else {
      const auto& closed = std::get<client::Closed>(*ev);
      PrintError("connection closed: " +
                 (closed.reason ? closed.reason->ToString() : std::string("by client")));
      return 1;
    }
  }
  c.Close();
  return 0;
}

}  // namespace

void RegisterSub(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<SubFlags>();
  auto* cmd = app.add_subcommand("sub", "Subscribe to topics and print records");
  AddConnectionFlags(*cmd, flags->conn);
  cmd->add_option("--mode", flags->mode, "tick, second or minute")
      ->check(CLI::IsMember({"tick", "second", "minute"}))
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "One JSON object per line");
  cmd->add_option("--count", flags->count, "Exit after printing N records");
  cmd->add_option("--duration", flags->duration, "Exit after this long (e.g. 10s)");
  cmd->add_option("--backfill", flags->backfill, "Retained records per topic to send first");
  cmd->add_option("--since-ms", flags->since_ms, "Send retained records from this Unix ms on");
  cmd->add_option("topics", flags->topics, "Topics ('*' for all)")->required();
  cmd->callback([flags, &exit_code] { exit_code = RunSub(*flags); });
}

}  // namespace tickwire::cli
