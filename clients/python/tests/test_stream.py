"""Subscribe, publish and receive against the real server: ticks, SECOND bars, history
(backfill, since_ms), unsubscribe, and every ERROR a request can get."""

from __future__ import annotations

import asyncio
import time

import pytest

import tickwire
from tickwire import ErrorCode, ErrorKind, Mode

from conftest import fresh_second_ns, run_async
from server import PASSWORD, USER


async def collect(client, n: int, timeout: float = 5.0) -> list:
    """The next `n` records (fails when they do not come within `timeout`)."""
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        ev = await client.next_event(max(0.0, deadline - time.monotonic()))
        assert ev is not None, f"only {len(out)} of {n} records within {timeout} s: {out}"
        assert not isinstance(ev, (tickwire.Closed, tickwire.Error)), ev
        if isinstance(ev, tickwire.Batch):
            out.extend(ev.records)
    return out


def open_client(server, **options):
    return tickwire.connect("127.0.0.1", server.port, USER, PASSWORD, **options)


@run_async
async def test_ticks_arrive_exactly_as_published(server, topic):
    async with await open_client(server) as client:
        handle = await client.subscribe(Mode.TICK, [topic])
        assert handle == 1
        # ns timestamps far above 2**53 must survive exactly (Python ints, never floats).
        ts = time.time_ns() - 123_457
        ticks = [tickwire.Tick(topic, 187.25, 100, ts), (topic, 187.5, 0.5, ts + 1), (topic, 3, 1)]
        assert await client.publish(ticks, ack=True) == 3
        got = await collect(client, 3)
        assert [(t.topic, t.price, t.size) for t in got] == [
            (topic, 187.25, 100), (topic, 187.5, 0.5), (topic, 3.0, 1.0)]
        assert [t.ts_ns for t in got[:2]] == [ts, ts + 1]
        assert got[2].ts_ns > ts  # stamped by the server
        assert [(t.seq, t.prev_seq) for t in got] == [(1, 0), (2, 1), (3, 2)]
        assert got[0].time.tzinfo is not None


@run_async
async def test_watermarks_follow_the_bars_of_their_second(server, topic):
    async with await open_client(server, watermarks=True) as client:
        assert client.auth_info.bar_close_delay_ms > 0
        await client.subscribe("second", [topic])
        bucket_ns = fresh_second_ns()
        await client.publish([(topic, 10.0, 1.0, bucket_ns)], ack=True)
        bucket_ms = bucket_ns // 1_000_000
        got: list = []
        # Until the watermark of the tick's second: its bar must come first.
        while not any(isinstance(r, tickwire.Watermark) and r.start_ms >= bucket_ms for r in got):
            got.extend(await collect(client, 1, timeout=4))
        marks = [r for r in got if isinstance(r, tickwire.Watermark)]
        assert all(m.interval is Mode.SECOND for m in marks)
        assert [m.start_ms for m in marks] == sorted(set(m.start_ms for m in marks))
        final = next(i for i, r in enumerate(got)
                     if isinstance(r, tickwire.Watermark) and r.start_ms >= bucket_ms)
        bars = [i for i, r in enumerate(got) if isinstance(r, tickwire.Bar)]
        assert len(bars) == 1 and bars[0] < final
        assert got[bars[0]].start_ms == bucket_ms


@run_async
async def test_second_bars_fold_the_ticks(server, topic):
    async with await open_client(server) as client:
        await client.subscribe("second", [topic])
        bucket_ns = fresh_second_ns()
        prices = [(10.0, 1.0), (12.0, 2.0), (9.0, 1.0), (11.0, 4.0)]
        await client.publish([(topic, p, s, bucket_ns + i) for i, (p, s) in enumerate(prices)],
                             ack=True)
        (bar,) = await collect(client, 1, timeout=3)
        assert isinstance(bar, tickwire.Bar)
        assert bar.topic == topic and bar.interval is Mode.SECOND
        assert bar.start_ms == bucket_ns // 1_000_000
        assert (bar.open, bar.high, bar.low, bar.close) == (10.0, 12.0, 9.0, 11.0)
        assert bar.volume == 8.0 and bar.count == 4
        assert bar.vwap == pytest.approx((10 + 24 + 9 + 44) / 8)
        assert bar.start.timestamp() * 1000 == bar.start_ms


@run_async
async def test_backfill_and_since_ms_replay_history(server, topic):
    async with await open_client(server) as producer:
        base = time.time_ns() - 5_000_000_000  # 5 s ago, 1 ms apart
        await producer.publish([(topic, float(i), 1.0, base + i * 1_000_000) for i in range(10)],
                               ack=True)
    async with await open_client(server) as client:
        await client.subscribe("tick", [topic], backfill=3)
        assert [t.price for t in await collect(client, 3)] == [7.0, 8.0, 9.0]
    async with await open_client(server) as client:
        await client.subscribe("tick", [topic], since_ms=base // 1_000_000 + 6)
        got = await collect(client, 4)
        assert [t.seq for t in got] == [7, 8, 9, 10]
        # History first, then live, with no gap and no duplicate.
        await client.publish([(topic, 10.0, 1.0)], ack=True)
        assert [t.seq for t in await collect(client, 1)] == [11]
        assert client.stats.duplicates_dropped == 0 and client.stats.tick_gaps == 0


@run_async
async def test_unsubscribe_stops_delivery(server, topic):
    async with await open_client(server) as a, await open_client(server) as b:
        ha = await a.subscribe("tick", [topic])
        await b.subscribe("tick", [topic])
        await a.unsubscribe(ha)
        assert a.subscriptions == []
        await b.publish([(topic, 1.0, 1.0)], ack=True)
        assert len(await collect(b, 1)) == 1
        assert await a.next_event(0.3) is None  # b got it; a gets nothing
        with pytest.raises(tickwire.TickwireError) as caught:
            await a.unsubscribe(ha)
        assert caught.value.kind is ErrorKind.INVALID_ARGUMENT


@run_async
async def test_bad_subscribe_requests_raise_invalid_request(server):
    async with await open_client(server) as client:
        for args, kwargs in [((Mode.TICK, ["bad topic"]), {}),
                             ((Mode.TICK, []), {}),
                             ((Mode.SECOND, ["A"]), {"backfill": 1, "since_ms": 5})]:
            with pytest.raises(tickwire.ServerError) as caught:
                await client.subscribe(*args, **kwargs)
            assert caught.value.code is ErrorCode.INVALID_REQUEST, args
            assert not caught.value.fatal
            assert caught.value.error.request_id != 0
        assert client.subscriptions == []
        assert client.state is tickwire.ConnectionState.OPEN  # non-fatal: still usable
        await client.subscribe("tick", ["A"])


@run_async
async def test_rejected_publish(server, topic):
    async with await open_client(server) as client:
        await client.subscribe("tick", [topic])
        with pytest.raises(tickwire.ServerError) as caught:
            await client.publish([(topic, 1.0, 1.0), (topic, 1.0, -1.0)], ack=True)
        assert caught.value.code is ErrorCode.INVALID_REQUEST
        assert str(caught.value.error.message).startswith("ticks[1]")
        with pytest.raises(tickwire.ServerError) as star:
            await client.publish([("*", 1.0, 1.0)], ack=True)
        assert star.value.code is ErrorCode.INVALID_REQUEST
        # Without ack the rejection has nobody waiting for it: it is an event.
        assert await client.publish([(topic, float("nan"), 1.0)]) == 1
        ev = await client.next_event(5)
        assert isinstance(ev, tickwire.Error) and ev.code is ErrorCode.INVALID_REQUEST
        assert ev.request_id != 0 and not ev.fatal
        # Nothing of the rejected frames was applied: the next tick is seq 1.
        await client.publish([(topic, 2.0, 1.0)], ack=True)
        assert [t.seq for t in await collect(client, 1)] == [1]


@run_async
async def test_topic_limit_reports_refused_ticks_and_the_ack_counts_the_applied(make_server):
    s = make_server(MAX_TOPICS="2", WORKERS="1")
    async with await open_client(s) as client:
        # Server-stamped ticks keep their bars open: two topics fill the cap, three are refused.
        ticks = [(f"cap.{i}", 1.0, 1.0) for i in range(5)]
        assert await client.publish(ticks, ack=True) == 2
        ev = await client.next_event(5)
        assert isinstance(ev, tickwire.Error) and ev.code is ErrorCode.TOPIC_LIMIT
        assert not ev.fatal and ev.request_id != 0
        assert "3 of 5 ticks" in ev.message
        assert await client.publish([("cap.0", 2.0, 1.0)], ack=True) == 1  # held topics flow


@run_async
async def test_a_frame_over_max_msg_size_is_refused_before_sending(server, topic):
    async with await open_client(server) as client:
        ticks = [(topic, float(i), 1.0) for i in range(5000)]
        with pytest.raises(tickwire.TickwireError) as caught:
            await client.publish(ticks)
        assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
        assert "MAX_MSG_SIZE 65536" in str(caught.value)
        assert await client.publish(ticks[:300], ack=True) == 300


def _users_file(path, lines):
    """USERS_FILE with PBKDF2 hashes (the server's format, docs/SECURITY.md)."""
    import base64
    import hashlib
    import os

    out = []
    for user, password, perms in lines:
        salt = os.urandom(16)
        key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000, 32)
        h = f"pbkdf2-sha256$1000${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
        out.append(f"{user} {h} {perms}")
    path.write_text("\n".join(out) + "\n")
    return path


@run_async
async def test_forbidden_subscribe_and_publish(make_server, tmp_path):
    users = _users_file(tmp_path / "users", [("viewer", "pw", "publish=FX.* subscribe=FX.*")])
    s = make_server(USERS_FILE=users, STREAM_USER=None, STREAM_PASS=None)
    async with await tickwire.connect("127.0.0.1", s.port, "viewer", "pw") as client:
        with pytest.raises(tickwire.ServerError) as sub:
            await client.subscribe("tick", ["EQ.AAPL"])
        assert sub.value.code is ErrorCode.FORBIDDEN
        with pytest.raises(tickwire.ServerError) as pub:
            await client.publish([("FX.EURUSD", 1.1, 1.0), ("EQ.AAPL", 1.0, 1.0)], ack=True)
        assert pub.value.code is ErrorCode.FORBIDDEN
        assert pub.value.error.message.startswith("ticks[1]")
        await client.subscribe("tick", ["FX.EURUSD"])
        assert await client.publish([("FX.EURUSD", 1.1, 1.0)], ack=True) == 1
        assert len(await collect(client, 1)) == 1


@run_async
async def test_requests_after_close_raise(server):
    client = await open_client(server)
    await client.close()
    await client.close()  # idempotent
    with pytest.raises(tickwire.ClientClosed):
        await client.subscribe("tick", ["A"])
    with pytest.raises(tickwire.ClientClosed):
        await client.publish([("A", 1.0, 1.0)])
    assert isinstance(await client.next_event(0), tickwire.Closed)


@run_async
async def test_a_full_event_queue_pauses_reading_and_loses_nothing(server, topic):
    async with await open_client(server, queue_capacity=2) as client, \
            await open_client(server) as producer:
        await client.subscribe("tick", [topic])
        for i in range(20):  # 20 frames, about one batch each
            await producer.publish([(topic, float(i), 1.0)] * 50, ack=True)
        # Nothing is taken from the client yet: it stops reading once 2 batches wait.
        deadline = time.monotonic() + 5
        while client.stats.read_pauses == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert client.stats.read_pauses >= 1
        got = await collect(client, 1000)
        assert [t.seq for t in got] == list(range(1, 1001))
