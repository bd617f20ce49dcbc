"""What a real server cannot be made to do: frames and codes from a newer protocol, silence
without a FIN, garbage. A scripted server on 127.0.0.1 plays each connection."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

import tickwire
from tickwire import _codec as codec
from tickwire.records import ErrorKind

from conftest import run_async

pb = codec.pb


class FakeServer:
    """Accepts connections; `script(reader, writer)` plays each one after AUTH_OK was sent."""

    def __init__(self, script, heartbeat_timeout_ms: int = 20000):
        self.script = script
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.connections = 0
        self.server = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _handle(self, reader, writer):
        self.connections += 1
        try:
            ftype, _ = await read_frame(reader)
            assert ftype == codec.FrameType.AUTH
            ok = pb.AuthOk(session_id="fake", heartbeat_interval_ms=15000,
                           heartbeat_timeout_ms=self.heartbeat_timeout_ms, max_msg_size=65536,
                           protocol_version=1)
            writer.write(codec.frame(codec.FrameType.AUTH_OK, ok.SerializeToString()))
            await self.script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def read_frame(reader):
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    body = await reader.readexactly(length)
    return body[0], body[1:]


def error_frame(code: int, fatal: bool, message: str = "", retry_after_ms: int = 0) -> bytes:
    e = pb.Error(code=code, fatal=fatal, message=message, retry_after_ms=retry_after_ms)
    return codec.frame(codec.FrameType.ERROR, e.SerializeToString())


@run_async
async def test_newer_protocol_additions_do_not_break_the_client():
    async def script(reader, writer):
        # A frame type this version does not know, a batch with an unknown record kind, an
        # ERROR with an unknown non-fatal code, then an unknown fatal one.
        writer.write(codec.HEADER.pack(3, 0x7F) + b"\x08\x01")
        tick = pb.Record(tick=pb.Tick(topic="A", price=1.0, size=1.0, ts_ns=1, seq=1))
        batch = pb.DataBatch(batch_seq=1, records=[tick]).SerializeToString()
        batch += bytes.fromhex("1204") + bytes.fromhex("7A020801")  # records += {kind 15}
        writer.write(codec.frame(codec.FrameType.DATA_BATCH, batch))
        writer.write(error_frame(40, False, "a newer non-fatal error"))
        writer.write(error_frame(41, True, "a newer fatal error"))
        await writer.drain()
        await reader.read()

    async with FakeServer(script) as fake:
        client = await tickwire.connect("127.0.0.1", fake.port, "u", "p")
        events = [ev async for ev in client]
        batch, nonfatal, fatal = events
        assert batch.records == [tickwire.Tick("A", 1.0, 1.0, 1, 1, 0)]
        assert nonfatal.code == 40 and not nonfatal.fatal
        assert fatal.code == 41 and fatal.fatal
        # An unknown fatal code is not one a new connection is known to fix: the client closes.
        assert client.closed and client.close_reason.code == 41
        assert client.stats.unknown_frames == 1
        assert client.stats.unknown_records == 1
        assert client.stats.reconnect_attempts == 0


@run_async
async def test_a_silent_server_is_detected_and_replaced():
    async def silent(reader, writer):
        await reader.read()  # reads (heartbeats) but never answers, never closes

    async with FakeServer(silent, heartbeat_timeout_ms=300) as fake:
        client = await tickwire.connect(
            "127.0.0.1", fake.port, "u", "p",
            reconnect=tickwire.ReconnectOptions(initial_backoff=0.01),
        )
        events = []
        while not any(isinstance(e, tickwire.Reconnected) for e in events):
            ev = await client.next_event(5)
            assert ev is not None, events
            events.append(ev)
        lost = next(e for e in events if isinstance(e, tickwire.Disconnected))
        assert lost.reason.kind is ErrorKind.TIMEOUT
        assert "nothing from the server for 0.3 s" in lost.reason.message
        assert fake.connections == 2
        await client.close()


@run_async
async def test_garbage_from_the_server_closes_the_client():
    async def garbage(reader, writer):
        writer.write(codec.frame(codec.FrameType.DATA_BATCH, b"\xff\xff\xff"))
        await reader.read()

    async with FakeServer(garbage) as fake:
        client = await tickwire.connect("127.0.0.1", fake.port, "u", "p")
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.close_reason.kind is ErrorKind.PROTOCOL
        assert "unparsable DATA_BATCH" in client.close_reason.message


@run_async
async def test_a_frame_over_max_msg_size_closes_the_client():
    async def oversized(reader, writer):
        writer.write(struct.pack(">IB", 65536 + 2, codec.FrameType.DATA_BATCH))
        await reader.read()

    async with FakeServer(oversized) as fake:
        client = await tickwire.connect("127.0.0.1", fake.port, "u", "p")
        await asyncio.wait_for(client.wait_closed(), 5)
        assert "exceeds MAX_MSG_SIZE 65536" in client.close_reason.message


@run_async
async def test_batch_seq_gaps_and_tick_gaps_are_events():
    async def gappy(reader, writer):
        def batch(seq, ticks):
            recs = [pb.Record(tick=pb.Tick(topic="A", price=1, size=1, ts_ns=s, seq=s,
                                           prev_seq=p)) for s, p in ticks]
            return codec.frame(codec.FrameType.DATA_BATCH,
                               pb.DataBatch(batch_seq=seq, records=recs).SerializeToString())

        writer.write(batch(1, [(1, 0), (2, 1)]))
        writer.write(batch(3, [(5, 4)]))  # batch 2 missing; ticks 3 and 4 missing
        await writer.drain()
        await reader.read()

    async with FakeServer(gappy) as fake:
        async with await tickwire.connect("127.0.0.1", fake.port, "u", "p") as client:
            events = [await client.next_event(5) for _ in range(4)]
            assert isinstance(events[0], tickwire.Batch)
            assert events[1].kind is ErrorKind.BATCH_GAP
            assert events[2] == tickwire.TickGap("A", seq=5, prev_seq=4, last_seq=2)
            assert [t.seq for t in events[3].records] == [5]
            assert client.stats.tick_gaps == 1 and client.stats.batch_gaps == 1


# ------------------------------------------------------------------ resume rules (PROTOCOL.md S8c)


class ResumeScript:
    """Plays connection after connection: answers each SUBSCRIBE, records what it asked for,
    and runs `after(k, writer, subscribes)` once `per_connection` SUBSCRIBEs arrived on the
    k-th connection (1-based); it returns True to cut the connection there."""

    def __init__(self, per_connection: int, answer, after, connections: int):
        self.per_connection = per_connection
        self.answer = answer  # (k, index, Subscribe) -> SubscribeOk
        self.after = after
        self.connections = connections
        self.subscribes: list = []  # per connection, the Subscribe messages in order
        self.done = asyncio.Event()  # the last connection got all its SUBSCRIBEs

    async def __call__(self, reader, writer):
        k = len(self.subscribes) + 1
        got: list = []
        self.subscribes.append(got)
        while True:
            ftype, payload = await read_frame(reader)
            if ftype != codec.FrameType.SUBSCRIBE:
                continue  # heartbeats
            m = pb.Subscribe.FromString(payload)
            got.append(m)
            ok = self.answer(k, len(got) - 1, m)
            ok.request_id = m.request_id
            writer.write(codec.frame(codec.FrameType.SUBSCRIBE_OK, ok.SerializeToString()))
            if len(got) == self.per_connection:
                cut = self.after(k, writer, got)
                await writer.drain()
                if cut:
                    writer.close()
                    return
                if k == self.connections:
                    self.done.set()


def batch_frame(batch_seq: int, *records) -> bytes:
    return codec.frame(codec.FrameType.DATA_BATCH,
                       pb.DataBatch(batch_seq=batch_seq, records=list(records))
                       .SerializeToString())


def tick_record(topic: str, seq: int, ts_ns: int, topic_epoch: int = 7):
    return pb.Record(tick=pb.Tick(topic=topic, price=1.0, size=1.0, ts_ns=ts_ns, seq=seq,
                                  prev_seq=seq - 1, topic_epoch=topic_epoch))


def marker_record(subscription_id: int):
    return pb.Record(history_end=pb.HistoryEnd(subscription_id=subscription_id))


FAST = tickwire.ReconnectOptions(initial_backoff=0.01, max_backoff=0.05)


@pytest.mark.parametrize("given,sent", [
    # Every SUBSCRIBE_OK has one: the first one's is sent until a resume's marker arrives
    # (connection 3's), then that resume's (PROTOCOL.md S8c).
    ((1001, 2002, 3003, 4004), (0, 1001, 1001, 3003)),
    # The first server had none (0): the first one given (connection 2's, whose marker never
    # came) is sent until connection 3's marker arrives.
    ((0, 2002, 3003, 4004), (0, 0, 2002, 3003)),
    # A resume whose value is not above the one held leaves it as it is.
    ((1001, 2002, 500, 4004), (0, 1001, 1001, 1001)),
    # None at all (servers without the extension): none is sent.
    ((0, 0, 0, 0), (0, 0, 0, 0)),
])
@run_async
async def test_resume_from_ns_advances_only_after_a_resumes_marker(given, sent):
    """Connection 1 subscribes; connection 2 resumes and is cut before its history_end marker
    (the first value is kept); connection 3 resumes and its marker arrives before the cut;
    connection 4's resume sends connection 3's value."""
    def answer(k, i, m):
        # The bar subscription gets one too: the client sends it for TICK only. Resumes of the
        # tick subscription announce a marker, as a server does for resume_after.
        return pb.SubscribeOk(subscription_id=10 * k + i + 1, resume_from_ns=given[k - 1],
                              history_end=k > 1 and i == 0)

    def after(k, writer, got):
        records = [tick_record(f"A{k}", 1, time.time_ns())]
        if k == 3:
            records.append(marker_record(10 * k + 1))  # the tick subscription's marker
        writer.write(batch_frame(1, *records))
        return k < 4

    script = ResumeScript(2, answer, after, connections=4)
    async with FakeServer(script) as fake:
        client = await tickwire.connect("127.0.0.1", fake.port, "u", "p", reconnect=FAST)
        tick_handle = await client.subscribe("tick", ["*"])
        await client.subscribe("second", ["A1"])
        await asyncio.wait_for(script.done.wait(), 10)
        ticks = [s[0] for s in script.subscribes]
        bars = [s[1] for s in script.subscribes]
        assert [m.mode for m in ticks] == [pb.MODE_TICK] * 4
        assert tuple(m.resume_from_ns for m in ticks) == sent
        assert [m.resume_from_ns for m in bars] == [0, 0, 0, 0]
        # Alongside the positions of the topics received, as before.
        assert [[(p.topic, p.after_seq, p.topic_epoch) for p in m.resume_after]
                for m in ticks] == [[], [("A1", 1, 7)], [("A1", 1, 7), ("A2", 1, 7)],
                                    [("A1", 1, 7), ("A2", 1, 7), ("A3", 1, 7)]]
        # Exactly one marker reached the caller: connection 3's.
        marks = []
        deadline = time.monotonic() + 10
        while not marks and time.monotonic() < deadline:
            event = await asyncio.wait_for(client.next_event(), 10)
            if isinstance(event, tickwire.Batch):
                marks += event.history_ends
        assert [m.subscription for m in marks] == [tick_handle]
        assert client.stats.history_ends == 1
        assert client.stats.history_resends == 0
        await client.close()


@pytest.mark.parametrize("mode,history,history_end,resent", [
    ("tick", "backfill", True, True),
    ("tick", "since_ms", True, True),
    ("second", "since_ms", True, True),
    # A bar backfill cannot be combined with the since_ms that covers the topics already live:
    # it resumes by since_ms as before.
    ("second", "backfill", True, False),
    # A server without markers (history_end false): nothing to wait for, resume as before.
    ("tick", "backfill", False, False),
])
@run_async
async def test_a_history_cut_before_its_marker_is_asked_for_again(mode, history, history_end,
                                                                   resent):
    """Connection 1 is cut inside the replay of the caller's history; connection 2 asks for it
    again (the caller's own backfill / since_ms, not one moved to what was received), gets its
    marker and is cut too; connection 3 resumes as usual, from what was received."""
    now_ns = time.time_ns()
    future_ms = (now_ns // 1_000_000 // 1000 + 10) * 1000  # records newer than any anchor
    user_since_ms = now_ns // 1_000_000 - 60_000
    kwargs = {"backfill": 5} if history == "backfill" else {"since_ms": user_since_ms}
    tick = mode == "tick"

    def point_ms(k):  # the resume point of the record connection k sends
        return future_ms + (k if tick else 1000 * k)

    def record(k):
        topic = f"A{k}"
        if tick:
            return tick_record(topic, 1, point_ms(k) * 1_000_000)
        return pb.Record(bar=pb.Bar(topic=topic, interval=pb.MODE_SECOND, start_ms=point_ms(k),
                                    open=1, high=1, low=1, close=1, volume=1, count=1, vwap=1))

    def answer(k, i, m):
        return pb.SubscribeOk(subscription_id=k, history_end=history_end and k < 3,
                              resume_from_ns=555 if tick else 0)

    def after(k, writer, got):
        if k == 1:
            writer.write(batch_frame(1, record(1)))  # one topic replayed, then cut
        elif k == 2:
            writer.write(batch_frame(1, record(2), marker_record(2)))  # the end, then cut
        return k < 3

    script = ResumeScript(1, answer, after, connections=3)
    async with FakeServer(script) as fake:
        client = await tickwire.connect("127.0.0.1", fake.port, "u", "p", reconnect=FAST)
        await client.subscribe(mode, ["*"], **kwargs)
        await asyncio.wait_for(script.done.wait(), 10)
        first, second, third = (s[0] for s in script.subscribes)
        original = (first.backfill, first.since_ms)
        assert original == (kwargs.get("backfill", 0), kwargs.get("since_ms", 0))
        if resent:
            assert (second.backfill, second.since_ms) == original
        else:
            # As before: from the newest record received, less the 1 s lookback.
            assert (second.backfill, second.since_ms) == (0, point_ms(1) - 1000)
        # The marker came: the next resume is the usual one, whatever was asked first.
        assert (third.backfill, third.since_ms) == (0, point_ms(2) - 1000)
        if tick:
            assert [m.resume_from_ns for m in (first, second, third)] == [0, 555, 555]
            assert [p.topic for p in second.resume_after] == ["A1"]
            assert [p.topic for p in third.resume_after] == ["A1", "A2"]
        assert client.stats.history_resends == (1 if resent else 0)
        await client.close()
