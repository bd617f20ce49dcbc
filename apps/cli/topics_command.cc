// tickwire topics: list the topics the server holds data for. The protocol has no listing
// request; this subscribes to '*' in every mode with backfill 1 (each topic's newest retained
// tick, SECOND bar and MINUTE bar) and collects topic names until none has been new for --wait.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "common.h"
#include "record_format.h"
#include "topic_listing.h"

namespace tickwire::cli {
namespace {

struct TopicsFlags {
  ConnectionFlags conn;
  bool json = false;
  bool names = false;
  std::string wait = "1s";
  std::string timeout = "30s";
};

int RunTopics(const TopicsFlags& f) {
  const auto wait = ParseDurationFlag(f.wait);
  const auto timeout = ParseDurationFlag(f.timeout);
  if (!wait || !timeout || wait->count() <= 0 || timeout->count() <= 0) {
    PrintError("--wait and --timeout take a duration above 0 (e.g. 1s, 500ms)");
    return kExitUsage;
  }
  if (f.json && f.names) {
    PrintError("--json and --names are exclusive");
    return kExitUsage;
  }
  std::string error;
  auto options = MakeClientOptions(f.conn, "tickwire-topics", error);
  if (!options) {
    PrintError(error);
    return kExitUsage;
  }
  InstallStopSignals();
  const auto connected = ConnectOrReport(*options);
  if (!connected) return kExitFailure;
  auto& c = *connected;
  for (const auto mode : {client::Mode::kTick, client::Mode::kSecond, client::Mode::kMinute}) {
    auto sub = c.Subscribe(mode, {"*"}, /*backfill=*/1);
    if (!sub.ok()) {
      const auto& e = sub.error();
      PrintError(fmt::format("subscribe to '*' ({}): {}", client::ModeName(mode), e.ToString()));
      if (e.kind == client::ErrorKind::kServer && e.code == client::ErrorCode::kForbidden) {
        PrintError("listing topics needs permission to subscribe to every topic (subscribe=*)");
      }
      return kExitFailure;
    }
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto last_new = start;
  TopicListing listing;
  bool complete = false;
  while (!StopRequested()) {
    const auto now = Clock::now();
    if (now - last_new >= *wait) {
      complete = true;
      break;
    }
    if (now - start >= *timeout) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(last_new + *wait, start + *timeout) - now);
    auto ev =
        c.Next(std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(100)));
    if (!ev) continue;
    if (auto* batch = std::get_if<client::Batch>(&*ev)) {
      bool grew = false;
      for (const auto& r : batch->records) grew = listing.Add(r) || grew;
      if (grew) last_new = Clock::now();
    } else if (auto* err = std::get_if<client::Error>(&*ev)) {
      if (!err->fatal) PrintError("warning: " + err->ToString());
    } else {
      PrintClosed(std::get<client::Closed>(*ev));
      return kExitFailure;
    }
  }
  c.Close();
  if (StopRequested()) return kExitInterrupted;

  std::string out;
  if (f.json) {
    listing.AppendJsonLines(out);
  } else if (f.names) {
    listing.AppendNames(out);
  } else {
    listing.AppendTable(out);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  if (!complete) {
    PrintError(fmt::format(
        "{} after --timeout {}; new topics were still arriving, the list may be incomplete",
        Plural(listing.size(), "topic"), f.timeout));
    return kExitPartial;
  }
  if (!f.json && !f.names) PrintError(Plural(listing.size(), "topic"));
  return kExitOk;
}

}  // namespace

void RegisterTopics(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<TopicsFlags>();
  auto* cmd = app.add_subcommand(
      "topics", "List the topics the server holds data for, with their last tick (or bar)");
  cmd->footer(
      "The protocol has no listing request: topics subscribes to '*' in every mode with "
      "backfill 1, so it needs permission to subscribe to every topic (subscribe=*), and it "
      "lists the topics that have retained history (ticks, SECOND or MINUTE bars) or live data "
      "while it waits. A topic without any (HISTORY_* set to 0, or forgotten under MAX_TOPICS) "
      "is not listed, and beyond MAX_BACKFILL_RECORDS topics the server sends only part. It "
      "ends once no new topic has arrived for --wait after the subscriptions were confirmed.");
  AddConnectionFlags(*cmd, flags->conn);
  cmd->add_flag("--json", flags->json,
                "One JSON object per topic: topic, time, last_ms, price, seq (a string)");
  cmd->add_flag("--names", flags->names, "Topic names only, one per line");
  cmd->add_option("--wait", flags->wait,
                  "End once no new topic has arrived for this long (raise it for a busy server "
                  "with many topics)")
      ->capture_default_str();
  cmd->add_option("--timeout", flags->timeout,
                  "Give up waiting after this long: print what arrived, exit 3")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunTopics(*flags); });
}

}  // namespace tickwire::cli
