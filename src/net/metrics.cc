#include "net/metrics.h"

#include <algorithm>

#include "observability/process_metrics.h"
#include "protocol/frame.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::net {
namespace {

using session::CloseReason;

// Client frame types by name; anything else a client sends (server-only or unknown types) is
// "other".
std::string_view FrameTypeLabel(std::size_t slot) {
  return slot == 0 ? "other" : protocol::FrameTypeName(static_cast<std::uint8_t>(slot));
}

bool IsAuthFailure(CloseReason r) {
  return r == CloseReason::kAuthRequired || r == CloseReason::kAuthFailed ||
         r == CloseReason::kAuthTimeout;
}

std::string_view SlowConsumerLabel(std::size_t cause) {
  switch (static_cast<SlowConsumerCause>(cause)) {
    case SlowConsumerCause::kPendingBytes:
      return "pending_bytes";
    case SlowConsumerCause::kWriteDeadline:
      return "write_deadline";
    case SlowConsumerCause::kCount:
      break;
  }
  return "unknown";
}

// Sum over workers of `get(worker)`.
template <typename Get>
double Sum(std::span<const WorkerMetrics* const> workers, Get get) {
  double total = 0;
  for (const WorkerMetrics* w : workers) total += static_cast<double>(get(*w));
  return total;
}

}  // namespace

void WorkerMetrics::OnFrameReceived(std::uint8_t type, std::size_t frame_bytes) {
  const std::size_t slot = protocol::IsClientFrameType(type) ? type : 0;
  ++frames_received[slot];
  bytes_received[slot] += frame_bytes;
}

void WorkerMetrics::OnBatchWritten(std::chrono::nanoseconds latency, std::uint32_t records) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
  publish_latency_us.Observe(us > 0 ? static_cast<std::uint64_t>(us) : 0);
  batch_records.Observe(records);
  records_delivered += records;
}

std::string_view TransportName(Transport t) { return t == Transport::kWebSocket ? "ws" : "tcp"; }

std::string RenderMetrics(std::span<const WorkerMetrics* const> workers, std::string_view prefix) {
  obs::Exposition e{std::string(prefix)};
  using M = WorkerMetrics;

  e.GaugeFamily("active_connections", "Client connections currently open.");
  e.Sample(Sum(workers, [](const M& m) { return m.active_connections.Get(); }));

  e.CounterFamily("connections_accepted_total", "Client connections accepted.");
  e.Sample(Sum(workers, [](const M& m) { return m.connections_accepted.Get(); }));

  e.GaugeFamily("active_connections_by_transport",
                "Client connections currently open, by transport (tcp, ws); sums to "
                "active_connections.");
  for (std::size_t t = 0; t < static_cast<std::size_t>(Transport::kCount); ++t) {
    e.Sample(Sum(workers, [t](const M& m) { return m.active_by_transport[t].Get(); }),
             {{"transport", std::string(TransportName(static_cast<Transport>(t)))}});
  }

  e.CounterFamily("connections_accepted_by_transport_total",
                  "Client connections accepted, by transport (tcp, ws); sums to "
                  "connections_accepted_total.");
  for (std::size_t t = 0; t < static_cast<std::size_t>(Transport::kCount); ++t) {
    e.Sample(Sum(workers, [t](const M& m) { return m.accepted_by_transport[t].Get(); }),
             {{"transport", std::string(TransportName(static_cast<Transport>(t)))}});
  }

  e.CounterFamily("ws_upgrades_rejected_total",
                  "WebSocket upgrade requests refused, by reason (the connection is closed).");
  static constexpr const char* kWsReasons[] = {"malformed", "too_large", "not_found", "not_upgrade",
                                               "version",   "origin",    "timeout"};
  static_assert(std::size(kWsReasons) == kWsRejections - 1);
  for (std::size_t r = 1; r < kWsRejections; ++r) {
    e.Sample(Sum(workers, [r](const M& m) { return m.ws_upgrades_rejected[r].Get(); }),
             {{"reason", kWsReasons[r - 1]}});
  }

  e.CounterFamily("connection_drops_total",
                  "Client connections closed, by close reason (client_closed: the peer closed).");
  for (std::size_t r = 1; r < M::kCloseReasons; ++r) {
    e.Sample(Sum(workers, [r](const M& m) { return m.connection_drops[r].Get(); }),
             {{"reason", std::string(session::CloseReasonName(static_cast<CloseReason>(r)))}});
  }

  e.CounterFamily("auth_failures_total", "Connections closed for failing AUTH, by reason.");
  for (std::size_t r = 1; r < M::kCloseReasons; ++r) {
    if (!IsAuthFailure(static_cast<CloseReason>(r))) continue;
    e.Sample(Sum(workers, [r](const M& m) { return m.connection_drops[r].Get(); }),
             {{"reason", std::string(session::CloseReasonName(static_cast<CloseReason>(r)))}});
  }

  e.CounterFamily("heartbeat_timeouts_total",
                  "Connections closed because no HEARTBEAT arrived within HEARTBEAT_TIMEOUT.");
  {
    const auto hb = static_cast<std::size_t>(CloseReason::kHeartbeatTimeout);
    e.Sample(Sum(workers, [hb](const M& m) { return m.connection_drops[hb].Get(); }));
  }

  e.CounterFamily("slow_consumer_disconnects_total",
                  "Connections dropped as slow consumers, by cause (pending output over "
                  "MAX_PENDING_BYTES, or a write past WRITE_DEADLINE_MS).");
  for (std::size_t c = 0; c < M::kSlowConsumerCauses; ++c) {
    e.Sample(Sum(workers, [c](const M& m) { return m.slow_consumers[c].Get(); }),
             {{"reason", std::string(SlowConsumerLabel(c))}});
  }

  e.CounterFamily(
      "frames_received_total",
      "Frames received from clients, by frame type (other: types clients may not send).");
  for (std::size_t t = 0; t < M::kFrameTypes; ++t) {
    if (t != 0 && !protocol::IsClientFrameType(static_cast<std::uint8_t>(t))) continue;
    e.Sample(Sum(workers, [t](const M& m) { return m.frames_received[t].Get(); }),
             {{"type", std::string(FrameTypeLabel(t))}});
  }

  e.CounterFamily("bytes_received_total",
                  "Bytes of whole frames (header included) received from clients, by frame type.");
  for (std::size_t t = 0; t < M::kFrameTypes; ++t) {
    if (t != 0 && !protocol::IsClientFrameType(static_cast<std::uint8_t>(t))) continue;
    e.Sample(Sum(workers, [t](const M& m) { return m.bytes_received[t].Get(); }),
             {{"type", std::string(FrameTypeLabel(t))}});
  }

  e.CounterFamily("bytes_sent_total", "Bytes written to client sockets (all frame types).");
  e.Sample(Sum(workers, [](const M& m) { return m.bytes_sent.Get(); }));

  e.CounterFamily("protocol_errors_total", "ERROR frames sent to clients, by error code.");
  for (std::size_t c = 1; c < M::kErrorCodes; ++c) {
    if (!tickwire::v1::ErrorCode_IsValid(static_cast<int>(c))) continue;
    e.Sample(Sum(workers, [c](const M& m) { return m.errors_sent[c].Get(); }),
             {{"code", tickwire::v1::ErrorCode_Name(static_cast<tickwire::v1::ErrorCode>(c))}});
  }

  e.CounterFamily("records_published_total", "Ticks accepted from PUBLISH frames.");
  e.Sample(Sum(workers, [](const M& m) { return m.records_published.Get(); }));

  e.CounterFamily("records_delivered_total",
                  "Records in DATA_BATCH frames written to subscribers' sockets.");
  e.Sample(Sum(workers, [](const M& m) { return m.records_delivered.Get(); }));

  e.CounterFamily("late_ticks_total",
                  "Ticks accepted after their bar's bucket closed (not folded into it), by "
                  "interval.");
  for (std::size_t i = 0; i < 2; ++i) {
    e.Sample(Sum(workers, [i](const M& m) { return m.late_ticks[i].Get(); }),
             {{"interval", i == 0 ? "second" : "minute"}});
  }
  e.CounterFamily("bars_closed_total", "Bars closed and retained, by interval.");
  for (std::size_t i = 0; i < 2; ++i) {
    e.Sample(Sum(workers, [i](const M& m) { return m.bars_closed[i].Get(); }),
             {{"interval", i == 0 ? "second" : "minute"}});
  }
  e.CounterFamily("topics_evicted_total",
                  "Topics forgotten (with their history) to stay within MAX_TOPICS.");
  e.Sample(Sum(workers, [](const M& m) { return m.topics_evicted.Get(); }));
  e.CounterFamily("ticks_refused_total",
                  "Ticks of valid PUBLISH frames not applied because their new topic did not fit "
                  "the topic cap, by reason.");
  for (std::size_t r = 1; r < engine::kRefusalKinds; ++r) {
    e.Sample(Sum(workers, [r](const M& m) { return m.ticks_refused[r].Get(); }),
             {{"reason", r == static_cast<std::size_t>(engine::Refusal::kTopicLimit)
                             ? "topic_limit"
                             : "user_topic_limit"}});
  }
  e.CounterFamily("backfills_truncated_total",
                  "History replays cut to MAX_BACKFILL_RECORDS (each topic's newest kept).");
  e.Sample(Sum(workers, [](const M& m) { return m.backfills_truncated.Get(); }));
  e.CounterFamily("connections_rejected_total",
                  "Connections closed to keep a connection limit: new ones over MAX_CONNECTIONS, "
                  "and the oldest not yet authenticated to make room under "
                  "MAX_UNAUTH_CONNECTIONS or MAX_UNAUTH_PER_SOURCE.");
  static constexpr const char* kLimits[] = {"max_connections", "max_unauth_connections",
                                            "max_unauth_per_source"};
  for (std::size_t i = 0; i < std::size(kLimits); ++i) {
    e.Sample(Sum(workers, [i](const M& m) { return m.connections_rejected[i].Get(); }),
             {{"limit", kLimits[i]}});
  }

  e.GaugeFamily("active_topics", "Topics the server holds state for (updated once a sweep).");
  e.Sample(Sum(workers, [](const M& m) { return m.active_topics.Get(); }));

  e.GaugeFamily("active_subscriptions", "Open subscriptions, by mode.");
  for (std::size_t mode = 1; mode < engine::kModeSlots; ++mode) {
    e.Sample(Sum(workers, [mode](const M& m) { return m.active_subscriptions[mode].Get(); }),
             {{"mode", std::string(engine::ModeName(static_cast<engine::Mode>(mode)))}});
  }

  obs::HistogramSnapshot latency;
  obs::HistogramSnapshot records;
  for (const M* w : workers) {
    obs::Accumulate(w->publish_latency_us, 1000.0, latency);
    obs::Accumulate(w->batch_records, 1.0, records);
  }
  e.HistogramFamily("publish_latency_ms",
                    "Milliseconds from a record being ready for delivery (its batch window "
                    "ended, or its frame was cut full) to its DATA_BATCH frame being written to "
                    "the socket; one observation per frame.");
  e.Sample(latency);
  e.HistogramFamily("data_batch_records", "Records per DATA_BATCH frame written.");
  e.Sample(records);

  e.GaugeFamily("build_info", "Always 1; labels carry the server and protocol versions.");
  e.Sample(
      1, {{"version", TICKWIRE_VERSION}, {"protocol", std::to_string(protocol::kProtocolVersion)}});

  obs::AppendProcessMetrics(e);
  return e.Render();
}

}  // namespace tickwire::net
