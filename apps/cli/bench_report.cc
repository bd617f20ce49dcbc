#include "bench_report.h"

#include <cstdio>

#include <fmt/core.h>

#include "common.h"

namespace tickwire::cli {
namespace {

double Ratio(std::uint64_t a, std::uint64_t b) {
  return b != 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

double MiB(std::uint64_t kb) { return static_cast<double>(kb) / 1024.0; }

}  // namespace

LatencySummary LatencySummary::From(const LatencyHistogram& h) {
  LatencySummary s;
  s.p50 = h.Quantile(0.50);
  s.p90 = h.Quantile(0.90);
  s.p99 = h.Quantile(0.99);
  s.p999 = h.Quantile(0.999);
  s.max = h.Quantile(1.0);
  s.samples = h.total();
  return s;
}

double ConnsFigures::BytesPerConnection() const {
  if (alive == 0 || rss_after_kb < rss_before_kb) return 0;
  return static_cast<double>(rss_after_kb - rss_before_kb) * 1024.0 / static_cast<double>(alive);
}

double BenchReport::PerSecond(std::uint64_t n) const {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

bool BenchReport::Passed() const {
  if (integrity.Total() != 0) return false;
  if (conns && (conns->ready != conns->requested || conns->alive != conns->requested)) {
    return false;
  }
  return true;
}

void PrintReport(const BenchReport& r, bool json) {
  if (json) {
    std::fputs(ReportJson(r).c_str(), stdout);
    return;
  }
  std::string out = fmt::format("{} bench {}: ", r.system, r.scenario);
  if (r.summary) {
    out += *r.summary;
  } else if (r.conns) {
    out += Plural(r.conns->requested, "idle connection");
  } else {
    out += fmt::format("{}, {}, {}", Plural(static_cast<std::uint64_t>(r.producers), "producer"),
                       Plural(static_cast<std::uint64_t>(r.subscribers), "subscriber"),
                       r.rate > 0 ? fmt::format("{:.0f} msgs/s", r.rate) : "as fast as possible");
    if (r.payload_bytes != 0) out += fmt::format(", {}-byte payloads", r.payload_bytes);
  }
  out += fmt::format(", {:.1f} s measured\n", r.seconds);
  auto row = [&](std::string_view k, const std::string& v) {
    out += fmt::format("  {:<32} {}\n", k, v);
  };
  if (r.conns) {
    const auto& c = *r.conns;
    row("connections ready / alive", fmt::format("{} / {} of {}", c.ready, c.alive, c.requested));
    row("setup s", fmt::format("{:.2f}", c.setup_seconds));
    row("keepalives sent", fmt::format("{}", c.keepalives));
    row("server RSS before / after MiB",
        fmt::format("{:.1f} / {:.1f}", MiB(c.rss_before_kb), MiB(c.rss_after_kb)));
    row("server bytes per connection", fmt::format("{:.0f}", c.BytesPerConnection()));
    row("extrapolated to 100,000 MiB",
        fmt::format("{:.0f}", c.BytesPerConnection() * 100000.0 / (1024.0 * 1024.0)));
  } else if (!r.summary) {
    row("published msgs/s", fmt::format("{:.0f}", r.PerSecond(r.published)));
    if (r.accepted != 0)
      row("accepted (acked) msgs/s", fmt::format("{:.0f}", r.PerSecond(r.accepted)));
    row("delivered msgs/s", fmt::format("{:.0f}", r.PerSecond(r.delivered)));
    if (r.frames != 0) {
      row("DATA_BATCH frames/s", fmt::format("{:.0f}", r.PerSecond(r.frames)));
      row("records per frame", fmt::format("{:.1f}", Ratio(r.delivered, r.frames)));
      row("payload bytes per record", fmt::format("{:.1f}", Ratio(r.frame_bytes, r.delivered)));
    }
  }
  if (r.latency) {
    const auto& l = *r.latency;
    row("latency p50/p90/p99/p99.9 (us)",
        fmt::format("{} / {} / {} / {}", l.p50, l.p90, l.p99, l.p999));
    row("latency max (us)", fmt::format("{} ({})", l.max, Plural(l.samples, "sample")));
  }
  const auto& i = r.integrity;
  if (!r.summary) {
    row("gaps / dups / reorders", fmt::format("{} / {} / {}", i.gaps, i.dups, i.reorders));
    row("lost after drain", fmt::format("{}", i.lost));
  }
  row("errors", fmt::format("{}", i.errors));
  for (const auto& e : r.extras) row(e.label, e.value);
  row("bench CPU s", fmt::format("{:.2f}", r.bench_cpu));
  row("server CPU s", r.server_cpu ? fmt::format("{:.2f}", *r.server_cpu) : "n/a (no server pid)");
  row("server peak RSS MiB", r.server_peak_rss_kb
                                 ? fmt::format("{:.1f}", MiB(*r.server_peak_rss_kb))
                                 : "n/a (no server pid)");
  row("check", r.Passed() ? "passed" : "FAILED");
  if (!r.first_error.empty()) row("first error", r.first_error);
  std::fputs(out.c_str(), stdout);
}

std::string ReportJson(const BenchReport& r) {
  std::string out = "{\"system\":";
  AppendJson(out, r.system);
  out += ",\"scenario\":";
  AppendJson(out, r.scenario);
  out += fmt::format(
      ",\"subscribers\":{},\"producers\":{},\"payload_bytes\":{},\"rate\":{:.0f},"
      "\"seconds\":{:.3f},\"published\":{},\"published_per_s\":{:.1f},\"accepted\":{},"
      "\"accepted_per_s\":{:.1f},\"delivered\":{},\"delivered_per_s\":{:.1f}",
      r.subscribers, r.producers, r.payload_bytes, r.rate, r.seconds, r.published,
      r.PerSecond(r.published), r.accepted, r.PerSecond(r.accepted), r.delivered,
      r.PerSecond(r.delivered));
  if (r.frames != 0) {
    out += fmt::format(
        ",\"frames\":{},\"frames_per_s\":{:.1f},\"records_per_frame\":{:.2f},"
        "\"bytes_per_record\":{:.2f}",
        r.frames, r.PerSecond(r.frames), Ratio(r.delivered, r.frames),
        Ratio(r.frame_bytes, r.delivered));
  }
  if (r.latency) {
    const auto& l = *r.latency;
    out += fmt::format(
        ",\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{},"
        "\"samples\":{}}}",
        l.p50, l.p90, l.p99, l.p999, l.max, l.samples);
  }
  const auto& i = r.integrity;
  out += fmt::format(",\"gaps\":{},\"dups\":{},\"reorders\":{},\"lost\":{},\"errors\":{}", i.gaps,
                     i.dups, i.reorders, i.lost, i.errors);
  if (r.conns) {
    const auto& c = *r.conns;
    out += fmt::format(
        ",\"conns\":{{\"requested\":{},\"ready\":{},\"alive\":{},\"keepalives\":{},"
        "\"setup_s\":{:.3f},\"rss_before_kb\":{},\"rss_after_kb\":{},"
        "\"bytes_per_connection\":{:.1f},\"mib_per_100k\":{:.1f}}}",
        c.requested, c.ready, c.alive, c.keepalives, c.setup_seconds, c.rss_before_kb,
        c.rss_after_kb, c.BytesPerConnection(),
        c.BytesPerConnection() * 100000.0 / (1024.0 * 1024.0));
  }
  for (const auto& e : r.extras) out += fmt::format(",\"{}\":{}", e.key, e.value);
  out += fmt::format(",\"bench_cpu_s\":{:.3f}", r.bench_cpu);
  if (r.server_cpu) out += fmt::format(",\"server_cpu_s\":{:.3f}", *r.server_cpu);
  if (r.server_peak_rss_kb) out += fmt::format(",\"server_peak_rss_kb\":{}", *r.server_peak_rss_kb);
  out += fmt::format(",\"passed\":{}", r.Passed() ? "true" : "false");
  if (!r.first_error.empty()) {
    out += ",\"first_error\":";
    AppendJson(out, r.first_error);
  }
  out += "}\n";
  return out;
}

}  // namespace tickwire::cli
