#include "server/admin_endpoints.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "net/connz.h"
#include "net/metrics.h"
#include "observability/log.h"
#include "observability/metrics.h"

namespace tickwire::server {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

constexpr milliseconds kReadyProbeTimeout{1000};
constexpr milliseconds kConnzTimeout{5000};

// Runs `collect(worker)` on each worker's own thread, then `done(results)` on `home`'s thread,
// or `timed_out()` there if some worker has not answered within `timeout`. Exactly one of the
// two runs.
template <typename T>
void GatherFromWorkers(const std::vector<net::Worker*>& workers, asio::io_context& home,
                       milliseconds timeout, std::function<T(net::Worker&)> collect,
                       std::function<void(std::vector<T>)> done, std::function<void()> timed_out) {
  struct State {
    explicit State(asio::io_context& io, std::size_t n) : timer(io), results(n), remaining(n) {}
    asio::steady_timer timer;
    std::vector<T> results;              // slot i written by worker i only
    std::atomic<std::size_t> remaining;  // the last worker to finish hands over to home
    bool finished = false;               // home's thread only
    std::function<void(std::vector<T>)> done;
    std::function<void()> timed_out;
  };
  if (workers.empty()) {
    asio::post(home, [done = std::move(done)] { done({}); });
    return;
  }
  auto state = std::make_shared<State>(home, workers.size());
  state->done = std::move(done);
  state->timed_out = std::move(timed_out);
  state->timer.expires_after(timeout);
  state->timer.async_wait([state](const boost::system::error_code& ec) {
    if (ec || state->finished) return;
    state->finished = true;
    state->timed_out();
  });
  for (std::size_t i = 0; i < workers.size(); ++i) {
    net::Worker* w = workers[i];
    asio::post(w->io(), [state, i, w, collect, &home]() mutable {
      state->results[i] = collect(*w);
      if (state->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      asio::post(home, [state = std::move(state)] {
        if (state->finished) return;
        state->finished = true;
        state->timer.cancel();
        state->done(std::move(state->results));
      });
    });
  }
}

obs::HttpResponse Text(unsigned status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

obs::HttpResponse JsonError(unsigned status, const std::string& message) {
  std::string body = "{\"error\":";
  obs::AppendJsonString(body, message);
  body += "}\n";
  return {status, "application/json", std::move(body)};
}

}  // namespace

std::string Readiness::NotReadyReason() const {
  if (draining_.load()) return "draining";
  if (!accepting_.load()) return "not accepting connections";
  if (!backplane_.load())
    return "backplane not ready (NATS connection, stream subscription or replay)";
  return {};
}

AdminEndpoints::AdminEndpoints(const net::ServerContext& ctx, const Readiness& readiness,
                               net::Worker& accept_worker, const SnapshotStats& snapshots)
    : ctx_(ctx), readiness_(readiness), accept_worker_(accept_worker), snapshots_(snapshots) {
  http_.Handle("/metrics",
               [this](const obs::HttpRequest&, obs::HttpRespond respond) { Metrics(respond); });
  http_.Handle("/healthz", [](const obs::HttpRequest&, obs::HttpRespond respond) {
    respond(Text(200, "ok\n"));
  });
  http_.Handle("/readyz",
               [this](const obs::HttpRequest&, obs::HttpRespond respond) { Ready(respond); });
  http_.Handle("/connz", [this](const obs::HttpRequest& request, obs::HttpRespond respond) {
    Connz(request, respond);
  });
}

std::string AdminEndpoints::Open(const std::string& host, std::uint16_t port) {
  if (const std::string& root = ctx_.config.web_root; !root.empty()) {
    std::string error;
    site_ = obs::StaticSite::Load(root, error);
    if (!site_) return error;
    obs::Log(obs::Level::kInfo, "web_root_loaded", "serving WEB_ROOT at /chart/",
             {{"web_root", root}, {"files", site_->file_count()}, {"bytes", site_->total_bytes()}});
    // The page's relative URLs (chart.js, chart.css) need the trailing slash.
    http_.Handle("/chart", [](const obs::HttpRequest&, obs::HttpRespond respond) {
      obs::HttpResponse r = Text(301, "moved to /chart/\n");
      r.headers.emplace_back("Location", "/chart/");
      respond(std::move(r));
    });
    http_.HandlePrefix("/chart/",
                       [this](const obs::HttpRequest& request, obs::HttpRespond respond) {
                         respond(site_->Serve(std::string_view(request.path).substr(7)));
                       });
  }
  return http_.Open(host, port, "METRICS_ADDR");
}

void AdminEndpoints::Metrics(obs::HttpRespond respond) {
  std::vector<const net::WorkerMetrics*> metrics;
  for (const net::Worker* w : ctx_.workers) metrics.push_back(&w->metrics());
  // Server-wide security counters (shared atomics, not per worker).
  const std::string& prefix = ctx_.config.metrics_prefix;  // fixed for the process's life
  obs::Exposition e{prefix};
  e.CounterFamily("auth_rate_limited_total",
                  "AUTH attempts answered AUTH_RATE_LIMITED without checking the password.");
  e.Sample(static_cast<double>(ctx_.rate_limiter.throttled_total()));
  e.CounterFamily("auth_delayed_total",
                  "AUTHs for a user name over its failure budget, answered after a delay.");
  e.Sample(static_cast<double>(ctx_.rate_limiter.delayed_total()));
  if (ctx_.hash_pool) {
    const auth::HashPool& pool = *ctx_.hash_pool;
    e.GaugeFamily("auth_hash_queue", "Password checks waiting for a hashing thread.");
    e.Sample(static_cast<double>(pool.queued()));
    e.CounterFamily("auth_hash_checks_total",
                    "Password checks (PBKDF2) run on the hashing threads.");
    e.Sample(static_cast<double>(pool.completed()));
    e.CounterFamily("auth_hash_refused_total",
                    "AUTHs answered AUTH_RATE_LIMITED because the hashing queue was full.");
    e.Sample(static_cast<double>(pool.refused()));
  }
  e.CounterFamily("proxy_header_rejections_total",
                  "Connections closed before their session: PROXY header missing, malformed or "
                  "late (malformed), or sent from outside PROXY_TRUSTED_CIDRS (untrusted).");
  e.Sample(static_cast<double>(ctx_.counters.proxy_rejected.load()), {{"reason", "malformed"}});
  e.Sample(static_cast<double>(ctx_.counters.proxy_untrusted.load()), {{"reason", "untrusted"}});
  e.CounterFamily("proxy_local_total", "PROXY LOCAL headers (load-balancer health checks).");
  e.Sample(static_cast<double>(ctx_.counters.proxy_local.load()));
  e.CounterFamily("tls_handshake_failures_total", "TLS handshakes that failed or timed out.");
  e.Sample(static_cast<double>(ctx_.counters.tls_handshake_failed.load()));
  e.CounterFamily("log_lines_dropped_total",
                  "Log lines dropped because stdout did not keep up (the log buffer was full).");
  e.Sample(static_cast<double>(obs::LogLinesDropped()));
  // The operations endpoint itself (this runs on its thread).
  const auto& h = http_.counters();
  e.GaugeFamily("http_connections", "Connections open to the operations endpoint.");
  e.Sample(static_cast<double>(http_.open_sessions()));
  e.CounterFamily("http_connections_dropped_total",
                  "Operations endpoint connections the server closed: no request within the "
                  "idle timeout, a request header not complete in time, a response not taken in "
                  "time, evicted to make room for a new connection, or refused for lack of room.");
  e.Sample(static_cast<double>(h.idle_timeout.load()), {{"reason", "idle_timeout"}});
  e.Sample(static_cast<double>(h.header_timeout.load()), {{"reason", "header_timeout"}});
  e.Sample(static_cast<double>(h.write_timeout.load()), {{"reason", "write_timeout"}});
  e.Sample(static_cast<double>(h.evicted.load()), {{"reason", "evicted"}});
  e.Sample(static_cast<double>(h.refused.load()), {{"reason", "refused"}});
  // DATA_DIR snapshots (docs/RELIABILITY.md); zero when DATA_DIR is off.
  const SnapshotStats& snap = snapshots_;
  e.CounterFamily("snapshots_total",
                  "History snapshot rounds (one file per worker) written to DATA_DIR, by result.");
  e.Sample(static_cast<double>(snap.rounds_written.load()), {{"result", "written"}});
  e.Sample(static_cast<double>(snap.rounds_failed.load()), {{"result", "failed"}});
  e.CounterFamily("snapshot_files_refused_total",
                  "Snapshot files refused at start (corrupt, truncated, other version); the "
                  "server then starts without history.");
  e.Sample(static_cast<double>(snap.files_refused.load()));
  e.GaugeFamily("snapshot_restored_topics", "Topics restored from DATA_DIR at start.");
  e.Sample(static_cast<double>(snap.topics_restored.load()));
  e.GaugeFamily("snapshot_dropped_topics",
                "Topics of the restored snapshot left out at start (over this run's MAX_TOPICS).");
  e.Sample(static_cast<double>(snap.topics_dropped.load()));
  e.GaugeFamily("snapshot_last_success_timestamp_seconds",
                "Wall-clock time the last complete snapshot round finished (0: none yet).");
  e.Sample(static_cast<double>(snap.last_success_ns.load()) / 1e9);
  e.GaugeFamily("snapshot_duration_seconds", "How long the last snapshot round took.");
  e.Sample(static_cast<double>(snap.last_round_us.load()) / 1e6);
  e.GaugeFamily("snapshot_bytes", "Size of the last snapshot round's files.");
  e.Sample(static_cast<double>(snap.last_bytes.load()));
  e.GaugeFamily("snapshot_max_pause_seconds",
                "Longest a worker's loop spent on one snapshot slice in the last round.");
  e.Sample(static_cast<double>(snap.last_max_pause_us.load()) / 1e6);
  ctx_.bus->AppendMetrics(e);  // the multi-instance bus's families; none in the embedded mode
  respond({200, "text/plain; version=0.0.4; charset=utf-8",
           net::RenderMetrics(metrics, prefix) + e.Render()});
}

void AdminEndpoints::Ready(obs::HttpRespond respond) {
  if (auto why = readiness_.NotReadyReason(); !why.empty()) {
    respond(Text(503, "not ready: " + why + "\n"));
    return;
  }
  // The accept loop runs on this worker: it must answer promptly, not merely exist.
  GatherFromWorkers<bool>(
      {&accept_worker_}, http_.io(), kReadyProbeTimeout, [](net::Worker&) { return true; },
      [this, respond](std::vector<bool>) {
        auto why = readiness_.NotReadyReason();
        respond(why.empty() ? Text(200, "ready\n") : Text(503, "not ready: " + why + "\n"));
      },
      [respond] { respond(Text(503, "not ready: accept loop not responding\n")); });
}

void AdminEndpoints::Connz(const obs::HttpRequest& request, obs::HttpRespond respond) {
  net::ConnzQuery query;
  if (auto err = net::ParseConnzQuery(request.query, query); !err.empty()) {
    respond(JsonError(400, err));
    return;
  }
  // Two steps, so that a request copies a bounded amount: every connection's sort key (a few
  // numbers each), then the full description of only the page's connections. A connection
  // that closes in between is left out of the page.
  const auto now = net::Clock::now();
  auto timed_out = [respond] { respond(JsonError(503, "a worker did not answer within 5 s")); };
  GatherFromWorkers<std::vector<net::ConnectionKey>>(
      ctx_.workers, http_.io(), kConnzTimeout,
      [now, sort = query.sort](net::Worker& w) {
        std::vector<net::ConnectionKey> out;
        w.CollectConnectionKeys(now, sort, out);
        return out;
      },
      [this, respond, query, now, timed_out](std::vector<std::vector<net::ConnectionKey>> keys) {
        std::vector<net::ConnectionKey> all;
        for (auto& k : keys) all.insert(all.end(), k.begin(), k.end());
        const std::size_t total = all.size();
        const std::vector<net::ConnectionKey> page = net::SelectPage(std::move(all), query);
        std::map<unsigned, std::vector<std::uint64_t>> ids_by_worker;
        for (const auto& k : page) ids_by_worker[k.worker].push_back(k.id);
        std::vector<net::Worker*> owners;
        for (net::Worker* w : ctx_.workers) {
          if (ids_by_worker.contains(w->index())) owners.push_back(w);
        }
        GatherFromWorkers<std::vector<net::ConnectionInfo>>(
            owners, http_.io(), kConnzTimeout,
            [now, query, ids_by_worker](net::Worker& w) {
              std::vector<net::ConnectionInfo> out;
              w.CollectConnections(ids_by_worker.at(w.index()), now, query, out);
              return out;
            },
            [respond, query, total, page](std::vector<std::vector<net::ConnectionInfo>> parts) {
              std::map<std::uint64_t, net::ConnectionInfo> by_id;
              for (auto& p : parts) {
                for (auto& c : p) by_id.emplace(c.id, std::move(c));
              }
              std::vector<net::ConnectionInfo> ordered;
              ordered.reserve(by_id.size());
              for (const auto& k : page) {
                if (auto it = by_id.find(k.id); it != by_id.end()) {
                  ordered.push_back(std::move(it->second));
                }
              }
              respond({200, "application/json", net::RenderConnz(total, ordered, query)});
            },
            timed_out);
      },
      timed_out);
}

}  // namespace tickwire::server
