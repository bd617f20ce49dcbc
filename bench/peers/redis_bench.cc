// tickwire-redis-bench: the tickwire bench scenarios against redis-server PUBLISH/SUBSCRIBE,
// through hiredis. Each subscriber connects, authenticates and subscribes with hiredis's
// blocking API, then its socket is read by a shared io thread pool (--io-threads) and parsed with
// the same connection's hiredis reader; the publisher pipelines a batch of PUBLISH commands and
// then reads their replies.

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "bench_common.h"
#include "peer_bench.h"

namespace tickwire::peers {
namespace {

namespace asio = boost::asio;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

std::string ContextError(const char* what, const redisContext* c) {
  return fmt::format("{}: {}", what, c != nullptr ? c->errstr : "out of memory");
}

// Connects and authenticates (with a password set). Returns an error line.
std::string Connect(const PeerAddress& a, Context& out) {
  timeval timeout{5, 0};
  out.reset(redisConnectWithTimeout(a.host.c_str(), a.port, timeout));
  if (!out || out->err) return ContextError("connect", out.get());
  if (!a.pass.empty()) {
    Reply r(static_cast<redisReply*>(redisCommand(out.get(), "AUTH %s", a.pass.c_str())));
    if (!r) return ContextError("AUTH", out.get());
    if (r->type == REDIS_REPLY_ERROR) return fmt::format("AUTH: {}", r->str);
  }
  return {};
}

class RedisSubscriber {
 public:
  RedisSubscriber(int index, asio::io_context& io)
      : index_(index), socket_(asio::make_strand(io)) {}

  // Connects, subscribes (blocking), then hands the socket to `io`. Returns an error line.
  std::string Open(const PeerAddress& a, const std::string& channel,
                   const MessageHandler& on_message, const ErrorHandler& on_error) {
    on_message_ = &on_message;
    on_error_ = &on_error;
    if (auto err = Connect(a, context_); !err.empty()) return err;
    Reply r(
        static_cast<redisReply*>(redisCommand(context_.get(), "SUBSCRIBE %s", channel.c_str())));
    if (!r) return ContextError("SUBSCRIBE", context_.get());
    if (r->type != REDIS_REPLY_ARRAY) return "SUBSCRIBE: unexpected reply";
    const int fd = dup(context_->fd);
    boost::system::error_code ec;
    socket_.assign(asio::ip::tcp::v4(), fd, ec);
    if (ec) return "assign: " + ec.message();
    asio::post(socket_.get_executor(), [this] {
      Drain();  // what the reader already holds
      Read();
    });
    return {};
  }

  // Closes the socket on its strand (a read handler may be running on another pool thread).
  void CloseAsync() {
    asio::post(socket_.get_executor(), [this] {
      boost::system::error_code ignored;
      socket_.close(ignored);
    });
  }

 private:
  void Read() {
    socket_.async_read_some(
        asio::buffer(buf_), [this](const boost::system::error_code& ec, std::size_t n) {
          if (ec == asio::error::operation_aborted) return;
          if (ec) {
            (*on_error_)(index_, "read: " + ec.message());
            return;
          }
          if (redisReaderFeed(context_->reader, buf_.data(), n) != REDIS_OK) {
            (*on_error_)(index_, "reader: " + std::string(context_->reader->errstr));
            return;
          }
          if (Drain()) Read();
        });
  }

  // Hands every complete message the reader holds to the handler; false on a protocol error.
  bool Drain() {
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(context_->reader, &raw) != REDIS_OK) {
        (*on_error_)(index_, "reader: " + std::string(context_->reader->errstr));
        return false;
      }
      if (raw == nullptr) return true;
      Reply r(static_cast<redisReply*>(raw));
      // ["message", channel, payload]
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
          r->element[2]->type == REDIS_REPLY_STRING) {
        (*on_message_)(index_, std::span<const char>(r->element[2]->str, r->element[2]->len));
      }
    }
  }

  int index_;
  asio::ip::tcp::socket socket_;
  Context context_;
  std::array<char, 65536> buf_{};
  const MessageHandler* on_message_ = nullptr;
  const ErrorHandler* on_error_ = nullptr;
};

class RedisSystem : public PubSubSystem {
 public:
  explicit RedisSystem(PeerAddress address) : address_(std::move(address)) {}
  ~RedisSystem() override { Close(); }

  std::string OpenSubscribers(int n, const std::string& subject, unsigned io_threads,
                              MessageHandler on_message, ErrorHandler on_error) override {
    on_message_ = std::move(on_message);
    on_error_ = std::move(on_error);
    pool_ = std::make_unique<cli::IoPool>(io_threads);
    for (int i = 0; i < n; ++i) {
      subscribers_.push_back(std::make_unique<RedisSubscriber>(i, pool_->io()));
      if (auto err = subscribers_.back()->Open(address_, subject, on_message_, on_error_);
          !err.empty()) {
        return fmt::format("subscriber {}: {}", i, err);
      }
    }
    return {};
  }

  std::string OpenPublisher() override { return Connect(address_, publisher_); }

  std::string Publish(const std::string& subject, std::span<const char> payloads,
                      std::size_t payload_size, std::size_t count) override {
    for (std::size_t i = 0; i < count; ++i) {
      if (redisAppendCommand(publisher_.get(), "PUBLISH %s %b", subject.c_str(),
                             payloads.data() + i * payload_size, payload_size) != REDIS_OK) {
        return ContextError("PUBLISH", publisher_.get());
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      void* raw = nullptr;
      if (redisGetReply(publisher_.get(), &raw) != REDIS_OK) {
        return ContextError("PUBLISH reply", publisher_.get());
      }
      Reply r(static_cast<redisReply*>(raw));
      if (r->type == REDIS_REPLY_ERROR) return fmt::format("PUBLISH: {}", r->str);
    }
    return {};
  }

  void Close() override {
    if (pool_) {
      for (auto& s : subscribers_) s->CloseAsync();
      pool_->Stop();
    }
    subscribers_.clear();
    pool_.reset();
    publisher_.reset();
  }

  std::unique_ptr<cli::IdleProtocol> MakeIdleProtocol() const override {
    // AUTH, then SUBSCRIBE: "+OK", then [subscribe, channel, 1] whose last line is ":1". PING in
    // subscribed mode answers [pong, ""]; the server never pings.
    LineIdleProtocol::Spec spec;
    spec.hello = fmt::format("AUTH {}\r\nSUBSCRIBE idle.none\r\n", address_.pass);
    spec.keepalive = "PING\r\n";
    spec.ready_lines = {"+OK", ":1"};
    spec.replies_to_ready = 2;
    spec.error_prefix = "-";
    return std::make_unique<LineIdleProtocol>(spec);
  }

 private:
  PeerAddress address_;
  MessageHandler on_message_;
  ErrorHandler on_error_;
  std::unique_ptr<cli::IoPool> pool_;
  std::vector<std::unique_ptr<RedisSubscriber>> subscribers_;
  Context publisher_;
};

}  // namespace
}  // namespace tickwire::peers

int main(int argc, char** argv) {
  return tickwire::peers::PeerMain(
      argc, argv, "tickwire-redis-bench", "redis", 6379,
      [](const tickwire::peers::PeerAddress& a) -> std::unique_ptr<tickwire::peers::PubSubSystem> {
        return std::make_unique<tickwire::peers::RedisSystem>(a);
      });
}
