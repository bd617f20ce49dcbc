// Bench consumers over WebSocket (tickwire bench fanout --transport ws): Boost.Beast on the
// bench's io pool, one strand per consumer, one frame per binary message.

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_consumer.h"
#include "client/codec.h"
#include "protocol/frame.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

class WsReader : public std::enable_shared_from_this<WsReader> {
 public:
  WsReader(asio::io_context& io, TickConsumer& sink)
      : ws_(asio::make_strand(io)), timer_(ws_.get_executor()), sink_(sink) {}

  // Blocking set-up before the read loop starts: connect, upgrade, AUTH, SUBSCRIBE.
  std::string Open(const client::ClientOptions& o, const std::string& path,
                   const std::vector<std::string>& topics) {
    boost::system::error_code ec;
    tcp::resolver resolver(ws_.get_executor());
    const auto endpoints = resolver.resolve(o.host, std::to_string(o.port), ec);
    if (!ec) asio::connect(beast::get_lowest_layer(ws_), endpoints, ec);
    if (ec) return "connect: " + ec.message();
    beast::get_lowest_layer(ws_).set_option(tcp::no_delay(true), ec);
    ws_.binary(true);
    ws_.read_message_max(64 * 1024 * 1024);
    ws_.handshake(o.host + ":" + std::to_string(o.port), path, ec);
    if (ec) return "upgrade: " + ec.message();
    if (auto err = Request(client::codec::EncodeAuth(o.username, o.password, o.client_name),
                           protocol::FrameType::kAuthOk);
        !err.empty()) {
      return "AUTH: " + err;
    }
    v1::AuthOk ok;
    if (ok.ParseFromString(last_payload_) && ok.heartbeat_interval_ms() > 0) {
      heartbeat_ = std::chrono::milliseconds(ok.heartbeat_interval_ms());
    }
    return Request(client::codec::EncodeSubscribe(1, client::Mode::kTick, topics, 0, 0),
                   protocol::FrameType::kSubscribeOk);
  }

  void Start() {
    asio::post(ws_.get_executor(), [self = shared_from_this()] {
      self->Read();
      self->ArmHeartbeat();
    });
  }

  // Runs the close on the strand and waits for it: no handler delivers after it returns.
  void Close() {
    if (closed_outside_) return;
    closed_outside_ = true;
    std::promise<void> done;
    asio::post(ws_.get_executor(), [this, &done] {
      closed_ = true;
      timer_.cancel();
      boost::system::error_code ignored;
      beast::get_lowest_layer(ws_).close(ignored);
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  std::string Request(const std::string& frame, protocol::FrameType want) {
    boost::system::error_code ec;
    ws_.write(asio::buffer(frame), ec);
    if (ec) return "write: " + ec.message();
    beast::flat_buffer buf;
    ws_.read(buf, ec);
    if (ec) return "read: " + ec.message();
    const auto data = buf.cdata();
    const auto* p = static_cast<const std::uint8_t*>(data.data());
    if (data.size() < protocol::kHeaderSize) return "a message shorter than a frame";
    last_payload_.assign(reinterpret_cast<const char*>(p) + protocol::kHeaderSize,
                         data.size() - protocol::kHeaderSize);
    if (p[4] != static_cast<std::uint8_t>(want)) {
      return "unexpected " + std::string(protocol::FrameTypeName(p[4])) + " frame";
    }
    return {};
  }

  void Read() {
    ws_.async_read(buf_, [self = shared_from_this()](const boost::system::error_code& ec,
                                                     std::size_t) { self->OnRead(ec); });
  }

  void OnRead(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
      sink_.counters.OnError("WebSocket read: " + ec.message(), true);
      return;
    }
    const auto data = buf_.cdata();
    const auto* p = static_cast<const std::uint8_t*>(data.data());
    if (data.size() < protocol::kHeaderSize ||
        protocol::DecodeLength(p) != data.size() - protocol::kLengthSize) {
      sink_.counters.OnError("a WebSocket message that is not one frame", true);
      return;
    }
    if (p[4] == static_cast<std::uint8_t>(protocol::FrameType::kDataBatch)) {
      sink_.OnBatch(std::span<const std::uint8_t>(p + protocol::kHeaderSize,
                                                  data.size() - protocol::kHeaderSize));
    } else if (p[4] == static_cast<std::uint8_t>(protocol::FrameType::kError)) {
      sink_.counters.OnError("ERROR frame from the server", true);
    }
    buf_.consume(buf_.size());
    Read();
  }

  void ArmHeartbeat() {
    timer_.expires_after(heartbeat_);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      self->heartbeat_frame_ =
          client::codec::EncodeHeartbeat(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
      // The only writer once the read loop runs: one write in flight.
      self->ws_.async_write(asio::buffer(self->heartbeat_frame_),
                            [self](const boost::system::error_code& wec, std::size_t) {
                              if (!wec && !self->closed_) self->ArmHeartbeat();
                            });
    });
  }

  websocket::stream<tcp::socket> ws_;
  asio::steady_timer timer_;
  TickConsumer& sink_;
  beast::flat_buffer buf_;
  std::string last_payload_;
  std::string heartbeat_frame_;
  std::chrono::milliseconds heartbeat_{5000};
  bool closed_ = false;          // on the strand
  bool closed_outside_ = false;  // on the caller's thread
};

}  // namespace

std::string ConnectWsTickConsumers(const client::ClientOptions& base, const std::string& path,
                                   asio::io_context& io, int n,
                                   const std::vector<std::string>& topics, const Window& window,
                                   std::vector<std::unique_ptr<TickConsumer>>& out) {
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<TickConsumer>(window);
    auto o = base;
    o.client_name = fmt::format("{}-sub-{}", base.client_name, i);
    auto reader = std::make_shared<WsReader>(io, *c);
    if (auto err = reader->Open(o, path, topics); !err.empty()) {
      return fmt::format("consumer {} (WebSocket): {}", i, err);
    }
    reader->Start();
    c->close_ws = [reader] { reader->Close(); };
    out.push_back(std::move(c));
  }
  return {};
}

}  // namespace tickwire::cli
