// Writes the seed corpus for the fuzz targets: small, valid inputs that reach deep into each
// target quickly. Run once after changing the wire format and commit the output:
//   build/fuzz/fuzz/tickwire_fuzz_seeds fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "auth/password_hash.h"
#include "engine/shard.h"
#include "engine/snapshot.h"
#include "protocol/batch_builder.h"
#include "protocol/frame.h"
#include "protocol/proxy_header.h"
#include "protocol/wire.h"
#include "tickwire/v1/backplane.pb.h"
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

std::string WatermarkBatchPayload() {
  v1::DataBatch batch;
  batch.set_batch_seq(4);
  v1::Watermark* second = batch.add_records()->mutable_watermark();
  second->set_interval(v1::MODE_SECOND);
  second->set_start_ms(1700000059000);
  v1::Watermark* minute = batch.add_records()->mutable_watermark();
  minute->set_interval(v1::MODE_MINUTE);
  minute->set_start_ms(1700000000000);
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
  Write(scan, "watermarks", WatermarkBatchPayload());
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
    // The users-file user, whose check runs off the loop: frames pipelined behind its AUTH wait.
    v1::Auth auth;
    auth.set_username("fuzzer");
    auth.set_password("fuzz-pass");
    v1::Subscribe sub;
    sub.set_request_id(1);
    sub.set_mode(v1::MODE_TICK);
    sub.add_topics("BTC-USD");
    v1::Heartbeat hb;
    hb.set_ts_ms(1);
    const std::string tail =
        EncodeFrame(FrameType::kSubscribe, sub) + EncodeFrame(FrameType::kHeartbeat, hb);
    Write(ses, "file_user_pipelined", sctl(0, 0) + EncodeFrame(FrameType::kAuth, auth) + tail);
    auth.set_password("wrong");
    Write(ses, "file_user_wrong_password", sctl(5, 0) + EncodeFrame(FrameType::kAuth, auth) + tail);
  }
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
  // fuzz_catch_up: option bytes, the subscription, slice limits, then a script of ticks, clock
  // advances, turn ends, deliveries, slice requests and the SUBSCRIBE (catch_up_script.h).
  {
    // ticks on every topic, a clock advance now and then, turns sealed and delivered
    auto traffic = [](int n, int salt) {
      std::string out;
      for (int i = 0; i < n; ++i) {
        out += {static_cast<char>(8 * ((i + salt) % 6)), static_cast<char>(100 + i % 50)};
        if (i % 9 == 0) out += {2, 20};
        if (i % 4 == 0) out += {3, 4};
      }
      return out;
    };
    auto replay = [&](int rounds) {  // slice requests between more traffic
      std::string out;
      for (int r = 0; r < rounds; ++r) out += std::string{5, 3} + traffic(5, r) + std::string{4, 4};
      return out;
    };
    // Ticks since a time on `*`, one topic already live; small slices.
    std::string since = {1, 5, 2, 10, 3, 60, 0x06, 30, 0x02, 4, 3};
    since += traffic(120, 0) + std::string{6} + replay(40);
    Write(root / "fuzz_catch_up", "since_wildcard_ticks", since);
    // SECOND bars, backfill, three exact topics, topics evicted by a cap of 2.
    std::string backfill = {0, 4, 2, 6, 0, 20, 0x08, 3, 10, 0x0B, 2, 5};
    backfill += traffic(200, 1) + std::string{6} + replay(30) + traffic(60, 3);
    Write(root / "fuzz_catch_up", "backfill_exact_seconds", backfill);
    // MINUTE bars since on `*`, budget 3 (the replay is cut), an UNSUBSCRIBE at the end.
    std::string cut = {2, 2, 3, 4, 3, 2, 0x05, 0, 0, 1, 1};
    cut += traffic(150, 2) + std::string{2, static_cast<char>(250)} + std::string{6} + replay(20) +
           std::string{static_cast<char>(0xF7)};
    Write(root / "fuzz_catch_up", "minutes_cut_then_unsubscribe", cut);
  }
  // fuzz_proxy_header: PROXY protocol headers, each followed by the start of a session.
  const fs::path proxy = root / "fuzz_proxy_header";
  const std::string after = MakeFrame(FrameType::kHeartbeat, "");
  Write(proxy, "v1_tcp4", "PROXY TCP4 192.0.2.7 10.0.0.1 56324 7878\r\n" + after);
  Write(proxy, "v1_tcp6", "PROXY TCP6 2001:db8::1 ::1 65535 7878\r\n" + after);
  Write(proxy, "v1_unknown", "PROXY UNKNOWN\r\n" + after);
  auto v2 = [](std::uint8_t ver_cmd, std::uint8_t fam, const std::string& body) {
    std::string h(tickwire::protocol::kProxyV2Signature);
    h += static_cast<char>(ver_cmd);
    h += static_cast<char>(fam);
    h += static_cast<char>(body.size() >> 8);
    h += static_cast<char>(body.size() & 0xFF);
    return h + body;
  };
  const std::string addr4("\xc0\x00\x02\x07\x0a\x00\x00\x01\xdc\x04\x1e\xc6", 12);
  const std::string tlvs("\x01\x00\x02h2\xea\x00\x03\x01\x02\x03", 11);
  Write(proxy, "v2_tcp4", v2(0x21, 0x11, addr4) + after);
  Write(proxy, "v2_tcp4_tlvs", v2(0x21, 0x11, addr4 + tlvs) + after);
  Write(proxy, "v2_tcp6", v2(0x21, 0x21, std::string(36, '\x01')) + after);
  Write(proxy, "v2_local", v2(0x20, 0x00, "") + after);

  // fuzz_ws_upgrade: upgrade requests, each followed by masked WebSocket frames.
  {
    const fs::path wsdir = root / "fuzz_ws_upgrade";
    const auto masked = [](std::uint8_t first, const std::string& payload) {
      std::string f;
      f += static_cast<char>(first);
      if (payload.size() < 126) {
        f += static_cast<char>(0x80 | payload.size());
      } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(payload.size() >> 8);
        f += static_cast<char>(payload.size() & 0xFF);
      }
      const char mask[4] = {0x37, static_cast<char>(0xfa), 0x21, 0x3d};
      f.append(mask, 4);
      for (std::size_t i = 0; i < payload.size(); ++i)
        f += static_cast<char>(payload[i] ^ mask[i % 4]);
      return f;
    };
    const auto request = [](const std::string& path, const std::string& extra) {
      return "GET " + path +
             " HTTP/1.1\r\nHost: 127.0.0.1:7879\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
             extra + "\r\n";
    };
    std::string frames;
    const std::string session = ClientSession();
    // One message per frame of the session (the frames are laid end to end).
    for (std::size_t pos = 0; pos + 5 <= session.size();) {
      const std::size_t len = (std::size_t{static_cast<std::uint8_t>(session[pos])} << 24) |
                              (std::size_t{static_cast<std::uint8_t>(session[pos + 1])} << 16) |
                              (std::size_t{static_cast<std::uint8_t>(session[pos + 2])} << 8) |
                              static_cast<std::uint8_t>(session[pos + 3]);
      frames += masked(0x82, session.substr(pos, 4 + len));
      pos += 4 + len;
    }
    const std::string ctl0("\x00\x00", 2);
    Write(wsdir, "session_whole", ctl0 + request("/", "") + frames);
    Write(wsdir, "session_chunks", std::string("\x07\x00", 2) + request("/", "") + frames);
    Write(wsdir, "origin_and_path",
          std::string("\x00\x03", 2) +
              request("/ws?x=1",
                      "Origin: http://a.example\r\nSec-WebSocket-Protocol: tickwire.v1\r\n") +
              frames);
    Write(wsdir, "ping_text_close",
          ctl0 + request("/", "") + masked(0x89, "hi") + masked(0x81, "text") +
              masked(0x88, std::string("\x03\xe8"
                                       "bye",
                                       5)));
    Write(wsdir, "fragmented",
          ctl0 + request("/", "") + masked(0x02, session.substr(0, 7)) + masked(0x89, "") +
              masked(0x80, session.substr(7, 4 + static_cast<std::uint8_t>(session[3]) - 7)));
    Write(wsdir, "plain_get", ctl0 + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  }

  // fuzz_users_file: users files (and a bare hash) with fixed, valid hashes.
  {
    tickwire::auth::PasswordHash h;
    h.iterations = 1000;
    h.salt.assign(16, 0x5a);
    h.key.assign(32, 0xa5);
    const std::string hash = tickwire::auth::FormatPasswordHash(h);
    h.iterations = 120'000;
    h.salt.assign(8, 0x01);
    const std::string hash2 = tickwire::auth::FormatPasswordHash(h);
    const fs::path users = root / "fuzz_users_file";
    Write(users, "hash_only", hash);
    Write(users, "two_users",
          "# operators\nalice " + hash + " publish=AAPL,FX.* subscribe=*\n\n" + "feed-1@desk.b\t" +
              hash2 + "\tpublish=-  # no subscribing\r\n");
    Write(users, "bad_iterations", "bob pbkdf2-sha256$12$AAAAAAAAAAA=$AAAA\n");
    Write(users, "duplicate", "carol " + hash + "\ncarol " + hash2 + "\n");
  }
  // fuzz_config_text: a selector byte (0 network, 1 duration, 2 CONFIG_FILE), then the text.
  {
    const fs::path cfg = root / "fuzz_config_text";
    Write(cfg, "cidr_v4", std::string(1, '\0') + "10.1.2.3/8");
    Write(cfg, "cidr_v6", std::string(1, '\0') + "2001:db8::1/32");
    Write(cfg, "cidr_bare", std::string(1, '\0') + "192.0.2.1");
    Write(cfg, "duration_ms",
          "\x01"
          "500ms");
    Write(cfg, "duration_us",
          "\x01"
          "250us");
    Write(cfg, "duration_h",
          "\x01"
          "2h");
    Write(cfg, "config_file",
          "\x02"
          "# settings\nSTREAM_USER = demo\nSTREAM_PASS=demo-pass\r\n"
          "HEARTBEAT_INTERVAL=15s\nHEARTBEAT_TIMEOUT=20s\nWRITE_DEADLINE_MS=5000\n"
          "MAX_PENDING_BYTES=4194304\nLISTEN_ADDR=[::1]:7878\nTCP_NODELAY=off\n"
          "PROXY_PROTOCOL=required\nPROXY_TRUSTED_CIDRS=10.0.0.0/8, 192.0.2.1\n"
          "NATS_URL=nats://127.0.0.1:4222\nNATS_SUBJECT=tickwire.ticks\nLOG_LEVEL=debug\n");
    Write(cfg, "config_file_bad",
          "\x02"
          "STREAM_USER\nNOT_A_SETTING=1\n");
    Write(cfg, "config_file_quotes",
          "\x02"
          "# quoted and commented values\nSTREAM_USER=ops # the feed user\n"
          "STREAM_PASS=\"p#ss w0rd\" # rotated\nNATS_URL='nats://a:4222'\nMETRICS_ADDR= # off\n");
    Write(cfg, "config_file_hash_bad",
          "\x02"
          "STREAM_PASS=new#pass\n");
    Write(cfg, "config_file_quote_bad",
          "\x02"
          "STREAM_PASS=\"unterminated\n");
  }
  // fuzz_backplane_frame: shard count, topic cap, per-user cap, stream sequence (8 bytes, little
  // endian), the message.
  {
    const fs::path bp = root / "fuzz_backplane_frame";
    v1::BackplaneFrame bpf;
    bpf.set_origin("tickwire-0/1a2b3c4d");
    bpf.set_nonce(42);
    bpf.set_accepted_ns(1'700'000'000'123'456'789);
    bpf.set_user("demo");
    for (const auto& f : SampleTicks()) {
      v1::BackplaneTick* t = bpf.add_ticks();
      t->set_topic(std::string(f.topic));
      t->set_price(f.price);
      t->set_size(f.size);
      t->set_ts_ns(f.ts_ns == 0 ? bpf.accepted_ns() : f.ts_ns);
    }
    const std::string seq7("\x07\0\0\0\0\0\0\0", 8);
    const std::string uncapped("\0\0", 2);
    Write(bp, "four_shards", "\x03" + uncapped + seq7 + bpf.SerializeAsString());
    Write(bp, "one_shard", std::string(1, '\0') + uncapped + seq7 + bpf.SerializeAsString());
    Write(bp, "two_topics_one_per_user", "\x01\x02\x01" + seq7 + bpf.SerializeAsString());
    bpf.clear_ticks();
    bpf.set_nonce(0);
    Write(bp, "clock_mark", "\x01" + uncapped + seq7 + bpf.SerializeAsString());
  }

  // fuzz_snapshot: whole snapshot files (a shard with ticks, closed and open bars; an empty one).
  {
    const fs::path sn = root / "fuzz_snapshot";
    auto file_of = [](const tickwire::engine::Shard& shard, std::uint64_t generation) {
      tickwire::engine::SnapshotCursor cursor;
      std::string body;
      while (!cursor.finished) shard.SnapshotSlice(cursor, body, 1024);
      tickwire::engine::SnapshotHeader h;
      h.generation = generation;
      h.shard_count = 1;
      h.stream_epoch = 0x1234;
      h.written_ns = 1'700'000'100'000'000'000;
      h.topics = cursor.topics;
      h.body_length = body.size();
      h.body_crc = tickwire::engine::Crc32c(0, body);
      return tickwire::engine::EncodeSnapshotHeader(h) + body;
    };
    tickwire::engine::Shard empty(0);
    Write(sn, "empty", file_of(empty, 1));
    tickwire::engine::Shard shard(0);
    tickwire::engine::RecordBlock out;
    std::vector<tickwire::engine::IngestTick> ticks;
    for (const auto& f : SampleTicks()) {
      const std::int64_t ts = f.ts_ns == 0 ? 1'700'000'000'500'000'000 : f.ts_ns;
      ticks.push_back({std::string(f.topic), f.price, f.size, ts, ts});
    }
    shard.Apply(ticks, out);
    shard.AdvanceWatermark(1'700'000'001'500'000'000, out);  // closes the SECOND bars
    for (auto& t : ticks) t.ts_ns = t.accepted_ns = t.ts_ns + 2'000'000'000;
    shard.Apply(ticks, out);  // open bars again
    Write(sn, "topics_bars_ticks", file_of(shard, 3));
  }

  std::printf("seed corpus written under %s\n", root.c_str());
  return 0;
}
