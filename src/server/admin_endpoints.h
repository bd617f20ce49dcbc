#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "net/worker.h"
#include "observability/http_server.h"
#include "observability/static_site.h"
#include "server/snapshots.h"

namespace tickwire::server {

// Whether this instance should receive new clients. Any thread may set or read it.
class Readiness {
 public:
  // The accept loop runs (set after the listener starts, cleared when it stops).
  void SetAccepting(bool v) { accepting_.store(v); }
  // Graceful drain: not ready from the moment a drain starts.
  void SetDraining(bool v) { draining_.store(v); }
  // Clustered mode: the backplane is connected. Stays true in the embedded (single-process)
  // mode, which has no backplane.
  void SetBackplaneConnected(bool v) { backplane_.store(v); }
  bool draining() const { return draining_.load(); }

  // Empty when ready; otherwise why not, for the probe's response body.
  std::string NotReadyReason() const;

 private:
  std::atomic<bool> accepting_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> backplane_{true};
};

// The operations endpoints on METRICS_ADDR, served by obs::HttpServer on its own thread:
//   /metrics  Prometheus text exposition, summed over workers at scrape time (no locks)
//   /healthz  liveness: 200 while the process serves HTTP
//   /readyz   200 only while Readiness says so and the accept loop's worker answers within 1 s
//   /connz    JSON listing of connections, gathered by posting to each worker
//   /chart/   with WEB_ROOT: the files of that directory (the live chart page), from memory
class AdminEndpoints {
 public:
  AdminEndpoints(const net::ServerContext& ctx, const Readiness& readiness,
                 net::Worker& accept_worker, const SnapshotStats& snapshots);

  // Loads WEB_ROOT (if set) and binds; returns an error line on failure.
  std::string Open(const std::string& host, std::uint16_t port);
  std::uint16_t port() const { return http_.port(); }
  void Start() { http_.Start(); }
  // Stops serving. Call before the workers stop; answers still owed by workers are dropped.
  void Stop() { http_.Stop(); }

 private:
  void Metrics(obs::HttpRespond respond);
  void Ready(obs::HttpRespond respond);
  void Connz(const obs::HttpRequest& request, obs::HttpRespond respond);

  const net::ServerContext& ctx_;
  const Readiness& readiness_;
  net::Worker& accept_worker_;
  const SnapshotStats& snapshots_;  // DATA_DIR (all zero when off)
  obs::HttpServer http_;
  std::unique_ptr<obs::StaticSite> site_;  // WEB_ROOT's files; null when it is off
};

}  // namespace tickwire::server
