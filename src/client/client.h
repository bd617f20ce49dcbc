#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

// Public headers (client.h, error.h, records.h, resume.h) include each other by sibling name:
// installed, they are <tickwire/client/...> (cmake --install; docs/CLIENT.md).
#include "error.h"
#include "records.h"
#include "resume.h"

namespace boost::asio {
class io_context;
}

namespace tickwire::client {

// Called on the client's io thread. They must not block for long (a slow callback stops reading,
// which backs pressure up to the server) and must not call blocking Client methods (Subscribe,
// Publish with ack, Close from another client's thread is fine).
using BatchCallback = std::function<void(const Batch& batch)>;
// `payload` is the DATA_BATCH protobuf payload (read it with protocol::ScanDataBatch); it is
// valid only during the call. batch_seq is already checked by the client.
using RawBatchCallback =
    std::function<void(std::uint64_t batch_seq, std::span<const std::uint8_t> payload)>;
using ErrorCallback = std::function<void(const Error& error)>;

// TLS to a server with TLS_CERT_PATH set. The server's certificate is verified against
// `ca_file` (the system's CAs when empty) and `ClientOptions::host` (name or IP address).
struct TlsOptions {
  bool enabled = false;
  std::string ca_file;
  std::string cert_file;  // client certificate and key, for servers that require mTLS
  std::string key_file;
};

// Where the client's connection stands.
enum class ConnectionState : std::uint8_t {
  kConnecting = 0,    // Connect() has not returned yet
  kOpen = 1,          // connected, authenticated, every subscription (re)established
  kReconnecting = 2,  // lost; waiting to retry, connecting, authenticating or resubscribing
  kClosed = 3,        // for good: Close(), a fatal error, or reconnect gave up
};
std::string_view ConnectionStateName(ConnectionState state);  // "open", ...

// A change of connection while reconnect is enabled (ClientOptions::on_connection).
struct ConnectionEvent {
  enum class Type : std::uint8_t {
    kDisconnected = 0,  // the connection was lost; `reason` says why
    kRetrying = 1,      // attempt `attempt` starts after `delay`; `reason`: the last failure
    kReconnected = 2,   // attempt `attempt` succeeded; `resubscribed` subscriptions resumed
  };
  Type type = Type::kDisconnected;
  Error reason;
  std::uint32_t attempt = 0;
  std::chrono::milliseconds delay{0};
  std::size_t resubscribed = 0;
  // kReconnected: the server's stream epoch before and after (PROTOCOL S7a). When they differ
  // (`stream_epoch_changed`), the server restarted without its history: records it had not
  // delivered before the disconnect are lost, ticks are numbered afresh from seq 1, and the
  // resumed subscriptions replay only what the new epoch retains.
  std::uint64_t previous_stream_epoch = 0;
  std::uint64_t stream_epoch = 0;
  bool stream_epoch_changed = false;
};
using ConnectionCallback = std::function<void(const ConnectionEvent& event)>;

struct ClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7878;
  std::string username;
  std::string password;
  std::string client_name;  // free text the server logs, at most 128 bytes
  TlsOptions tls;
  // Resolve + TCP connect + AUTH until AUTH_OK.
  std::chrono::milliseconds connect_timeout{5000};
  // Reply wait for SUBSCRIBE and acked PUBLISH, and the wait for outbound buffer space.
  std::chrono::milliseconds request_timeout{5000};
  // HEARTBEAT period; 0 = the server's AuthOk.heartbeat_interval_ms.
  std::chrono::milliseconds heartbeat_interval{0};
  // Events the pull queue (Next) holds before the client stops reading the socket. Reading
  // resumes when Next() drains it below half; the queue may exceed this by the records of one
  // socket read (read_buffer_size bytes).
  std::size_t queue_capacity = 1024;
  std::size_t read_buffer_size = 64 * 1024;
  // Outbound bytes (queued + being written) above which Publish/Subscribe wait for space.
  std::size_t max_outbound_bytes = 4 * 1024 * 1024;

  // Delivery. With neither batch callback set, batches go to the pull queue (Next). With one
  // set, batches go only to it. Errors that answer no request go to on_error when set, else to
  // the pull queue (dropped and counted when the queue is full and batches use a callback).
  BatchCallback on_batch;
  RawBatchCallback on_raw_batch;  // wins over on_batch when both are set
  ErrorCallback on_error;
  // Completeness watermarks (PROTOCOL.md S8d) in Batch::records, as Watermark records. Off by
  // default, so that code written before them, which expects only ticks and bars, keeps
  // working: the client then drops them. on_raw_batch payloads always hold them.
  bool watermarks = false;
  // Reconnect events (io thread, same rules as the callbacks above). Optional: the same facts are
  // in stats() and state(), and each lost connection is also reported as a non-fatal Error.
  ConnectionCallback on_connection;

  // Automatic reconnect (off by default). When on, a lost connection (I/O error, EOF, idle
  // timeout, or a fatal server ERROR that invites a retry: SERVER_DRAINING, HEARTBEAT_TIMEOUT,
  // SLOW_CONSUMER, INTERNAL, AUTH_TIMEOUT, AUTH_RATE_LIMITED) is retried with backoff, honouring
  // retry_after_ms. The client re-AUTHs, then re-SUBSCRIBEs every subscription with since_ms
  // derived from the last record it received (backfill only applies to the first SUBSCRIBE),
  // and drops the duplicates the resume brings (per topic: tick seq, bar start_ms). Requests
  // made meanwhile wait for the connection up to request_timeout. Errors that retrying cannot
  // fix (AUTH_FAILED, protocol violations, a throwing callback) still close the client.
  ReconnectOptions reconnect;

  // Run on this io_context instead of a thread of the client's own (e.g. many clients on a few
  // threads in a load generator). The caller runs it (with a work guard: a paused read leaves no
  // operation pending) and keeps it alive and running until the client is destroyed.
  boost::asio::io_context* io_context = nullptr;
};

// The server's AUTH_OK parameters.
struct AuthInfo {
  std::string session_id;
  std::uint32_t heartbeat_interval_ms = 0;
  std::uint32_t heartbeat_timeout_ms = 0;
  std::uint32_t max_msg_size = 0;
  std::uint32_t batch_window_ms = 0;
  std::string server_version;
  std::uint32_t protocol_version = 0;
  // PROTOCOL S8d: BAR_CLOSE_DELAY_MS (bars of an interval leave about this long after it ends),
  // and the SECOND watermark when the session began (0: none yet, or an older server).
  std::uint32_t bar_close_delay_ms = 0;
  std::int64_t watermark_ms = 0;
  // The server's stream epoch at connect (PROTOCOL S7a); 0: the server has none (multi-instance
  // mode, or a server older than the field).
  std::uint64_t stream_epoch = 0;
};

// Counters for monitoring and tests; read without locks.
struct ClientStats {
  std::uint64_t frames_received = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t batches = 0;
  std::uint64_t records = 0;         // decoded records (not counted for on_raw_batch)
  std::uint64_t batch_gaps = 0;      // batch_seq discontinuities
  std::uint64_t read_pauses = 0;     // times reading stopped because the pull queue was full
  std::uint64_t dropped_events = 0;  // errors dropped because nobody took them
  std::uint64_t heartbeats_sent = 0;
  // Reconnect and resume (zero unless ClientOptions::reconnect is enabled).
  std::uint64_t disconnects = 0;           // established connections lost
  std::uint64_t reconnect_attempts = 0;    // connection attempts after a loss
  std::uint64_t reconnects = 0;            // attempts that ended with every subscription resumed
  std::uint64_t resubscribe_failures = 0;  // subscriptions the server refused on resume (dropped)
  std::uint64_t duplicates_dropped = 0;    // records already delivered, filtered out
  std::uint64_t tick_gaps = 0;             // ticks whose prev_seq was not the last seq seen
  // Numbering restarts the client was told of (PROTOCOL S7a): reconnects that found a new stream
  // epoch (the server restarted without its history), and topics that started a new
  // topic_epoch (evicted and created again). Ticks of the old numbering not received are lost.
  std::uint64_t stream_epoch_changes = 0;
  std::uint64_t topic_epoch_changes = 0;
};

// A connection to a tickwire server (PROTOCOL.md v1). Methods may be called from any user thread
// (typically one); frames are read, heartbeats sent and callbacks run on the io thread. Once
// closed (by Close, a fatal ERROR, an I/O or protocol error, or, with reconnect enabled, an error
// retrying cannot fix or max_attempts failed attempts), every request fails with
// ErrorKind::kClosed and Next() returns Closed.
class Client {
 public:
  // Connects, sends AUTH and waits for AUTH_OK (or the server's ERROR, or connect_timeout).
  static Result<std::unique_ptr<Client>> Connect(ClientOptions options);

  ~Client();  // Close()s; must not run on the client's own io thread.
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The first connection's AUTH_OK (reconnects do not change it).
  const AuthInfo& auth_info() const;

  // Sends SUBSCRIBE and waits for SUBSCRIBE_OK or the ERROR carrying its request_id. Pass
  // backfill or since_ms (0 = none) for retained records first. Returns the server's
  // subscription_id; with reconnect enabled, a client-side handle instead (1, 2, ...), stable
  // across reconnects while the server's ids change. A connection lost before the reply is
  // retried after the reconnect, within request_timeout.
  Result<std::uint64_t> Subscribe(Mode mode, const std::vector<std::string>& topics,
                                  std::uint32_t backfill = 0, std::int64_t since_ms = 0);
  // Sends UNSUBSCRIBE for what Subscribe returned. The contract has no reply; records already
  // queued may still arrive. With reconnect enabled the subscription is also not resumed any
  // more (kInvalidArgument for an unknown handle).
  Result<void> Unsubscribe(std::uint64_t subscription_id);
  // Sends one PUBLISH frame. With ack, waits for PUBLISH_ACK and returns `accepted`, or the
  // ERROR naming the bad tick; without, returns ticks.size() once the frame is queued. The
  // frame must fit in the server's max_msg_size (kInvalidArgument otherwise). Publishing is
  // at most once: a frame queued when the connection breaks is not resent (an acked one fails
  // with a non-fatal kIo error, and the caller decides).
  Result<std::uint32_t> Publish(std::span<const Tick> ticks, bool ack = false);

  // Pull API: the next batch or error, or Closed once closed and drained; nullopt on timeout.
  std::optional<Event> Next(std::chrono::milliseconds timeout);

  // Closes the connection (idempotent). Pending requests fail with kClosed. After it returns no
  // callback runs any more. Safe to call from a callback.
  void Close();
  bool closed() const;
  ConnectionState state() const;
  // The error that closed the client, if it was not Close().
  std::optional<Error> close_reason() const;
  ClientStats stats() const;

  class Impl;  // public for the implementation's free functions; opaque to users

 private:
  Client(std::unique_ptr<boost::asio::io_context> owned_io, std::shared_ptr<Impl> impl);

  // Owned io_context and its thread when ClientOptions::io_context is null. Declared before
  // impl_ so that the Impl (and its socket) is destroyed first.
  std::unique_ptr<boost::asio::io_context> owned_io_;
  // Work guard on owned_io_ (type-erased to keep Asio out of this header): its thread must keep
  // running while the client is open even with no operation pending (reading paused and no
  // heartbeat timer), so that Next() can resume reading.
  std::shared_ptr<void> owned_io_work_;
  std::thread io_thread_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tickwire::client
