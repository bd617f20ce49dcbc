#include "net/connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

#include "auth/rate_limiter.h"
#include "common/wall_clock.h"
#include "delivery/fanout_table.h"
#include "net/ws_upgrade.h"
#include "observability/log.h"
#include "protocol/frame.h"
#include "protocol/proxy_header.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::net {
namespace {

// Frames handed to one writev; Linux IOV_MAX is 1024, and a few dozen frames already fill
// the socket buffer.
constexpr std::size_t kMaxFramesPerWrite = 64;
// A TLS connection's read buffer: one full TLS record.
constexpr std::size_t kTlsReadBufferSize = 16 * 1024 + 256;
// Ends the close line's detail when a stuck write kept the final ERROR from the client.
constexpr std::string_view kErrorNotWritten = "; the ERROR was not written";

namespace wsf = protocol::ws;

// The close code a WebSocket client gets with a fatal ERROR (the ERROR itself says more).
std::uint16_t WsCloseCode(session::CloseReason reason) {
  using session::CloseReason;
  switch (reason) {
    case CloseReason::kServerShutdown:
      return wsf::kCloseGoingAway;
    case CloseReason::kFrameTooLarge:
      return wsf::kCloseTooBig;
    case CloseReason::kMalformedFrame:
      return wsf::kCloseProtocolError;
    case CloseReason::kInternal:
      return wsf::kCloseInternalError;
    case CloseReason::kClientClosed:
      return wsf::kCloseNormal;
    default:
      return wsf::kClosePolicyViolation;
  }
}

session::SessionParams MakeParams(const ServerContext& ctx, std::string session_id) {
  const auto& c = ctx.config;
  session::SessionParams p;
  p.credentials = &ctx.credentials;
  p.rate_limiter = &ctx.rate_limiter;
  p.heartbeat_interval = c.heartbeat_interval;
  p.heartbeat_timeout = c.heartbeat_timeout;
  p.auth_timeout = c.auth_timeout;
  p.max_msg_size = c.max_msg_size;
  p.batch_window_ms = ctx.batch_window();
  p.bar_close_delay_ms = ctx.config.bar_close_delay_ms;
  p.stream_epoch = ctx.stream_epoch;
  p.session_id = std::move(session_id);
  return p;
}

delivery::StreamParams MakeStreamParams(const ServerContext& ctx) {
  const auto& c = ctx.config;
  delivery::StreamParams p;
  p.max_msg_size = c.max_msg_size;
  p.max_pending_bytes = c.max_pending_bytes;
  p.shards = static_cast<unsigned>(ctx.workers.size());
  p.history_ticks = c.history_ticks;
  p.history_second_bars = c.history_second_bars;
  p.history_minute_bars = c.history_minute_bars;
  return p;
}

// An IPv4-mapped IPv6 address as IPv4.
asio::ip::address Unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::string HostPort(const std::string& address, std::uint16_t port) {
  return (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
         std::to_string(port);
}

std::string RemoteOf(const asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  return HostPort(Unmapped(ep.address()).to_string(), ep.port());
}

std::string AddressOf(const asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string("unknown") : Unmapped(ep.address()).to_string();
}

bool IsPeerClose(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

Connection::Connection(Worker& worker, asio::ip::tcp::socket socket, TicketPtr ticket,
                       std::uint64_t id, std::string session_id, Clock::time_point now,
                       Transport transport)
    : worker_(worker),
      transport_(transport),
      socket_(std::move(socket)),
      ticket_(std::move(ticket)),
      id_(id),
      remote_(RemoteOf(socket_)),
      peer_address_(AddressOf(socket_)),
      phase_started_(now),
      tls_context_(worker.context().tls.Get()),
      opened_at_(now),
      decoder_(worker.context().config.max_msg_size),
      session_(MakeParams(worker.context(), std::move(session_id)), *this, now),
      queue_(worker.context().config.max_pending_bytes),
      stream_(*this, session_.subscriptions(), MakeStreamParams(worker.context())) {}

Connection::~Connection() = default;

void Connection::Start() {
  obs::Log(obs::Level::kDebug, "conn_open", "connection accepted",
           {{"conn_id", id_}, {"remote", remote_}, {"worker", worker_.index()}});
  if (worker_.context().config.proxy_protocol == config::ProxyMode::kRequired) {
    if (!FromTrustedProxy()) {
      worker_.context().counters.proxy_untrusted.fetch_add(1, std::memory_order_relaxed);
      obs::LogNoisy(obs::Noisy::kHandshake, obs::Level::kWarn, "proxy_untrusted",
                    "connection from outside PROXY_TRUSTED_CIDRS refused",
                    {{"conn_id", id_}, {"remote", remote_}});
      Close(session::CloseReason::kProxyHeader);
      return;
    }
    phase_ = Phase::kProxyHeader;
    ArmRead();
    return;
  }
  StartTransport();
}

bool Connection::FromTrustedProxy() const {
  boost::system::error_code ec;
  const auto ep = socket_.remote_endpoint(ec);
  if (ec) return false;
  const auto addr = ep.address();
  std::array<std::uint8_t, 16> bytes{};
  if (addr.is_v4()) {
    const auto b = addr.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), bytes.begin());
  } else {
    bytes = addr.to_v6().to_bytes();
  }
  const auto& trusted = worker_.context().config.proxy_trusted;
  return std::any_of(trusted.begin(), trusted.end(),
                     [&](const config::Cidr& c) { return c.Contains(addr.is_v6(), bytes); });
}

void Connection::OnProxyReadable() {
  // Peek, parse, then consume exactly the header's bytes: whatever follows it (a TLS
  // ClientHello, the first frame) stays in the socket for the next step. While the header is
  // incomplete every byte seen so far belongs to it, so those are consumed too (and the next
  // readiness wait does not spin on them).
  const std::size_t room = protocol::kProxyV2MaxLength - proxy_header_.size();
  boost::system::error_code ec;
  const std::size_t n = socket_.receive(asio::buffer(worker_.read_scratch(), room),
                                        asio::socket_base::message_peek, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ArmRead();
    return;
  }
  if (ec || n == 0) {
    Close(ec && !IsPeerClose(ec) ? session::CloseReason::kIoError
                                 : session::CloseReason::kClientClosed);
    return;
  }
  std::string candidate = proxy_header_;
  candidate.append(reinterpret_cast<const char*>(worker_.read_scratch()), n);
  const auto r = protocol::ParseProxyHeader(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(candidate.data()), candidate.size()));
  auto reject = [&](std::string_view why) {
    worker_.context().counters.proxy_rejected.fetch_add(1, std::memory_order_relaxed);
    obs::LogNoisy(obs::Noisy::kHandshake, obs::Level::kWarn, "proxy_header_invalid",
                  "closing: bad PROXY header",
                  {{"conn_id", id_}, {"remote", remote_}, {"reason", why}});
    Close(session::CloseReason::kProxyHeader);
  };
  if (r.status == protocol::ProxyParseStatus::kError) {
    reject(r.error);
    return;
  }
  const std::size_t take =
      r.status == protocol::ProxyParseStatus::kDone ? r.header.length - proxy_header_.size() : n;
  const std::size_t got = socket_.receive(asio::buffer(worker_.read_scratch(), take), 0, ec);
  if (ec || got != take) {
    reject("short read while consuming the header");
    return;
  }
  bytes_in_ += got;
  if (r.status == protocol::ProxyParseStatus::kNeedMore) {
    proxy_header_ = std::move(candidate);
    ArmRead();
    return;
  }
  proxy_header_.clear();
  proxy_header_.shrink_to_fit();
  const std::string proxy = remote_;
  if (r.header.local) {
    worker_.context().counters.proxy_local.fetch_add(1, std::memory_order_relaxed);
  } else {
    peer_address_ = r.header.source;
    remote_ = HostPort(r.header.source, r.header.source_port);
  }
  // Only now is the source known that MAX_UNAUTH_PER_SOURCE counts (the balancer's own
  // connections count under its address).
  if (auto victim = worker_.admission().SetSource(
          ticket_, auth::AuthRateLimiter::AddressKey(peer_address_))) {
    worker_.EvictWaiting(victim);
  }
  obs::Log(obs::Level::kDebug, "proxy_header", "PROXY header accepted",
           {{"conn_id", id_},
            {"remote", remote_},
            {"proxy", proxy},
            {"version", r.header.version},
            {"local", r.header.local}});
  StartTransport();
}

void Connection::StartTransport() {
  phase_started_ = Clock::now();
  if (!tls_context_) {
    BeginSession({});
    return;
  }
  phase_ = Phase::kTlsHandshake;
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_context_);
  tls_->async_handshake(
      asio::ssl::stream_base::server,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnHandshake(ec); });
}

void Connection::OnHandshake(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) {
    worker_.context().counters.tls_handshake_failed.fetch_add(1, std::memory_order_relaxed);
    obs::LogNoisy(obs::Noisy::kHandshake, obs::Level::kInfo, "tls_handshake_failed",
                  "closing: TLS handshake failed",
                  {{"conn_id", id_}, {"remote", remote_}, {"reason", ec.message()}});
    Close(session::CloseReason::kTlsHandshake);
    return;
  }
  std::string identity;
  if (worker_.context().config.tls_client_cn_user) {
    identity = PeerCommonName(tls_->native_handle());
  }
  tls_read_buffer_.resize(kTlsReadBufferSize);
  obs::Log(obs::Level::kDebug, "tls_established", "TLS handshake done",
           {{"conn_id", id_},
            {"remote", remote_},
            {"version", SSL_get_version(tls_->native_handle())},
            {"cipher", SSL_get_cipher_name(tls_->native_handle())}});
  BeginSession(std::move(identity));
}

void Connection::BeginSession(std::string tls_identity) {
  if (transport_ == Transport::kWebSocket && !ws_reader_) {
    // The upgrade request first; the AUTH deadline starts once it is accepted.
    phase_ = Phase::kWsUpgrade;
    phase_started_ = Clock::now();
    ws_identity_ = std::move(tls_identity);
    ws_upgrade_ = std::make_unique<ws::UpgradeParser>(worker_.context().ws_upgrade);
    ArmRead();
    return;
  }
  phase_ = Phase::kSession;
  session_.OnTransportReady(Clock::now(),
                            session::TransportInfo{peer_address_, std::move(tls_identity)});
  ArmRead();
}

void Connection::ArmRead() {
  if (reading_ || closing_) return;
  reading_ = true;
  if (tls_) {
    tls_->async_read_some(
        asio::buffer(tls_read_buffer_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          self->reading_ = false;
          if (self->closing_) return;
          if (ec) {
            if (!IsPeerClose(ec)) {
              self->close_detail_ = "read: " + ec.message();
              self->Close(session::CloseReason::kIoError);
              return;
            }
            self->Close(session::CloseReason::kClientClosed);
            return;
          }
          self->OnBytes(self->tls_read_buffer_.data(), n);
          if (!self->closing_ && !self->PauseIfCongested()) self->ReadMore();
        });
    return;
  }
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->reading_ = false;
                       if (self->lingering_ && !self->closed_) {
                         self->DiscardInput();
                         return;
                       }
                       if (self->closing_) return;
                       if (ec) {
                         self->Close(session::CloseReason::kIoError);
                         return;
                       }
                       self->OnReadable();
                     });
}

void Connection::OnReadable() {
  if (phase_ == Phase::kProxyHeader) {
    OnProxyReadable();
    return;
  }
  if (PauseIfCongested()) return;
  boost::system::error_code ec;
  const std::size_t n =
      socket_.read_some(asio::buffer(worker_.read_scratch(), worker_.read_scratch_size()), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ArmRead();
    return;
  }
  if (ec) {
    if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      Close(session::CloseReason::kClientClosed);
      return;
    }
    close_detail_ = "read: " + ec.message();
    Close(session::CloseReason::kIoError);
    return;
  }
  OnBytes(worker_.read_scratch(), n);
  ReadMore();
}

void Connection::ReadMore() {
  if (!closing_ && !InputPaused()) ArmRead();
}

bool Connection::PauseIfCongested() {
  if (!publisher_ || !worker_.IngestCongested()) return false;
  // Owner shards are behind: leave this producer's bytes in the kernel (TCP pushes back on it)
  // until they catch up.
  paused_ = true;
  worker_.PauseUntilUncongested(shared_from_this());
  return true;
}

void Connection::OnBytes(const std::uint8_t* data, std::size_t n) {
  bytes_in_ += n;
  if (transport_ == Transport::kWebSocket) {
    if (phase_ == Phase::kWsUpgrade) {
      OnUpgradeBytes(data, n);
    } else {
      OnWsBytes(data, n);
    }
    return;
  }
  const auto now = Clock::now();
  const auto decode_ec =
      decoder_.Feed(std::span<const std::uint8_t>(data, n),
                    [this, now](std::uint8_t type, std::span<const std::uint8_t> payload) {
                      return HandleFrame(type, payload, now);
                    });
  if (decode_ec) session_.OnDecodeError(decode_ec);
}

bool Connection::HandleFrame(std::uint8_t type, std::span<const std::uint8_t> payload,
                             Clock::time_point now) {
  worker_.metrics().OnFrameReceived(type, protocol::kHeaderSize + payload.size());
  const bool go_on = session_.OnFrame(type, payload, now);
  // A client may pipeline SUBSCRIBE right behind AUTH: what follows waits for the verdict.
  if (go_on && session_.auth_pending()) {
    if (ws_reader_) {
      ws_reader_->Pause();
    } else {
      decoder_.Pause();
    }
  }
  return go_on;
}

bool Connection::InputPaused() const {
  return ws_reader_ ? ws_reader_->paused() : decoder_.paused();
}

void Connection::OnUpgradeBytes(const std::uint8_t* data, std::size_t n) {
  auto r = ws_upgrade_->Feed(std::span<const std::uint8_t>(data, n));
  using Status = ws::UpgradeResult::Status;
  if (r.status == Status::kNeedMore) return;
  ws_upgrade_.reset();
  if (r.status == Status::kRejected) {
    ++worker_.metrics().ws_upgrades_rejected[static_cast<std::size_t>(r.rejection)];
    obs::LogNoisy(obs::Noisy::kHandshake, obs::Level::kInfo, "ws_upgrade_rejected",
                  "closing: WebSocket upgrade refused",
                  {{"conn_id", id_},
                   {"remote", remote_},
                   {"reason", ws::RejectionName(r.rejection)},
                   {"detail", r.detail}});
    close_detail_ = r.detail;
    QueueRaw(std::move(r.response), true);
    CloseAfterError(session::CloseReason::kWsHandshake);
    return;
  }
  ws_reader_ = std::make_unique<wsf::FrameReader>(
      std::size_t{worker_.context().config.max_msg_size} + protocol::kHeaderSize);
  ws_headers_.reserve(2 * kMaxFramesPerWrite);
  QueueRaw(std::move(r.response), true);
  StartWrite();
  obs::Log(obs::Level::kDebug, "ws_upgraded", "WebSocket upgrade accepted",
           {{"conn_id", id_}, {"remote", remote_}});
  BeginSession(std::move(ws_identity_));
  // Frames the client sent right behind its request.
  if (!r.leftover.empty() && !closing_) {
    OnWsBytes(reinterpret_cast<const std::uint8_t*>(r.leftover.data()), r.leftover.size());
  }
}

void Connection::OnWsBytes(const std::uint8_t* data, std::size_t n) {
  const auto now = Clock::now();
  const auto err =
      ws_reader_->Feed(std::span<const std::uint8_t>(data, n),
                       [this, now](const wsf::Event& ev) { return OnWsEvent(ev, now); });
  if (err != wsf::ReadError::kNone) OnWsReadError(err);
}

bool Connection::OnWsEvent(const wsf::Event& ev, Clock::time_point now) {
  if (closing_) return false;
  switch (ev.kind) {
    case wsf::Event::Kind::kBinary: {
      // Exactly one frame: its length field must account for the whole message.
      const auto& m = ev.payload;
      if (m.size() < protocol::kHeaderSize ||
          protocol::DecodeLength(m.data()) != m.size() - protocol::kLengthSize) {
        session_.Fail(tickwire::v1::MALFORMED_FRAME,
                      "a binary WebSocket message must hold exactly one whole frame",
                      session::CloseReason::kMalformedFrame);
        return false;
      }
      return HandleFrame(m[4], m.subspan(protocol::kHeaderSize), now) && !closing_;
    }
    case wsf::Event::Kind::kText:
      ws_close_code_ = wsf::kCloseUnsupportedData;
      session_.Fail(tickwire::v1::MALFORMED_FRAME,
                    "text WebSocket message; frames travel in binary messages",
                    session::CloseReason::kMalformedFrame);
      return false;
    case wsf::Event::Kind::kPing:
      // Answered at once; WebSocket pings are not HEARTBEATs and keep no session alive.
      if (!QueueRaw(wsf::EncodeFrame(wsf::Opcode::kPong, ev.payload), false)) return false;
      StartWrite();
      return true;
    case wsf::Event::Kind::kPong:
      return true;
    case wsf::Event::Kind::kClose:
      // The client is leaving: echo its code, then the usual close (half-close, linger).
      ws_close_code_ = ev.close_code != 0 ? ev.close_code : wsf::kCloseNormal;
      close_detail_ = "client sent a WebSocket close";
      CloseAfterError(session::CloseReason::kClientClosed);
      return false;
  }
  return false;
}

void Connection::OnWsReadError(wsf::ReadError error) {
  if (closing_) return;
  if (error == wsf::ReadError::kMessageTooBig) {
    session_.Fail(tickwire::v1::FRAME_TOO_LARGE, wsf::ReadErrorText(error),
                  session::CloseReason::kFrameTooLarge);
    return;
  }
  session_.Fail(tickwire::v1::MALFORMED_FRAME, wsf::ReadErrorText(error),
                session::CloseReason::kMalformedFrame);
}

bool Connection::QueueRaw(std::string bytes, bool unbounded) {
  delivery::FrameTag tag;
  tag.raw = true;
  if (unbounded) {
    queue_.PushUnbounded(std::move(bytes), tag);
    return true;
  }
  return Enqueue(std::move(bytes), tag);
}

void Connection::CollectWrite(std::vector<asio::const_buffer>& out) {
  const auto part = [&out](std::string_view f) { out.emplace_back(f.data(), f.size()); };
  if (transport_ != Transport::kWebSocket) {
    queue_.BeginWrite(kMaxFramesPerWrite, part);
    return;
  }
  queue_.BeginWrite(
      kMaxFramesPerWrite,
      [this, &out](std::size_t size, const delivery::FrameTag& tag) {
        if (tag.raw) return;
        auto& header = ws_headers_.emplace_back();
        const std::size_t n = wsf::EncodeHeader(wsf::Opcode::kBinary, size, header);
        out.emplace_back(header.data(), n);
      },
      part);
}

void Connection::DelayAuth(std::chrono::milliseconds delay) {
  if (!auth_timer_) auth_timer_ = std::make_unique<asio::steady_timer>(worker_.io());
  auth_timer_->expires_after(delay);
  auth_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closing_) return;
    self->session_.ResumeAuth(Clock::now());
    self->AfterAuthStep();
  });
}

void Connection::CheckOffLoop(session::CredentialCheck check) {
  auth::HashPool& pool = *worker_.context().hash_pool;
  if (!auth_abandoned_) auth_abandoned_ = std::make_shared<std::atomic<bool>>(false);
  // The hashing thread holds the connection weakly and posts the verdict back to this worker;
  // a connection closed meanwhile gets nothing (and a queued check for it is skipped).
  std::weak_ptr<Connection> weak = weak_from_this();
  Worker* worker = &worker_;
  const bool queued =
      pool.TrySubmit([weak, worker, abandoned = auth_abandoned_, check = std::move(check)] {
        if (abandoned->load(std::memory_order_relaxed)) return false;
        session::AuthCheckResult result;
        try {
          result.permissions = check();
        } catch (const std::exception&) {
          result = {false, nullptr, 1000};  // out of memory: try again later
        }
        asio::post(worker->io(), [weak, result = std::move(result)] {
          if (auto c = weak.lock()) c->OnAuthChecked(result);
        });
        return true;
      });
  if (queued) return;
  // The queue is full: refuse, with the wait the queue would have meant (posted: a host never
  // answers from inside CheckOffLoop).
  asio::post(worker_.io(), [weak, retry = pool.EstimatedWaitMs()] {
    if (auto c = weak.lock()) c->OnAuthChecked({false, nullptr, retry});
  });
}

void Connection::OnAuthChecked(const session::AuthCheckResult& result) {
  if (closing_) return;
  session_.OnAuthChecked(result, Clock::now());
  AfterAuthStep();
}

void Connection::AfterAuthStep() {
  if (closing_ || session_.auth_pending()) return;
  const auto now = Clock::now();
  if (ws_reader_) {
    const auto err =
        ws_reader_->Resume([this, now](const wsf::Event& ev) { return OnWsEvent(ev, now); });
    if (err != wsf::ReadError::kNone) OnWsReadError(err);
    ReadMore();
    return;
  }
  const auto decode_ec =
      decoder_.Resume([this, now](std::uint8_t type, std::span<const std::uint8_t> payload) {
        return HandleFrame(type, payload, now);
      });
  if (decode_ec) session_.OnDecodeError(decode_ec);
  ReadMore();
}

bool Connection::QueueFrame(std::string frame, delivery::FrameTag tag) {
  return Enqueue(std::move(frame), tag);
}

bool Connection::QueueSharedFrame(std::string head, engine::RecordBlockPtr block,
                                  std::string_view tail, delivery::FrameTag tag) {
  if (closing_) return false;
  if (!queue_.PushShared(std::move(head), std::move(block), tail, tag)) {
    SlowConsumer(SlowConsumerCause::kPendingBytes, "pending output over MAX_PENDING_BYTES");
    return false;
  }
  return true;
}

void Connection::PendingLimitExceeded() {
  SlowConsumer(SlowConsumerCause::kPendingBytes, "pending output over MAX_PENDING_BYTES");
}

void Connection::FlushAt(Clock::time_point deadline) {
  worker_.ScheduleBatchFlush(shared_from_this(), deadline);
}

void Connection::FlushAtEndOfTurn() { worker_.MarkDirty(shared_from_this()); }

void Connection::RequestHistorySlice(std::uint64_t catch_up_id,
                                     delivery::CatchUp::SliceRequest request,
                                     engine::SliceLimits limits,
                                     std::shared_ptr<const delivery::ReplayCancel> cancel) {
  worker_.RequestHistorySlice(
      request.shard,
      HistorySliceRequest{std::move(request.request), std::move(request.cursor), limits,
                          std::move(cancel), shared_from_this(), catch_up_id, worker_.index()});
}

bool Connection::Enqueue(std::string frame, delivery::FrameTag tag) {
  if (closing_) return false;
  if (!queue_.Push(std::move(frame), tag)) {
    SlowConsumer(SlowConsumerCause::kPendingBytes, "pending output over MAX_PENDING_BYTES");
    return false;
  }
  return true;
}

void Connection::SendFrame(std::string frame) {
  if (closed_) return;
  if (session_.closed()) {
    // The final fatal ERROR: always queued, behind what is already queued.
    queue_.PushUnbounded(std::move(frame));
    return;
  }
  if (Enqueue(std::move(frame))) StartWrite();
}

void Connection::SendHeartbeatEcho(std::string frame) {
  if (closing_) return;
  // At most one echo waits unsent, carrying the newest ts_ms: a client that heartbeats faster
  // than it reads cannot grow the queue with them.
  if (!queue_.PushCoalesced(std::move(frame))) {
    SlowConsumer(SlowConsumerCause::kPendingBytes, "pending output over MAX_PENDING_BYTES");
    return;
  }
  StartWrite();
}

void Connection::StartWrite() {
  if (closed_ || queue_.write_in_flight() || !queue_.has_unsent()) return;
  write_buffers_.clear();
  ws_headers_.clear();
  CollectWrite(write_buffers_);
  write_started_ = Clock::now();
  if (tls_) {
    // One contiguous buffer: the TLS stream would otherwise write each frame as its own record.
    tls_write_buffer_.clear();
    for (const auto& b : write_buffers_) {
      tls_write_buffer_.append(static_cast<const char*>(b.data()), b.size());
    }
    asio::async_write(*tls_, asio::buffer(tls_write_buffer_),
                      [self = shared_from_this()](const boost::system::error_code& ec,
                                                  std::size_t n) { self->OnWriteDone(ec, n); });
    return;
  }
  asio::async_write(socket_, write_buffers_,
                    [self = shared_from_this()](const boost::system::error_code& ec,
                                                std::size_t n) { self->OnWriteDone(ec, n); });
}

void Connection::OnWriteDone(const boost::system::error_code& ec, std::size_t written) {
  // Counted here for TLS and plaintext alike: bytes_sent_total is what reached the socket.
  bytes_out_ += written;
  worker_.metrics().bytes_sent += written;
  if (write_cancelled_ && !closed_) {
    FinishCancelledWrite(written);
    return;
  }
  const auto now = Clock::now();
  queue_.CompleteWrite([&](const delivery::FrameTag& t) {
    if (!ec && t.records != 0) worker_.metrics().OnBatchWritten(now - t.ready, t.records);
  });
  if (closed_) return;
  if (ec) {
    Close(session::CloseReason::kIoError);
    return;
  }
  if (!closing_) stream_.OnOutputWritten();
  if (queue_.has_unsent()) {
    StartWrite();
  } else if (closing_) {
    Linger();
  }
}

void Connection::Linger() {
  // Everything up to the fatal ERROR is written. close() now would reset the connection if
  // the client had sent anything we have not read (a HEARTBEAT, a PUBLISH), and a reset
  // destroys the ERROR still in flight. So: half-close (the client reads the ERROR, then EOF),
  // read and discard what it still sends until it closes, for at most kLingerTime and
  // kLingerBytes, then close. TLS connections close at once (their shutdown is not lingered).
  if (closed_ || tls_ || lingering_) {
    if (!lingering_) Close(close_reason_);
    return;
  }
  lingering_ = true;
  linger_until_ = Clock::now() + kLingerTime;
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  DiscardInput();
}

void Connection::DiscardInput() {
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n =
        socket_.read_some(asio::buffer(worker_.read_scratch(), worker_.read_scratch_size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec || n == 0) {  // EOF: the client has read the ERROR and closed
      Close(close_reason_);
      return;
    }
    lingered_bytes_ += n;
    if (lingered_bytes_ > kLingerBytes) {
      Close(close_reason_);
      return;
    }
  }
  if (reading_) return;  // the read wait already armed hands over to DiscardInput
  reading_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->reading_ = false;
                       if (self->closed_) return;
                       if (ec) {
                         self->Close(self->close_reason_);
                         return;
                       }
                       self->DiscardInput();
                     });
}

void Connection::FinishCancelledWrite(std::size_t written) {
  // Best effort, in one non-blocking writev: the rest of the cancelled write (it may end inside
  // a frame), then the ERROR behind it. When the peer's window has room for all of it the ERROR
  // arrives whole; otherwise the close cuts the stream where it stands.
  std::vector<asio::const_buffer> rest;
  std::size_t skip = written;
  for (const auto& b : write_buffers_) {
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    rest.push_back(b + skip);
    skip = 0;
  }
  CollectWrite(rest);
  const std::size_t want = asio::buffer_size(rest);
  boost::system::error_code ec;
  const std::size_t n = want == 0 ? 0 : socket_.write_some(rest, ec);
  bytes_out_ += n;
  worker_.metrics().bytes_sent += n;
  queue_.CompleteWrite();
  if (!ec && n == want) {
    Linger();
  } else {
    close_detail_ += kErrorNotWritten;
    Close(session::CloseReason::kSlowConsumer);
  }
}

void Connection::SlowConsumer(SlowConsumerCause cause, std::string_view why) {
  if (closing_) return;
  worker_.metrics().OnSlowConsumer(cause);
  obs::LogNoisy(obs::Noisy::kSlowConsumer, obs::Level::kWarn, "slow_consumer",
                "dropping slow consumer",
                {{"conn_id", id_},
                 {"remote", remote_},
                 {"user", session_.user()},
                 {"reason", why},
                 {"pending_bytes", queue_.pending_bytes()}});
  // Best effort: nothing more is queued behind what is already in flight except the ERROR.
  queue_.DropUnsent();
  session_.Fail(tickwire::v1::SLOW_CONSUMER, why, session::CloseReason::kSlowConsumer);
}

void Connection::CloseAfterError(session::CloseReason reason) {
  if (closing_) return;
  if (ws_reader_ && !ws_close_queued_) {
    // A WebSocket client gets a close frame behind the ERROR, with its message as the reason.
    ws_close_queued_ = true;
    QueueRaw(
        wsf::EncodeClose(ws_close_code_ != 0 ? ws_close_code_ : WsCloseCode(reason), close_detail_),
        true);
  }
  closing_ = true;
  stream_.Stop();
  close_reason_ = reason;
  if (auth_abandoned_) auth_abandoned_->store(true, std::memory_order_relaxed);
  if (auth_timer_) auth_timer_->cancel();
  // Records still in the open batch are not sent: nothing follows a fatal ERROR.
  // The pending read wait is left alone (cancelling would abort the write too); its handler
  // sees closing_ and stops reading.
  if (queue_.write_in_flight()) return;  // OnWriteDone continues
  if (queue_.has_unsent()) {
    StartWrite();
  } else {
    Linger();
  }
}

void Connection::Drain(std::uint32_t retry_after_ms) {
  if (closing_) return;
  if (phase_ != Phase::kSession) {
    Close(session::CloseReason::kServerShutdown);  // no frame can be sent before the session
    return;
  }
  // What was queued before the drain is delivered: the open DATA_BATCH goes out first.
  stream_.FlushForDrain();
  if (closing_) return;
  session_.Fail(tickwire::v1::SERVER_DRAINING, "server is shutting down; reconnect",
                session::CloseReason::kServerShutdown, retry_after_ms);
}

void Connection::CheckTimers(Clock::time_point now) {
  if (closed_) return;
  if (lingering_) {
    if (now >= linger_until_) Close(close_reason_);
    return;
  }
  if (phase_ != Phase::kSession) {
    const auto& c = worker_.context().config;
    if (phase_ == Phase::kWsUpgrade) {
      if (now - phase_started_ >= c.ws_handshake_timeout) {
        if (closing_) {  // refused, and the refusal is still not written: end it now
          Close(session::CloseReason::kWsHandshake);
          return;
        }
        ++worker_.metrics().ws_upgrades_rejected[static_cast<std::size_t>(ws::Rejection::kTimeout)];
        obs::LogNoisy(obs::Noisy::kHandshake, obs::Level::kInfo, "ws_upgrade_timeout",
                      "closing: WebSocket upgrade request not complete in time",
                      {{"conn_id", id_}, {"remote", remote_}});
        close_detail_ = "upgrade request not complete within WS_HANDSHAKE_TIMEOUT";
        Close(session::CloseReason::kWsHandshake);
      }
      return;
    }
    const bool proxy = phase_ == Phase::kProxyHeader;
    if (now - phase_started_ >= (proxy ? c.proxy_header_timeout : c.tls_handshake_timeout)) {
      auto& counters = worker_.context().counters;
      (proxy ? counters.proxy_rejected : counters.tls_handshake_failed)
          .fetch_add(1, std::memory_order_relaxed);
      obs::LogNoisy(obs::Noisy::kHandshake, obs::Level::kInfo,
                    proxy ? "proxy_header_timeout" : "tls_handshake_timeout",
                    proxy ? "closing: no complete PROXY header in time"
                          : "closing: TLS handshake not done in time",
                    {{"conn_id", id_}, {"remote", remote_}});
      Close(proxy ? session::CloseReason::kProxyHeader : session::CloseReason::kTlsHandshake);
    }
    return;
  }
  const auto deadline = worker_.context().config.write_deadline;
  if (queue_.write_in_flight() && now - write_started_ > deadline) {
    if (write_cancelled_) return;  // its handler sends the ERROR best effort and closes
    if (closing_) {
      // Already dropped (for pending bytes: counted and logged then) or closing after another
      // fatal ERROR the peer does not read: the stuck write only ends it now, and says so on
      // the close line.
      close_detail_ += close_detail_.empty() ? "write deadline missed" : "; write deadline missed";
      close_detail_ += kErrorNotWritten;
      Close(session::CloseReason::kSlowConsumer);
      return;
    }
    // The peer is not reading: count, log once, queue ERROR{SLOW_CONSUMER} behind the stuck
    // write, then cancel that write; its handler tries both without blocking and closes.
    SlowConsumer(SlowConsumerCause::kWriteDeadline, "write deadline missed");
    if (tls_) {
      // An aborted TLS write cannot be resumed: close now.
      close_detail_ += kErrorNotWritten;
      Close(session::CloseReason::kSlowConsumer);
      return;
    }
    write_cancelled_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    return;
  }
  if (!closing_) session_.CheckTimers(now);
}

void Connection::Close(session::CloseReason reason) {
  if (closed_) return;
  closed_ = true;
  closing_ = true;
  stream_.Stop();
  if (auth_abandoned_) auth_abandoned_->store(true, std::memory_order_relaxed);
  if (auth_timer_) auth_timer_->cancel();
  if (close_reason_ == session::CloseReason::kNone) close_reason_ = reason;
  if (tls_ && phase_ == Phase::kSession) {
    // No close_notify is exchanged (TLS connections close at once). Without this, OpenSSL
    // takes the closed connection's session for a broken one and drops it from the session
    // cache, and a TLS 1.2 client could not resume it.
    SSL_set_shutdown(tls_->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // Deregistration is deferred: Close can run inside a fan-out loop over the table.
  asio::post(worker_.io(), [self = shared_from_this()] { self->Cleanup(); });
}

void Connection::Cleanup() {
  worker_.admission().Released(ticket_);
  stream_.CancelCatchUps();
  std::vector<delivery::FanoutTable::InterestChange> changes;
  for (const auto& [id, sub] : session_.subscriptions()) {
    worker_.fanout().Remove(&stream_, sub.mode, sub.topics, sub.wildcard, changes);
  }
  worker_.PublishInterest(changes);
  for (const auto& [id, sub] : session_.subscriptions())
    worker_.metrics().OnSubscriptions(sub.mode, -1);
  worker_.metrics().OnClosed(close_reason_, transport_);
  LogClose();
  worker_.Forget(id_);
}

void Connection::AddSubscription(std::uint64_t id, const session::Subscription& sub) {
  std::vector<delivery::FanoutTable::InterestChange> changes;
  worker_.fanout().Add(&stream_, sub.mode, sub.topics, sub.wildcard, changes);
  // Interest first: each owner shard then serves the history after it has started encoding
  // this topic's live records for this worker, so the two overlap instead of leaving a gap.
  worker_.PublishInterest(changes);
  stream_.OnSubscribed(id, sub);
  worker_.metrics().OnSubscriptions(sub.mode, 1);
}

void Connection::RemoveSubscription(std::uint64_t id, const session::Subscription& sub) {
  stream_.OnUnsubscribed(id);
  std::vector<delivery::FanoutTable::InterestChange> changes;
  worker_.fanout().Remove(&stream_, sub.mode, sub.topics, sub.wildcard, changes);
  worker_.PublishInterest(changes);
  worker_.metrics().OnSubscriptions(sub.mode, -1);
}

void Connection::Publish(std::uint32_t request_id, bool ack,
                         std::vector<engine::IngestTick> ticks) {
  publisher_ = true;
  worker_.metrics().records_published += ticks.size();
  worker_.Ingest(shared_from_this(), user_id_, session_.user(), request_id, ack, std::move(ticks));
}

void Connection::EvictWaiting() {
  if (authenticated_ || closing_) return;  // authenticated meanwhile: it stays
  if (const auto why = static_cast<std::size_t>(ticket_->evicted_for);
      why < worker_.metrics().connections_rejected.size()) {
    ++worker_.metrics().connections_rejected[why];
  }
  close_detail_ = "not authenticated yet; closed to make room for a newer connection";
  Close(session::CloseReason::kUnauthEvicted);
}

void Connection::ResumeReading() {
  if (!paused_) return;
  paused_ = false;
  if (closing_) return;
  if (tls_) {
    ArmRead();  // TLS reads are not readiness-based
  } else {
    OnReadable();
  }
}

void Connection::OnPublishApplied(std::uint32_t request_id, std::uint32_t accepted,
                                  std::uint32_t late) {
  if (closing_) return;
  session_.OnPublishApplied(request_id, accepted, late);
}

void Connection::OnPublishRefused(std::uint32_t request_id,
                                  const session::PublishRefusal& refusal) {
  if (closing_) return;
  session_.OnPublishRefused(request_id, refusal);
}

void Connection::OnPublishFailed(std::uint32_t request_id, std::string_view message,
                                 std::uint32_t retry_after_ms) {
  if (closing_) return;
  session_.OnPublishFailed(request_id, message, retry_after_ms);
}

std::int64_t Connection::WallClockNs() { return common::WallClockNs(); }

std::int64_t Connection::WatermarkMs(engine::Mode interval) {
  return worker_.exchange().WatermarkMs(interval);
}

std::int64_t Connection::ResumeFromNs() { return worker_.exchange().ResumeFromNs(); }

void Connection::OnAuthenticated(const std::string& user, const std::string& client_name) {
  authenticated_ = true;
  user_id_ = worker_.context().user_ids.Intern(user);
  worker_.admission().Authenticated(ticket_);
  obs::Log(obs::Level::kInfo, "auth_ok", "client authenticated",
           {{"conn_id", id_}, {"remote", remote_}, {"user", user}, {"client_name", client_name}});
}

void Connection::OnErrorSent(int code, bool fatal, std::string_view message,
                             std::string_view subject) {
  worker_.metrics().OnErrorSent(code);
  if (fatal) {
    close_detail_ = message;  // reported once, on the close line
    return;
  }
  // Subjects are client-supplied and may be long: the line keeps their first 128 bytes.
  const std::string& code_name = tickwire::v1::ErrorCode_Name(code);
  obs::LogNoisy(obs::Noisy::kProtocol, obs::Level::kInfo, "request_rejected", message,
                {{"conn_id", id_},
                 {"remote", remote_},
                 {"user", session_.user()},
                 {"code", code_name},
                 {"topic", subject.substr(0, 128)}});
}

void Connection::OnInternalFault(std::string_view what) {
  obs::Log(obs::Level::kError, "internal_fault",
           "handling a frame threw; closing this connection with ERROR INTERNAL",
           {{"conn_id", id_}, {"remote", remote_}, {"user", session_.user()}, {"what", what}});
}

void Connection::LogClose() {
  using session::CloseReason;
  const auto duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened_at_);
  const std::initializer_list<obs::Field> fields = {
      {"conn_id", id_},
      {"remote", remote_},
      {"user", session_.user()},
      {"client_name", session_.client_name()},
      {"reason", session::CloseReasonName(close_reason_)},
      {"detail", close_detail_},
      {"duration_ms", duration.count()},
      {"bytes_in", bytes_in_},
      {"bytes_out", bytes_out_}};
  // Every close a client can cause at will goes through a noisy-event budget; only the
  // server's own closes (shutdown, an internal fault) are always logged.
  const auto noisy = [&](obs::Noisy kind, obs::Level level) {
    obs::LogNoisy(kind, level, "conn_close", "connection closed", fields);
  };
  switch (close_reason_) {
    case CloseReason::kAuthRequired:
    case CloseReason::kAuthFailed:
    case CloseReason::kAuthTimeout:
    case CloseReason::kUnauthEvicted:
    case CloseReason::kAuthRateLimited:
      noisy(obs::Noisy::kAuth, obs::Level::kInfo);
      return;
    case CloseReason::kMalformedFrame:
    case CloseReason::kFrameTooLarge:
    case CloseReason::kUnknownFrameType:
    case CloseReason::kInvalidRequest:
      noisy(obs::Noisy::kProtocol, obs::Level::kInfo);
      return;
    case CloseReason::kSlowConsumer:
      noisy(obs::Noisy::kSlowConsumer, obs::Level::kWarn);
      return;
    case CloseReason::kClientClosed:
    case CloseReason::kIoError:
      noisy(obs::Noisy::kDisconnect, obs::Level::kInfo);
      return;
    case CloseReason::kHeartbeatTimeout:
      noisy(obs::Noisy::kDisconnect, obs::Level::kWarn);
      return;
    case CloseReason::kProxyHeader:
    case CloseReason::kTlsHandshake:
    case CloseReason::kWsHandshake:
      noisy(obs::Noisy::kHandshake, obs::Level::kInfo);
      return;
    case CloseReason::kNone:
    case CloseReason::kServerShutdown:
    case CloseReason::kInternal:
    case CloseReason::kCount:
      obs::Log(obs::Level::kInfo, "conn_close", "connection closed", fields);
      return;
  }
}

ConnectionCounters Connection::Counters(Clock::time_point now) const {
  ConnectionCounters c;
  c.id = id_;
  c.age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - opened_at_).count();
  c.subscriptions = session_.subscriptions().size();
  c.pending_bytes = queue_.pending_bytes();
  c.bytes_in = bytes_in_;
  c.bytes_out = bytes_out_;
  return c;
}

ConnectionInfo Connection::Info(Clock::time_point now, const ConnzQuery& query) const {
  ConnectionInfo info;
  static_cast<ConnectionCounters&>(info) = Counters(now);
  info.worker = worker_.index();
  info.remote = remote_;
  info.user = session_.user();
  info.client_name = session_.client_name();
  info.state = closing_                                                  ? "closing"
               : session_.state() == session::Session::State::kAwaitAuth ? "awaiting_auth"
                                                                         : "ready";
  if (!query.subs) return info;
  // In subscription id order; topic names capped per subscription and per connection.
  std::vector<std::uint64_t> ids;
  ids.reserve(session_.subscriptions().size());
  for (const auto& [id, sub] : session_.subscriptions()) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  std::size_t budget = kConnzTopicsPerConnection;
  info.subs.reserve(ids.size());
  for (const std::uint64_t id : ids) {
    const session::Subscription& sub = session_.subscriptions().at(id);
    ConnectionInfo::Sub& out = info.subs.emplace_back();
    out.id = id;
    out.mode = sub.mode;
    out.topic_count = sub.topics.size() + (sub.wildcard ? 1 : 0);
    const std::size_t shown = std::min({query.sub_topics, budget, out.topic_count});
    budget -= shown;
    out.topics.reserve(shown);
    if (shown > 0 && sub.wildcard) out.topics.emplace_back("*");
    for (std::size_t i = 0; out.topics.size() < shown; ++i) out.topics.push_back(sub.topics[i]);
  }
  return info;
}

}  // namespace tickwire::net
