"""Heartbeats against the real server (HEARTBEAT_INTERVAL 200ms, HEARTBEAT_TIMEOUT 600ms)."""

from __future__ import annotations

import tickwire
from tickwire import ErrorCode

from conftest import run_async
from server import PASSWORD, USER

FAST = dict(HEARTBEAT_INTERVAL="200ms", HEARTBEAT_TIMEOUT="600ms")


@run_async
async def test_heartbeats_keep_a_quiet_connection_alive(make_server, topic):
    s = make_server(**FAST)
    async with await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD,
                                      reconnect=False) as client:
        assert client.auth_info.heartbeat_interval_ms == 200
        await client.subscribe("tick", [topic])
        # Three heartbeat timeouts of silence from our side but for HEARTBEATs.
        assert await client.next_event(2.0) is None
        assert client.state is tickwire.ConnectionState.OPEN
        stats = client.stats
        assert stats.heartbeats_sent >= 6, stats
        assert stats.heartbeat_echoes >= 5, stats
        assert await client.publish([(topic, 1.0, 1.0)], ack=True) == 1
        ev = await client.next_event(5)
        assert isinstance(ev, tickwire.Batch)


@run_async
async def test_without_heartbeats_the_server_drops_the_client(make_server):
    s = make_server(**FAST)
    # Heartbeating far slower than the server requires, and no reconnect: the server's
    # HEARTBEAT_TIMEOUT closes the client.
    client = await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD, reconnect=False,
                                    heartbeat_interval=30, idle_timeout=0)
    events = [ev async for ev in client]
    assert len(events) == 1
    assert events[0].code is ErrorCode.HEARTBEAT_TIMEOUT and events[0].fatal
    assert client.closed and client.close_reason.code is ErrorCode.HEARTBEAT_TIMEOUT


@run_async
async def test_heartbeat_timeout_is_retried_with_reconnect(make_server, topic):
    s = make_server(**FAST)
    client = await tickwire.connect(
        "127.0.0.1", s.port, USER, PASSWORD, heartbeat_interval=30, idle_timeout=0,
        reconnect=tickwire.ReconnectOptions(initial_backoff=0.01),
    )
    await client.subscribe("tick", [topic])
    events = []
    while not any(isinstance(e, tickwire.Reconnected) for e in events):
        ev = await client.next_event(5)
        assert ev is not None, events
        events.append(ev)
    notice, lost = events[0], events[1]
    assert isinstance(notice, tickwire.Error) and not notice.fatal
    assert notice.code is ErrorCode.HEARTBEAT_TIMEOUT and "(reconnecting)" in notice.message
    assert isinstance(lost, tickwire.Disconnected)
    back = events[-1]
    assert (back.attempt, back.resubscribed) == (1, 1)
    # The same server process: the same stream, the numbering goes on.
    assert back.stream_epoch == back.previous_stream_epoch == client.auth_info.stream_epoch != 0
    assert not back.stream_epoch_changed
    await client.close()
