// Writes the seed corpus for the fuzz targets: small, valid inputs that reach deep into each
// target quickly. Run once after changing the wire format and commit the output:
//   build/fuzz/fuzz/tickwire_fuzz_seeds fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "protocol/batch_builder.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tickwire/v1/tickwire.pb.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = tickwire::v1;
using tickwire::protocol::AppendTickRecordEntry;
using tickwire::protocol::BatchBuilder;
using tickwire::protocol::EncodeFrame;
using tickwire::protocol::FrameType;
using tickwire::protocol::kHeaderSize;
using tickwire::protocol::MakeFrame;
using tickwire::protocol::TickFields;

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<TickFields> SampleTicks() {
  return {
      {.topic = "AAPL", .price = 189.25, .size = 100, .ts_ns = 1700000000123456789, .seq = 1},
      {.topic = "AAPL",
       .price = 189.5,
       .size = 50,
       .ts_ns = 1700000000223456789,
       .seq = 2,
       .prev_seq = 1},
      {.topic = "BTC-USD",
       .price = 43000.125,
       .size = 0.5,
       .ts_ns = 1700000001000000000,
       .seq = 77,
       .prev_seq = 76},
      {.topic = "fx:EUR.USD", .price = -0.0, .size = 0, .ts_ns = 0, .seq = 0xFFFFFFFFFFFFULL},
      {},
  };
}

// A DATA_BATCH frame as the server builds it.
std::string DataBatchFrame(std::uint64_t batch_seq, const std::vector<TickFields>& ticks) {
  BatchBuilder builder(tickwire::protocol::kDefaultMaxMsgSize);
  for (const TickFields& t : ticks) {
    std::string entry;
    AppendTickRecordEntry(entry, t);
    builder.Append(entry, batch_seq);
  }
  return builder.Finish();
}

std::string BarBatchPayload() {
  v1::DataBatch batch;
  batch.set_batch_seq(3);
  v1::Bar* bar = batch.add_records()->mutable_bar();
  bar->set_topic("AAPL");
  bar->set_interval(v1::MODE_SECOND);
  bar->set_start_ms(1700000000000);
  bar->set_open(189.25);
  bar->set_high(189.5);
  bar->set_low(189.0);
  bar->set_close(189.5);
  bar->set_volume(150);
  bar->set_count(2);
  bar->set_vwap(189.33);
  v1::Tick* tick = batch.add_records()->mutable_tick();
  tick->set_topic("AAPL");
  tick->set_price(189.5);
  tick->set_seq(2);
  tick->set_prev_seq(1);
  batch.add_records();  // an empty record
  return batch.SerializeAsString();
}

std::string ClientSession() {
  v1::Auth auth;
  auth.set_username("demo");
  auth.set_password("demo-pass");
  auth.set_client_name("seed");
  auth.set_protocol_version(1);
  v1::Subscribe sub;
  sub.set_request_id(1);
  sub.set_mode(v1::MODE_TICK);
  sub.add_topics("AAPL");
  sub.add_topics("*");
  sub.set_backfill(10);
  v1::Publish pub;
  pub.set_request_id(2);
  pub.set_ack(true);
  v1::Tick* t = pub.add_ticks();
  t->set_topic("AAPL");
  t->set_price(1.5);
  t->set_size(10);
  v1::Heartbeat hb;
  hb.set_ts_ms(1700000000000);
  v1::Unsubscribe unsub;
  unsub.set_request_id(3);
  unsub.set_subscription_id(1);
  return EncodeFrame(FrameType::kAuth, auth) + EncodeFrame(FrameType::kSubscribe, sub) +
         EncodeFrame(FrameType::kPublish, pub) + EncodeFrame(FrameType::kHeartbeat, hb) +
         EncodeFrame(FrameType::kUnsubscribe, unsub);
}

std::string ServerReplies() {
  v1::AuthOk ok;
  ok.set_session_id("s-1");
  ok.set_heartbeat_interval_ms(15000);
  ok.set_heartbeat_timeout_ms(20000);
  ok.set_max_msg_size(65536);
  ok.set_batch_window_ms(5);
  ok.set_server_version("0.1.0");
  ok.set_protocol_version(1);
  v1::Error err;
  err.set_code(v1::SERVER_DRAINING);
  err.set_message("draining");
  err.set_fatal(true);
  err.set_retry_after_ms(1000);
  return EncodeFrame(FrameType::kAuthOk, ok) + DataBatchFrame(1, SampleTicks()) +
         EncodeFrame(FrameType::kError, err);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-root>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];

  // fuzz_frame_decoder: 3 control bytes (max chunk, seed, stop-after), then the stream.
  const fs::path dec = root / "fuzz_frame_decoder";
  auto ctl = [](std::uint8_t max_chunk, std::uint8_t seed, std::uint8_t stop) {
    return std::string{static_cast<char>(max_chunk), static_cast<char>(seed),
                       static_cast<char>(stop)};
  };
  Write(dec, "client_session_whole", ctl(0, 0, 0) + ClientSession());
  Write(dec, "client_session_bytewise", ctl(1, 7, 0) + ClientSession());
  Write(dec, "client_session_chunks", ctl(13, 42, 0) + ClientSession());
  Write(dec, "server_replies_chunks", ctl(40, 3, 0) + ServerReplies());
  Write(dec, "stop_after_two", ctl(5, 9, 2) + ClientSession());
  Write(dec, "heartbeat_empty", ctl(0, 0, 0) + MakeFrame(FrameType::kHeartbeat, ""));
  Write(dec, "max_payload",
        ctl(255, 1, 0) + MakeFrame(FrameType::kPublish, std::string(4096, 'x')));
  Write(dec, "zero_length",
        ctl(2, 0, 0) + MakeFrame(FrameType::kAuth, "a") + std::string("\x00\x00\x00\x00\x01", 5));
  Write(dec, "too_large", ctl(3, 0, 0) + std::string("\x00\x00\x10\x02\x06", 5) + "xyz");

  // fuzz_data_batch_scan: DATA_BATCH payloads (and a bare Tick).
  const fs::path scan = root / "fuzz_data_batch_scan";
  const std::string frame = DataBatchFrame(1, SampleTicks());
  Write(scan, "ticks", frame.substr(kHeaderSize));
  Write(scan, "one_tick_big_seq",
        DataBatchFrame(0xFFFFFFFFFFFFFFFFULL, {SampleTicks()[2]}).substr(kHeaderSize));
  Write(scan, "bars_and_ticks", BarBatchPayload());
  Write(scan, "empty", "");
  {
    v1::Tick t;
    t.set_topic("ETH-USD");
    t.set_price(2000.5);
    t.set_size(3);
    t.set_ts_ns(-1);
    t.set_seq(5);
    t.set_prev_seq(4);
    Write(scan, "bare_tick", t.SerializeAsString());
  }
  // fuzz_session: 2 control bytes (chunk size, pre-AUTH flag), then the client's stream.
  const fs::path ses = root / "fuzz_session";
  auto sctl = [](std::uint8_t chunk, std::uint8_t flags) {
    return std::string{static_cast<char>(chunk), static_cast<char>(flags)};
  };
  Write(ses, "full_session", sctl(0, 0) + ClientSession());
  Write(ses, "full_session_chunks", sctl(7, 0) + ClientSession());
  Write(ses, "preauth_then_session", sctl(0, 1) + ClientSession());
  {
    v1::Publish bad;
    bad.set_request_id(9);
    v1::Tick* t = bad.add_ticks();
    t->set_topic("*");
    t->set_price(1);
    v1::Subscribe sub;
    sub.set_request_id(4);
    sub.set_mode(v1::MODE_MINUTE);
    sub.add_topics("a b");
    Write(ses, "preauth_rejections",
          sctl(0, 1) + EncodeFrame(FrameType::kPublish, bad) +
              EncodeFrame(FrameType::kSubscribe, sub) + MakeFrame(FrameType::kDataBatch, ""));
  }
  // fuzz_payload_<type>: one payload of that type.
  {
    v1::Auth auth;
    auth.set_username("demo");
    auth.set_password("demo-pass");
    auth.set_client_name("seed");
    auth.set_protocol_version(1);
    Write(root / "fuzz_payload_auth", "valid", auth.SerializeAsString());
    auth.set_password("wrong");
    Write(root / "fuzz_payload_auth", "wrong_password", auth.SerializeAsString());
    auth.set_protocol_version(7);
    Write(root / "fuzz_payload_auth", "future_version", auth.SerializeAsString());

    v1::Subscribe sub;
    sub.set_request_id(3);
    sub.set_mode(v1::MODE_SECOND);
    sub.add_topics("BTC-USD");
    sub.add_topics("*");
    sub.set_since_ms(1'700'000'000'000);
    Write(root / "fuzz_payload_subscribe", "since", sub.SerializeAsString());
    sub.set_since_ms(0);
    sub.set_backfill(10);
    sub.set_mode(v1::MODE_TICK);
    Write(root / "fuzz_payload_subscribe", "backfill", sub.SerializeAsString());
    sub.clear_topics();
    sub.add_topics("bad topic");
    Write(root / "fuzz_payload_subscribe", "bad_topic", sub.SerializeAsString());

    v1::Unsubscribe unsub;
    unsub.set_request_id(4);
    unsub.set_subscription_id(1);
    Write(root / "fuzz_payload_unsubscribe", "unknown_id", unsub.SerializeAsString());

    v1::Publish pub;
    pub.set_request_id(5);
    pub.set_ack(true);
    for (const auto& f : SampleTicks()) {
      v1::Tick* t = pub.add_ticks();
      t->set_topic(std::string(f.topic));
      t->set_price(f.price);
      t->set_size(f.size);
      t->set_ts_ns(f.ts_ns);
    }
    Write(root / "fuzz_payload_publish", "valid", pub.SerializeAsString());
    pub.mutable_ticks(1)->set_size(-1);
    Write(root / "fuzz_payload_publish", "negative_size", pub.SerializeAsString());

    v1::Heartbeat hb;
    hb.set_ts_ms(1'700'000'000'000);
    Write(root / "fuzz_payload_heartbeat", "valid", hb.SerializeAsString());
  }
  // fuzz_shard: option bytes, then a script of ticks, clock advances and history requests.
  {
    std::string script = {1, 4, 2, 8, 3, 16};
    for (int i = 0; i < 60; ++i) {
      const auto b = static_cast<char>(i * 37);
      script += {static_cast<char>(4 * (i % 5)), b, static_cast<char>(i % 5), b, 1};  // tick
      if (i % 7 == 0) script += {2, static_cast<char>(10 + i)};                       // clock
      if (i % 11 == 0) script += {static_cast<char>(0x33), 3, 5};  // history, backfill
      if (i % 13 == 0) script += {static_cast<char>(0x13), 1, 9};  // history, since
    }
    Write(root / "fuzz_shard", "mixed", script);
  }
  std::printf("seed corpus written under %s\n", root.c_str());
  return 0;
}
