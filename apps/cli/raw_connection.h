#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "client/client.h"
#include "protocol/frame.h"

namespace tickwire::cli {

// A tickwire connection on a plain blocking socket, for the benches that need what the client
// library does not do: a consumer that never reads, a producer that keeps a window of acked
// PUBLISH frames in flight, or one that writes from its own thread with no hand-off to an io
// thread. Used from one thread at a time.
class RawConnection {
 public:
  // Connects to `o`'s address (with a receive buffer of `rcvbuf` bytes when non-zero), sends
  // AUTH as `o.client_name` and waits for AUTH_OK. Returns an error line, empty on success.
  std::string Open(boost::asio::io_context& io, const client::ClientOptions& o, int rcvbuf = 0);
  // Before Open: speak WebSocket to the server's WS_LISTEN_ADDR endpoint at `path` (one frame
  // per binary message). Frames go out with a zero mask key, so masking costs this load
  // generator nothing; the server unmasks them as it would any other key.
  void UseWebSocket(std::string path) { ws_path_ = std::move(path); }
  // Makes every later read fail after `ms` without data (default: wait for ever).
  void SetReadTimeout(int ms) { read_timeout_ms_ = ms; }
  // Writes all of `bytes`. Returns an error line.
  std::string Send(std::string_view bytes);
  // Reads one whole frame. Returns an error line (an ERROR frame is returned as a frame).
  std::string ReadFrame(std::uint8_t& type, std::string& payload);
  // Reads one frame and checks that it is of `type` (an ERROR is described).
  std::string Expect(protocol::FrameType type);
  // Whether bytes are waiting to be read (without blocking).
  bool Readable();
  // Reads what is left, for at most about 2 s; true when the server has closed the connection.
  bool DroppedByServer();

 private:
  std::string ReadExact(void* data, std::size_t size);
  // The HTTP upgrade (after connect, before AUTH).
  std::string Upgrade(const client::ClientOptions& o);
  // The next binary message's bytes (control frames skipped; a close is an error).
  std::string ReadMessage(std::string& message);

  std::string ws_path_;  // empty: plain frames
  std::string ws_out_;   // reused for wrapping frames

  int read_timeout_ms_ = -1;
  std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
};

}  // namespace tickwire::cli
