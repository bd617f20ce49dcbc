#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "protocol/frame.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::client::testing {

using std::chrono::milliseconds;

// A frame the fake server read from the client.
struct FakeFrame {
  protocol::FrameType type{};
  std::string payload;
};

// A loopback server that speaks raw frames, driven step by step from the test thread. It lets
// tests play a well-behaved server or a broken one (fatal ERROR, batch_seq gap, malformed
// frames) without the real binary. One connection at a time; every call has a deadline.
class FakeServer {
 public:
  FakeServer();  // listens on 127.0.0.1, free port
  ~FakeServer();

  std::uint16_t port() const { return port_; }

  bool Accept(milliseconds timeout = milliseconds(3000));
  // Next frame from the client; nullopt on timeout, EOF or error.
  std::optional<FakeFrame> Read(milliseconds timeout = milliseconds(3000));
  // Next frame that is not a HEARTBEAT.
  std::optional<FakeFrame> ReadSkippingHeartbeats(milliseconds timeout = milliseconds(3000));
  // Reads the next non-heartbeat frame and parses it as `M` when its type is `type`.
  template <typename M>
  bool ReadMessage(protocol::FrameType type, M* out, milliseconds timeout = milliseconds(3000)) {
    auto f = ReadSkippingHeartbeats(timeout);
    return f && f->type == type && out->ParseFromString(f->payload);
  }
  // True when the client closed the connection (EOF) within `timeout`; frames before the EOF
  // are discarded.
  bool WaitForEof(milliseconds timeout = milliseconds(3000));

  bool SendBytes(std::string_view bytes);
  bool Send(protocol::FrameType type, const google::protobuf::MessageLite& message);

  // Accept + read AUTH (returned through `auth`) + send `ok`.
  bool Handshake(const tickwire::v1::AuthOk& ok, tickwire::v1::Auth* auth = nullptr);
  bool Handshake() { return Handshake(DefaultAuthOk()); }
  static tickwire::v1::AuthOk DefaultAuthOk();

  void CloseConnection();
  // Keeps the current connection open but unattended (never read, never closed until the
  // server is destroyed), so that the next Accept takes a new one: a half-open peer.
  void HoldConnection();

 private:
  // Runs the io_context until `done` or the deadline; cancels pending operations on timeout.
  bool RunUntil(const bool& done, milliseconds timeout);
  // Reads exactly `n` bytes into `out`.
  bool ReadExactly(std::size_t n, std::string& out, milliseconds timeout);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::socket socket_;
  std::vector<boost::asio::ip::tcp::socket> held_;
  std::uint16_t port_ = 0;
};

// Builders for server frames.
std::string DataBatchFrame(std::uint64_t batch_seq, const std::vector<tickwire::v1::Tick>& ticks,
                           const std::vector<tickwire::v1::Bar>& bars = {});
tickwire::v1::Tick PbTick(const std::string& topic, double price, double size, std::int64_t ts_ns,
                          std::uint64_t seq);
std::string ErrorFrame(tickwire::v1::ErrorCode code, bool fatal, std::uint32_t request_id = 0,
                       const std::string& message = "test error", std::uint32_t retry_after_ms = 0);

}  // namespace tickwire::client::testing
