#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "delivery/outbound_queue.h"
#include "delivery/subscriber_stream.h"
#include "exchange/messages.h"
#include "exchange/publish_tracker.h"
#include "net/worker.h"
#include "protocol/decoder.h"
#include "protocol/ws_frame.h"
#include "session/session.h"

namespace tickwire::net {
namespace ws {
class UpgradeParser;
}  // namespace ws

// One client connection. Owned by its worker (registry + handlers holding shared_from_this);
// touched by no other thread. Plain TCP reads are readiness-based into the worker's shared
// scratch buffer, so an idle connection holds no read buffer; writes go through a bounded
// OutboundQueue with exactly one async write (a writev of queued frames) in flight.
//
// Before the session starts, the transport may have two steps: a PROXY protocol header (when
// PROXY_PROTOCOL=required; peeked and consumed exactly, so no byte after it is taken) and a TLS
// handshake (when TLS is on). A TLS connection reads with async_read_some into its own bounded
// buffer (OpenSSL buffers records, so readiness of the socket says nothing) and writes the
// queued frames as one contiguous buffer per write.
//
// A WebSocket connection (accepted on WS_LISTEN_ADDR) has one more step before the session: the
// HTTP upgrade request (parsed by ws::UpgradeParser, bounded in size and by
// WS_HANDSHAKE_TIMEOUT). After it, the reads go through a ws::FrameReader (each binary message
// must hold exactly one frame) and each queued frame is written as one binary message: its
// WebSocket header goes into the same gather write, so nothing is copied or re-queued. The rest
// (session, stream, limits, deadlines, linger, close reasons) is the same for both transports.
//
// What records reach the client, in what order and in which DATA_BATCH (batching, history
// catch-ups and their pacing) is its delivery::SubscriberStream's business; the connection
// hosts it (its output queue, the worker's batch timers, the route to the owner shards) and
// registers it in the worker's fan-out table.
class Connection final : public std::enable_shared_from_this<Connection>,
                         public session::SessionHost,
                         public delivery::StreamHost,
                         public exchange::PublishOrigin,
                         public exchange::SliceReceiver {
 public:
  Connection(Worker& worker, asio::ip::tcp::socket socket, TicketPtr ticket, std::uint64_t id,
             std::string session_id, Clock::time_point now, Transport transport = Transport::kTcp);
  ~Connection() override;

  void Start();
  std::uint64_t id() const { return id_; }
  bool closing() const { return closing_; }

  // Worker sweep: AUTH/heartbeat deadlines and the write deadline.
  void CheckTimers(Clock::time_point now);
  // Flushes the open DATA_BATCH if its window has expired (or unconditionally when `force`).
  void FlushBatch(Clock::time_point now, bool force) { stream_.FlushBatch(now, force); }
  // Server shutdown: flush the open DATA_BATCH, ERROR{SERVER_DRAINING, retry_after_ms}, close.
  void Drain(std::uint32_t retry_after_ms = 1000);
  // Ingest congestion has cleared: read again.
  void ResumeReading();
  // Admission closes it to make room, unless it has authenticated meanwhile.
  void EvictWaiting();
  // Completion of an acked PUBLISH (on this connection's worker).
  // `late`: how many of them were too late for their bars (PROTOCOL S8a).
  void OnPublishApplied(std::uint32_t request_id, std::uint32_t accepted,
                        std::uint32_t late) override;
  // Owner shards (or the shared log's topic cap) refused ticks of a PUBLISH: ERROR TOPIC_LIMIT.
  void OnPublishRefused(std::uint32_t request_id, const session::PublishRefusal& refusal) override;
  // Multi-instance mode: the bus did not take a PUBLISH (ERROR UNAVAILABLE, non-fatal).
  void OnPublishFailed(std::uint32_t request_id, std::string_view message,
                       std::uint32_t retry_after_ms) override;
  // What the connection listing sorts on, and a copy of what it shows with the subscription
  // details (and their caps) that `query` asks for (on this connection's worker).
  ConnectionCounters Counters(Clock::time_point now) const;
  ConnectionInfo Info(Clock::time_point now, const ConnzQuery& query) const;

  // An owner shard's answer to one of this connection's slice requests (null: skipped, its
  // replay was cancelled).
  void OnHistorySlice(std::uint64_t catchup_id, unsigned owner,
                      std::shared_ptr<const engine::HistorySlice> slice) override {
    stream_.OnHistorySlice(catchup_id, owner, std::move(slice));
  }

  // session::SessionHost
  void SendFrame(std::string frame) override;
  void SendHeartbeatEcho(std::string frame) override;
  void CloseAfterError(session::CloseReason reason) override;
  void AddSubscription(std::uint64_t id, const session::Subscription& sub) override;
  void RemoveSubscription(std::uint64_t id, const session::Subscription& sub) override;
  void Publish(std::uint32_t request_id, bool ack, std::vector<engine::IngestTick> ticks) override;
  std::int64_t WallClockNs() override;
  std::int64_t WatermarkMs(engine::Mode interval) override;
  std::int64_t ResumeFromNs() override;
  void OnAuthenticated(const std::string& user, const std::string& client_name) override;
  void DelayAuth(std::chrono::milliseconds delay) override;
  void CheckOffLoop(session::CredentialCheck check) override;
  void OnErrorSent(int code, bool fatal, std::string_view message,
                   std::string_view subject) override;
  void OnInternalFault(std::string_view what) override;

  // delivery::StreamHost
  bool QueueFrame(std::string frame, delivery::FrameTag tag) override;
  bool QueueSharedFrame(std::string head, engine::RecordBlockPtr block, std::string_view tail,
                        delivery::FrameTag tag) override;
  void StartOutput() override { StartWrite(); }
  std::uint64_t QueuedBytes() const override { return queue_.charged_bytes(); }
  void PendingLimitExceeded() override;
  std::uint32_t BatchWindowMs() const override { return worker_.context().batch_window(); }
  void FlushAt(Clock::time_point deadline) override;
  void FlushAtEndOfTurn() override;
  void RequestHistorySlice(std::uint64_t catch_up_id, delivery::CatchUp::SliceRequest request,
                           engine::SliceLimits limits,
                           std::shared_ptr<const delivery::ReplayCancel> cancel) override;

 private:
  enum class Phase : std::uint8_t { kProxyHeader, kTlsHandshake, kWsUpgrade, kSession };

  // After the PROXY header (if any): TLS handshake or straight to the session.
  void StartTransport();
  void OnHandshake(const boost::system::error_code& ec);
  void BeginSession(std::string tls_identity);
  // WebSocket: the upgrade request's bytes; on success the session begins.
  void OnUpgradeBytes(const std::uint8_t* data, std::size_t n);
  // WebSocket: bytes of the session (frames in binary messages).
  void OnWsBytes(const std::uint8_t* data, std::size_t n);
  bool OnWsEvent(const protocol::ws::Event& ev, Clock::time_point now);
  void OnWsReadError(protocol::ws::ReadError error);
  // Whether the frame decoder (or WebSocket reader) holds frames back for a pending AUTH.
  bool InputPaused() const;
  // Appends up to kMaxFramesPerWrite queued frames to `out` (with their WebSocket headers).
  void CollectWrite(std::vector<asio::const_buffer>& out);
  // Queues a WebSocket control frame or HTTP response (bounded unless `unbounded`).
  bool QueueRaw(std::string bytes, bool unbounded);
  void OnProxyReadable();
  bool FromTrustedProxy() const;
  void ArmRead();
  void OnReadable();
  // A producer whose owner shards are behind stops reading until they catch up: true if paused.
  bool PauseIfCongested();
  // Bytes from the peer (plain or decrypted) for the frame decoder.
  void OnBytes(const std::uint8_t* data, std::size_t n);
  // One decoded frame for the session; pauses the decoder while an AUTH is being decided.
  bool HandleFrame(std::uint8_t type, std::span<const std::uint8_t> payload, Clock::time_point now);
  // A hashing thread's verdict, posted back here.
  void OnAuthChecked(const session::AuthCheckResult& result);
  // After a step of a pending AUTH: once it is decided, the frames that arrived behind it are
  // handled (in order) and reading resumes.
  void AfterAuthStep();
  // Reads more unless closing or holding frames back for a pending AUTH.
  void ReadMore();
  // Queues a frame within the pending-output limit; on a breach drops the connection as a
  // slow consumer and returns false.
  bool Enqueue(std::string frame, delivery::FrameTag tag = {});
  void StartWrite();
  void OnWriteDone(const boost::system::error_code& ec, std::size_t written);
  // After a missed write deadline: the cancelled write's remainder and the queued ERROR, one
  // non-blocking try, then linger (all written) or close.
  void FinishCancelledWrite(std::size_t written);
  // Drops the connection as a slow consumer: counts `cause`, logs once, queues
  // ERROR{SLOW_CONSUMER} behind what is in flight. Nothing if it is already closing.
  void SlowConsumer(SlowConsumerCause cause, std::string_view why);
  // Ends the connection now: stops I/O and schedules deregistration.
  void Close(session::CloseReason reason);
  // After a fatal ERROR has been written: half-close and discard input until the client closes
  // (bounded), so the ERROR is not destroyed by a reset.
  void Linger();
  void DiscardInput();
  static constexpr auto kLingerTime = std::chrono::seconds(1);
  static constexpr std::uint64_t kLingerBytes = 256 * 1024;
  void Cleanup();
  void LogClose();

  Worker& worker_;
  Transport transport_;
  asio::ip::tcp::socket socket_;
  TicketPtr ticket_;  // its place in the server's connection budget
  std::uint64_t id_;
  std::string remote_;        // client "address:port" for logs (the real one behind a proxy)
  std::string peer_address_;  // client address alone (rate limiting)
  Phase phase_ = Phase::kSession;
  Clock::time_point phase_started_;
  std::string proxy_header_;   // bytes of an incomplete PROXY header (bounded by its limit)
  TlsContextPtr tls_context_;  // kept alive for tls_'s SSL object
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  std::vector<std::uint8_t> tls_read_buffer_;
  std::string tls_write_buffer_;
  Clock::time_point opened_at_;
  protocol::FrameDecoder decoder_;
  session::Session session_;
  delivery::OutboundQueue queue_;
  // Reads session_'s subscriptions; declared after it, so it is destroyed first.
  delivery::SubscriberStream stream_;
  std::vector<asio::const_buffer> write_buffers_;  // reused for each writev
  Clock::time_point write_started_{};
  bool reading_ = false;
  bool lingering_ = false;  // fatal ERROR written; discarding input until the client closes
  Clock::time_point linger_until_{};
  std::uint64_t lingered_bytes_ = 0;
  bool closing_ = false;          // no more reads or records; waiting for the last write
  bool write_cancelled_ = false;  // write deadline missed: the in-flight write was cancelled
  bool closed_ = false;           // socket closed; cleanup scheduled
  bool authenticated_ = false;
  engine::UserId user_id_ = 0;  // interned user name (ServerContext::user_ids), once authenticated
  bool publisher_ = false;      // has published: paused while ingest is congested
  bool paused_ = false;         // counted as authenticated in the server's Admission
  session::CloseReason close_reason_ = session::CloseReason::kNone;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::string close_detail_;  // the fatal ERROR's message, for the close log line
  // WebSocket only (null on plain connections): the upgrade request until it is decided, then
  // the frame reader; the headers of the frames in the write in flight (reserved once, never
  // reallocated while a write points into it); the TLS identity kept across the upgrade.
  std::unique_ptr<ws::UpgradeParser> ws_upgrade_;
  std::unique_ptr<protocol::ws::FrameReader> ws_reader_;
  std::vector<std::array<std::uint8_t, protocol::ws::kMaxServerHeader>> ws_headers_;
  std::string ws_identity_;
  bool ws_close_queued_ = false;     // our close frame is queued: nothing follows it
  std::uint16_t ws_close_code_ = 0;  // overrides the close code derived from the reason
  // A throttled AUTH's delay (made on first use: most connections never need it).
  std::unique_ptr<asio::steady_timer> auth_timer_;
  // Set when the connection closes: a queued password check for it is skipped.
  std::shared_ptr<std::atomic<bool>> auth_abandoned_;
};

}  // namespace tickwire::net
