#include "client/fake_server.h"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "protocol/wire.h"

namespace tickwire::client::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

FakeServer::FakeServer()
    : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), socket_(io_) {
  port_ = acceptor_.local_endpoint().port();
}

FakeServer::~FakeServer() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  for (auto& s : held_) s.close(ignored);
  acceptor_.close(ignored);
}

bool FakeServer::RunUntil(const bool& done, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  io_.restart();
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io_.run_one_until(deadline);
  }
  if (!done) {
    boost::system::error_code ignored;
    acceptor_.cancel(ignored);
    socket_.cancel(ignored);
    io_.restart();
    io_.run();  // lets the cancelled handlers finish; they only set locals' flags
  }
  return done;
}

bool FakeServer::Accept(milliseconds timeout) {
  if (socket_.is_open()) CloseConnection();
  bool done = false;
  boost::system::error_code result;
  acceptor_.async_accept(socket_, [&](boost::system::error_code ec) {
    result = ec;
    done = true;
  });
  return RunUntil(done, timeout) && !result;
}

bool FakeServer::ReadExactly(std::size_t n, std::string& out, milliseconds timeout) {
  out.assign(n, '\0');
  if (n == 0) return true;
  bool done = false;
  boost::system::error_code result;
  asio::async_read(socket_, asio::buffer(out), [&](boost::system::error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  return RunUntil(done, timeout) && !result;
}

std::optional<FakeFrame> FakeServer::Read(milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string header;
  if (!ReadExactly(protocol::kHeaderSize, header, timeout)) return std::nullopt;
  const auto* h = reinterpret_cast<const std::uint8_t*>(header.data());
  const std::uint32_t length = protocol::DecodeLength(h);
  if (length == 0) return std::nullopt;
  FakeFrame f;
  f.type = static_cast<protocol::FrameType>(h[4]);
  const auto left =
      std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
  if (!ReadExactly(length - 1, f.payload, std::max(left, milliseconds(1)))) return std::nullopt;
  return f;
}

std::optional<FakeFrame> FakeServer::ReadSkippingHeartbeats(milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto f =
        Read(std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!f) return std::nullopt;
    if (f->type != protocol::FrameType::kHeartbeat) return f;
  }
  return std::nullopt;
}

bool FakeServer::WaitForEof(milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<char, 4096> buf{};
  while (std::chrono::steady_clock::now() < deadline) {
    bool done = false;
    boost::system::error_code result;
    socket_.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    if (!RunUntil(done, std::chrono::duration_cast<milliseconds>(
                            deadline - std::chrono::steady_clock::now()))) {
      return false;
    }
    if (result == asio::error::eof || result == asio::error::connection_reset) return true;
    if (result) return false;
  }
  return false;
}

bool FakeServer::SendBytes(std::string_view bytes) {
  boost::system::error_code ec;
  asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
  return !ec;
}

bool FakeServer::Send(protocol::FrameType type, const google::protobuf::MessageLite& message) {
  return SendBytes(protocol::EncodeFrame(type, message));
}

tickwire::v1::AuthOk FakeServer::DefaultAuthOk() {
  tickwire::v1::AuthOk ok;
  ok.set_session_id("fake-session");
  ok.set_heartbeat_interval_ms(15000);
  ok.set_heartbeat_timeout_ms(20000);
  ok.set_max_msg_size(65536);
  ok.set_batch_window_ms(5);
  ok.set_server_version("fake-1.0");
  ok.set_protocol_version(1);
  return ok;
}

bool FakeServer::Handshake(const tickwire::v1::AuthOk& ok, tickwire::v1::Auth* auth) {
  if (!Accept()) return false;
  tickwire::v1::Auth a;
  if (!ReadMessage(protocol::FrameType::kAuth, &a)) return false;
  if (auth != nullptr) *auth = a;
  return Send(protocol::FrameType::kAuthOk, ok);
}

void FakeServer::HoldConnection() {
  held_.push_back(std::move(socket_));
  socket_ = tcp::socket(io_);
}

void FakeServer::CloseConnection() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

std::string DataBatchFrame(std::uint64_t batch_seq, const std::vector<tickwire::v1::Tick>& ticks,
                           const std::vector<tickwire::v1::Bar>& bars) {
  tickwire::v1::DataBatch b;
  b.set_batch_seq(batch_seq);
  for (const auto& t : ticks) *b.add_records()->mutable_tick() = t;
  for (const auto& bar : bars) *b.add_records()->mutable_bar() = bar;
  return protocol::EncodeFrame(protocol::FrameType::kDataBatch, b);
}

tickwire::v1::Tick PbTick(const std::string& topic, double price, double size, std::int64_t ts_ns,
                          std::uint64_t seq) {
  tickwire::v1::Tick t;
  t.set_topic(topic);
  t.set_price(price);
  t.set_size(size);
  t.set_ts_ns(ts_ns);
  t.set_seq(seq);
  t.set_prev_seq(seq - 1);
  return t;
}

std::string ErrorFrame(tickwire::v1::ErrorCode code, bool fatal, std::uint32_t request_id,
                       const std::string& message, std::uint32_t retry_after_ms) {
  tickwire::v1::Error e;
  e.set_code(code);
  e.set_fatal(fatal);
  e.set_request_id(request_id);
  e.set_message(message);
  e.set_retry_after_ms(retry_after_ms);
  return protocol::EncodeFrame(protocol::FrameType::kError, e);
}

}  // namespace tickwire::client::testing
