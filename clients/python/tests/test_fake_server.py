"""What a real server cannot be made to do: frames and codes from a newer protocol, silence
without a FIN, garbage. A scripted server on 127.0.0.1 plays each connection."""

from __future__ import annotations

import asyncio
import struct

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
