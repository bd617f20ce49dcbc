"""Multi-instance mode (docs/CLUSTER.md): two servers sharing a NATS JetStream log. A restarted
server rebuilds its history from the log, so a client's resume across a kill -9 loses nothing;
and a PUBLISH the log cannot take is refused with UNAVAILABLE."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess

import pytest

import tickwire
from tickwire import ErrorCode

from conftest import run_async
from server import PASSWORD, USER, ServerProcess, wait_until
from test_reconnect import FAST_RETRY, Collector, Proxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def nats(tmp_path):
    binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    assert binary, "nats-server not found: run scripts/setup.sh (Debian nats-server)"
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "-js", "-sd", str(tmp_path / "jetstream"), "-a", "127.0.0.1", "-p", str(port),
         "--name", "tickwire-py-test"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_until(lambda: _listening(port), 10), "nats-server did not start"
    yield proc, port
    proc.terminate()
    proc.wait(10)


def _instance(tmp_path, name, nats_port):
    """A started instance, ready: connected to the stream and caught up with it."""
    return ServerProcess(tmp_path / name, {
        "NATS_URL": f"nats://127.0.0.1:{nats_port}",
        "INSTANCE_ID": name,
        "NATS_PUBLISH_TIMEOUT": "500ms",
    }, metrics=True).start(timeout=15).wait_ready()


@run_async
async def test_resume_across_a_kill9_restart_loses_nothing(tmp_path, nats, topic):
    _, nats_port = nats
    a = await asyncio.to_thread(_instance, tmp_path, "a", nats_port)
    b = await asyncio.to_thread(_instance, tmp_path, "b", nats_port)
    try:
        # The consumer reaches a through a proxy that, like a load balancer's health check, takes
        # connections only while a is ready (a restarted instance replays the log first).
        async with Proxy(a.port) as lb:
            consumer = await tickwire.connect("127.0.0.1", lb.port, USER, PASSWORD,
                                              reconnect=FAST_RETRY)
            producer = await tickwire.connect("127.0.0.1", b.port, USER, PASSWORD)
            await consumer.subscribe("tick", [topic])
            got = Collector(consumer)
            rounds, per_round = 20, 10
            for r in range(rounds):
                await producer.publish([(topic, float(r * per_round + i), 1.0)
                                        for i in range(per_round)], ack=True)
                if r == 5:
                    lb.accepting = False
                    await asyncio.to_thread(a.kill)  # ticks of round 5 may be in flight
                if r == 12:
                    await asyncio.to_thread(lambda: a.start(15).wait_ready())  # same port
                    lb.accepting = True
                await asyncio.sleep(0.02)
            n = rounds * per_round
            await got.wait(lambda: len(got.records) >= n, timeout=15, what=f"{n} ticks")
            ticks = got.records
            assert [t.price for t in ticks] == [float(i) for i in range(n)]
            for prev, t in zip(ticks, ticks[1:]):
                assert t.prev_seq == prev.seq  # no gap in the shared numbering
            assert consumer.stats.tick_gaps == 0
            assert consumer.stats.reconnects >= 1
            for c in (consumer, producer):
                await c.close()
    finally:
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(b.stop)


@run_async
async def test_publish_refused_with_unavailable_while_the_log_is_down(tmp_path, nats, topic):
    proc, nats_port = nats
    s = await asyncio.to_thread(_instance, tmp_path, "a", nats_port)
    try:
        async with await tickwire.connect("127.0.0.1", s.port, USER, PASSWORD) as client:
            assert await client.publish([(topic, 1.0, 1.0)], ack=True) == 1
            proc.terminate()
            await asyncio.to_thread(proc.wait, 10)
            with pytest.raises(tickwire.ServerError) as caught:
                await client.publish([(topic, 2.0, 1.0)], ack=True)
            assert caught.value.code is ErrorCode.UNAVAILABLE
            assert not caught.value.fatal and caught.value.retry_after_ms > 0
            assert client.state is tickwire.ConnectionState.OPEN  # non-fatal
    finally:
        await asyncio.to_thread(s.stop)
