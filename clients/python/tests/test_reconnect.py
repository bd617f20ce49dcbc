"""Reconnect and resume against the real server: cut connections (through a TCP proxy) while
ticks and bars flow, SIGTERM drains and kill -9 restarts, and the errors that end retrying."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

import tickwire
from tickwire import ErrorCode, ErrorKind

from conftest import run_async
from server import PASSWORD, USER
from test_stream import _users_file

FAST_RETRY = tickwire.ReconnectOptions(initial_backoff=0.02, max_backoff=0.2)


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a server; cut() breaks every connection."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.pairs: list = []
        self.accepting = True  # False: new connections are closed at once

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        self.cut()

    async def _accept(self, client_r, client_w):
        if not self.accepting:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.pairs.append((client_w, server_w))
        await asyncio.gather(self._pump(client_r, server_w), self._pump(server_r, client_w))

    @staticmethod
    async def _pump(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        writer.transport.abort()

    def cut(self) -> None:
        for a, b in self.pairs:
            a.transport.abort()
            b.transport.abort()
        self.pairs.clear()


class Collector:
    """Reads a client's events in the background (so it keeps reading across reconnects)."""

    def __init__(self, client):
        self.client = client
        self.records: list = []
        self.events: list = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        async for ev in self.client:
            self.events.append(ev)
            if isinstance(ev, tickwire.Batch):
                self.records.extend(ev.records)

    def ticks(self, topic):
        return [r for r in self.records if isinstance(r, tickwire.Tick) and r.topic == topic]

    def bars(self, topic):
        return [r for r in self.records if isinstance(r, tickwire.Bar) and r.topic == topic]

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, predicate, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}; {len(self.records)} records, last events: "
                f"{repr(self.events[-3:])[:600]}")
            assert not self.task.done(), f"client closed: {repr(self.events[-3:])[:600]}"
            await asyncio.sleep(0.01)


def bar_key(b):
    return (b.topic, b.start_ms, b.count, b.open, b.high, b.low, b.close, b.volume)


@run_async
async def test_resume_after_cut_connections_is_lossless_and_without_duplicates(make_server,
                                                                               topic):
    s = make_server()
    topics = [topic + ".A", topic + ".B"]
    rounds, per_round = 30, 10
    async with Proxy(s.port) as proxy:
        consumer = await tickwire.connect("127.0.0.1", proxy.port, USER, PASSWORD,
                                          reconnect=FAST_RETRY)
        reference = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD)
        producer = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD)
        for c in (consumer, reference):
            await c.subscribe("tick", topics)
            await c.subscribe("second", topics)
        got, ref = Collector(consumer), Collector(reference)
        for r in range(rounds):
            await producer.publish([(t, 100.0 + r, 1.0) for t in topics for _ in range(per_round)],
                                   ack=True)
            if r in (8, 16, 24):
                # Back from the last cut first, so that each cut breaks an open connection.
                await got.wait(lambda: consumer.state is tickwire.ConnectionState.OPEN,
                               what="the reconnect")
                proxy.cut()  # ticks and bars of this round and earlier ones are in flight
            await asyncio.sleep(0.03)
        n = rounds * per_round

        def complete(c):
            return all(c.ticks(t) and c.ticks(t)[-1].seq == n and
                       sum(b.count for b in c.bars(t)) == n for t in topics)

        await ref.wait(lambda: complete(ref), what="the reference's bars")
        await got.wait(lambda: complete(got), what="every tick and bar through the proxy")
        for t in topics:
            assert [x.seq for x in got.ticks(t)] == list(range(1, n + 1))
            assert [bar_key(b) for b in got.bars(t)] == [bar_key(b) for b in ref.bars(t)]
        stats = consumer.stats
        assert stats.disconnects == 3 and stats.reconnects == 3
        # Whether a resume re-sends a bar (dropped as a duplicate) depends on where the cut falls
        # in its second: the sequences above are the property, not that count.
        assert stats.tick_gaps == 0
        assert len(got.of(tickwire.Reconnected)) == 3
        assert all(e.resubscribed == 2 for e in got.of(tickwire.Reconnected))
        for c in (consumer, reference, producer):
            await c.close()


@pytest.mark.parametrize("how", ["drain", "kill9"])
@run_async
async def test_server_restart(make_server, topic, how):
    s = make_server()
    consumer = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, reconnect=FAST_RETRY)
    producer = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, reconnect=FAST_RETRY)
    await consumer.subscribe("tick", [topic])
    got = Collector(consumer)
    await producer.publish([(topic, float(i), 1.0) for i in range(5)], ack=True)
    await got.wait(lambda: len(got.records) == 5, what="5 ticks")

    if how == "drain":
        assert await asyncio.to_thread(s.stop, signal.SIGTERM) == 0
    else:
        await asyncio.to_thread(s.kill)
    await got.wait(lambda: got.of(tickwire.Reconnecting), what="a Reconnecting event")
    lost = got.of(tickwire.Disconnected)[0].reason
    if how == "drain":
        assert lost.code is ErrorCode.SERVER_DRAINING
        assert 100 <= lost.retry_after_ms <= 999
        first = got.of(tickwire.Reconnecting)[0]
        assert lost.retry_after_ms / 1000 <= first.delay <= lost.retry_after_ms / 1000 * 1.5
    else:
        assert lost.kind is ErrorKind.IO
    await asyncio.to_thread(s.start)  # same port, empty history
    await got.wait(lambda: got.of(tickwire.Reconnected), what="the reconnect")
    assert got.of(tickwire.Reconnected)[0].resubscribed == 1
    # Started again without its history (no DATA_DIR): another stream (PROTOCOL.md S7a).
    assert got.of(tickwire.Reconnected)[0].stream_epoch_changed
    assert consumer.stats.stream_epoch_changes == 1

    # The producer's publish waits for its own reconnect.
    await producer.publish([(topic, float(i), 1.0) for i in range(5, 8)], ack=True)
    await got.wait(lambda: len(got.records) == 8, what="3 more ticks")
    assert [t.price for t in got.records] == [float(i) for i in range(8)]
    # The new server numbers from 1 again: taken as a fresh numbering, not as duplicates.
    assert [t.seq for t in got.records] == [1, 2, 3, 4, 5, 1, 2, 3]
    assert consumer.stats.duplicates_dropped == 0
    # The resume's position belonged to the old stream: the marker says so.
    marks = _marks(got)
    assert len(marks) == 1 and marks[0].epoch_changed and marks[0].truncated
    assert consumer.state is tickwire.ConnectionState.OPEN
    for c in (consumer, producer):
        await c.close()


@run_async
async def test_requests_wait_for_the_reconnect(make_server, topic):
    s = make_server()
    client = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, reconnect=FAST_RETRY,
                                    request_timeout=10)
    await asyncio.to_thread(s.kill)
    subscribing = asyncio.get_running_loop().create_task(client.subscribe("tick", [topic]))
    await asyncio.sleep(0.2)
    assert not subscribing.done()
    assert client.state is tickwire.ConnectionState.RECONNECTING
    await asyncio.to_thread(s.start)
    handle = await subscribing
    assert await client.publish([(topic, 1.0, 1.0)], ack=True) == 1
    while True:
        ev = await client.next_event(5)
        assert ev is not None
        if isinstance(ev, tickwire.Batch):
            break
    assert client.subscriptions == [handle]
    await client.close()


@run_async
async def test_a_subscription_refused_on_resume_is_dropped_and_reported(make_server, tmp_path):
    users = tmp_path / "users"
    _users_file(users, [("viewer", "pw", "publish=* subscribe=*")])
    s = make_server(USERS_FILE=users, STREAM_USER=None, STREAM_PASS=None)
    client = await tickwire.connect("127.0.0.1", s.port, "viewer", "pw", reconnect=FAST_RETRY)
    await client.subscribe("tick", ["EQ.AAPL"])
    keep = await client.subscribe("tick", ["FX.EURUSD"])
    got = Collector(client)
    await asyncio.to_thread(s.stop)
    _users_file(users, [("viewer", "pw", "publish=* subscribe=FX.*")])
    await asyncio.to_thread(s.start)
    await got.wait(lambda: got.of(tickwire.Reconnected), what="the reconnect")
    assert got.of(tickwire.Reconnected)[0].resubscribed == 1
    refused = [e for e in got.of(tickwire.Error) if e.code is ErrorCode.FORBIDDEN]
    assert len(refused) == 1 and "resuming subscription 1 failed" in refused[0].message
    assert client.subscriptions == [keep]
    assert client.stats.resubscribe_failures == 1
    await client.close()


@run_async
async def test_auth_failed_on_reconnect_closes_the_client(make_server):
    s = make_server()
    client = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, reconnect=FAST_RETRY)
    await asyncio.to_thread(s.stop)
    s.overrides["STREAM_PASS"] = "rotated"
    await asyncio.to_thread(s.start)
    await asyncio.wait_for(client.wait_closed(), 10)
    assert client.close_reason.code is ErrorCode.AUTH_FAILED
    with pytest.raises(tickwire.ClientClosed):
        await client.subscribe("tick", ["A"])


@run_async
async def test_reconnect_gives_up_after_max_attempts(make_server):
    s = make_server()
    client = await tickwire.connect(
        "127.0.0.1", s.port, USER, PASSWORD,
        reconnect=tickwire.ReconnectOptions(initial_backoff=0.01, max_attempts=3),
    )
    await asyncio.to_thread(s.kill)
    events = [ev async for ev in client]
    retries = [e for e in events if isinstance(e, tickwire.Reconnecting)]
    assert [e.attempt for e in retries] == [1, 2, 3]
    assert [e.reason.kind for e in retries[1:]] == [ErrorKind.CONNECT, ErrorKind.CONNECT]
    assert "gave up reconnecting after 3 attempts" in client.close_reason.message
    assert events[-1] is not None and events[-1].fatal
    assert client.stats.reconnect_attempts == 3


@run_async
async def test_without_reconnect_a_lost_connection_closes_the_client(make_server):
    s = make_server()
    client = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, reconnect=False)
    assert await asyncio.to_thread(s.stop, signal.SIGTERM) == 0
    await asyncio.wait_for(client.wait_closed(), 5)
    assert client.close_reason.code is ErrorCode.SERVER_DRAINING
    assert client.stats.reconnect_attempts == 0


def _marks(collector):
    return [m for e in collector.of(tickwire.Batch) for m in e.history_ends]


@run_async
async def test_back_dated_tick_published_while_away_arrives_once(make_server, topic):
    """PROTOCOL.md S8c: ticks resume by seq, so a tick stamped 10 s ago but published while the
    connection was down comes after the reconnect (a resume by since_ms would miss it)."""
    s = make_server()
    async with Proxy(s.port) as proxy:
        consumer = await tickwire.connect("127.0.0.1", proxy.port, USER, PASSWORD,
                                          reconnect=FAST_RETRY)
        producer = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD)
        handle = await consumer.subscribe("tick", [topic])
        got = Collector(consumer)
        await producer.publish([(topic, float(i), 1.0) for i in range(3)], ack=True)
        await got.wait(lambda: len(got.ticks(topic)) == 3, what="3 live ticks")
        assert _marks(got) == []  # no history asked for: no marker

        proxy.accepting = False
        proxy.cut()
        await got.wait(lambda: got.of(tickwire.Disconnected), what="the disconnect")
        back_dated = time.time_ns() - 10 * 1_000_000_000
        ack = await producer.publish([(topic, 99.0, 2.0, back_dated)], ack=True)
        assert ack == 1 and isinstance(ack, tickwire.PublishAck)
        assert ack.late == 1  # 10 s old: folded into no bar (S8a)
        proxy.accepting = True

        await got.wait(lambda: got.of(tickwire.Reconnected), what="the reconnect")
        back = got.of(tickwire.Reconnected)[0]
        assert back.resubscribed == 1 and not back.stream_epoch_changed
        # Then a live tick: once it is here, whatever the resume replays came before it.
        await producer.publish([(topic, 100.0, 1.0)], ack=True)
        await got.wait(lambda: len(got.ticks(topic)) >= 5, what="the back-dated and a live tick")
        ticks = got.ticks(topic)
        assert [t.seq for t in ticks] == [1, 2, 3, 4, 5]
        assert [t.price for t in ticks] == [0.0, 1.0, 2.0, 99.0, 100.0]
        assert ticks[3].ts_ns == back_dated
        assert all(t.topic_epoch == ticks[0].topic_epoch != 0 for t in ticks)
        assert consumer.stats.tick_gaps == 0
        # The resume's replay ended with one marker for the handle, with nothing left out.
        await got.wait(lambda: _marks(got), what="the resume's history_end")
        marks = _marks(got)
        assert len(marks) == 1
        assert marks[0].subscription == handle
        assert not (marks[0].truncated or marks[0].epoch_changed) and marks[0].lost == []
        assert consumer.stats.history_ends == 1
        for c in (consumer, producer):
            await c.close()


@run_async
async def test_backfill_subscription_yields_one_history_end(make_server, topic):
    s = make_server()
    client = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD)
    await client.publish([(topic, float(i), 1.0) for i in range(5)], ack=True)
    other = await client.subscribe("tick", [topic + ".other"])  # no history: no marker
    handle = await client.subscribe("tick", [topic], backfill=3)
    assert handle != other
    got = Collector(client)
    await got.wait(lambda: _marks(got), what="the history_end")
    await client.publish([(topic, 9.0, 1.0)], ack=True)
    await got.wait(lambda: len(got.ticks(topic)) == 4, what="the live tick")
    marks = _marks(got)
    assert len(marks) == 1
    mark = marks[0]
    assert mark.subscription == handle
    assert not (mark.truncated or mark.retention or mark.backfill_limit or mark.epoch_changed)
    assert mark.lost == [] and mark.lost_omitted == 0
    # It follows the three replayed ticks, and the live one follows it.
    batches = got.of(tickwire.Batch)
    holder = next(i for i, b in enumerate(batches) if b.history_ends)
    before = [r for b in batches[:holder] for r in b.records]
    before += batches[holder].records[:mark.record_index]
    assert [t.seq for t in before] == [3, 4, 5]
    assert [t.seq for t in got.ticks(topic)] == [3, 4, 5, 6]
    assert client.stats.history_ends == 1
    await client.close()


@run_async
async def test_back_dated_ticks_of_a_topic_created_while_away_arrive_once(make_server, topic):
    """PROTOCOL.md S8c, topics without a position: a topic the consumer never received a tick of
    has no seq to resume after. Created while the consumer was away, with ticks stamped 60 s
    ago, it still comes in full: the resume sends the accept position of the subscription's
    first SUBSCRIBE_OK (resume_from_ns), and a resume by since_ms alone would miss them."""
    s = make_server()
    seen, new = topic + ".seen", topic + ".new"
    n = 5
    async with Proxy(s.port) as proxy:
        consumer = await tickwire.connect("127.0.0.1", proxy.port, USER, PASSWORD,
                                          reconnect=FAST_RETRY)
        producer = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD)
        handle = await consumer.subscribe("tick", ["*"])
        got = Collector(consumer)
        # A topic it holds a position in (resumed by seq, as before).
        await producer.publish([(seen, 1.0, 1.0)], ack=True)
        await got.wait(lambda: got.ticks(seen), what="the live tick")

        proxy.accepting = False
        proxy.cut()
        await got.wait(lambda: got.of(tickwire.Disconnected), what="the disconnect")
        back_dated = time.time_ns() - 60 * 1_000_000_000
        stamps = [back_dated + i for i in range(n)]
        ack = await producer.publish([(new, 10.0 + i, 1.0, ts) for i, ts in enumerate(stamps)],
                                     ack=True)
        assert ack == n
        proxy.accepting = True

        await got.wait(lambda: got.of(tickwire.Reconnected), what="the reconnect")
        back = got.of(tickwire.Reconnected)[0]
        assert back.resubscribed == 1 and not back.stream_epoch_changed
        # The resume's replay ends with its marker; a live tick then follows whatever it sent.
        await got.wait(lambda: _marks(got), what="the resume's history_end")
        await producer.publish([(new, 99.0, 1.0)], ack=True)
        await got.wait(lambda: any(t.price == 99.0 for t in got.ticks(new)),
                       what="the live tick on the new topic")
        ticks = got.ticks(new)
        assert [t.seq for t in ticks] == list(range(1, n + 2)), [t.seq for t in ticks]
        assert [t.ts_ns for t in ticks[:n]] == stamps
        assert [t.price for t in ticks] == [10.0 + i for i in range(n)] + [99.0]
        assert [t.seq for t in got.ticks(seen)] == [1]
        marks = _marks(got)
        assert len(marks) == 1 and marks[0].subscription == handle
        assert not marks[0].truncated and marks[0].lost == []
        assert consumer.stats.tick_gaps == 0 and consumer.stats.history_resends == 0
        for c in (consumer, producer):
            await c.close()
