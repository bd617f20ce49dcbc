"""The blocking Client: its own event loop thread, a plain iterator."""

from __future__ import annotations

import threading
import time

import pytest

import tickwire
from tickwire import ErrorCode

from server import PASSWORD, USER


def test_blocking_client_subscribe_publish_iterate(server, topic):
    with tickwire.Client("127.0.0.1", server.port, USER, PASSWORD) as client:
        assert client.auth_info.protocol_version == 1
        client.subscribe("tick", topic)
        assert client.publish([(topic, float(i), 1.0) for i in range(5)], ack=True) == 5
        got = []
        for record in client.records(timeout=5):
            got.append(record)
            if len(got) == 5:
                break
        assert [(t.price, t.seq) for t in got] == [(float(i), i + 1) for i in range(5)]
        assert client.next(timeout=0.05) is None
    assert client.closed
    assert isinstance(client.next(), tickwire.Closed)
    client.close()  # idempotent


def test_blocking_iterator_ends_when_the_client_closes(make_server, topic):
    s = make_server()
    client = tickwire.Client("127.0.0.1", s.port, USER, PASSWORD, reconnect=False)
    client.subscribe("tick", [topic])
    stopper = threading.Timer(0.3, s.stop)
    stopper.start()
    start = time.monotonic()
    with pytest.raises(tickwire.ServerError) as caught:
        for _ in client.records():  # no timeout: ends only because the server goes away
            pass
    assert caught.value.code is ErrorCode.SERVER_DRAINING
    assert time.monotonic() - start < 10
    events = list(client)  # drained: the iterator is empty
    assert events == []
    client.close()
    stopper.join()


def test_blocking_connect_errors_raise_and_leave_no_thread(server):
    before = threading.active_count()
    with pytest.raises(tickwire.ServerError) as caught:
        tickwire.Client("127.0.0.1", server.port, USER, "wrong")
    assert caught.value.code is ErrorCode.AUTH_FAILED
    assert threading.active_count() == before


def test_blocking_publish_from_several_threads(server, topic):
    with tickwire.Client("127.0.0.1", server.port, USER, PASSWORD) as client:
        client.subscribe("tick", [topic])
        errors = []

        def produce(k):
            try:
                for i in range(10):
                    client.publish([(topic, float(k * 100 + i), 1.0)], ack=True)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        seqs = []
        for r in client.records(timeout=5):
            seqs.append(r.seq)
            if len(seqs) == 40:
                break
        assert seqs == list(range(1, 41))
