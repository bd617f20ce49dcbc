"""The blocking client for scripts and notebooks: the asyncio client on an event loop thread of
its own.

    with tickwire.Client("127.0.0.1", 7878, "demo", "demo-pass") as client:
        client.subscribe("second", ["*"], backfill=5)
        for bar in client.records(timeout=10):
            print(bar)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Iterable, Iterator, Optional, Sequence, Union

from .aio import AsyncClient, connect
from .records import (
    AuthInfo,
    Batch,
    Closed,
    ConnectionState,
    Error,
    Event,
    Mode,
    Stats,
    TickwireError,
)

__all__ = ["Client"]


class Client:
    """Connects in the constructor (TCP, AUTH, AUTH_OK) and raises like `tickwire.connect`.

    Takes the same keyword options as `tickwire.connect`. Methods may be called from any thread;
    events are meant for one reader. `close()` (or leaving the `with` block) stops the loop
    thread.
    """

    def __init__(self, host: str, port: int, user: str, password: str, **options):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tickwire-{host}:{port}", daemon=True
        )
        self._thread.start()
        try:
            self._client: AsyncClient = self._call(connect(host, port, user, password, **options))
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coro, timeout: Optional[float] = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _stop_loop(self) -> None:
        if self._loop.is_closed():
            return
        if self._thread is not threading.current_thread():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    # Properties read plain attributes of the async client (safe from any thread).
    @property
    def state(self) -> ConnectionState:
        return self._client.state

    @property
    def closed(self) -> bool:
        return self._client.closed

    @property
    def auth_info(self) -> AuthInfo:
        return self._client.auth_info

    @property
    def close_reason(self) -> Optional[Error]:
        return self._client.close_reason

    @property
    def stats(self) -> Stats:
        return self._client.stats

    def subscribe(
        self,
        mode: Union[Mode, str, int],
        topics: Union[str, Sequence[str]],
        *,
        backfill: int = 0,
        since_ms: int = 0,
    ) -> int:
        """See AsyncClient.subscribe."""
        return self._call(self._client.subscribe(mode, topics, backfill=backfill,
                                                 since_ms=since_ms))

    def unsubscribe(self, handle: int) -> None:
        return self._call(self._client.unsubscribe(handle))

    def publish(self, ticks: Iterable, *, ack: bool = False) -> int:
        """See AsyncClient.publish."""
        return self._call(self._client.publish(list(ticks), ack=ack))

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; Closed once closed and drained; None after `timeout` seconds."""
        if self._loop.is_closed():
            return Closed(self._client.close_reason)
        return self._call(self._client.next_event(timeout))

    def __iter__(self) -> Iterator[Event]:
        """Every event until the client is closed."""
        return self.events()

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Every event until the client is closed, or until none came for `timeout` seconds."""
        while True:
            ev = self.next(timeout)
            if ev is None or isinstance(ev, Closed):
                return
            yield ev

    def records(self, timeout: Optional[float] = None) -> Iterator:
        """Only the records (Tick, Bar), one at a time, until the client is closed or none came
        for `timeout` seconds; raises TickwireError when an error closes the client."""
        for ev in self.events(timeout):
            if isinstance(ev, Batch):
                yield from ev.records
        reason = self._client.close_reason
        if self._client.closed and reason is not None:
            raise TickwireError.of(reason)

    def close(self) -> None:
        """Closes the connection and stops the loop thread (idempotent)."""
        if self._loop.is_closed():
            return
        self._call(self._client.close())
        self._stop_loop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        # A Client dropped without close(): stop its loop thread. Never wait on the loop from
        # its own thread (a collection can run anywhere).
        loop = getattr(self, "_loop", None)
        if loop is None or loop.is_closed() or not hasattr(self, "_client"):
            return
        if threading.current_thread() is self._thread:
            loop.create_task(self._client.close())
            return
        try:
            self.close()
        except Exception:
            pass
