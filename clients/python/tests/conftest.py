"""Fixtures: real servers, and a way to run asyncio tests without plugins."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time

import pytest

from server import PASSWORD, USER, ServerProcess

_counter = itertools.count()


def run_async(fn):
    """Runs an `async def` test in a fresh event loop, with an overall deadline."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        async def bounded():
            return await asyncio.wait_for(fn(*args, **kwargs), 30)

        return asyncio.run(bounded())

    return wrapper


def fresh_second_ns() -> int:
    """The start of the current UTC second, in ns, with at least 300 ms of it left (ticks
    stamped in it are taken into its bar: the bucket closes 100 ms after it ends)."""
    now = time.time_ns()
    if now % 1_000_000_000 > 700_000_000:
        time.sleep(1 - (now % 1_000_000_000) / 1e9 + 0.01)
        now = time.time_ns()
    return now - now % 1_000_000_000


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the tests that do not change its settings or stop it."""
    s = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield s
    s.stop()


@pytest.fixture
def make_server(tmp_path):
    """Starts servers with settings of the test's own; stops them afterwards."""
    started = []

    def make(**env) -> ServerProcess:
        s = ServerProcess(tmp_path / f"server{len(started)}", env).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop(timeout=5)


@pytest.fixture
def topic(request):
    """A topic no other test publishes to (the session server is shared)."""
    name = request.node.name.replace("[", ".").replace("]", "")[:80]
    return f"T.{name}.{next(_counter)}.{time.monotonic_ns() % 1_000_000}"


@pytest.fixture
def creds():
    return USER, PASSWORD
