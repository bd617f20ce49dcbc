"""The pure parts: framing, decoding (forward compatibility), backoff, resume points and the
duplicate filter. The same rules as the C++ client's tests/client/resume_test.cc."""

from __future__ import annotations

import pytest

import tickwire
from tickwire import _codec as codec
from tickwire.records import ErrorCode, ErrorKind, Mode, error_code
from tickwire.resume import (
    DeliveredState,
    ReconnectOptions,
    backoff_delay,
    resume_since_ms,
    retry_after_delay,
    tick_point_ms,
)


def test_heartbeat_frame_matches_the_protocol_example():
    # docs/PROTOCOL.md, "Worked examples": HEARTBEAT{ts_ms: 1}.
    assert codec.heartbeat(1) == bytes.fromhex("00000003 09 0801")


def test_subscribe_frame_matches_the_protocol_example():
    frame = codec.subscribe(7, Mode.TICK, ["AAPL"], 0, 0)
    assert frame == bytes.fromhex("0000000B 03 0807 1003 1A04 4141504C")


def test_frame_header_limits():
    assert codec.parse_header(bytes.fromhex("00000001"), 10) == 0
    with pytest.raises(codec.ProtocolViolation, match="length 0"):
        codec.parse_header(bytes(4), 10)
    with pytest.raises(codec.ProtocolViolation, match="exceeds MAX_MSG_SIZE 10"):
        codec.parse_header(bytes.fromhex("0000000C"), 10)


def test_unknown_record_kinds_and_fields_are_skipped():
    tick = codec.pb.Tick(topic="A", price=1.0, size=2.0, ts_ns=2**62 + 1, seq=2**63 + 5,
                         prev_seq=2**63 + 4).SerializeToString()
    tick += bytes.fromhex("7801")  # field 15 (varint) = 1: a field this version does not know
    # Record field 15: a record kind this version does not know (a later addition).
    unknown_record = _len_field(15, bytes.fromhex("0805"))
    payload = (bytes.fromhex("0807") + _len_field(2, unknown_record)
               + _len_field(2, _len_field(1, tick)))
    batch_seq, records, skipped, marks = codec.data_batch(payload)
    assert marks == []
    assert batch_seq == 7
    assert skipped == 1
    assert records == [tickwire.Tick("A", 1.0, 2.0, 2**62 + 1, 2**63 + 5, 2**63 + 4)]


def test_watermark_records_decode():
    mark = codec.pb.Record(watermark=codec.pb.Watermark(interval=1, start_ms=1_700_000_001_000))
    payload = bytes.fromhex("0801") + _len_field(2, mark.SerializeToString())
    batch_seq, records, skipped, marks = codec.data_batch(payload)
    assert marks == []
    assert (batch_seq, skipped) == (1, 0)
    assert records == [tickwire.Watermark(tickwire.Mode.SECOND, 1_700_000_001_000)]
    assert records[0].start.timestamp() == 1_700_000_001


def _len_field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_unknown_error_codes_are_kept_as_numbers():
    e = codec.error(codec.pb.Error(code=99, message="new", fatal=True).SerializeToString())
    assert e.code == 99 and not isinstance(e.code, ErrorCode)
    assert e.code_name == "CODE_99"
    assert "CODE_99: new" in str(e)
    assert error_code(14) is ErrorCode.UNAVAILABLE


def test_mode_parse():
    assert Mode.parse("second") is Mode.SECOND
    assert Mode.parse("TICK") is Mode.TICK
    assert Mode.parse(2) is Mode.MINUTE
    with pytest.raises(ValueError, match="unknown mode"):
        Mode.parse("hour")


def test_publish_payload_takes_ticks_and_tuples_and_keeps_int64_exact():
    ts = 1_700_000_000_123_456_789
    payload, n = codec.publish_payload(3, [tickwire.Tick("A", 1.5, 2.0, ts), ("B", 2.5, 3.0)],
                                       True)
    m = codec.pb.Publish.FromString(payload)
    assert n == 2 and m.ack and m.request_id == 3
    assert m.ticks[0].ts_ns == ts and m.ticks[1].ts_ns == 0 and m.ticks[1].topic == "B"
    with pytest.raises(ValueError):
        codec.publish_payload(1, [("A", 1.0, 1.0, 0, 9)], False)


def test_backoff_grows_caps_and_jitters():
    o = ReconnectOptions(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0, jitter=0.5)
    assert backoff_delay(o, 1, 0.0) == pytest.approx(0.1)
    assert backoff_delay(o, 2, 0.0) == pytest.approx(0.2)
    assert backoff_delay(o, 4, 0.0) == pytest.approx(0.8)
    assert backoff_delay(o, 10, 0.0) == pytest.approx(1.0)
    assert backoff_delay(o, 10, 0.999999) == pytest.approx(0.5, abs=1e-5)


def test_retry_after_is_never_sooner():
    o = ReconnectOptions(jitter=0.5)
    assert retry_after_delay(o, 300, 0.0) == pytest.approx(0.3)
    assert retry_after_delay(o, 300, 0.999999) == pytest.approx(0.45, abs=1e-5)


def test_tick_point_is_the_floor():
    assert tick_point_ms(1_999_999) == 1
    assert tick_point_ms(-1) == -1


def test_resume_since():
    # Newest point wins over the anchor, less the lookback; never below the caller's since_ms.
    assert resume_since_ms(0, 5_000, 9_000, 1_000) == 8_000
    assert resume_since_ms(0, 5_000, None, 1_000) == 4_000
    assert resume_since_ms(0, 5_000, 3_000, 1_000) == 4_000
    assert resume_since_ms(8_500, 8_500, 9_000, 1_000) == 8_500
    assert resume_since_ms(0, 0, None, 1_000) == 1


def test_delivered_state_drops_duplicates_and_reports_gaps():
    d = DeliveredState()
    assert d.accept_tick("A", 1, 0, 10) == (True, 0)
    assert d.accept_tick("A", 2, 1, 20) == (True, 0)
    assert d.accept_tick("A", 2, 1, 20) == (False, 0)  # resume re-sent it
    assert d.accept_tick("A", 5, 4, 30) == (True, 2)  # 3 and 4 missed
    assert (d.duplicates, d.tick_gaps) == (1, 1)
    # A restarted server without history numbers from 1 again, with newer times.
    assert d.accept_tick("A", 1, 0, 40) == (True, 0)
    assert d.renumbered == 1
    assert d.accept_tick("A", 1, 0, 40) == (False, 0)

    assert d.accept_bar(Mode.SECOND, "A", 1000)
    assert not d.accept_bar(Mode.SECOND, "A", 1000)
    assert d.accept_bar(Mode.MINUTE, "A", 1000)  # other interval, other record
    assert d.accept_bar(Mode.SECOND, "B", 0)


def test_newest_point_per_subscription():
    d = DeliveredState()
    d.accept_tick("A", 1, 0, 5_000_000_000)
    d.accept_tick("B", 1, 0, 7_000_000_000)
    d.accept_bar(Mode.SECOND, "A", 3_000)
    assert d.newest_point(Mode.TICK, False, ["A"]) == 5_000
    assert d.newest_point(Mode.TICK, False, ["A", "B", "C"]) == 7_000
    assert d.newest_point(Mode.TICK, True, []) == 7_000
    assert d.newest_point(Mode.SECOND, False, ["B"]) is None
    assert d.newest_point(Mode.SECOND, True, []) == 3_000


def test_error_kinds_map_to_exception_classes():
    assert isinstance(tickwire.TickwireError.of(tickwire.Error(ErrorKind.SERVER, "x")),
                      tickwire.ServerError)
    assert isinstance(tickwire.TickwireError.of(tickwire.Error(ErrorKind.IO, "x")),
                      tickwire.ConnectionLost)
    assert type(tickwire.TickwireError.of(tickwire.Error(ErrorKind.PROTOCOL, "x"))) is (
        tickwire.TickwireError
    )


def test_history_end_markers_decode_with_their_place():
    def rec(**kind):
        return codec.pb.Record(**kind)

    m = codec.pb.DataBatch(batch_seq=3)
    m.records.append(rec(tick=codec.pb.Tick(topic="A", seq=1, topic_epoch=9)))
    end = codec.pb.HistoryEnd(subscription_id=4, truncated=True, epoch_changed=True,
                              lost_omitted=2)
    end.lost.add(topic="A", from_seq=2, to_seq=0, topic_epoch=8)
    m.records.append(rec(history_end=end))
    m.records.append(rec(tick=codec.pb.Tick(topic="A", seq=2, prev_seq=1, topic_epoch=9)))
    batch_seq, records, skipped, marks = codec.data_batch(m.SerializeToString())
    assert (batch_seq, skipped) == (3, 0)
    assert [(t.seq, t.topic_epoch) for t in records] == [(1, 9), (2, 9)]
    assert marks == [tickwire.HistoryEnd(4, truncated=True, epoch_changed=True,
                                         lost=[tickwire.LostRange("A", 2, 0, 8)],
                                         lost_omitted=2, record_index=1)]


def test_subscribe_carries_resume_positions():
    frame = codec.subscribe(5, Mode.TICK, ["FX.*"], 0, 1234, [("FX.A", 7, 3)], 42)
    m = codec.pb.Subscribe()
    m.ParseFromString(frame[5:])
    assert (m.since_ms, m.resume_stream_epoch) == (1234, 42)
    assert [(p.topic, p.after_seq, p.topic_epoch) for p in m.resume_after] == [("FX.A", 7, 3)]
    # Without positions the frame is what it always was.
    assert codec.subscribe(7, Mode.TICK, ["AAPL"], 0, 0, [], 0) == bytes.fromhex(
        "0000000B 03 0807 1003 1A04 4141504C")


def test_subscribe_carries_resume_from_ns_as_field_8():
    r = 1_765_000_000_123_456_789  # an accept position: int64 ns, kept exact
    frame = codec.subscribe(5, Mode.TICK, ["*"], 3, 0, [("A", 1, 2)], 42, r)
    m = codec.pb.Subscribe.FromString(frame[5:])
    assert (m.backfill, m.resume_from_ns, m.resume_stream_epoch) == (3, r, 42)
    # Field 8, varint: tag 0x40.
    assert frame.endswith(bytes.fromhex("40") + _varint(r))
    # 0 (none) is not sent.
    assert codec.subscribe(7, Mode.TICK, ["AAPL"], 0, 0, [], 0, 0) == bytes.fromhex(
        "0000000B 03 0807 1003 1A04 4141504C")


def test_tick_positions_cover_the_subscription_within_the_byte_bound():
    d = DeliveredState()
    d.accept_tick("FX.B", 4, 3, 10, topic_epoch=2)
    d.accept_tick("FX.A", 7, 6, 10, topic_epoch=1)
    d.accept_tick("EQ.X", 2, 1, 10, topic_epoch=5)
    assert d.tick_positions(False, ["FX.*"], 1000) == [("FX.A", 7, 1), ("FX.B", 4, 2)]
    assert d.tick_positions(False, ["EQ.X", "EQ.Y"], 1000) == [("EQ.X", 2, 5)]
    assert [p[0] for p in d.tick_positions(True, [], 1000)] == ["EQ.X", "FX.A", "FX.B"]
    # Each costs its topic plus 26 bytes: two fit in 60, the third resumes by since_ms.
    assert [p[0] for p in d.tick_positions(True, [], 60)] == ["EQ.X", "FX.A"]
    assert d.tick_positions(True, [], 10) == []
    assert d.newest_point(Mode.TICK, False, ["FX.*"]) == 0


def test_topic_and_stream_epochs_restart_the_numbering():
    d = DeliveredState()
    assert d.accept_tick("A", 5, 4, 100, topic_epoch=1) == (True, 0)
    # The topic was forgotten and created again: seq 1 of a new epoch is new, not a duplicate.
    assert d.accept_tick("A", 1, 0, 50, topic_epoch=2) == (True, 0)
    assert d.topic_epoch_changes == 1
    assert d.accept_tick("A", 1, 0, 50, topic_epoch=2) == (False, 0)
    assert d.tick_positions(True, [], 1000) == [("A", 1, 2)]
    # A new stream: every seq seen is forgotten (and no longer a resume position).
    d.reset_tick_numbering()
    assert d.tick_positions(True, [], 1000) == []
    assert d.accept_tick("A", 1, 0, 10, topic_epoch=7) == (True, 0)
    assert d.duplicates == 1


def test_publish_ack_is_the_accepted_count_with_late():
    ack = tickwire.PublishAck(3, late=1)
    assert ack == 3 and ack.accepted == 3 and ack.late == 1
    assert repr(ack) == "PublishAck(accepted=3, late=1)"
    assert tickwire.PublishAck(2).late == 0
