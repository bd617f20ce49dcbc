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

std::string RawConnection::Send(std::string_view bytes) {
  boost::system::error_code ec;
  asio::write(*socket_, asio::buffer(bytes.data(), bytes.size()), ec);
  return ec ? "send: " + ec.message() : std::string();
}

std::string RawConnection::ReadFrame(std::uint8_t& type, std::string& payload) {
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
