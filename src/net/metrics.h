#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "engine/topic.h"
#include "engine/topic_cap.h"
#include "observability/metrics.h"
#include "session/close_reason.h"

namespace tickwire::net {

// publish_latency_ms bucket bounds, in microseconds (exposed in milliseconds).
inline constexpr std::array<std::uint64_t, 15> kPublishLatencyBoundsUs = {
    100,    250,    500,     1'000,   2'000,   5'000,     10'000,   25'000,
    50'000, 75'000, 100'000, 250'000, 500'000, 1'000'000, 5'000'000};
// data_batch_records bucket bounds (records per DATA_BATCH frame).
inline constexpr std::array<std::uint64_t, 13> kBatchRecordsBounds = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1'000, 2'000, 5'000, 10'000};

// The byte transport a client connection uses (the `transport` label).
enum class Transport : std::uint8_t { kTcp = 0, kWebSocket, kCount };
std::string_view TransportName(Transport t);
// ws_upgrades_rejected_total reasons: net::ws::Rejection values 1..kWsRejections-1.
inline constexpr std::size_t kWsRejections = 8;

// Why a slow consumer was dropped (a bounded label set).
enum class SlowConsumerCause : std::uint8_t { kPendingBytes = 0, kWriteDeadline, kCount };

// The metrics of one worker. Written only by the owning worker's thread, through one-line
// hooks in Worker and Connection (plain adds, see obs::Counter); read by the metrics endpoint
// and summed over workers at scrape time. Nothing here takes a lock.
struct alignas(64) WorkerMetrics {
  static constexpr std::size_t kFrameTypes = 16;  // by type byte; slot 0 = not a client type
  static constexpr std::size_t kErrorCodes = 16;  // by ErrorCode value
  static constexpr std::size_t kCloseReasons =
      static_cast<std::size_t>(session::CloseReason::kCount);
  static constexpr std::size_t kSlowConsumerCauses =
      static_cast<std::size_t>(SlowConsumerCause::kCount);

  obs::Gauge active_connections;
  obs::Counter connections_accepted;
  // The same two, by transport (active_connections and connections_accepted_total stay the
  // totals the runbook and alerts use).
  std::array<obs::Gauge, static_cast<std::size_t>(Transport::kCount)> active_by_transport;
  std::array<obs::Counter, static_cast<std::size_t>(Transport::kCount)> accepted_by_transport;
  // WebSocket upgrade requests refused, by net::ws::Rejection.
  std::array<obs::Counter, kWsRejections> ws_upgrades_rejected;
  // Every closed connection by its close reason; auth_failures_total and
  // heartbeat_timeouts_total are read from here too.
  std::array<obs::Counter, kCloseReasons> connection_drops;
  std::array<obs::Counter, kFrameTypes> frames_received;
  std::array<obs::Counter, kFrameTypes> bytes_received;
  obs::Counter bytes_sent;
  obs::Counter records_published;  // ticks accepted in PUBLISH frames
  obs::Counter records_delivered;  // records in DATA_BATCH frames written to sockets
  // Bar engine counters, copied from this worker's shard by the sweep; index 0 = SECOND,
  // 1 = MINUTE. A tick late for its MINUTE bar is late for its SECOND bar too.
  std::array<obs::Counter, 2> late_ticks;
  std::array<obs::Counter, 2> bars_closed;
  obs::Counter topics_evicted;
  // Ticks refused by the topic cap, by engine::Refusal (slot 0 unused); copied from the shard.
  std::array<obs::Counter, engine::kRefusalKinds> ticks_refused;
  obs::Counter backfills_truncated;
  // By AdmissionLimit: new connections refused over MAX_CONNECTIONS (written by the listener, on
  // worker 0), and waiting connections closed to make room under MAX_UNAUTH_CONNECTIONS and
  // MAX_UNAUTH_PER_SOURCE (written by the evicted connection's worker when it closes it).
  std::array<obs::Counter, 3> connections_rejected;
  obs::Gauge active_topics;  // topics this worker's shard holds state for (set by the sweep)
  std::array<obs::Gauge, engine::kModeSlots> active_subscriptions;  // by engine::Mode value
  std::array<obs::Counter, kSlowConsumerCauses> slow_consumers;
  std::array<obs::Counter, kErrorCodes> errors_sent;  // ERROR frames sent, by code
  obs::Histogram<kPublishLatencyBoundsUs.size()> publish_latency_us{kPublishLatencyBoundsUs};
  obs::Histogram<kBatchRecordsBounds.size()> batch_records{kBatchRecordsBounds};

  // Hooks with a little logic, so each call site stays one line.
  void OnAccepted(Transport t) {
    ++connections_accepted;
    ++active_connections;
    ++accepted_by_transport[static_cast<std::size_t>(t)];
    ++active_by_transport[static_cast<std::size_t>(t)];
  }
  void OnFrameReceived(std::uint8_t type, std::size_t frame_bytes);
  // A DATA_BATCH of `records` left the socket `latency` after its records were ready.
  void OnBatchWritten(std::chrono::nanoseconds latency, std::uint32_t records);
  void OnClosed(session::CloseReason reason, Transport t) {
    ++connection_drops[static_cast<std::size_t>(reason)];
    --active_connections;
    --active_by_transport[static_cast<std::size_t>(t)];
  }
  void OnErrorSent(int code) {
    if (code >= 0 && static_cast<std::size_t>(code) < kErrorCodes) {
      ++errors_sent[static_cast<std::size_t>(code)];
    }
  }
  void OnSubscriptions(engine::Mode mode, std::int64_t delta) {
    active_subscriptions[static_cast<std::size_t>(mode)].Add(delta);
  }
  void OnSlowConsumer(SlowConsumerCause cause) {
    ++slow_consumers[static_cast<std::size_t>(cause)];
  }
};

// The Prometheus text exposition of the sum of `workers`' metrics, plus build and process
// metrics, every family name behind `prefix` (METRICS_PREFIX). Runs on the metrics endpoint's
// thread; reads the workers' counters without locks.
std::string RenderMetrics(std::span<const WorkerMetrics* const> workers,
                          std::string_view prefix = {});

}  // namespace tickwire::net
