#include "support/ws_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "protocol/frame.h"
#include "protocol/wire.h"

namespace tickwire::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct WsClient::Impl {
  asio::io_context io;
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  std::unique_ptr<websocket::stream<tcp::socket>> plain;
  std::unique_ptr<websocket::stream<asio::ssl::stream<tcp::socket>>> tls;

  tcp::socket& socket() { return plain ? plain->next_layer() : tls->next_layer().next_layer(); }
  template <typename Fn>
  auto With(Fn&& fn) {
    return plain ? fn(*plain) : fn(*tls);
  }
  void SetTimeout(std::chrono::milliseconds t) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    if (t.count() <= 0) tv.tv_usec = 1000;
    setsockopt(socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(socket().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}
WsClient::~WsClient() { Close(); }

void WsClient::Close() {
  if (!impl_) return;
  boost::system::error_code ignored;
  if (impl_->plain) impl_->socket().close(ignored);
  if (impl_->tls) impl_->socket().close(ignored);
  impl_->plain.reset();
  impl_->tls.reset();
}

bool WsClient::Connect(std::uint16_t port, const WsOptions& options) {
  Close();
  boost::system::error_code ec;
  tcp::socket sock(impl_->io);
  sock.open(tcp::v4(), ec);
  if (!ec && options.rcvbuf > 0) {
    sock.set_option(asio::socket_base::receive_buffer_size(options.rcvbuf), ec);
  }
  if (!ec) sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    last_error_ = "connect: " + ec.message();
    return false;
  }
  if (options.tls) {
    auto& ctx = impl_->ssl;
    if (!options.ca_file.empty()) {
      ctx.load_verify_file(options.ca_file, ec);
      ctx.set_verify_mode(asio::ssl::verify_peer, ec);
    }
    if (!options.cert_file.empty()) {
      ctx.use_certificate_chain_file(options.cert_file, ec);
      ctx.use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
    }
    impl_->tls = std::make_unique<websocket::stream<asio::ssl::stream<tcp::socket>>>(
        std::move(sock), impl_->ssl);
    impl_->SetTimeout(std::chrono::seconds(5));
    impl_->tls->next_layer().handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
      last_error_ = "TLS handshake: " + ec.message();
      return false;
    }
  } else {
    impl_->plain = std::make_unique<websocket::stream<tcp::socket>>(std::move(sock));
    impl_->SetTimeout(std::chrono::seconds(5));
  }
  websocket::response_type res;
  impl_->With([&](auto& ws) {
    ws.binary(true);
    ws.read_message_max(64 * 1024 * 1024);
    ws.auto_fragment(false);
    ws.set_option(websocket::stream_base::decorator([&options](websocket::request_type& req) {
      if (!options.origin.empty()) req.set(beast::http::field::origin, options.origin);
      if (!options.subprotocol.empty()) {
        req.set(beast::http::field::sec_websocket_protocol, options.subprotocol);
      }
    }));
    ws.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::pong) ++pongs_;
    });
    ws.handshake(res, "127.0.0.1:" + std::to_string(port), options.path, ec);
    return 0;
  });
  http_status_ = res.result_int();
  subprotocol_ = std::string(res[beast::http::field::sec_websocket_protocol]);
  if (ec) {
    last_error_ = "upgrade: " + ec.message();
    return false;
  }
  return true;
}

bool WsClient::SendFrame(protocol::FrameType type, const google::protobuf::MessageLite& message) {
  return SendMessage(protocol::EncodeFrame(type, message));
}

bool WsClient::SendMessage(std::string_view bytes, bool binary) {
  if (!impl_->plain && !impl_->tls) return false;
  boost::system::error_code ec;
  impl_->SetTimeout(std::chrono::seconds(5));
  impl_->With([&](auto& ws) {
    ws.binary(binary);
    ws.write(asio::buffer(bytes.data(), bytes.size()), ec);
    ws.binary(true);
    return 0;
  });
  if (ec) last_error_ = "write: " + ec.message();
  return !ec;
}

bool WsClient::SendPing(std::string_view payload) {
  if (!impl_->plain && !impl_->tls) return false;
  boost::system::error_code ec;
  impl_->With([&](auto& ws) {
    ws.ping(websocket::ping_data(payload.data(), payload.size()), ec);
    return 0;
  });
  if (ec) last_error_ = "ping: " + ec.message();
  return !ec;
}

ReadResult WsClient::ReadFrame(std::chrono::milliseconds timeout) {
  ReadResult r;
  if (!impl_->plain && !impl_->tls) {
    r.status = ReadStatus::kClosed;
    return r;
  }
  impl_->SetTimeout(timeout);
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  bool text = false;
  impl_->With([&](auto& ws) {
    ws.read(buffer, ec);
    text = ws.got_text();
    if (ec == websocket::error::closed) {
      close_code_ = static_cast<std::uint16_t>(ws.reason().code);
      close_reason_ = std::string(ws.reason().reason.c_str());
    }
    return 0;
  });
  if (ec == websocket::error::closed) {
    r.status = ReadStatus::kClosed;
    return r;
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again ||
      ec == asio::error::timed_out) {
    r.status = ReadStatus::kTimeout;
    return r;
  }
  if (ec) {
    r.status = (ec == asio::error::eof || ec == asio::error::connection_reset) ? ReadStatus::kClosed
                                                                               : ReadStatus::kError;
    r.detail = ec.message();
    return r;
  }
  const auto data = buffer.cdata();
  const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
  if (text) {
    r.status = ReadStatus::kError;
    r.detail = "text message";
    return r;
  }
  if (bytes.size() < protocol::kHeaderSize ||
      protocol::DecodeLength(reinterpret_cast<const std::uint8_t*>(bytes.data())) !=
          bytes.size() - protocol::kLengthSize) {
    r.status = ReadStatus::kError;
    r.detail =
        "a message that is not exactly one frame (" + std::to_string(bytes.size()) + " bytes)";
    return r;
  }
  r.status = ReadStatus::kFrame;
  r.frame.type = static_cast<std::uint8_t>(bytes[4]);
  r.frame.payload = std::string(bytes.substr(protocol::kHeaderSize));
  return r;
}

::testing::AssertionResult WsClient::ExpectFatal(tickwire::v1::ErrorCode code,
                                                 tickwire::v1::Error* out) {
  tickwire::v1::Error err;
  if (auto r = ReadMessage(protocol::FrameType::kError, &err); !r) return r;
  if (err.code() != code || !err.fatal()) {
    return ::testing::AssertionFailure()
           << "ERROR " << tickwire::v1::ErrorCode_Name(err.code()) << " fatal=" << err.fatal()
           << " '" << err.message() << "', want fatal " << tickwire::v1::ErrorCode_Name(code);
  }
  if (out != nullptr) *out = err;
  const ReadResult r = ReadFrame();
  if (r.status != ReadStatus::kClosed) {
    return ::testing::AssertionFailure() << "after the ERROR: " << ReadStatusName(r.status) << " "
                                         << (r.ok() ? DescribeFrame(r.frame) : r.detail);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult WsClient::Authenticate(const std::string& user,
                                                  const std::string& pass) {
  tickwire::v1::Auth auth;
  auth.set_username(user);
  auth.set_password(pass);
  auth.set_protocol_version(1);
  if (!SendFrame(protocol::FrameType::kAuth, auth)) {
    return ::testing::AssertionFailure() << "send AUTH: " << last_error_;
  }
  tickwire::v1::AuthOk ok;
  return ReadMessage(protocol::FrameType::kAuthOk, &ok);
}

::testing::AssertionResult WsClient::Subscribe(std::uint32_t request_id, tickwire::v1::Mode mode,
                                               const std::vector<std::string>& topics) {
  tickwire::v1::Subscribe sub;
  sub.set_request_id(request_id);
  sub.set_mode(mode);
  for (const auto& t : topics) sub.add_topics(t);
  if (!SendFrame(protocol::FrameType::kSubscribe, sub)) {
    return ::testing::AssertionFailure() << "send SUBSCRIBE: " << last_error_;
  }
  tickwire::v1::SubscribeOk ok;
  return ReadMessage(protocol::FrameType::kSubscribeOk, &ok);
}

::testing::AssertionResult WsClient::PublishAcked(std::uint32_t request_id,
                                                  const std::vector<tickwire::v1::Tick>& ticks) {
  tickwire::v1::Publish pub;
  pub.set_request_id(request_id);
  pub.set_ack(true);
  for (const auto& t : ticks) *pub.add_ticks() = t;
  if (!SendFrame(protocol::FrameType::kPublish, pub)) {
    return ::testing::AssertionFailure() << "send PUBLISH: " << last_error_;
  }
  tickwire::v1::PublishAck ack;
  if (auto r = ReadMessage(protocol::FrameType::kPublishAck, &ack); !r) return r;
  if (ack.accepted() != ticks.size()) {
    return ::testing::AssertionFailure() << "accepted " << ack.accepted();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tickwire::testing
