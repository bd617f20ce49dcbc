#include "support/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <utility>

#include "common/wall_clock.h"
#include "support/wait.h"

namespace tickwire::testing {
namespace {

using protocol::FrameType;
using tickwire::v1::ErrorCode;

// Largest frame the client accepts from the server; far above any MAX_MSG_SIZE a test sets.
constexpr std::size_t kClientFrameLimit = 64 * 1024 * 1024;
// Upper bound for one blocking send; a server that stops reading must not hang a test.
constexpr int kSendTimeoutMs = 5000;

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

std::string_view ReadStatusName(ReadStatus status) {
  switch (status) {
    case ReadStatus::kFrame:
      return "frame";
    case ReadStatus::kTimeout:
      return "timeout";
    case ReadStatus::kClosed:
      return "closed";
    case ReadStatus::kError:
      return "error";
  }
  return "?";
}

std::string DescribeFrame(const Frame& frame) {
  std::ostringstream out;
  const std::string_view name = protocol::FrameTypeName(frame.type);
  if (frame.frame_type() == FrameType::kError) {
    tickwire::v1::Error e;
    if (e.ParseFromString(frame.payload)) {
      out << "ERROR{" << tickwire::v1::ErrorCode_Name(e.code()) << ", "
          << (e.fatal() ? "fatal" : "non-fatal") << ", request_id=" << e.request_id() << ", '"
          << e.message() << "'}";
      return out.str();
    }
  }
  if (frame.frame_type() == FrameType::kHeartbeat) {
    tickwire::v1::Heartbeat hb;
    if (hb.ParseFromString(frame.payload)) {
      out << "HEARTBEAT{ts_ms=" << hb.ts_ms() << "}";
      return out.str();
    }
  }
  out << name << "(type 0x" << std::hex << unsigned{frame.type} << std::dec << ", "
      << frame.payload.size() << " payload bytes)";
  return out.str();
}

RawClient::~RawClient() { Close(); }

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      rcvbuf_(other.rcvbuf_),
      source_(std::move(other.source_)),
      buffer_(std::move(other.buffer_)),
      eof_(other.eof_),
      last_error_(std::move(other.last_error_)) {}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    rcvbuf_ = other.rcvbuf_;
    source_ = std::move(other.source_);
    buffer_ = std::move(other.buffer_);
    eof_ = other.eof_;
    last_error_ = std::move(other.last_error_);
  }
  return *this;
}

bool RawClient::Connect(std::uint16_t port, const std::string& host) {
  Close();
  buffer_.clear();
  eof_ = false;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    last_error_ = ErrnoText("socket");
    return false;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{};
  tv.tv_sec = kSendTimeoutMs / 1000;
  tv.tv_usec = (kSendTimeoutMs % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (rcvbuf_ > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_, sizeof(rcvbuf_));
  if (!source_.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, source_.c_str(), &local.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0) {
      last_error_ = ErrnoText(("bind " + source_).c_str());
      ::close(fd);
      return false;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    last_error_ = "bad IPv4 address " + host;
    ::close(fd);
    return false;
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    last_error_ = ErrnoText("connect");
    ::close(fd);
    return false;
  }
  fd_ = fd;
  return true;
}

void RawClient::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void RawClient::ShutdownWrite() {
  if (fd_ >= 0) shutdown(fd_, SHUT_WR);
}

bool RawClient::SendFrame(FrameType type, const google::protobuf::MessageLite& message) {
  return SendFrame(static_cast<std::uint8_t>(type), message);
}

bool RawClient::SendFrame(std::uint8_t type, const google::protobuf::MessageLite& message) {
  return SendRawFrame(type, message.SerializeAsString());
}

bool RawClient::SendRawFrame(std::uint8_t type, std::string_view payload) {
  std::string frame(protocol::kHeaderSize, '\0');
  const auto length = static_cast<std::uint32_t>(payload.size() + 1);
  frame[0] = static_cast<char>(length >> 24);
  frame[1] = static_cast<char>(length >> 16);
  frame[2] = static_cast<char>(length >> 8);
  frame[3] = static_cast<char>(length);
  frame[4] = static_cast<char>(type);
  frame.append(payload);
  return SendBytes(frame);
}

bool RawClient::SendBytes(std::string_view bytes) {
  if (fd_ < 0) {
    last_error_ = "send on a closed client";
    return false;
  }
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      last_error_ = ErrnoText("send");
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool RawClient::TakeFrame(Frame& out, std::string& error) {
  if (buffer_.size() < protocol::kHeaderSize) return false;
  const std::uint32_t length =
      protocol::DecodeLength(reinterpret_cast<const std::uint8_t*>(buffer_.data()));
  if (length == 0) {
    error = "server sent a frame with length 0";
    return false;
  }
  if (length - 1 > kClientFrameLimit) {
    error = "server declared a frame of " + std::to_string(length) + " bytes";
    return false;
  }
  const std::size_t total = protocol::kLengthSize + length;
  if (buffer_.size() < total) return false;
  out.type = static_cast<std::uint8_t>(buffer_[protocol::kLengthSize]);
  out.payload.assign(buffer_, protocol::kHeaderSize, total - protocol::kHeaderSize);
  buffer_.erase(0, total);
  return true;
}

ReadResult RawClient::ReadFrame(milliseconds timeout) {
  ReadResult result;
  if (!stashed_.empty()) {
    result.frame = std::move(stashed_.front());
    stashed_.pop_front();
    result.status = ReadStatus::kFrame;
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::string error;
    if (TakeFrame(result.frame, error)) {
      result.status = ReadStatus::kFrame;
      return result;
    }
    if (!error.empty()) {
      result.status = ReadStatus::kError;
      result.detail = error;
      return result;
    }
    if (eof_ || fd_ < 0) {
      result.status = buffer_.empty() ? ReadStatus::kClosed : ReadStatus::kError;
      if (!buffer_.empty()) {
        result.detail = "connection closed inside a frame (" + std::to_string(buffer_.size()) +
                        " bytes of it received)";
      }
      return result;
    }
    pollfd pfd{fd_, POLLIN, 0};
    const int wait_ms = static_cast<int>(Remaining(deadline).count());
    const int ready = poll(&pfd, 1, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      result.status = ReadStatus::kError;
      result.detail = ErrnoText("poll");
      return result;
    }
    if (ready == 0) {
      result.status = ReadStatus::kTimeout;
      return result;
    }
    char chunk[65536];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      eof_ = true;
    } else if (errno == ECONNRESET || errno == EPIPE) {
      eof_ = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      result.status = ReadStatus::kError;
      result.detail = ErrnoText("recv");
      return result;
    }
  }
}

::testing::AssertionResult RawClient::ExpectError(ErrorCode code, std::optional<bool> fatal,
                                                  std::optional<std::uint32_t> request_id,
                                                  tickwire::v1::Error* out, milliseconds timeout) {
  const ReadResult r = ReadFrame(timeout);
  const std::string want = tickwire::v1::ErrorCode_Name(code);
  if (!r.ok()) {
    return ::testing::AssertionFailure() << "expected ERROR{" << want << "} but read "
                                         << ReadStatusName(r.status) << " " << r.detail;
  }
  if (r.frame.frame_type() != FrameType::kError) {
    return ::testing::AssertionFailure()
           << "expected ERROR{" << want << "} but got " << DescribeFrame(r.frame);
  }
  tickwire::v1::Error e;
  if (!e.ParseFromString(r.frame.payload)) {
    return ::testing::AssertionFailure() << "ERROR payload does not parse";
  }
  if (e.code() != code || (fatal && e.fatal() != *fatal) ||
      (request_id && e.request_id() != *request_id)) {
    auto failure = ::testing::AssertionFailure();
    failure << "expected ERROR{" << want;
    if (fatal) failure << ", " << (*fatal ? "fatal" : "non-fatal");
    if (request_id) failure << ", request_id=" << *request_id;
    failure << "} but got " << DescribeFrame(r.frame);
    return failure;
  }
  if (out != nullptr) *out = std::move(e);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawClient::ExpectFatal(ErrorCode code, tickwire::v1::Error* out,
                                                  milliseconds timeout) {
  if (auto r = ExpectError(code, true, std::nullopt, out, timeout); !r) return r;
  if (auto r = ExpectClosed(timeout); !r) {
    return ::testing::AssertionFailure() << "after the fatal ERROR: " << r.message();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawClient::ExpectClosed(milliseconds timeout) {
  const ReadResult r = ReadFrame(timeout);
  switch (r.status) {
    case ReadStatus::kClosed:
      return ::testing::AssertionSuccess();
    case ReadStatus::kFrame:
      return ::testing::AssertionFailure()
             << "expected the connection to close but got " << DescribeFrame(r.frame);
    case ReadStatus::kTimeout:
      return ::testing::AssertionFailure()
             << "expected the connection to close but it is still open after " << timeout.count()
             << " ms";
    case ReadStatus::kError:
      return ::testing::AssertionFailure() << "expected a clean close: " << r.detail;
  }
  return ::testing::AssertionFailure();
}

::testing::AssertionResult RawClient::ExpectNothing(milliseconds quiet) {
  const ReadResult r = ReadFrame(quiet);
  if (r.ok()) {
    return ::testing::AssertionFailure() << "expected nothing but got " << DescribeFrame(r.frame);
  }
  if (r.status == ReadStatus::kError) return ::testing::AssertionFailure() << r.detail;
  if (r.status == ReadStatus::kClosed) {
    return ::testing::AssertionFailure() << "expected nothing but the server closed the connection";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawClient::Authenticate(const std::string& user, const std::string& pass,
                                                   tickwire::v1::AuthOk* out,
                                                   std::uint32_t protocol_version) {
  tickwire::v1::Auth auth;
  auth.set_username(user);
  auth.set_password(pass);
  auth.set_client_name("tickwire-integration-test");
  auth.set_protocol_version(protocol_version);
  if (!SendFrame(FrameType::kAuth, auth)) {
    return ::testing::AssertionFailure() << "sending AUTH: " << last_error_;
  }
  return ReadMessage(FrameType::kAuthOk, out);
}

::testing::AssertionResult RawClient::HeartbeatRoundTrip(std::int64_t ts_ms) {
  tickwire::v1::Heartbeat hb;
  hb.set_ts_ms(ts_ms);
  if (!SendFrame(FrameType::kHeartbeat, hb)) {
    return ::testing::AssertionFailure() << "sending HEARTBEAT: " << last_error_;
  }
  tickwire::v1::Heartbeat echo;
  if (auto r = ReadMessage(FrameType::kHeartbeat, &echo); !r) return r;
  if (echo.ts_ms() != ts_ms) {
    return ::testing::AssertionFailure()
           << "HEARTBEAT echo carries ts_ms=" << echo.ts_ms() << ", sent " << ts_ms;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawClient::Subscribe(std::uint32_t request_id, tickwire::v1::Mode mode,
                                                const std::vector<std::string>& topics,
                                                std::uint64_t* subscription_id,
                                                tickwire::v1::SubscribeOk* reply) {
  tickwire::v1::Subscribe sub;
  sub.set_request_id(request_id);
  sub.set_mode(mode);
  for (const auto& t : topics) sub.add_topics(t);
  if (!SendFrame(FrameType::kSubscribe, sub)) {
    return ::testing::AssertionFailure() << "sending SUBSCRIBE: " << last_error_;
  }
  tickwire::v1::SubscribeOk ok;
  const auto deadline = std::chrono::steady_clock::now() + kDefaultTimeout;
  for (;;) {
    // Data for earlier subscriptions may come first: kept for the next ReadFrame.
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    std::deque<Frame> ahead = std::move(stashed_);
    stashed_.clear();
    ReadResult r = ReadFrame(std::max(left, milliseconds(0)));
    stashed_ = std::move(ahead);
    if (!r.ok() || r.frame.frame_type() != FrameType::kDataBatch) {
      if (!r.ok()) {
        return ::testing::AssertionFailure()
               << "expected SUBSCRIBE_OK but read " << ReadStatusName(r.status) << " " << r.detail;
      }
      if (r.frame.frame_type() != FrameType::kSubscribeOk) {
        return ::testing::AssertionFailure()
               << "expected SUBSCRIBE_OK but got " << DescribeFrame(r.frame);
      }
      if (!ok.ParseFromString(r.frame.payload)) {
        return ::testing::AssertionFailure() << "SUBSCRIBE_OK payload does not parse";
      }
      break;
    }
    stashed_.push_back(std::move(r.frame));
  }
  if (ok.request_id() != request_id) {
    return ::testing::AssertionFailure()
           << "SUBSCRIBE_OK request_id " << ok.request_id() << ", sent " << request_id;
  }
  if (ok.subscription_id() == 0) {
    return ::testing::AssertionFailure() << "SUBSCRIBE_OK subscription_id is 0";
  }
  if (subscription_id != nullptr) *subscription_id = ok.subscription_id();
  if (reply != nullptr) *reply = ok;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawClient::PublishAcked(std::uint32_t request_id,
                                                   const std::vector<tickwire::v1::Tick>& ticks,
                                                   std::vector<Frame>* batches) {
  tickwire::v1::Publish pub;
  pub.set_request_id(request_id);
  pub.set_ack(true);
  for (const auto& t : ticks) *pub.add_ticks() = t;
  if (!SendFrame(FrameType::kPublish, pub)) {
    return ::testing::AssertionFailure() << "sending PUBLISH: " << last_error_;
  }
  while (true) {
    ReadResult r = ReadFrame();
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "waiting for PUBLISH_ACK: " << ReadStatusName(r.status) << " " << r.detail;
    }
    if (r.frame.frame_type() == FrameType::kDataBatch && batches != nullptr) {
      batches->push_back(std::move(r.frame));
      continue;
    }
    if (r.frame.frame_type() != FrameType::kPublishAck) {
      return ::testing::AssertionFailure()
             << "expected PUBLISH_ACK but got " << DescribeFrame(r.frame);
    }
    tickwire::v1::PublishAck ack;
    if (!ack.ParseFromString(r.frame.payload)) {
      return ::testing::AssertionFailure() << "PUBLISH_ACK payload does not parse";
    }
    if (ack.request_id() != request_id || ack.accepted() != ticks.size()) {
      return ::testing::AssertionFailure()
             << "PUBLISH_ACK{request_id=" << ack.request_id() << ", accepted=" << ack.accepted()
             << "}, expected {" << request_id << ", " << ticks.size() << "}";
    }
    return ::testing::AssertionSuccess();
  }
}

tickwire::v1::Tick MakeTick(const std::string& topic, double price, double size,
                            std::int64_t ts_ns) {
  tickwire::v1::Tick t;
  t.set_topic(topic);
  t.set_price(price);
  t.set_size(size);
  t.set_ts_ns(ts_ns);
  return t;
}

std::int64_t NowNs() { return common::WallClockNs(); }

std::int64_t NowMs() { return common::WallClockMs(); }

std::optional<DecodedBatch> DecodeBatch(const Frame& frame) {
  if (frame.frame_type() != FrameType::kDataBatch) return std::nullopt;
  tickwire::v1::DataBatch batch;
  if (!batch.ParseFromString(frame.payload)) return std::nullopt;
  DecodedBatch out;
  out.batch_seq = batch.batch_seq();
  for (const auto& rec : batch.records()) {
    if (rec.has_tick()) out.ticks.push_back(rec.tick());
    if (rec.has_bar()) out.bars.push_back(rec.bar());
  }
  return out;
}

}  // namespace tickwire::testing
