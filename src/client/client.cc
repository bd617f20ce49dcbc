#include "client/client.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <random>
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
#include "common/wall_clock.h"
#include "protocol/decoder.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
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

template <typename T>
void Bump(std::atomic<T>& counter, T by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

}  // namespace

// All socket state lives on strand_. State shared with user threads (state_, the pull queue,
// pending requests, outbound byte count, epoch_) is guarded by mu_; state_ and epoch_ are
// written only on the strand (under mu_), so strand code may read them without the lock.
//
// Each TCP connection is a Conn; handlers capture the Conn they were started for and do
// nothing once it is no longer conn_ (a reconnect replaced it), so a late completion of an old
// socket's operation never touches the new one.
class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  // kConnecting/kAuthenticating/kResuming are passed through by every (re)connect attempt;
  // kReconnecting is the wait before an attempt.
  enum class State { kConnecting, kAuthenticating, kResuming, kOpen, kReconnecting, kClosed };
  // What a pending request receives: subscription_id (or handle), accepted count, or an error.
  using Reply = std::variant<std::uint64_t, std::uint32_t, Error>;

  // What a subscription is, as the caller asked for it.
  struct SubscriptionSpec {
    Mode mode = Mode::kTick;
    std::vector<std::string> topics;
    bool wildcard = false;
    std::uint32_t backfill = 0;
    std::int64_t since_ms = 0;
  };

  Impl(ClientOptions options, asio::io_context& io)
      : options_(std::move(options)),
        strand_(asio::make_strand(io)),
        resolver_(strand_),
        connect_timer_(strand_),
        heartbeat_timer_(strand_),
        reconnect_timer_(strand_),
        rng_(std::random_device{}()) {
    pull_batches_ = !options_.on_batch && !options_.on_raw_batch;
    reconnect_ = options_.reconnect.enabled;
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
    auto spec = std::make_shared<SubscriptionSpec>();
    spec->mode = mode;
    spec->topics = topics;
    spec->wildcard = std::find(topics.begin(), topics.end(), "*") != topics.end();
    spec->backfill = backfill;
    spec->since_ms = since_ms;
    const auto deadline = Clock::now() + options_.request_timeout;
    while (true) {
      const std::uint32_t id = NextRequestId();
      auto reply = Request(codec::EncodeSubscribe(id, mode, topics, backfill, since_ms), id, true,
                           deadline, reconnect_ ? spec : nullptr);
      if (!reply.ok()) return reply.error();
      if (auto* sub = std::get_if<std::uint64_t>(&reply.value())) return *sub;
      if (auto* err = std::get_if<Error>(&reply.value())) {
        // The connection broke before the answer: the new one starts without this
        // subscription, so ask again once it is back (Request waits for that).
        if (reconnect_ && err->kind == ErrorKind::kIo && !err->fatal && Clock::now() < deadline) {
          continue;
        }
        return *err;
      }
      return MakeError(ErrorKind::kProtocol, "SUBSCRIBE answered by PUBLISH_ACK");
    }
  }

  Result<void> Unsubscribe(std::uint64_t subscription_id) {
    if (!reconnect_) {
      const std::uint32_t id = NextRequestId();
      auto reply = Request(codec::EncodeUnsubscribe(id, subscription_id), id, false,
                           Clock::now() + options_.request_timeout, nullptr);
      if (!reply.ok()) return reply.error();
      return {};
    }
    // Handles live on the strand: forget the subscription there (so no resume brings it back)
    // and unsubscribe its current server id.
    if (strand_.running_in_this_thread()) return DoUnsubscribe(subscription_id);
    auto done = std::make_shared<std::promise<Result<void>>>();
    auto fut = done->get_future();
    asio::post(strand_, [self = shared_from_this(), subscription_id, done] {
      done->set_value(self->DoUnsubscribe(subscription_id));
    });
    if (fut.wait_for(options_.request_timeout) == std::future_status::timeout) {
      return MakeError(ErrorKind::kTimeout, "unsubscribe did not run (is the io_context run?)");
    }
    return fut.get();
  }

  Result<std::uint32_t> Publish(std::span<const Tick> ticks, bool ack) {
    if (ticks.empty()) return 0u;
    const std::uint32_t id = NextRequestId();
    std::string frame = codec::EncodePublish(id, ticks, ack);
    const std::uint32_t server_limit = max_msg_size_.load(std::memory_order_relaxed);
    const std::uint32_t limit = server_limit != 0 ? server_limit : protocol::kDefaultMaxMsgSize;
    if (frame.size() - protocol::kHeaderSize > limit) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "PUBLISH of " + std::to_string(ticks.size()) + " ticks is " +
                           std::to_string(frame.size() - protocol::kHeaderSize) +
                           " bytes, over max_msg_size " + std::to_string(limit) + "; split it");
    }
    auto reply =
        Request(std::move(frame), id, ack, Clock::now() + options_.request_timeout, nullptr);
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
        asio::post(strand_, [self = shared_from_this()] { self->ResumeRead(); });
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

  ConnectionState state() const {
    std::lock_guard lock(mu_);
    switch (state_) {
      case State::kOpen:
        return ConnectionState::kOpen;
      case State::kClosed:
        return ConnectionState::kClosed;
      default:
        return ever_open_ ? ConnectionState::kReconnecting : ConnectionState::kConnecting;
    }
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
    s.disconnects = disconnects_.load(std::memory_order_relaxed);
    s.reconnect_attempts = reconnect_attempts_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.resubscribe_failures = resubscribe_failures_.load(std::memory_order_relaxed);
    s.duplicates_dropped = duplicates_dropped_.load(std::memory_order_relaxed);
    s.tick_gaps = tick_gaps_.load(std::memory_order_relaxed);
    s.stream_epoch_changes = stream_epoch_changes_.load(std::memory_order_relaxed);
    s.topic_epoch_changes = topic_epoch_changes_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // One TCP connection and everything that dies with it.
  struct Conn {
    Conn(asio::strand<asio::io_context::executor_type>& strand, std::size_t read_buffer_size)
        : socket(strand),
          // The server never sends more than its max_msg_size; before AUTH_OK we do not know
          // it, so accept up to the hard protocol maximum (still bounded). Most reads of a busy
          // stream end inside a frame: keep a default-sized frame's storage between them.
          decoder(protocol::kMaxMaxMsgSize, protocol::kHeaderSize + protocol::kDefaultMaxMsgSize),
          read_buf(std::max<std::size_t>(read_buffer_size, 4096)) {}

    tcp::socket socket;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;  // over `socket` with TLS on
    protocol::FrameDecoder decoder;
    std::vector<std::uint8_t> read_buf;
    std::deque<std::string> out_queue;  // frames waiting for the write in flight
    std::vector<std::string> writing;   // frames of the write in flight (kept alive for it)
    std::vector<asio::const_buffer> buffers;
    bool write_in_flight = false;
    bool read_paused = false;            // stopped until Next() drains the pull queue
    std::uint64_t last_batch_seq = 0;    // batch_seq starts at 1 on every connection
    Clock::time_point last_rx{};         // last bytes from the server (idle detection)
    Clock::time_point last_heartbeat{};  // last HEARTBEAT sent (or AUTH_OK)
    std::chrono::milliseconds heartbeat_interval{0};
    std::chrono::milliseconds idle_timeout{0};  // 0: not checked
  };
  using ConnPtr = std::shared_ptr<Conn>;

  // A subscription the client resumes after a reconnect (reconnect enabled only).
  struct Subscription {
    std::shared_ptr<const SubscriptionSpec> spec;
    std::uint64_t server_id = 0;  // on the current connection; 0 while not (re)established
    std::int64_t anchor_ms = 0;   // complete from here: the caller's since_ms or first OK time
    // TICK: the SubscribeOk.resume_from_ns (PROTOCOL S8c) sent with every resume, so that topics
    // it holds no position in miss nothing either: the first one, then that of the latest
    // resume whose history_end marker arrived (all accepted before it was received or told).
    std::int64_t resume_from_ns = 0;
    std::int64_t ok_resume_from_ns = 0;  // of the latest SUBSCRIBE_OK, until its marker
    // The history it asked for has all arrived (its history_end marker, or none was asked);
    // until then a resume asks for the same history again.
    bool history_complete = true;
  };
  // What the SUBSCRIBE_OK being handled says besides the id (read when it registers one).
  struct OkDetails {
    std::int64_t resume_from_ns = 0;
    bool history_end = false;
  };

  // A request waiting for its reply. `subscribe` is set for a SUBSCRIBE whose OK registers a
  // resumable subscription (on the strand, so that no reconnect can slip in between).
  struct Pending {
    std::promise<Reply> promise;
    std::shared_ptr<const SubscriptionSpec> subscribe;
  };

  std::uint32_t NextRequestId() {
    std::uint32_t id = next_request_id_.fetch_add(1, std::memory_order_relaxed);
    if (id == 0) id = next_request_id_.fetch_add(1, std::memory_order_relaxed);  // 0 = "none"
    return id;
  }

  // Queues `frame` for writing (waiting, until `deadline`, for the connection to be open and for
  // outbound space) and, with `wait_reply`, waits for the reply carrying `request_id`.
  Result<Reply> Request(std::string frame, std::uint32_t request_id, bool wait_reply,
                        Clock::time_point deadline,
                        std::shared_ptr<const SubscriptionSpec> subscribe) {
    Pending pending;
    pending.subscribe = std::move(subscribe);
    auto future = pending.promise.get_future();
    std::uint64_t epoch = 0;
    {
      std::unique_lock lock(mu_);
      const bool ready = cv_.wait_until(lock, deadline, [&] {
        if (state_ == State::kClosed) return true;
        if (state_ != State::kOpen) return false;  // reconnecting: wait for it
        return out_bytes_ == 0 || out_bytes_ + frame.size() <= options_.max_outbound_bytes;
      });
      if (state_ == State::kClosed) return ClosedError();
      if (!ready && state_ != State::kOpen) {
        return MakeError(ErrorKind::kTimeout, "not connected for " +
                                                  std::to_string(options_.request_timeout.count()) +
                                                  " ms (reconnecting)");
      }
      if (!ready) {
        return MakeError(ErrorKind::kTimeout, "outbound buffer full for " +
                                                  std::to_string(options_.request_timeout.count()) +
                                                  " ms (server not reading?)");
      }
      out_bytes_ += frame.size();
      epoch = epoch_;
      if (wait_reply) pending_.emplace(request_id, std::move(pending));
    }
    asio::post(strand_, [self = shared_from_this(), f = std::move(frame), epoch]() mutable {
      // A frame meant for a connection that is gone is dropped (its reply already failed).
      if (epoch == self->epoch_ && self->conn_) self->EnqueueWrite(self->conn_, std::move(f));
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
    auto conn = std::make_shared<Conn>(strand_, options_.read_buffer_size);
    conn_ = conn;
    SetState(State::kConnecting);
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this(), conn](boost::system::error_code ec) {
      if (ec || conn != self->conn_) return;
      if (self->state_ != State::kConnecting && self->state_ != State::kAuthenticating) return;
      self->Fail(MakeError(ErrorKind::kTimeout,
                           std::string(self->state_ == State::kConnecting ? "connect" : "AUTH") +
                               " to " + self->Endpoint() + " timed out after " +
                               std::to_string(self->options_.connect_timeout.count()) + " ms"));
    });
    resolver_.async_resolve(
        options_.host, std::to_string(options_.port),
        [self = shared_from_this(), conn](boost::system::error_code ec,
                                          tcp::resolver::results_type r) {
          if (conn != self->conn_) return;
          if (ec) {
            self->Fail(MakeError(ErrorKind::kConnect,
                                 "resolve " + self->options_.host + ": " + ec.message()));
            return;
          }
          asio::async_connect(conn->socket, r,
                              [self, conn](boost::system::error_code cec, const tcp::endpoint&) {
                                self->OnConnected(conn, cec);
                              });
        });
  }

  void OnConnected(const ConnPtr& conn, boost::system::error_code ec) {
    if (conn != conn_) return;
    if (ec) {
      Fail(MakeError(ErrorKind::kConnect, Endpoint() + ": " + ec.message()));
      return;
    }
    boost::system::error_code ignored;
    conn->socket.set_option(tcp::no_delay(true), ignored);
    conn->last_rx = Clock::now();
    if (options_.tls.enabled) {
      StartTls(conn);
      return;
    }
    SendAuth(conn);
  }

  // TLS: verify the server against the CA file (or the system's) and the host, then AUTH.
  void StartTls(const ConnPtr& conn) {
    const auto& t = options_.tls;
    if (!tls_context_) {
      auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
      boost::system::error_code ec;
      if (t.ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
      } else {
        ctx->load_verify_file(t.ca_file, ec);
      }
      if (!ec && !t.cert_file.empty()) ctx->use_certificate_chain_file(t.cert_file, ec);
      if (!ec && !t.key_file.empty()) {
        ctx->use_private_key_file(t.key_file, asio::ssl::context::pem, ec);
      }
      if (!ec) ctx->set_verify_mode(asio::ssl::verify_peer, ec);
      if (ec) {
        Fail(MakeError(ErrorKind::kConnect, "TLS setup: " + ec.message()));
        return;
      }
      tls_context_ = std::move(ctx);
    }
    conn->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(conn->socket, *tls_context_);
    SSL* ssl = conn->tls->native_handle();
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
    conn->tls->async_handshake(asio::ssl::stream_base::client, [self = shared_from_this(), conn](
                                                                   boost::system::error_code hec) {
      if (conn != self->conn_ || self->state_ == State::kClosed) return;
      if (hec) {
        self->Fail(MakeError(ErrorKind::kConnect,
                             "TLS handshake with " + self->Endpoint() + ": " + hec.message()));
        return;
      }
      self->SendAuth(conn);
    });
  }

  void SendAuth(const ConnPtr& conn) {
    SetState(State::kAuthenticating);
    EnqueueWrite(conn,
                 codec::EncodeAuth(options_.username, options_.password, options_.client_name),
                 /*counted=*/false);
    StartRead(conn);
  }

  std::string Endpoint() const { return options_.host + ":" + std::to_string(options_.port); }

  void SetState(State s) {
    std::lock_guard lock(mu_);
    state_ = s;
    if (s == State::kOpen) ever_open_ = true;
    cv_.notify_all();
  }

  void StartRead(const ConnPtr& conn) {
    if (conn->tls) {
      conn->tls->async_read_some(
          asio::buffer(conn->read_buf),
          [self = shared_from_this(), conn](boost::system::error_code ec, std::size_t n) {
            self->OnRead(conn, ec, n);
          });
      return;
    }
    conn->socket.async_read_some(
        asio::buffer(conn->read_buf),
        [self = shared_from_this(), conn](boost::system::error_code ec, std::size_t n) {
          self->OnRead(conn, ec, n);
        });
  }

  // Next() drained the pull queue: read again if this connection had paused.
  void ResumeRead() {
    if (state_ == State::kClosed || !conn_ || !conn_->read_paused) return;
    conn_->read_paused = false;
    conn_->last_rx = Clock::now();  // the pause was ours, not the server's silence
    StartRead(conn_);
  }

  void OnRead(const ConnPtr& conn, boost::system::error_code ec, std::size_t n) {
    if (conn != conn_ || state_ == State::kClosed) return;
    if (ec) {
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        Fail(MakeError(ErrorKind::kIo, "server closed the connection", true));
      } else {
        Fail(MakeError(ErrorKind::kIo, "read: " + ec.message(), true));
      }
      return;
    }
    Bump(bytes_received_, std::uint64_t{n});
    conn->last_rx = Clock::now();
    const auto err =
        conn->decoder.Feed(std::span<const std::uint8_t>(conn->read_buf.data(), n),
                           [this, &conn](std::uint8_t type, std::span<const std::uint8_t> payload) {
                             Bump(frames_received_);
                             return OnFrame(conn, type, payload);
                           });
    if (conn != conn_ || state_ == State::kClosed) return;
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
        conn->read_paused = true;
        Bump(read_pauses_);
        return;
      }
    }
    StartRead(conn);
  }

  // Returns false to stop decoding (the connection is gone or the client closed).
  bool OnFrame(const ConnPtr& conn, std::uint8_t type, std::span<const std::uint8_t> payload) {
    const auto ft = static_cast<protocol::FrameType>(type);
    if (state_ == State::kAuthenticating && ft != protocol::FrameType::kAuthOk &&
        ft != protocol::FrameType::kError) {
      return ProtocolError("expected AUTH_OK, got " + std::string(protocol::FrameTypeName(type)));
    }
    bool go_on = true;
    switch (ft) {
      case protocol::FrameType::kAuthOk:
        go_on = OnAuthOk(conn, payload);
        break;
      case protocol::FrameType::kError:
        go_on = OnError(payload);
        break;
      case protocol::FrameType::kSubscribeOk: {
        tickwire::v1::SubscribeOk m;
        if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return ProtocolError("unparsable SUBSCRIBE_OK");
        }
        OnSubscribeOk(m.request_id(), m.subscription_id(),
                      OkDetails{m.resume_from_ns(), m.history_end()});
        break;
      }
      case protocol::FrameType::kPublishAck: {
        tickwire::v1::PublishAck m;
        if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return ProtocolError("unparsable PUBLISH_ACK");
        }
        CompleteRequest(m.request_id(), Reply(std::in_place_index<1>, m.accepted()));
        break;
      }
      case protocol::FrameType::kDataBatch:
        go_on = OnDataBatch(conn, payload);
        break;
      case protocol::FrameType::kHeartbeat: {
        tickwire::v1::Heartbeat m;
        if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return ProtocolError("unparsable HEARTBEAT");
        }
        break;  // the echo; it keeps last_rx fresh
      }
      default:
        return ProtocolError("unexpected frame type " + std::to_string(type) + " (" +
                             std::string(protocol::FrameTypeName(type)) + ") from server");
    }
    return go_on && conn == conn_ && state_ != State::kClosed;
  }

  bool ProtocolError(std::string message) {
    Fail(MakeError(ErrorKind::kProtocol, std::move(message), true));
    return false;
  }

  bool OnAuthOk(const ConnPtr& conn, std::span<const std::uint8_t> payload) {
    if (state_ != State::kAuthenticating) return ProtocolError("unexpected AUTH_OK");
    tickwire::v1::AuthOk m;
    if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return ProtocolError("unparsable AUTH_OK");
    }
    connect_timer_.cancel();
    max_msg_size_.store(m.max_msg_size(), std::memory_order_relaxed);
    conn->heartbeat_interval =
        options_.heartbeat_interval.count() > 0
            ? options_.heartbeat_interval
            : std::chrono::milliseconds(m.heartbeat_interval_ms() != 0 ? m.heartbeat_interval_ms()
                                                                       : 15000);
    if (reconnect_) {
      conn->idle_timeout = options_.reconnect.idle_timeout.count() > 0
                               ? options_.reconnect.idle_timeout
                               : std::chrono::milliseconds(m.heartbeat_timeout_ms());
    }
    conn->last_heartbeat = Clock::now();
    ScheduleHeartbeat(conn);
    if (connect_done_) {
      // A new stream epoch: the server restarted without its history (PROTOCOL S7a). The
      // resume still sends the old positions (with their epoch), so that the server says what
      // was lost; the seqs seen are forgotten after that.
      previous_stream_epoch_ = stream_epoch_;
      stream_epoch_ = m.stream_epoch();
      const bool ok = Resume(conn);
      if (previous_stream_epoch_ != stream_epoch_) {
        delivered_.ResetTickNumbering();
        Bump(stream_epoch_changes_);
      }
      return ok;
    }
    stream_epoch_ = m.stream_epoch();
    auth_info_.stream_epoch = m.stream_epoch();
    // Written before connect_result_ is set; user threads read it only after Connect returns.
    auth_info_.session_id = m.session_id();
    auth_info_.heartbeat_interval_ms = m.heartbeat_interval_ms();
    auth_info_.heartbeat_timeout_ms = m.heartbeat_timeout_ms();
    auth_info_.max_msg_size = m.max_msg_size();
    auth_info_.batch_window_ms = m.batch_window_ms();
    auth_info_.server_version = m.server_version();
    auth_info_.protocol_version = m.protocol_version();
    auth_info_.bar_close_delay_ms = m.bar_close_delay_ms();
    auth_info_.watermark_ms = m.watermark_ms();
    SetState(State::kOpen);
    connect_result_.set_value(std::nullopt);
    connect_done_ = true;
    return true;
  }

  // After a reconnect's AUTH_OK: re-SUBSCRIBE everything with since_ms from what was received.
  // User requests wait (state kResuming) until every SUBSCRIBE is answered.
  bool Resume(const ConnPtr& conn) {
    SetState(State::kResuming);
    resume_pending_.clear();
    resumed_ = 0;
    for (auto& [handle, sub] : subs_) {
      sub.server_id = 0;
      const auto& spec = *sub.spec;
      // Cut before its history all arrived: ask for that history again (topics the replay had
      // not reached get it; what arrived already is dropped as duplicates). Else from what was
      // received, less the lookback. Bars with backfill resume by time either way: the newest N
      // bars again could leave out bars that closed while the client was away.
      const bool ask_again =
          !sub.history_complete && (spec.mode == Mode::kTick || spec.backfill == 0);
      const std::int64_t since =
          ask_again ? spec.since_ms
                    : ResumeSinceMs(spec.since_ms, sub.anchor_ms,
                                    delivered_.NewestPoint(spec.mode, spec.wildcard, spec.topics),
                                    options_.reconnect.resume_lookback);
      const std::uint32_t backfill = ask_again ? spec.backfill : 0;
      // Ticks resume by the server's numbering (PROTOCOL S8c): every topic received goes on
      // after its last seq, whatever the producers stamped; since_ms covers the rest (topics not
      // received yet, and bars). Positions take at most half of a frame.
      std::vector<ResumePoint> positions;
      if (spec.mode == Mode::kTick) {
        positions = delivered_.TickPositions(spec.wildcard, spec.topics,
                                             max_msg_size_.load(std::memory_order_relaxed) / 2);
      }
      const std::uint32_t id = NextRequestId();
      resume_pending_.emplace(id, handle);
      EnqueueWrite(conn,
                   codec::EncodeSubscribe(id, spec.mode, spec.topics, backfill, since, positions,
                                          previous_stream_epoch_, sub.resume_from_ns),
                   /*counted=*/false);
    }
    if (resume_pending_.empty()) FinishResume();
    return state_ != State::kClosed;
  }

  void FinishResume() {
    SetState(State::kOpen);
    Bump(reconnects_);
    ConnectionEvent ev;
    ev.type = ConnectionEvent::Type::kReconnected;
    ev.attempt = attempt_;
    ev.resubscribed = resumed_;
    ev.previous_stream_epoch = previous_stream_epoch_;
    ev.stream_epoch = stream_epoch_;
    ev.stream_epoch_changed = previous_stream_epoch_ != stream_epoch_;
    attempt_ = 0;
    EmitConnectionEvent(ev);
  }

  void OnSubscribeOk(std::uint32_t request_id, std::uint64_t server_id, const OkDetails& details) {
    if (auto it = resume_pending_.find(request_id); it != resume_pending_.end()) {
      const std::uint64_t handle = it->second;
      resume_pending_.erase(it);
      if (auto sub = subs_.find(handle); sub != subs_.end()) {
        sub->second.server_id = server_id;
        if (sub->second.resume_from_ns == 0) sub->second.resume_from_ns = details.resume_from_ns;
        sub->second.ok_resume_from_ns = details.resume_from_ns;
        ++resumed_;
      } else if (conn_) {
        // Unsubscribed while its resume was in flight.
        EnqueueWrite(conn_, codec::EncodeUnsubscribe(NextRequestId(), server_id), false);
      }
      if (resume_pending_.empty() && state_ == State::kResuming) FinishResume();
      return;
    }
    ok_details_ = details;
    CompleteRequest(request_id, Reply(std::in_place_index<0>, server_id));
    ok_details_ = {};
  }

  bool OnError(std::span<const std::uint8_t> payload) {
    auto decoded = codec::DecodeError(payload);
    if (!decoded) return ProtocolError("unparsable ERROR");
    Error e = std::move(*decoded);
    if (state_ == State::kAuthenticating) {
      // Connect() returns this error (or the reconnect retries or gives up); AUTH errors are
      // all fatal, but treat it so either way.
      e.fatal = true;
      Fail(std::move(e));
      return false;
    }
    if (e.request_id != 0) {
      if (auto it = resume_pending_.find(e.request_id); it != resume_pending_.end()) {
        // The server refuses a subscription it accepted before (permissions changed, ...):
        // it is dropped, and the caller hears why.
        const std::uint64_t handle = it->second;
        resume_pending_.erase(it);
        subs_.erase(handle);
        Bump(resubscribe_failures_);
        Error r = e;
        r.request_id = 0;
        r.fatal = false;
        r.message = "resuming subscription " + std::to_string(handle) + " failed: " + r.message;
        if (!e.fatal) {
          Report(std::move(r));
          if (state_ == State::kClosed) return false;
          if (resume_pending_.empty() && state_ == State::kResuming) FinishResume();
          return state_ != State::kClosed;
        }
        Report(std::move(r));
        if (state_ == State::kClosed) return false;
      }
    }
    bool answered = false;
    // TOPIC_LIMIT tells why part of a PUBLISH was not applied; its PUBLISH_ACK (if asked for)
    // follows and answers the request.
    if (e.request_id != 0 && e.code != ErrorCode::kTopicLimit) {
      answered = CompleteRequest(e.request_id, Reply(e));
    }
    if (e.fatal) {
      Fail(std::move(e));  // reported as the close (or disconnect) reason, and as an event
      return false;
    }
    if (!answered) Report(std::move(e));
    return true;
  }

  // Hands a reply to the waiting request; false when nobody waits for that id any more.
  bool CompleteRequest(std::uint32_t request_id, Reply reply) {
    Pending p;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(request_id);
      if (it == pending_.end()) return false;
      p = std::move(it->second);
      pending_.erase(it);
    }
    if (p.subscribe) {
      if (auto* server_id = std::get_if<std::uint64_t>(&reply)) {
        // Registered here, on the strand, before anything else can happen to the connection.
        const std::uint64_t handle = next_handle_++;
        Subscription sub;
        sub.spec = p.subscribe;
        sub.server_id = *server_id;
        sub.anchor_ms = p.subscribe->since_ms > 0 ? p.subscribe->since_ms : common::WallClockMs();
        sub.resume_from_ns = ok_details_.resume_from_ns;
        sub.history_complete = !ok_details_.history_end;
        subs_.emplace(handle, std::move(sub));
        reply = Reply(std::in_place_index<0>, handle);
      }
    }
    p.promise.set_value(std::move(reply));
    return true;
  }

  Result<void> DoUnsubscribe(std::uint64_t handle) {
    if (state_ == State::kClosed) {
      std::lock_guard lock(mu_);
      return ClosedError();
    }
    auto it = subs_.find(handle);
    if (it == subs_.end()) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "no subscription " + std::to_string(handle) + " on this client");
    }
    const std::uint64_t server_id = it->second.server_id;
    subs_.erase(it);
    if (server_id != 0 && conn_ && (state_ == State::kOpen || state_ == State::kResuming)) {
      EnqueueWrite(conn_, codec::EncodeUnsubscribe(NextRequestId(), server_id), false);
    }
    return {};
  }

  bool OnDataBatch(const ConnPtr& conn, std::span<const std::uint8_t> payload) {
    const auto seq = codec::PeekBatchSeq(payload);
    if (!seq) return ProtocolError("malformed DATA_BATCH");
    Bump(batches_);
    if (*seq != conn->last_batch_seq + 1) {
      Bump(batch_gaps_);
      Error e = MakeError(ErrorKind::kBatchGap,
                          "DATA_BATCH batch_seq " + std::to_string(*seq) + " after " +
                              std::to_string(conn->last_batch_seq) + " (expected " +
                              std::to_string(conn->last_batch_seq + 1) + ")");
      Report(std::move(e));
      if (state_ == State::kClosed) return false;
    }
    conn->last_batch_seq = *seq;
    if (options_.on_raw_batch) {
      // Raw payloads go out as they came (no filtering), but what they hold still decides where
      // a resume starts.
      if (reconnect_ && !TrackRaw(payload)) return ProtocolError("unparsable DATA_BATCH");
      return InvokeCallback([&] { options_.on_raw_batch(*seq, payload); });
    }
    Batch batch;
    if (!codec::DecodeBatch(payload, batch)) return ProtocolError("unparsable DATA_BATCH");
    if (!options_.watermarks &&
        std::erase_if(batch.records,
                      [](const Record& r) { return std::holds_alternative<Watermark>(r); }) > 0 &&
        batch.records.empty()) {
      return true;  // only watermarks
    }
    if (reconnect_) {
      const std::uint64_t dups_before = delivered_.duplicates();
      const std::uint64_t gaps_before = delivered_.tick_gaps();
      const std::uint64_t epochs_before = delivered_.topic_epoch_changes();
      auto is_new = [this](const Record& r) {
        if (const auto* t = std::get_if<Tick>(&r)) {
          return delivered_.AcceptTick(t->topic, t->seq, t->prev_seq, t->ts_ns, t->topic_epoch);
        }
        if (const auto* w = std::get_if<Watermark>(&r)) {
          // A resumed connection may repeat one the last connection gave: keep them monotone.
          return !AcceptWatermark(w->interval, w->start_ms);
        }
        const auto& b = std::get<Bar>(r);
        return delivered_.AcceptBar(b.interval, b.topic, b.start_ms);
      };
      // Duplicates are dropped; history_end markers keep their place among what is left.
      std::vector<Record> kept;
      kept.reserve(batch.records.size());
      std::size_t h = 0;
      for (std::size_t i = 0; i < batch.records.size(); ++i) {
        for (; h < batch.history_ends.size() && batch.history_ends[h].record_index <= i; ++h) {
          batch.history_ends[h].record_index = kept.size();
        }
        if (is_new(batch.records[i])) kept.push_back(std::move(batch.records[i]));
      }
      for (; h < batch.history_ends.size(); ++h) batch.history_ends[h].record_index = kept.size();
      batch.records = std::move(kept);
      // Markers name the server's subscription ids; the caller knows the client's handles.
      std::erase_if(batch.history_ends, [this](HistoryEnd& e) {
        for (auto& [handle, s] : subs_) {
          if (s.server_id == e.subscription_id) {
            e.subscription_id = handle;
            s.history_complete = true;
            if (s.ok_resume_from_ns > s.resume_from_ns) s.resume_from_ns = s.ok_resume_from_ns;
            return false;
          }
        }
        return true;  // unsubscribed meanwhile
      });
      Bump(duplicates_dropped_, delivered_.duplicates() - dups_before);
      Bump(tick_gaps_, delivered_.tick_gaps() - gaps_before);
      Bump(topic_epoch_changes_, delivered_.topic_epoch_changes() - epochs_before);
      if (batch.records.empty() && batch.history_ends.empty()) return true;  // only duplicates
    }
    Bump(records_, std::uint64_t{batch.records.size()});
    if (options_.on_batch) return InvokeCallback([&] { options_.on_batch(batch); });
    std::lock_guard lock(mu_);
    events_.emplace_back(std::move(batch));
    cv_.notify_all();
    return true;
  }

  // Whether a watermark moves past the newest one delivered for its interval (and records it).
  bool AcceptWatermark(Mode interval, std::int64_t start_ms) {
    std::int64_t& last =
        interval == Mode::kMinute ? last_watermark_minute_ : last_watermark_second_;
    if (start_ms <= last) return false;
    last = start_ms;
    return true;
  }

  // Records what a raw batch delivers (for resume); false when a record does not parse.
  bool TrackRaw(std::span<const std::uint8_t> payload) {
    bool ok = true;
    const std::uint64_t gaps_before = delivered_.tick_gaps();
    const std::uint64_t epochs_before = delivered_.topic_epoch_changes();
    const auto seq = protocol::ScanDataBatch(payload, [&](protocol::RecordKind kind, auto inner) {
      if (kind == protocol::RecordKind::kTick) {
        const auto t = protocol::ParseTickFields(inner);
        if (!t) {
          ok = false;
          return;
        }
        delivered_.AcceptTick(t->topic, t->seq, t->prev_seq, t->ts_ns, t->topic_epoch);
      } else if (kind == protocol::RecordKind::kBar) {
        const auto b = protocol::ParseBarFields(inner);
        if (!b) {
          ok = false;
          return;
        }
        delivered_.AcceptBar(static_cast<Mode>(b->interval), b->topic, b->start_ms);
      }
    });
    Bump(tick_gaps_, delivered_.tick_gaps() - gaps_before);
    Bump(topic_epoch_changes_, delivered_.topic_epoch_changes() - epochs_before);
    return ok && seq.has_value();
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

  void EmitConnectionEvent(const ConnectionEvent& ev) {
    if (options_.on_connection) InvokeCallback([&] { options_.on_connection(ev); });
  }

  void ScheduleHeartbeat(const ConnPtr& conn) {
    if (conn->heartbeat_interval.count() <= 0) return;
    // Wake when the next HEARTBEAT is due, and with idle detection often enough to check it.
    auto wake = conn->last_heartbeat + conn->heartbeat_interval;
    if (conn->idle_timeout.count() > 0) {
      wake = std::min(
          wake, Clock::now() + std::max(conn->idle_timeout / 4, std::chrono::milliseconds(1)));
    }
    heartbeat_timer_.expires_at(wake);
    heartbeat_timer_.async_wait([self = shared_from_this(), conn](boost::system::error_code ec) {
      if (ec || conn != self->conn_) return;
      if (self->state_ != State::kOpen && self->state_ != State::kResuming) return;
      const auto now = Clock::now();
      if (conn->idle_timeout.count() > 0 && !conn->read_paused &&
          now - conn->last_rx > conn->idle_timeout) {
        self->Fail(MakeError(
            ErrorKind::kTimeout,
            "nothing from the server for " + std::to_string(conn->idle_timeout.count()) + " ms",
            true));
        return;
      }
      if (now - conn->last_heartbeat >= conn->heartbeat_interval) {
        conn->last_heartbeat = now;
        Bump(self->heartbeats_sent_);  // before the write, so a peer that saw it sees the count
        self->EnqueueWrite(conn, codec::EncodeHeartbeat(common::WallClockMs()), /*counted=*/false);
      }
      self->ScheduleHeartbeat(conn);
    });
  }

  // `counted`: the caller already added the frame to out_bytes_ (user requests do, so that
  // they wait for space before queueing).
  void EnqueueWrite(const ConnPtr& conn, std::string frame, bool counted = true) {
    if (state_ == State::kClosed || conn != conn_) return;
    if (!counted) {
      std::lock_guard lock(mu_);
      out_bytes_ += frame.size();
    }
    conn->out_queue.push_back(std::move(frame));
    if (!conn->write_in_flight) StartWrite(conn);
  }

  // Exactly one write in flight; everything queued behind it goes out in the next gather write.
  void StartWrite(const ConnPtr& conn) {
    conn->writing.clear();
    conn->buffers.clear();
    while (!conn->out_queue.empty()) {
      conn->writing.push_back(std::move(conn->out_queue.front()));
      conn->out_queue.pop_front();
    }
    for (const auto& f : conn->writing) conn->buffers.emplace_back(f.data(), f.size());
    conn->write_in_flight = true;
    if (conn->tls) {
      asio::async_write(
          *conn->tls, conn->buffers,
          [self = shared_from_this(), conn](boost::system::error_code ec, std::size_t n) {
            self->OnWrite(conn, ec, n);
          });
      return;
    }
    asio::async_write(
        conn->socket, conn->buffers,
        [self = shared_from_this(), conn](boost::system::error_code ec, std::size_t n) {
          self->OnWrite(conn, ec, n);
        });
  }

  void OnWrite(const ConnPtr& conn, boost::system::error_code ec, std::size_t n) {
    conn->write_in_flight = false;
    if (conn != conn_ || state_ == State::kClosed) return;
    if (ec) {
      Fail(MakeError(ErrorKind::kIo, "write: " + ec.message(), true));
      return;
    }
    {
      std::lock_guard lock(mu_);
      out_bytes_ -= std::min(out_bytes_, n);
      cv_.notify_all();
    }
    if (!conn->out_queue.empty()) StartWrite(conn);
  }

  // Errors a new connection may fix.
  static bool Retryable(const Error& e) {
    switch (e.kind) {
      case ErrorKind::kIo:
      case ErrorKind::kConnect:
      case ErrorKind::kTimeout:
        return true;
      case ErrorKind::kServer:
        switch (e.code) {
          case ErrorCode::kServerDraining:
          case ErrorCode::kHeartbeatTimeout:
          case ErrorCode::kSlowConsumer:
          case ErrorCode::kInternal:
          case ErrorCode::kAuthTimeout:
          case ErrorCode::kAuthRateLimited:
            return true;
          default:
            return false;
        }
      default:
        return false;
    }
  }

  // The connection (or a connect attempt) failed because of `reason`: reconnect when enabled
  // and worth it, else close with `reason` as the close reason.
  void Fail(Error reason) {
    reason.fatal = true;
    if (reconnect_ && connect_done_ && !closing_ && state_ != State::kClosed && Retryable(reason)) {
      Disconnect(std::move(reason));
      return;
    }
    DoClose(std::move(reason));
  }

  // Drops the current connection and schedules the next attempt.
  void Disconnect(Error reason) {
    const bool was_live = state_ == State::kOpen || state_ == State::kResuming;
    DropConnection(reason);
    if (was_live) {
      Bump(disconnects_);
      Error e = reason;
      e.fatal = false;  // the client stays usable
      e.message += " (reconnecting)";
      Report(e);
      if (state_ == State::kClosed) return;
      ConnectionEvent ev;
      ev.type = ConnectionEvent::Type::kDisconnected;
      ev.reason = reason;
      EmitConnectionEvent(ev);
      if (state_ == State::kClosed) return;
    }
    ++attempt_;
    const auto& ro = options_.reconnect;
    if (ro.max_attempts != 0 && attempt_ > ro.max_attempts) {
      Error e = reason;
      e.message = "gave up reconnecting after " + std::to_string(ro.max_attempts) +
                  " attempts; last error: " + reason.ToString();
      DoClose(std::move(e));
      return;
    }
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    const auto delay = reason.kind == ErrorKind::kServer && reason.retry_after_ms != 0
                           ? RetryAfterDelay(ro, reason.retry_after_ms, u)
                           : BackoffDelay(ro, attempt_, u);
    ConnectionEvent ev;
    ev.type = ConnectionEvent::Type::kRetrying;
    ev.reason = std::move(reason);
    ev.attempt = attempt_;
    ev.delay = delay;
    EmitConnectionEvent(ev);
    if (state_ == State::kClosed) return;
    reconnect_timer_.expires_after(delay);
    reconnect_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->state_ != State::kReconnecting) return;
      Bump(self->reconnect_attempts_);
      self->StartConnect();
    });
  }

  // Closes the socket and fails what waited on it; subscriptions and delivered_ stay.
  void DropConnection(const Error& reason) {
    std::unordered_map<std::uint32_t, Pending> pending;
    {
      std::lock_guard lock(mu_);
      state_ = State::kReconnecting;
      ++epoch_;
      pending.swap(pending_);
      out_bytes_ = 0;
      read_paused_ = false;
      cv_.notify_all();
    }
    for (auto& [id, p] : pending) {
      Error e =
          MakeError(ErrorKind::kIo, "connection lost before the reply (" + reason.ToString() + ")");
      e.request_id = id;
      p.promise.set_value(Reply(std::move(e)));
    }
    resume_pending_.clear();
    for (auto& [handle, sub] : subs_) sub.server_id = 0;
    boost::system::error_code ignored;
    resolver_.cancel();
    connect_timer_.cancel();
    heartbeat_timer_.cancel();
    if (conn_) {
      conn_->socket.shutdown(tcp::socket::shutdown_both, ignored);
      conn_->socket.close(ignored);
      conn_->out_queue.clear();
      conn_.reset();
    }
  }

  void DoClose(std::optional<Error> reason) {
    // closing_ also stops re-entry from callbacks run below (on_error calling Close or throwing).
    if (state_ == State::kClosed || closing_) return;
    closing_ = true;
    // Once connected, the close reason is also an event (before the gate closes, so that
    // on_error sees it); before, Connect() returns it.
    if (reason && connect_done_) Report(*reason);
    std::unordered_map<std::uint32_t, Pending> pending;
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
      p.promise.set_value(Reply(std::move(e)));
    }
    boost::system::error_code ignored;
    resolver_.cancel();
    connect_timer_.cancel();
    heartbeat_timer_.cancel();
    reconnect_timer_.cancel();
    if (conn_) {
      conn_->socket.shutdown(tcp::socket::shutdown_both, ignored);
      conn_->socket.close(ignored);
      conn_->out_queue.clear();
      conn_.reset();
    }
    if (!connect_done_) {
      connect_done_ = true;
      connect_result_.set_value(reason ? *reason
                                       : MakeError(ErrorKind::kClosed, "closed while connecting"));
    }
  }

  // Immutable after construction.
  const ClientOptions options_;
  bool pull_batches_ = true;  // batches go to the pull queue (no batch callback)
  bool reconnect_ = false;    // options_.reconnect.enabled

  // Strand only.
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::resolver resolver_;
  std::unique_ptr<asio::ssl::context> tls_context_;  // with options_.tls.enabled, made once
  asio::steady_timer connect_timer_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer reconnect_timer_;
  ConnPtr conn_;  // the current connection; null while waiting to reconnect and once closed
  std::promise<std::optional<Error>> connect_result_;
  std::future<std::optional<Error>> connect_future_;  // user thread, in Connect only
  bool connect_done_ = false;  // Connect() has its answer; later connections are reconnects
  bool closing_ = false;       // DoClose is running
  AuthInfo auth_info_;         // written on the strand before Connect returns; read-only after
  std::uint32_t attempt_ = 0;  // consecutive reconnect attempts since the last success
  std::mt19937_64 rng_;        // backoff jitter
  std::map<std::uint64_t, Subscription> subs_;  // by handle, in subscription order
  std::uint64_t next_handle_ = 1;
  std::unordered_map<std::uint32_t, std::uint64_t> resume_pending_;  // request_id -> handle
  OkDetails ok_details_;     // of the SUBSCRIBE_OK being handled (OnSubscribeOk)
  std::size_t resumed_ = 0;  // subscriptions re-established by the current resume
  DeliveredState delivered_;
  // Newest watermark delivered per interval (reconnect: repeats are filtered out).
  std::int64_t last_watermark_second_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t last_watermark_minute_ = std::numeric_limits<std::int64_t>::min();

  // Shared with user threads.
  mutable std::mutex mu_;
  std::condition_variable cv_;  // state_, events_, out_bytes_ changes
  State state_ = State::kConnecting;
  bool ever_open_ = false;
  std::uint64_t epoch_ = 0;  // bumped when a connection is dropped; frames carry the one they
                             // were queued for
  std::optional<Error> close_reason_;
  std::deque<Event> events_;  // the pull queue
  bool read_paused_ = false;  // reading stopped until Next() drains events_
  std::size_t out_bytes_ = 0;
  std::unordered_map<std::uint32_t, Pending> pending_;

  std::atomic<std::uint32_t> next_request_id_{1};
  std::atomic<std::uint32_t> max_msg_size_{0};  // the current connection's AUTH_OK value
  std::atomic<std::uint64_t> frames_received_{0};
  std::atomic<std::uint64_t> bytes_received_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> batch_gaps_{0};
  std::atomic<std::uint64_t> read_pauses_{0};
  std::atomic<std::uint64_t> dropped_events_{0};
  std::atomic<std::uint64_t> heartbeats_sent_{0};
  std::atomic<std::uint64_t> disconnects_{0};
  std::atomic<std::uint64_t> reconnect_attempts_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> resubscribe_failures_{0};
  std::atomic<std::uint64_t> duplicates_dropped_{0};
  std::atomic<std::uint64_t> tick_gaps_{0};
  std::atomic<std::uint64_t> stream_epoch_changes_{0};
  std::atomic<std::uint64_t> topic_epoch_changes_{0};
  // The server's stream epoch (strand only): of the current connection, and of the one before
  // the last reconnect.
  std::uint64_t stream_epoch_ = 0;
  std::uint64_t previous_stream_epoch_ = 0;
};

std::string_view ConnectionStateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kOpen:
      return "open";
    case ConnectionState::kReconnecting:
      return "reconnecting";
    case ConnectionState::kClosed:
      return "closed";
  }
  return "unknown";
}

Result<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.client_name.size() > protocol::kMaxClientNameBytes) {
    // The server would refuse the AUTH (INVALID_REQUEST, fatal) on every attempt.
    return MakeError(
        ErrorKind::kInvalidArgument,
        "client_name is longer than " + std::to_string(protocol::kMaxClientNameBytes) + " bytes");
  }
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
ConnectionState Client::state() const { return impl_->state(); }
std::optional<Error> Client::close_reason() const { return impl_->close_reason(); }
ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace tickwire::client
