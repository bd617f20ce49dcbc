#include "client/codec.h"

#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace tickwire::client::codec {
namespace {

namespace pb = ::tickwire::v1;

int AsInt(std::size_t n) { return static_cast<int>(n); }

Tick ToTick(const pb::Tick& t) {
  return Tick{t.topic(), t.price(), t.size(), t.ts_ns(), t.seq(), t.prev_seq(), t.topic_epoch()};
}

Bar ToBar(const pb::Bar& b) {
  Bar out;
  out.topic = b.topic();
  out.interval = static_cast<Mode>(b.interval());
  out.start_ms = b.start_ms();
  out.open = b.open();
  out.high = b.high();
  out.low = b.low();
  out.close = b.close();
  out.volume = b.volume();
  out.count = b.count();
  out.vwap = b.vwap();
  return out;
}

}  // namespace

std::string EncodeAuth(const std::string& username, const std::string& password,
                       const std::string& client_name) {
  pb::Auth m;
  m.set_username(username);
  m.set_password(password);
  m.set_client_name(client_name);
  m.set_protocol_version(protocol::kProtocolVersion);
  return protocol::EncodeFrame(protocol::FrameType::kAuth, m);
}

std::string EncodeSubscribe(std::uint32_t request_id, Mode mode,
                            const std::vector<std::string>& topics, std::uint32_t backfill,
                            std::int64_t since_ms, std::span<const ResumePoint> resume_after,
                            std::uint64_t resume_stream_epoch, std::int64_t resume_from_ns) {
  pb::Subscribe m;
  m.set_request_id(request_id);
  m.set_mode(static_cast<pb::Mode>(mode));
  for (const auto& t : topics) m.add_topics(t);
  m.set_backfill(backfill);
  m.set_since_ms(since_ms);
  for (const auto& p : resume_after) {
    auto* r = m.add_resume_after();
    r->set_topic(p.topic);
    r->set_after_seq(p.after_seq);
    r->set_topic_epoch(p.topic_epoch);
  }
  if (!resume_after.empty()) m.set_resume_stream_epoch(resume_stream_epoch);
  if (resume_from_ns > 0) m.set_resume_from_ns(resume_from_ns);
  return protocol::EncodeFrame(protocol::FrameType::kSubscribe, m);
}

std::string EncodeUnsubscribe(std::uint32_t request_id, std::uint64_t subscription_id) {
  pb::Unsubscribe m;
  m.set_request_id(request_id);
  m.set_subscription_id(subscription_id);
  return protocol::EncodeFrame(protocol::FrameType::kUnsubscribe, m);
}

std::string EncodePublish(std::uint32_t request_id, std::span<const Tick> ticks, bool ack) {
  pb::Publish m;
  m.set_request_id(request_id);
  m.set_ack(ack);
  m.mutable_ticks()->Reserve(AsInt(ticks.size()));
  for (const auto& t : ticks) {
    auto* p = m.add_ticks();
    p->set_topic(t.topic);
    p->set_price(t.price);
    p->set_size(t.size);
    p->set_ts_ns(t.ts_ns);
  }
  return protocol::EncodeFrame(protocol::FrameType::kPublish, m);
}

std::string EncodeHeartbeat(std::int64_t ts_ms) {
  pb::Heartbeat m;
  m.set_ts_ms(ts_ms);
  return protocol::EncodeFrame(protocol::FrameType::kHeartbeat, m);
}

std::optional<std::uint64_t> PeekBatchSeq(std::span<const std::uint8_t> payload) {
  // Fast path: tag 0x08 (field 1, varint) first, as BatchBuilder writes it.
  if (!payload.empty() && payload[0] == 0x08) {
    protocol::wire_detail::Reader r{payload.data() + 1, payload.data() + payload.size()};
    const std::uint64_t v = r.Varint();
    if (r.ok) return v;
    return std::nullopt;
  }
  return protocol::ScanDataBatch(payload, [](protocol::RecordKind, auto) {});
}

bool DecodeBatch(std::span<const std::uint8_t> payload, Batch& out) {
  pb::DataBatch m;
  if (!m.ParseFromArray(payload.data(), AsInt(payload.size()))) return false;
  out.batch_seq = m.batch_seq();
  out.records.reserve(out.records.size() + static_cast<std::size_t>(m.records_size()));
  for (const auto& r : m.records()) {
    switch (r.kind_case()) {
      case pb::Record::kTick:
        out.records.emplace_back(ToTick(r.tick()));
        break;
      case pb::Record::kBar:
        out.records.emplace_back(ToBar(r.bar()));
        break;
      case pb::Record::kWatermark:
        out.records.emplace_back(
            Watermark{static_cast<Mode>(r.watermark().interval()), r.watermark().start_ms()});
        break;
      case pb::Record::kHistoryEnd: {
        const auto& h = r.history_end();
        HistoryEnd e;
        e.subscription_id = h.subscription_id();
        e.truncated = h.truncated();
        e.retention = h.retention();
        e.backfill_limit = h.backfill_limit();
        e.epoch_changed = h.epoch_changed();
        for (const auto& l : h.lost()) {
          e.lost.push_back(LostRange{l.topic(), l.from_seq(), l.to_seq(), l.topic_epoch()});
        }
        e.lost_omitted = h.lost_omitted();
        e.record_index = out.records.size();
        out.history_ends.push_back(std::move(e));
        break;
      }
      default:
        break;  // a kind this client does not know: skipped, per the contract's extension rule
    }
  }
  return true;
}

std::optional<Error> DecodeError(std::span<const std::uint8_t> payload) {
  pb::Error m;
  if (!m.ParseFromArray(payload.data(), AsInt(payload.size()))) return std::nullopt;
  Error e;
  e.kind = ErrorKind::kServer;
  e.code = static_cast<ErrorCode>(m.code());
  e.message = m.message();
  e.request_id = m.request_id();
  e.fatal = m.fatal();
  e.retry_after_ms = m.retry_after_ms();
  return e;
}

}  // namespace tickwire::client::codec
