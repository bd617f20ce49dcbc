"""Frames and messages of the wire protocol (docs/PROTOCOL.md): encoding of what the client
sends and decoding of what the server sends. No I/O here."""

from __future__ import annotations

import enum
import struct
from typing import Callable, Iterable, Optional, Sequence

from google.protobuf.message import DecodeError

from .records import (
    Bar,
    Error,
    ErrorKind,
    HistoryEnd,
    LostRange,
    Mode,
    Tick,
    Watermark,
    error_code,
)
from .v1 import tickwire_pb2 as pb

# length (u32, big-endian, counts the type byte and the payload), then the type byte.
HEADER = struct.Struct(">IB")
# Largest MAX_MSG_SIZE a server may announce (docs/PROTOCOL.md section 5): the bound on frames
# read before AUTH_OK says the real one.
MAX_MSG_SIZE_LIMIT = 16 * 1024 * 1024
PROTOCOL_VERSION = 1


class FrameType(enum.IntEnum):
    AUTH = 0x01
    AUTH_OK = 0x02
    SUBSCRIBE = 0x03
    SUBSCRIBE_OK = 0x04
    UNSUBSCRIBE = 0x05
    PUBLISH = 0x06
    PUBLISH_ACK = 0x07
    DATA_BATCH = 0x08
    HEARTBEAT = 0x09
    ERROR = 0x0A


class ProtocolViolation(Exception):
    """The server sent bytes the protocol does not allow; the connection cannot go on."""


def frame(frame_type: FrameType, payload: bytes) -> bytes:
    return HEADER.pack(len(payload) + 1, frame_type) + payload


def parse_header(header: bytes, max_payload: int) -> int:
    """Payload size announced by a frame's 4-byte length field (checked against the limit)."""
    (length,) = struct.unpack(">I", header)
    if length == 0:
        raise ProtocolViolation("frame with length 0")
    if length - 1 > max_payload:
        raise ProtocolViolation(
            f"frame payload of {length - 1} bytes exceeds MAX_MSG_SIZE {max_payload}"
        )
    return length - 1


def parse(message_type, payload: bytes, what: str):
    m = message_type()
    try:
        m.ParseFromString(payload)
    except DecodeError as e:
        raise ProtocolViolation(f"unparsable {what}: {e}") from None
    return m


def auth(username: str, password: str, client_name: str) -> bytes:
    m = pb.Auth(
        username=username,
        password=password,
        client_name=client_name,
        protocol_version=PROTOCOL_VERSION,
    )
    return frame(FrameType.AUTH, m.SerializeToString())


def subscribe(
    request_id: int,
    mode: Mode,
    topics: Sequence[str],
    backfill: int,
    since_ms: int,
    resume_after: Sequence[tuple] = (),
    resume_stream_epoch: int = 0,
    resume_from_ns: int = 0,
) -> bytes:
    """SUBSCRIBE; `resume_after` holds (topic, after_seq, topic_epoch) positions (PROTOCOL.md
    S8c, TICK only) read under the stream `resume_stream_epoch`; `resume_from_ns` (TICK only,
    0: none) is the subscription's place in the server's accept order, from its first
    SUBSCRIBE_OK, for the topics without a position."""
    m = pb.Subscribe(
        request_id=request_id, mode=int(mode), topics=list(topics), backfill=backfill,
        since_ms=since_ms, resume_stream_epoch=resume_stream_epoch,
        resume_from_ns=resume_from_ns,
    )
    for topic, after_seq, topic_epoch in resume_after:
        m.resume_after.add(topic=topic, after_seq=after_seq, topic_epoch=topic_epoch)
    return frame(FrameType.SUBSCRIBE, m.SerializeToString())


def unsubscribe(request_id: int, subscription_id: int) -> bytes:
    m = pb.Unsubscribe(request_id=request_id, subscription_id=subscription_id)
    return frame(FrameType.UNSUBSCRIBE, m.SerializeToString())


def heartbeat(ts_ms: int) -> bytes:
    return frame(FrameType.HEARTBEAT, pb.Heartbeat(ts_ms=ts_ms).SerializeToString())


def publish_payload(request_id: int, ticks: Iterable, ack: bool) -> tuple[bytes, int]:
    """PUBLISH payload for `ticks` (Tick objects or (topic, price, size[, ts_ns]) tuples) and
    the number of ticks."""
    m = pb.Publish(request_id=request_id, ack=ack)
    n = 0
    for t in ticks:
        if isinstance(t, Tick):
            m.ticks.add(topic=t.topic, price=t.price, size=t.size, ts_ns=t.ts_ns)
        else:
            topic, price, size, *rest = t
            if len(rest) > 1:
                raise ValueError(f"a tick tuple is (topic, price, size[, ts_ns]), got {t!r}")
            m.ticks.add(topic=topic, price=price, size=size, ts_ns=rest[0] if rest else 0)
        n += 1
    return m.SerializeToString(), n


def auth_ok(payload: bytes) -> pb.AuthOk:
    return parse(pb.AuthOk, payload, "AUTH_OK")


def error(payload: bytes) -> Error:
    m = parse(pb.Error, payload, "ERROR")
    return Error(
        kind=ErrorKind.SERVER,
        message=m.message,
        code=error_code(m.code),
        fatal=m.fatal,
        request_id=m.request_id,
        retry_after_ms=m.retry_after_ms,
    )


def _tick(m: pb.Tick) -> Tick:
    return Tick(m.topic, m.price, m.size, m.ts_ns, m.seq, m.prev_seq, m.topic_epoch)


def _bar(m: pb.Bar) -> Bar:
    try:
        interval = Mode(m.interval)
    except ValueError:
        interval = m.interval  # a mode this version does not know; kept as its number
    return Bar(m.topic, interval, m.start_ms, m.open, m.high, m.low, m.close, m.volume, m.count,
               m.vwap)


def _watermark(m: pb.Watermark) -> Watermark:
    try:
        interval = Mode(m.interval)
    except ValueError:
        interval = m.interval
    return Watermark(interval, m.start_ms)


def _history_end(m: pb.HistoryEnd) -> HistoryEnd:
    # `subscription` holds the server's subscription_id until the client maps it to its handle.
    return HistoryEnd(
        subscription=m.subscription_id,
        truncated=m.truncated,
        retention=m.retention,
        backfill_limit=m.backfill_limit,
        epoch_changed=m.epoch_changed,
        lost=[LostRange(r.topic, r.from_seq, r.to_seq, r.topic_epoch) for r in m.lost],
        lost_omitted=m.lost_omitted,
    )


# Record kinds by the name of their `Record.kind` oneof field. A kind added to the protocol later
# gets an entry here; until then such records are skipped. history_end is not a record the
# batch's `records` holds: data_batch() returns it apart, with its place.
RECORD_DECODERS: dict[str, Callable] = {"tick": _tick, "bar": _bar, "watermark": _watermark}


def data_batch(payload: bytes) -> tuple[int, list, int, list]:
    """(batch_seq, records, records of unknown kinds skipped, history_end markers with their
    record_index)."""
    m = parse(pb.DataBatch, payload, "DATA_BATCH")
    records = []
    history_ends = []
    unknown = 0
    for r in m.records:
        kind: Optional[str] = r.WhichOneof("kind")
        if kind == "history_end":
            h = _history_end(r.history_end)
            h.record_index = len(records)
            history_ends.append(h)
            continue
        decode = RECORD_DECODERS.get(kind) if kind else None
        if decode is None:
            unknown += 1
            continue
        records.append(decode(getattr(r, kind)))
    return m.batch_seq, records, unknown, history_ends
