#include "client/client.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <variant>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "client/codec.h"
#include "protocol/decoder.h"
#include "protocol/frame.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

Error MakeError(ErrorKind kind, std::string message, bool fatal = false) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  e.fatal = fatal;
  return e;
}

std::int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename T>
void Bump(std::atomic<T>& counter, T by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

}  // namespace

// All socket state lives on strand_. State shared with user threads (state_, the pull queue,
// pending requests, outbound byte count) is guarded by mu_; state_ is written only on the strand
// (under mu_), so strand code may read it without the lock.
//
// Reconnect (a later issue) fits here: a new socket + decoder per attempt, the same Impl, and
// subscriptions_ replayed with since_ms.
class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  enum class State { kConnecting, kAuthenticating, kOpen, kClosed };
  // What a pending request receives: subscription_id, accepted count, or an error.
  using Reply = std::variant<std::uint64_t, std::uint32_t, Error>;

  Impl(ClientOptions options, asio::io_context& io)
      : options_(std::move(options)),
        strand_(asio::make_strand(io)),
        resolver_(strand_),
        socket_(strand_),
        connect_timer_(strand_),
        heartbeat_timer_(strand_),
        // The server never sends more than its max_msg_size; before AUTH_OK we do not know it,
        // so accept up to the hard protocol maximum (still bounded).
        decoder_(protocol::kMaxMaxMsgSize),
        read_buf_(std::max<std::size_t>(options_.read_buffer_size, 4096)) {
    pull_batches_ = !options_.on_batch && !options_.on_raw_batch;
  }

  // --- user threads -----------------------------------------------------------------------

  // Posts the connect to the strand; WaitConnect blocks the user thread until it completes.
  void BeginConnect() {
    connect_future_ = connect_result_.get_future();
    asio::post(strand_, [self = shared_from_this()] { self->StartConnect(); });
  }

  std::optional<Error> WaitConnect() {
    auto& fut = connect_future_;
    // The connect timer guarantees an answer; the extra second only guards against a stalled
    // external io_context.
    if (fut.wait_for(options_.connect_timeout + std::chrono::seconds(1)) ==
        std::future_status::timeout) {
      Close();
      return MakeError(ErrorKind::kTimeout, "connect did not complete (is the io_context run?)");
    }
    return fut.get();
  }

  const AuthInfo& auth_info() const { return auth_info_; }

  Result<std::uint64_t> Subscribe(Mode mode, const std::vector<std::string>& topics,
                                  std::uint32_t backfill, std::int64_t since_ms) {
    if (topics.empty()) return MakeError(ErrorKind::kInvalidArgument, "no topics to subscribe");
    if (mode != Mode::kSecond && mode != Mode::kMinute && mode != Mode::kTick) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid mode");
    }
    const std::uint32_t id = NextRequestId();
    auto reply = Request(codec::EncodeSubscribe(id, mode, topics, backfill, since_ms), id, true);
    if (!reply.ok()) return reply.error();
    if (auto* sub = std::get_if<std::uint64_t>(&reply.value())) return *sub;
    if (auto* err = std::get_if<Error>(&reply.value())) return *err;
    return MakeError(ErrorKind::kProtocol, "SUBSCRIBE answered by PUBLISH_ACK");
  }

  Result<void> Unsubscribe(std::uint64_t subscription_id) {
    const std::uint32_t id = NextRequestId();
    auto reply = Request(codec::EncodeUnsubscribe(id, subscription_id), id, false);
    if (!reply.ok()) return reply.error();
    return {};
  }

  Result<std::uint32_t> Publish(std::span<const Tick> ticks, bool ack) {
    if (ticks.empty()) return 0u;
    const std::uint32_t id = NextRequestId();
    std::string frame = codec::EncodePublish(id, ticks, ack);
    const std::uint32_t limit =
        auth_info_.max_msg_size != 0 ? auth_info_.max_msg_size : protocol::kDefaultMaxMsgSize;
    if (frame.size() - protocol::kHeaderSize > limit) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "PUBLISH of " + std::to_string(ticks.size()) + " ticks is " +
                           std::to_string(frame.size() - protocol::kHeaderSize) +
                           " bytes, over max_msg_size " + std::to_string(limit) + "; split it");
    }
    auto reply = Request(std::move(frame), id, ack);
    if (!reply.ok()) return reply.error();
    if (!ack) return static_cast<std::uint32_t>(ticks.size());
    if (auto* accepted = std::get_if<std::uint32_t>(&reply.value())) return *accepted;
    if (auto* err = std::get_if<Error>(&reply.value())) return *err;
    return MakeError(ErrorKind::kProtocol, "PUBLISH answered by SUBSCRIBE_OK");
  }

  std::optional<Event> Next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !events_.empty() || state_ == State::kClosed; });
    if (!events_.empty()) {
      Event ev = std::move(events_.front());
      events_.pop_front();
      if (read_paused_ && events_.size() <= options_.queue_capacity / 2) {
        read_paused_ = false;
        asio::post(strand_, [self = shared_from_this()] {
          if (self->state_ != State::kClosed) self->StartRead();
        });
      }
      return ev;
    }
    if (state_ == State::kClosed) return Closed{close_reason_};
    return std::nullopt;
  }

  // Blocks until the strand has closed everything, unless called on the strand itself.
  void Close() {
    if (strand_.running_in_this_thread()) {
      DoClose(std::nullopt);
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (state_ == State::kClosed) return;
    }
    asio::post(strand_, [self = shared_from_this()] { self->DoClose(std::nullopt); });
    std::unique_lock lock(mu_);
    // Bounded: DoClose only cancels operations. The timeout guards a stalled external context.
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return state_ == State::kClosed; });
  }

  bool closed() const {
    std::lock_guard lock(mu_);
    return state_ == State::kClosed;
  }

  std::optional<Error> close_reason() const {
    std::lock_guard lock(mu_);
    return close_reason_;
  }

  ClientStats stats() const {
    ClientStats s;
    s.frames_received = frames_received_.load(std::memory_order_relaxed);
    s.bytes_received = bytes_received_.load(std::memory_order_relaxed);
    s.batches = batches_.load(std::memory_order_relaxed);
    s.records = records_.load(std::memory_order_relaxed);
    s.batch_gaps = batch_gaps_.load(std::memory_order_relaxed);
    s.read_pauses = read_pauses_.load(std::memory_order_relaxed);
    s.dropped_events = dropped_events_.load(std::memory_order_relaxed);
    s.heartbeats_sent = heartbeats_sent_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::uint32_t NextRequestId() {
    std::uint32_t id = next_request_id_.fetch_add(1, std::memory_order_relaxed);
    if (id == 0) id = next_request_id_.fetch_add(1, std::memory_order_relaxed);  // 0 = "none"
    return id;
  }

  // Queues `frame` for writing (waiting for outbound space up to request_timeout) and, with
  // `wait_reply`, waits for the reply carrying `request_id`.
  Result<Reply> Request(std::string frame, std::uint32_t request_id, bool wait_reply) {
    const auto deadline = Clock::now() + options_.request_timeout;
    std::promise<Reply> promise;
    auto future = promise.get_future();
    {
      std::unique_lock lock(mu_);
      const bool ready = cv_.wait_until(lock, deadline, [&] {
        return state_ != State::kOpen || out_bytes_ == 0 ||
               out_bytes_ + frame.size() <= options_.max_outbound_bytes;
      });
      if (state_ != State::kOpen) return ClosedError();
      if (!ready) {
        return MakeError(ErrorKind::kTimeout, "outbound buffer full for " +
                                                  std::to_string(options_.request_timeout.count()) +
                                                  " ms (server not reading?)");
      }
      out_bytes_ += frame.size();
      if (wait_reply) pending_.emplace(request_id, std::move(promise));
    }
    asio::post(strand_, [self = shared_from_this(), f = std::move(frame)]() mutable {
      self->EnqueueWrite(std::move(f));
    });
    if (!wait_reply) return Reply{};
    if (future.wait_until(deadline) == std::future_status::timeout) {
      std::lock_guard lock(mu_);
      // Still pending: nobody will answer in time. Gone: the answer is being set right now.
      if (pending_.erase(request_id) == 1) {
        Error e = MakeError(
            ErrorKind::kTimeout,
            "no reply within " + std::to_string(options_.request_timeout.count()) + " ms");
        e.request_id = request_id;
        return e;
      }
    }
    return future.get();
  }

  Error ClosedError() const {  // mu_ held
    Error e = MakeError(ErrorKind::kClosed, "client is closed");
    if (close_reason_) e.message += " (" + close_reason_->ToString() + ")";
    return e;
  }

  // --- strand -----------------------------------------------------------------------------

  void StartConnect() {
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->state_ == State::kOpen || self->state_ == State::kClosed) return;
      self->Fail(MakeError(ErrorKind::kTimeout,
                           std::string(self->state_ == State::kConnecting ? "connect" : "AUTH") +
                               " to " + self->Endpoint() + " timed out after " +
                               std::to_string(self->options_.connect_timeout.count()) + " ms"));
    });
    resolver_.async_resolve(
        options_.host, std::to_string(options_.port),
        [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type r) {
          if (self->state_ == State::kClosed) return;
          if (ec) {
            self->Fail(MakeError(ErrorKind::kConnect,
                                 "resolve " + self->options_.host + ": " + ec.message()));
            return;
          }
          asio::async_connect(self->socket_, r,
                              [self](boost::system::error_code cec, const tcp::endpoint&) {
                                self->OnConnected(cec);
                              });
        });
  }

  void OnConnected(boost::system::error_code ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      Fail(MakeError(ErrorKind::kConnect, Endpoint() + ": " + ec.message()));
      return;
    }
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    if (options_.tls.enabled) {
      StartTls();
      return;
    }
    SendAuth();
  }

  // TLS: verify the server against the CA file (or the system's) and the host, then AUTH.
  void StartTls() {
    const auto& t = options_.tls;
    tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls_context_->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    if (t.ca_file.empty()) {
      tls_context_->set_default_verify_paths(ec);
    } else {
      tls_context_->load_verify_file(t.ca_file, ec);
    }
    if (!ec && !t.cert_file.empty()) tls_context_->use_certificate_chain_file(t.cert_file, ec);
    if (!ec && !t.key_file.empty()) {
      tls_context_->use_private_key_file(t.key_file, asio::ssl::context::pem, ec);
    }
    if (!ec) tls_context_->set_verify_mode(asio::ssl::verify_peer, ec);
    if (ec) {
      Fail(MakeError(ErrorKind::kConnect, "TLS setup: " + ec.message()));
      return;
    }
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_context_);
    SSL* ssl = tls_->native_handle();
    boost::system::error_code not_ip;
    asio::ip::make_address(options_.host, not_ip);
    if (not_ip) {
      // SNI (SSL_set_tlsext_host_name is a macro with a C cast).
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(options_.host.c_str()));
      SSL_set1_host(ssl, options_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), options_.host.c_str());
    }
    tls_->async_handshake(
        asio::ssl::stream_base::client, [self = shared_from_this()](boost::system::error_code hec) {
          if (self->state_ == State::kClosed) return;
          if (hec) {
            self->Fail(MakeError(ErrorKind::kConnect,
                                 "TLS handshake with " + self->Endpoint() + ": " + hec.message()));
            return;
          }
          self->SendAuth();
        });
  }

  void SendAuth() {
    SetState(State::kAuthenticating);
    EnqueueWrite(codec::EncodeAuth(options_.username, options_.password, options_.client_name),
                 /*counted=*/false);
    StartRead();
  }

  std::string Endpoint() const { return options_.host + ":" + std::to_string(options_.port); }

  void SetState(State s) {
    std::lock_guard lock(mu_);
    state_ = s;
    cv_.notify_all();
  }

  void StartRead() {
    if (tls_) {
      tls_->async_read_some(asio::buffer(read_buf_),
                            [self = shared_from_this()](boost::system::error_code ec,
                                                        std::size_t n) { self->OnRead(ec, n); });
      return;
    }
    socket_.async_read_some(asio::buffer(read_buf_),
                            [self = shared_from_this()](boost::system::error_code ec,
                                                        std::size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(boost::system::error_code ec, std::size_t n) {
    if (state_ == State::kClosed) return;
    if (ec) {
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        Fail(MakeError(ErrorKind::kIo, "server closed the connection", true));
      } else {
        Fail(MakeError(ErrorKind::kIo, "read: " + ec.message(), true));
      }
      return;
    }
    Bump(bytes_received_, std::uint64_t{n});
    const auto err =
        decoder_.Feed(std::span<const std::uint8_t>(read_buf_.data(), n),
                      [this](std::uint8_t type, std::span<const std::uint8_t> payload) {
                        Bump(frames_received_);
                        return OnFrame(type, payload);
                      });
    if (state_ == State::kClosed) return;
    if (err) {
      Fail(MakeError(ErrorKind::kProtocol, "bad frame header from server: " + err.message(), true));
      return;
    }
    if (pull_batches_) {
      std::lock_guard lock(mu_);
      if (events_.size() >= options_.queue_capacity) {
        // Backpressure: stop reading until Next() drains the queue; the server's output to us
        // then backs up (and it may close us as a slow consumer, which is the contract).
        read_paused_ = true;
        Bump(read_pauses_);
        return;
      }
    }
    StartRead();
  }

  // Returns false to stop decoding (the client closed).
  bool OnFrame(std::uint8_t type, std::span<const std::uint8_t> payload) {
    const auto ft = static_cast<protocol::FrameType>(type);
    if (state_ == State::kAuthenticating && ft != protocol::FrameType::kAuthOk &&
        ft != protocol::FrameType::kError) {
      return ProtocolError("expected AUTH_OK, got " + std::string(protocol::FrameTypeName(type)));
    }
    switch (ft) {
      case protocol::FrameType::kAuthOk:
        return OnAuthOk(payload);
      case protocol::FrameType::kError:
        return OnError(payload);
      case protocol::FrameType::kSubscribeOk: {
        tickwire::v1::SubscribeOk m;
        if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return ProtocolError("unparsable SUBSCRIBE_OK");
        }
        CompleteRequest(m.request_id(), Reply(std::in_place_index<0>, m.subscription_id()));
        return true;
      }
      case protocol::FrameType::kPublishAck: {
        tickwire::v1::PublishAck m;
        if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return ProtocolError("unparsable PUBLISH_ACK");
        }
        CompleteRequest(m.request_id(), Reply(std::in_place_index<1>, m.accepted()));
        return true;
      }
      case protocol::FrameType::kDataBatch:
        return OnDataBatch(payload);
      case protocol::FrameType::kHeartbeat: {
        tickwire::v1::Heartbeat m;
        if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return ProtocolError("unparsable HEARTBEAT");
        }
        return true;  // the echo; liveness is the server's business in v1
      }
      default:
        return ProtocolError("unexpected frame type " + std::to_string(type) + " (" +
                             std::string(protocol::FrameTypeName(type)) + ") from server");
    }
  }

  bool ProtocolError(std::string message) {
    Fail(MakeError(ErrorKind::kProtocol, std::move(message), true));
    return false;
  }

  bool OnAuthOk(std::span<const std::uint8_t> payload) {
    if (state_ != State::kAuthenticating) return ProtocolError("unexpected AUTH_OK");
    tickwire::v1::AuthOk m;
    if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return ProtocolError("unparsable AUTH_OK");
    }
    // Written before connect_result_ is set; user threads read it only after Connect returns.
    auth_info_.session_id = m.session_id();
    auth_info_.heartbeat_interval_ms = m.heartbeat_interval_ms();
    auth_info_.heartbeat_timeout_ms = m.heartbeat_timeout_ms();
    auth_info_.max_msg_size = m.max_msg_size();
    auth_info_.batch_window_ms = m.batch_window_ms();
    auth_info_.server_version = m.server_version();
    auth_info_.protocol_version = m.protocol_version();
    connect_timer_.cancel();
    SetState(State::kOpen);
    heartbeat_interval_ =
        options_.heartbeat_interval.count() > 0
            ? options_.heartbeat_interval
            : std::chrono::milliseconds(m.heartbeat_interval_ms() != 0 ? m.heartbeat_interval_ms()
                                                                       : 15000);
    ScheduleHeartbeat();
    connect_result_.set_value(std::nullopt);
    connect_done_ = true;
    return true;
  }

  bool OnError(std::span<const std::uint8_t> payload) {
    auto decoded = codec::DecodeError(payload);
    if (!decoded) return ProtocolError("unparsable ERROR");
    Error e = std::move(*decoded);
    if (state_ == State::kAuthenticating) {
      // Connect() returns this error; AUTH errors are all fatal, but close either way.
      e.fatal = true;
      Fail(std::move(e));
      return false;
    }
    bool answered = false;
    if (e.request_id != 0) answered = CompleteRequest(e.request_id, Reply(e));
    if (e.fatal) {
      Fail(std::move(e));  // reported as the close reason, and as an event
      return false;
    }
    if (!answered) Report(std::move(e));
    return true;
  }

  // Hands a reply to the waiting request; false when nobody waits for that id any more.
  bool CompleteRequest(std::uint32_t request_id, Reply reply) {
    std::promise<Reply> p;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(request_id);
      if (it == pending_.end()) return false;
      p = std::move(it->second);
      pending_.erase(it);
    }
    p.set_value(std::move(reply));
    return true;
  }

  bool OnDataBatch(std::span<const std::uint8_t> payload) {
    const auto seq = codec::PeekBatchSeq(payload);
    if (!seq) return ProtocolError("malformed DATA_BATCH");
    Bump(batches_);
    if (*seq != last_batch_seq_ + 1) {
      Bump(batch_gaps_);
      Error e = MakeError(ErrorKind::kBatchGap, "DATA_BATCH batch_seq " + std::to_string(*seq) +
                                                    " after " + std::to_string(last_batch_seq_) +
                                                    " (expected " +
                                                    std::to_string(last_batch_seq_ + 1) + ")");
      Report(std::move(e));
      if (state_ == State::kClosed) return false;
    }
    last_batch_seq_ = *seq;
    if (options_.on_raw_batch) {
      return InvokeCallback([&] { options_.on_raw_batch(*seq, payload); });
    }
    Batch batch;
    if (!codec::DecodeBatch(payload, batch)) return ProtocolError("unparsable DATA_BATCH");
    Bump(records_, std::uint64_t{batch.records.size()});
    if (options_.on_batch) return InvokeCallback([&] { options_.on_batch(batch); });
    std::lock_guard lock(mu_);
    events_.emplace_back(std::move(batch));
    cv_.notify_all();
    return true;
  }

  // Runs a user callback; a throwing callback closes the client instead of escaping the thread.
  template <typename F>
  bool InvokeCallback(F&& f) {
    try {
      f();
    } catch (const std::exception& ex) {
      Fail(MakeError(ErrorKind::kCallback, std::string("callback threw: ") + ex.what(), true));
      return false;
    } catch (...) {
      Fail(MakeError(ErrorKind::kCallback, "callback threw", true));
      return false;
    }
    return state_ != State::kClosed;  // the callback may have called Close()
  }

  // Delivers an error that answers no request: on_error, else the pull queue.
  void Report(Error e) {
    if (options_.on_error) {
      InvokeCallback([&] { options_.on_error(e); });
      return;
    }
    std::lock_guard lock(mu_);
    // In pull mode the queue is bounded by read pausing; otherwise nobody may be pulling, so
    // drop rather than grow.
    if (!pull_batches_ && events_.size() >= options_.queue_capacity) {
      Bump(dropped_events_);
      return;
    }
    events_.emplace_back(std::move(e));
    cv_.notify_all();
  }

  void ScheduleHeartbeat() {
    if (heartbeat_interval_.count() <= 0) return;
    heartbeat_timer_.expires_after(heartbeat_interval_);
    heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->state_ != State::kOpen) return;
      Bump(self->heartbeats_sent_);  // before the write, so a peer that saw it sees the count
      self->EnqueueWrite(codec::EncodeHeartbeat(NowUnixMs()), /*counted=*/false);
      self->ScheduleHeartbeat();
    });
  }

  // `counted`: the caller already added the frame to out_bytes_ (user requests do, so that
  // they wait for space before queueing).
  void EnqueueWrite(std::string frame, bool counted = true) {
    if (state_ == State::kClosed) return;
    if (!counted) {
      std::lock_guard lock(mu_);
      out_bytes_ += frame.size();
    }
    out_queue_.push_back(std::move(frame));
    if (!write_in_flight_) StartWrite();
  }

  // Exactly one write in flight; everything queued behind it goes out in the next gather write.
  void StartWrite() {
    writing_.clear();
    buffers_.clear();
    while (!out_queue_.empty()) {
      writing_.push_back(std::move(out_queue_.front()));
      out_queue_.pop_front();
    }
    for (const auto& f : writing_) buffers_.emplace_back(f.data(), f.size());
    write_in_flight_ = true;
    if (tls_) {
      asio::async_write(*tls_, buffers_,
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          self->OnWrite(ec, n);
                        });
      return;
    }
    asio::async_write(socket_, buffers_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                        self->OnWrite(ec, n);
                      });
  }

  void OnWrite(boost::system::error_code ec, std::size_t n) {
    write_in_flight_ = false;
    if (state_ == State::kClosed) return;
    if (ec) {
      Fail(MakeError(ErrorKind::kIo, "write: " + ec.message(), true));
      return;
    }
    {
      std::lock_guard lock(mu_);
      out_bytes_ -= std::min(out_bytes_, n);
      cv_.notify_all();
    }
    if (!out_queue_.empty()) StartWrite();
  }

  // Closes because of `reason`: it becomes the close reason and, once connected, an event.
  void Fail(Error reason) {
    reason.fatal = true;
    DoClose(std::move(reason));
  }

  void DoClose(std::optional<Error> reason) {
    // closing_ also stops re-entry from callbacks run below (on_error calling Close or throwing).
    if (state_ == State::kClosed || closing_) return;
    closing_ = true;
    const bool was_open = state_ == State::kOpen;
    if (reason && was_open) Report(*reason);  // before the gate closes, so on_error sees it
    std::unordered_map<std::uint32_t, std::promise<Reply>> pending;
    Error closed_error;
    {
      std::lock_guard lock(mu_);
      state_ = State::kClosed;
      close_reason_ = reason;
      closed_error = ClosedError();
      pending.swap(pending_);
      out_bytes_ = 0;
      cv_.notify_all();
    }
    for (auto& [id, p] : pending) {
      // A fatal server ERROR for a request answered it already; the rest learn why we closed.
      Error e = closed_error;
      e.request_id = id;
      p.set_value(Reply(std::move(e)));
    }
    boost::system::error_code ignored;
    resolver_.cancel();
    connect_timer_.cancel();
    heartbeat_timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_queue_.clear();
    if (!connect_done_) {
      connect_done_ = true;
      connect_result_.set_value(reason ? *reason
                                       : MakeError(ErrorKind::kClosed, "closed while connecting"));
    }
  }

  // Immutable after construction.
  const ClientOptions options_;
  bool pull_batches_ = true;  // batches go to the pull queue (no batch callback)

  // Strand only.
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::context> tls_context_;  // with options_.tls.enabled
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  asio::steady_timer connect_timer_;
  asio::steady_timer heartbeat_timer_;
  std::chrono::milliseconds heartbeat_interval_{0};
  protocol::FrameDecoder decoder_;
  std::vector<std::uint8_t> read_buf_;
  std::deque<std::string> out_queue_;  // frames waiting for the write in flight
  std::vector<std::string> writing_;   // frames of the write in flight (kept alive for it)
  std::vector<asio::const_buffer> buffers_;
  bool write_in_flight_ = false;
  std::uint64_t last_batch_seq_ = 0;  // batch_seq starts at 1 on every connection
  std::promise<std::optional<Error>> connect_result_;
  std::future<std::optional<Error>> connect_future_;  // user thread, in Connect only
  bool connect_done_ = false;
  bool closing_ = false;  // DoClose is running
  AuthInfo auth_info_;    // written on the strand before Connect returns; read-only after

  // Shared with user threads.
  mutable std::mutex mu_;
  std::condition_variable cv_;  // state_, events_, out_bytes_ changes
  State state_ = State::kConnecting;
  std::optional<Error> close_reason_;
  std::deque<Event> events_;  // the pull queue
  bool read_paused_ = false;  // reading stopped until Next() drains events_
  std::size_t out_bytes_ = 0;
  std::unordered_map<std::uint32_t, std::promise<Reply>> pending_;

  std::atomic<std::uint32_t> next_request_id_{1};
  std::atomic<std::uint64_t> frames_received_{0};
  std::atomic<std::uint64_t> bytes_received_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> batch_gaps_{0};
  std::atomic<std::uint64_t> read_pauses_{0};
  std::atomic<std::uint64_t> dropped_events_{0};
  std::atomic<std::uint64_t> heartbeats_sent_{0};
};

Result<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  std::unique_ptr<asio::io_context> owned;
  asio::io_context* io = options.io_context;
  if (io == nullptr) {
    owned = std::make_unique<asio::io_context>(1);
    io = owned.get();
  }
  // The Client is the only owner of the Impl outside handlers: an owned io_context must outlive
  // every Impl (its socket and strand), and ~Client destroys them in that order.
  auto impl = std::make_shared<Impl>(std::move(options), *io);
  impl->BeginConnect();
  std::unique_ptr<Client> client(new Client(std::move(owned), std::move(impl)));
  // On failure `client` is destroyed here, which joins the io thread.
  if (auto err = client->impl_->WaitConnect()) return std::move(*err);
  return client;
}

Client::Client(std::unique_ptr<asio::io_context> owned_io, std::shared_ptr<Impl> impl)
    : owned_io_(std::move(owned_io)), impl_(std::move(impl)) {
  if (owned_io_) {
    owned_io_work_ = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
        owned_io_->get_executor());
    // Runs until the guard is gone and the client's operations are done. Handlers never throw:
    // user callbacks are wrapped, and anything else is a bug we would rather see as a crash.
    io_thread_ = std::thread([io = owned_io_.get()] { io->run(); });
  }
}

Client::~Client() {
  impl_->Close();
  owned_io_work_.reset();
  if (io_thread_.joinable()) {
    assert(io_thread_.get_id() != std::this_thread::get_id());
    io_thread_.join();
  }
  if (owned_io_) {
    // Handlers posted after the thread left (none expected) run now, so that none outlives the
    // Impl's strand inside the io_context's destructor.
    owned_io_->restart();
    owned_io_->poll();
  }
  impl_.reset();
}

const AuthInfo& Client::auth_info() const { return impl_->auth_info(); }

Result<std::uint64_t> Client::Subscribe(Mode mode, const std::vector<std::string>& topics,
                                        std::uint32_t backfill, std::int64_t since_ms) {
  return impl_->Subscribe(mode, topics, backfill, since_ms);
}

Result<void> Client::Unsubscribe(std::uint64_t subscription_id) {
  return impl_->Unsubscribe(subscription_id);
}

Result<std::uint32_t> Client::Publish(std::span<const Tick> ticks, bool ack) {
  return impl_->Publish(ticks, ack);
}

std::optional<Event> Client::Next(std::chrono::milliseconds timeout) {
  return impl_->Next(timeout);
}

void Client::Close() { impl_->Close(); }
bool Client::closed() const { return impl_->closed(); }
std::optional<Error> Client::close_reason() const { return impl_->close_reason(); }
ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace tickwire::client
