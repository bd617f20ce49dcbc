#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"
#include "support/raw_client.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::testing {

struct WsOptions {
  std::string path = "/";
  std::string origin;       // sent as Origin when not empty
  std::string subprotocol;  // offered as Sec-WebSocket-Protocol when not empty
  bool tls = false;         // wss: verify the server against ca_file (when given)
  std::string ca_file;
  std::string cert_file;  // client certificate (mTLS)
  std::string key_file;
  int rcvbuf = 0;  // SO_RCVBUF before connecting (0 = kernel default): a small one makes a slow
                   // consumer
};

// A blocking WebSocket client (Boost.Beast) for the server's WebSocket endpoint: one tickwire
// frame per binary message each way. Every read has a deadline (SO_RCVTIMEO); after a timeout
// the client is not used again. Not thread-safe.
class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // TCP connect to 127.0.0.1:port, TLS handshake (options.tls) and the upgrade. False (see
  // last_error(), and http_status() for a refused upgrade) on failure.
  bool Connect(std::uint16_t port, const WsOptions& options = {});
  // The HTTP status of the upgrade response (101 on success, 0 when none was read).
  unsigned http_status() const { return http_status_; }
  // The subprotocol the server selected ("" when none).
  const std::string& selected_subprotocol() const { return subprotocol_; }

  bool SendFrame(protocol::FrameType type, const google::protobuf::MessageLite& message);
  // One WebSocket message with exactly these bytes (binary, or text when `binary` is false).
  bool SendMessage(std::string_view bytes, bool binary = true);
  // A WebSocket ping with this payload.
  bool SendPing(std::string_view payload);

  // The next binary message, which must hold exactly one frame. kClosed when the server's close
  // frame arrives (close_code() and close_reason() say what it carried).
  ReadResult ReadFrame(std::chrono::milliseconds timeout = RawClient::kDefaultTimeout);
  std::uint16_t close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }
  // Pongs read while waiting for frames.
  std::size_t pongs() const { return pongs_; }

  template <typename M>
  ::testing::AssertionResult ReadMessage(
      protocol::FrameType type, M* out,
      std::chrono::milliseconds timeout = RawClient::kDefaultTimeout);
  // The next frame is a fatal ERROR with `code`, then the server's close frame.
  ::testing::AssertionResult ExpectFatal(tickwire::v1::ErrorCode code,
                                         tickwire::v1::Error* out = nullptr);
  ::testing::AssertionResult Authenticate(const std::string& user, const std::string& pass);
  ::testing::AssertionResult Subscribe(std::uint32_t request_id, tickwire::v1::Mode mode,
                                       const std::vector<std::string>& topics);
  ::testing::AssertionResult PublishAcked(std::uint32_t request_id,
                                          const std::vector<tickwire::v1::Tick>& ticks);

  const std::string& last_error() const { return last_error_; }
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  unsigned http_status_ = 0;
  std::string subprotocol_;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  std::size_t pongs_ = 0;
  std::string last_error_;
};

template <typename M>
::testing::AssertionResult WsClient::ReadMessage(protocol::FrameType type, M* out,
                                                 std::chrono::milliseconds timeout) {
  const ReadResult r = ReadFrame(timeout);
  if (!r.ok()) {
    return ::testing::AssertionFailure()
           << "no frame: " << ReadStatusName(r.status) << " " << r.detail << " " << last_error_;
  }
  if (r.frame.frame_type() != type) {
    return ::testing::AssertionFailure() << "unexpected frame " << DescribeFrame(r.frame);
  }
  if (out != nullptr && !out->ParseFromString(r.frame.payload)) {
    return ::testing::AssertionFailure() << "unparsable payload";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tickwire::testing
