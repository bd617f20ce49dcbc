// tickwire-nats-bench: the tickwire bench scenarios against nats-server, through the NATS C
// client (libnats). Each subscriber has its own connection; messages are delivered by the
// library's shared delivery threads (--io-threads of them) rather than a thread per
// subscription, and the client's pending limits are lifted: the publisher's flow control
// (Pacer) keeps subscribers from falling behind, as in `tickwire bench fanout`.

#include <nats/nats.h>

#include <string>
#include <vector>

#include <fmt/core.h>

#include "peer_bench.h"

namespace tickwire::peers {
namespace {

std::string Status(const char* what, natsStatus s) {
  return fmt::format("{}: {} ({})", what, natsStatus_GetText(s), nats_GetLastError(nullptr));
}

class NatsSystem : public PubSubSystem {
 public:
  explicit NatsSystem(PeerAddress address) : address_(std::move(address)) {}
  ~NatsSystem() override { Close(); }

  std::string OpenSubscribers(int n, const std::string& subject, unsigned io_threads,
                              MessageHandler on_message, ErrorHandler on_error) override {
    on_message_ = std::move(on_message);
    on_error_ = std::move(on_error);
    if (auto s =
            nats_SetMessageDeliveryPoolSize(io_threads == 0 ? 1 : static_cast<int>(io_threads));
        s != NATS_OK) {
      return Status("delivery pool", s);
    }
    subscribers_.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      auto& sub = subscribers_[static_cast<std::size_t>(i)];
      sub.owner = this;
      sub.index = i;
      natsConnection* nc = nullptr;
      if (auto err = Connect(&nc, &sub, true); !err.empty()) return err;
      sub.nc = nc;
      if (auto s = natsConnection_Subscribe(&sub.sub, nc, subject.c_str(), &OnMessage, &sub);
          s != NATS_OK) {
        return Status("subscribe", s);
      }
      natsSubscription_SetPendingLimits(sub.sub, -1, -1);
      // The server has the SUB once the PING sent after it is answered.
      if (auto s = natsConnection_FlushTimeout(nc, 5000); s != NATS_OK) return Status("flush", s);
    }
    return {};
  }

  std::string OpenPublisher() override { return Connect(&publisher_, nullptr, false); }

  std::string Publish(const std::string& subject, std::span<const char> payloads,
                      std::size_t payload_size, std::size_t count) override {
    for (std::size_t i = 0; i < count; ++i) {
      const auto s =
          natsConnection_Publish(publisher_, subject.c_str(), payloads.data() + i * payload_size,
                                 static_cast<int>(payload_size));
      if (s != NATS_OK) return Status("publish", s);
    }
    return {};
  }

  void Close() override {
    for (auto& sub : subscribers_) {
      if (sub.sub != nullptr) {
        natsSubscription_Unsubscribe(sub.sub);
        natsSubscription_Destroy(sub.sub);
        sub.sub = nullptr;
      }
    }
    if (publisher_ != nullptr) {
      natsConnection_FlushTimeout(publisher_, 2000);
      natsConnection_Destroy(publisher_);
      publisher_ = nullptr;
    }
    for (auto& sub : subscribers_) {
      if (sub.nc != nullptr) {
        natsConnection_Destroy(sub.nc);
        sub.nc = nullptr;
      }
    }
  }

  std::unique_ptr<cli::IdleProtocol> MakeIdleProtocol() const override {
    // CONNECT with credentials, one SUB, then a PING whose PONG says both were processed; the
    // server's own PINGs (every ping_interval) are answered, and we PING every keepalive.
    LineIdleProtocol::Spec spec;
    spec.hello = fmt::format(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{}\",\"pass\":\"{}\","
        "\"name\":\"tickwire-bench-idle\",\"lang\":\"c\",\"version\":\"1\",\"protocol\":1}}\r\n"
        "SUB idle.none 1\r\nPING\r\n",
        address_.user, address_.pass);
    spec.keepalive = "PING\r\n";
    spec.ready_lines = {"PONG"};
    spec.replies_to_ready = 1;
    spec.error_prefix = "-ERR";
    spec.ping_line = "PING";
    spec.answer = "PONG\r\n";
    return std::make_unique<LineIdleProtocol>(spec);
  }

 private:
  struct Subscriber {
    NatsSystem* owner = nullptr;
    int index = 0;
    natsConnection* nc = nullptr;
    natsSubscription* sub = nullptr;
  };

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* sub = static_cast<Subscriber*>(closure);
    sub->owner->on_message_(
        sub->index, std::span<const char>(natsMsg_GetData(msg),
                                          static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
  }

  static void OnError(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
    auto* sub = static_cast<Subscriber*>(closure);
    if (sub != nullptr) sub->owner->on_error_(sub->index, natsStatus_GetText(err));
  }

  std::string Connect(natsConnection** nc, Subscriber* sub, bool global_delivery) {
    natsOptions* opts = nullptr;
    if (auto s = natsOptions_Create(&opts); s != NATS_OK) return Status("options", s);
    const std::string url = fmt::format("nats://{}:{}", address_.host, address_.port);
    natsOptions_SetURL(opts, url.c_str());
    if (!address_.user.empty()) {
      natsOptions_SetUserInfo(opts, address_.user.c_str(), address_.pass.c_str());
    }
    natsOptions_SetTimeout(opts, 5000);
    natsOptions_SetAllowReconnect(opts, false);
    natsOptions_SetNoEcho(opts, true);
    natsOptions_UseGlobalMessageDelivery(opts, global_delivery);
    if (sub != nullptr) natsOptions_SetErrorHandler(opts, &OnError, sub);
    const auto s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) return Status(sub != nullptr ? "subscriber connect" : "publisher connect", s);
    return {};
  }

  PeerAddress address_;
  MessageHandler on_message_;
  ErrorHandler on_error_;
  std::vector<Subscriber> subscribers_;  // sized once: handlers hold pointers into it
  natsConnection* publisher_ = nullptr;
};

}  // namespace
}  // namespace tickwire::peers

int main(int argc, char** argv) {
  const int rc = tickwire::peers::PeerMain(
      argc, argv, "tickwire-nats-bench", "nats", 4222,
      [](const tickwire::peers::PeerAddress& a) -> std::unique_ptr<tickwire::peers::PubSubSystem> {
        return std::make_unique<tickwire::peers::NatsSystem>(a);
      });
  nats_Close();
  return rc;
}
