#include "raw_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <thread>
#include <vector>

#include <boost/asio/write.hpp>

#include "client/codec.h"

namespace tickwire::cli {

namespace asio = boost::asio;

std::string RawConnection::Open(asio::io_context& io, const client::ClientOptions& o, int rcvbuf) {
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(o.host, std::to_string(o.port), ec);
  if (ec || endpoints.empty()) return "resolve " + o.host + ": " + ec.message();
  const asio::ip::tcp::endpoint endpoint = *endpoints.begin();
  socket_ = std::make_unique<asio::ip::tcp::socket>(io);
  socket_->open(endpoint.protocol(), ec);
  if (!ec && rcvbuf > 0) socket_->set_option(asio::socket_base::receive_buffer_size(rcvbuf), ec);
  if (!ec) socket_->set_option(asio::ip::tcp::no_delay(true), ec);
  if (!ec) socket_->connect(endpoint, ec);
  if (ec) return "connect: " + ec.message();
  if (!ws_path_.empty()) {
    if (auto err = Upgrade(o); !err.empty()) return err;
  }
  if (auto err = Send(client::codec::EncodeAuth(o.username, o.password, o.client_name));
      !err.empty()) {
    return err;
  }
  return Expect(protocol::FrameType::kAuthOk);
}

std::string RawConnection::ReadExact(void* data, std::size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    pollfd pfd{socket_->native_handle(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, read_timeout_ms_);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return std::string("read: poll: ") + std::strerror(errno);
    if (ready == 0) return "read: no reply within " + std::to_string(read_timeout_ms_) + " ms";
    const ssize_t n = ::recv(socket_->native_handle(), p, size, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return std::string("read: ") + std::strerror(errno);
    if (n == 0) return "read: connection closed by the server";
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

std::string RawConnection::Upgrade(const client::ClientOptions& o) {
  const std::string request = "GET " + ws_path_ + " HTTP/1.1\r\nHost: " + o.host + ":" +
                              std::to_string(o.port) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
  boost::system::error_code ec;
  asio::write(*socket_, asio::buffer(request), ec);
  if (ec) return "upgrade: " + ec.message();
  // The response head, byte by byte (it is short, and nothing after it may be consumed).
  std::string head;
  while (head.size() < 8192 && (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n"))) {
    char c = 0;
    if (auto err = ReadExact(&c, 1); !err.empty()) return "upgrade: " + err;
    head += c;
  }
  if (head.rfind("HTTP/1.1 101 ", 0) != 0) {
    return "upgrade refused: " + head.substr(0, head.find('\r'));
  }
  return {};
}

std::string RawConnection::Send(std::string_view bytes) {
  boost::system::error_code ec;
  if (ws_path_.empty()) {
    asio::write(*socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    return ec ? "send: " + ec.message() : std::string();
  }
  // Each frame in its own binary message: FIN + binary, masked with key 0.
  ws_out_.clear();
  for (std::size_t pos = 0; pos + protocol::kHeaderSize <= bytes.size();) {
    const std::size_t size =
        protocol::kLengthSize +
        protocol::DecodeLength(reinterpret_cast<const std::uint8_t*>(bytes.data() + pos));
    ws_out_ += static_cast<char>(0x82);
    if (size < 126) {
      ws_out_ += static_cast<char>(0x80 | size);
    } else if (size <= 0xFFFF) {
      ws_out_ += static_cast<char>(0x80 | 126);
      ws_out_ += static_cast<char>(size >> 8);
      ws_out_ += static_cast<char>(size & 0xFF);
    } else {
      ws_out_ += static_cast<char>(0x80 | 127);
      for (int i = 7; i >= 0; --i) ws_out_ += static_cast<char>((size >> (8 * i)) & 0xFF);
    }
    ws_out_.append(4, '\0');
    ws_out_.append(bytes.substr(pos, size));
    pos += size;
  }
  asio::write(*socket_, asio::buffer(ws_out_), ec);
  return ec ? "send: " + ec.message() : std::string();
}

std::string RawConnection::ReadMessage(std::string& message) {
  for (;;) {
    std::uint8_t h[2];
    if (auto err = ReadExact(h, 2); !err.empty()) return err;
    std::uint64_t len = h[1] & 0x7F;
    if (len == 126) {
      std::uint8_t e[2];
      if (auto err = ReadExact(e, 2); !err.empty()) return err;
      len = (std::uint64_t{e[0]} << 8) | e[1];
    } else if (len == 127) {
      std::uint8_t e[8];
      if (auto err = ReadExact(e, 8); !err.empty()) return err;
      len = 0;
      for (std::uint8_t b : e) len = (len << 8) | b;
    }
    if (len > (std::uint64_t{1} << 26)) return "read: WebSocket message too large";
    message.resize(static_cast<std::size_t>(len));
    if (auto err = ReadExact(message.data(), message.size()); !err.empty()) return err;
    const std::uint8_t opcode = h[0] & 0x0F;
    if (opcode == 0x8) return "read: WebSocket closed by the server";
    if (opcode == 0x2 && (h[0] & 0x80) != 0) return {};
    if (opcode < 0x8) return "read: unexpected WebSocket message";
    // Pings and pongs are skipped (the server sends none unasked).
  }
}

std::string RawConnection::ReadFrame(std::uint8_t& type, std::string& payload) {
  if (!ws_path_.empty()) {
    std::string m;
    if (auto err = ReadMessage(m); !err.empty()) return err;
    if (m.size() < protocol::kHeaderSize ||
        protocol::DecodeLength(reinterpret_cast<const std::uint8_t*>(m.data())) !=
            m.size() - protocol::kLengthSize) {
      return "read: a WebSocket message that is not one frame";
    }
    type = static_cast<std::uint8_t>(m[protocol::kLengthSize]);
    payload.assign(m, protocol::kHeaderSize);
    return {};
  }
  std::uint8_t header[protocol::kHeaderSize];
  if (auto err = ReadExact(header, sizeof(header)); !err.empty()) return err;
  const std::uint32_t length = protocol::DecodeLength(header);
  if (length == 0) return "read: frame of length 0";
  type = header[protocol::kLengthSize];
  payload.resize(length - 1);
  return ReadExact(payload.data(), payload.size());
}

std::string RawConnection::Expect(protocol::FrameType want) {
  std::uint8_t type = 0;
  std::string payload;
  if (auto err = ReadFrame(type, payload); !err.empty()) return err;
  if (type == static_cast<std::uint8_t>(want)) return {};
  if (type == static_cast<std::uint8_t>(protocol::FrameType::kError)) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
    if (auto e = client::codec::DecodeError({p, payload.size()})) return e->ToString();
  }
  return "unexpected " + std::string(protocol::FrameTypeName(type)) + " frame";
}

bool RawConnection::Readable() {
  boost::system::error_code ec;
  return socket_->available(ec) > 0 || ec;
}

bool RawConnection::DroppedByServer() {
  boost::system::error_code ec;
  socket_->non_blocking(true, ec);
  std::vector<std::uint8_t> buf(65536);
  for (int spins = 0; spins < 2000; ++spins) {
    socket_->read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (ec) return true;  // EOF or reset: closed by the server
  }
  return false;
}

}  // namespace tickwire::cli
