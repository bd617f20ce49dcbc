"""The asyncio client.

    async with await tickwire.connect("127.0.0.1", 7878, "demo", "demo-pass") as client:
        await client.subscribe("second", ["*"])
        async for event in client:
            ...

One connection at a time, driven by one supervisor task: it reads frames, sends HEARTBEATs, and
with reconnect enabled replaces a lost connection (backoff with jitter, retry_after_ms honoured)
and resumes every subscription: TICK ones by seq for the topics received (PROTOCOL.md S8c) and by
the server's accept order and since_ms for the rest, bar ones by since_ms, dropping the
duplicates that brings.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl as _ssl
import time
from dataclasses import dataclass, replace
from typing import AsyncIterator, Iterable, Optional, Sequence, Union

from . import _codec as codec
from ._codec import FrameType, ProtocolViolation
from .records import (
    AuthInfo,
    Bar,
    Batch,
    ClientClosed,
    Closed,
    ConnectionState,
    Disconnected,
    Error,
    ErrorCode,
    ErrorKind,
    Event,
    Mode,
    PublishAck,
    Reconnected,
    Reconnecting,
    Stats,
    Tick,
    TickGap,
    TickwireError,
    Watermark,
)
from .resume import (
    DeliveredState,
    ReconnectOptions,
    backoff_delay,
    resume_since_ms,
    retry_after_delay,
)

__all__ = ["AsyncClient", "connect", "make_ssl_context"]

log = logging.getLogger("tickwire")

# Fatal errors a new connection may fix (the rest close the client).
_RETRYABLE_CODES = frozenset(
    {
        ErrorCode.SERVER_DRAINING,
        ErrorCode.HEARTBEAT_TIMEOUT,
        ErrorCode.SLOW_CONSUMER,
        ErrorCode.INTERNAL,
        ErrorCode.AUTH_TIMEOUT,
        ErrorCode.AUTH_RATE_LIMITED,
    }
)


# Frame types a server never sends once AUTH_OK was received.
_NOT_FROM_SERVER = frozenset(
    {FrameType.AUTH, FrameType.AUTH_OK, FrameType.SUBSCRIBE, FrameType.UNSUBSCRIBE,
     FrameType.PUBLISH}
)


def _retryable(e: Error) -> bool:
    if e.kind in (ErrorKind.IO, ErrorKind.CONNECT, ErrorKind.TIMEOUT):
        return True
    return e.kind is ErrorKind.SERVER and e.code in _RETRYABLE_CODES


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_ssl_context(
    ca_file: Optional[str] = None,
    cert_file: Optional[str] = None,
    key_file: Optional[str] = None,
) -> _ssl.SSLContext:
    """TLS 1.2+ context that verifies the server against `ca_file` (the system's CAs when None)
    and, for servers that require mutual TLS, presents `cert_file`/`key_file`."""
    ctx = _ssl.create_default_context(_ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


# Longest client_name the server accepts, in UTF-8 bytes (PROTOCOL S1).
MAX_CLIENT_NAME_BYTES = 128


@dataclass
class _Subscription:
    handle: int
    mode: Mode
    topics: tuple
    wildcard: bool
    backfill: int
    since_ms: int  # the caller's (0: none)
    anchor_ms: int  # complete from here: the caller's since_ms, or the first SUBSCRIBE_OK time
    server_id: int = 0  # 0 while not established on the current connection
    # TICK only: the subscription's place in the server's accept order, sent with every resume
    # so that topics without a position miss nothing (PROTOCOL.md S8c): the first SUBSCRIBE_OK's
    # (the first one that had one), then that of the latest resume whose history_end marker
    # arrived (everything accepted before it was then received or reported). 0: none.
    resume_from_ns: int = 0
    # TICK only: the resume_from_ns of the latest resume's SUBSCRIBE_OK, taken on its marker.
    ok_resume_from_ns: int = 0
    # The caller's backfill or since_ms was asked for (first or again by a resume) and its
    # history_end marker has not come yet: a resume asks for that history again.
    history_pending: bool = False


@dataclass
class _Pending:
    future: asyncio.Future
    # For a user SUBSCRIBE: what to register on SUBSCRIBE_OK. For a resume: the handle.
    subscribe: Optional[_Subscription] = None
    resume_handle: int = 0
    resent_history: bool = False  # the resume asked for the caller's backfill / since_ms again


class _Conn:
    """One TCP (or TLS) connection after AUTH_OK."""

    def __init__(self, reader, writer, auth_ok, heartbeat_interval, idle_timeout):
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self.auth_ok = auth_ok
        self.max_payload = auth_ok.max_msg_size or 65536
        self.heartbeat_interval: float = heartbeat_interval
        self.idle_timeout: float = idle_timeout  # 0: not checked
        self.last_rx = time.monotonic()
        self.last_batch_seq = 0
        self.read_paused = False
        self.lost: Optional[Error] = None  # why the client dropped it (idle, close)

    def abort(self, reason: Error) -> None:
        if self.lost is None:
            self.lost = reason
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()


class AsyncClient:
    """A tickwire connection for asyncio code; create it with `await tickwire.connect(...)`.

    Every method runs on the event loop the client was connected on.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        client_name: str = "tickwire-python",
        ssl: Union[None, bool, _ssl.SSLContext] = None,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        server_hostname: Optional[str] = None,
        connect_timeout: float = 5.0,
        request_timeout: float = 5.0,
        heartbeat_interval: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        reconnect: Union[bool, ReconnectOptions] = True,
        queue_capacity: int = 1024,
        watermarks: bool = False,
    ):
        self.host = host
        self.port = int(port)
        self._username = username
        self._password = password
        if len(client_name.encode()) > MAX_CLIENT_NAME_BYTES:
            # The server would refuse the AUTH (INVALID_REQUEST, fatal) on every attempt.
            raise ValueError(f"client_name is longer than {MAX_CLIENT_NAME_BYTES} bytes")
        self._client_name = client_name
        if isinstance(ssl, _ssl.SSLContext):
            self._ssl: Optional[_ssl.SSLContext] = ssl
        elif ssl or ca_file or cert_file:
            self._ssl = make_ssl_context(ca_file, cert_file, key_file)
        else:
            self._ssl = None
        self._server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._heartbeat_override = heartbeat_interval
        self._idle_override = idle_timeout
        if isinstance(reconnect, ReconnectOptions):
            self.reconnect_options = reconnect
        else:
            self.reconnect_options = ReconnectOptions(enabled=bool(reconnect))
        if queue_capacity < 1:
            raise ValueError("queue_capacity must be at least 1")
        self._queue_capacity = queue_capacity
        # Completeness watermarks (PROTOCOL.md S8d) as Watermark records; off by default, so
        # that code expecting only ticks and bars keeps working.
        self._watermarks = watermarks
        self._last_watermark: dict = {}  # interval -> newest start_ms delivered

        self._state = ConnectionState.CONNECTING
        self._auth_info: Optional[AuthInfo] = None
        self._close_reason: Optional[Error] = None
        self._conn: Optional[_Conn] = None
        self._supervisor: Optional[asyncio.Task] = None
        self._open = asyncio.Event()  # set while state is OPEN
        self._closed_event = asyncio.Event()
        self._closing = False

        self._next_request_id = 0
        self._pending: dict[int, _Pending] = {}
        self._subs: dict[int, _Subscription] = {}
        self._next_handle = 1
        self._delivered = DeliveredState()
        self._stream_epoch = 0  # AUTH_OK stream_epoch of the current (or last) connection
        self._stats = Stats()
        self._rng = random.Random()

        # The event queue. Batches count against queue_capacity (reading stops while it is
        # full); notices do not, but are capped at the same number (oldest dropped).
        self._events: collections.deque = collections.deque()
        self._queued_batches = 0
        self._queued_notices = 0
        self._event_ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._end_delivered = False

    # ----------------------------------------------------------------------------- public API

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is ConnectionState.CLOSED

    @property
    def auth_info(self) -> AuthInfo:
        """The first connection's AUTH_OK."""
        assert self._auth_info is not None
        return self._auth_info

    @property
    def close_reason(self) -> Optional[Error]:
        """The error that closed the client; None while open or after close()."""
        return self._close_reason

    @property
    def stats(self) -> Stats:
        return replace(self._stats)

    @property
    def subscriptions(self) -> list[int]:
        """Handles of the subscriptions the client holds (and resumes)."""
        return list(self._subs)

    async def subscribe(
        self,
        mode: Union[Mode, str, int],
        topics: Union[str, Sequence[str]],
        *,
        backfill: int = 0,
        since_ms: int = 0,
    ) -> int:
        """Subscribes and returns the subscription's handle (1, 2, ...; stable across
        reconnects, while the server's ids change).

        `backfill` (the N most recent retained records per topic) or `since_ms` (every retained
        record from then on) replay history first. Raises ServerError (INVALID_REQUEST,
        FORBIDDEN) when the server refuses. A connection lost before the reply is retried after
        the reconnect, within request_timeout.
        """
        mode = Mode.parse(mode)
        if isinstance(topics, str):
            topics = [topics]
        topics = tuple(topics)
        spec = _Subscription(
            handle=0,
            mode=mode,
            topics=topics,
            wildcard="*" in topics,
            backfill=int(backfill),
            since_ms=int(since_ms),
            anchor_ms=0,
        )
        deadline = time.monotonic() + self.request_timeout
        while True:
            conn = await self._wait_open(deadline)
            request_id = self._request_id()
            fut = self._expect(request_id, _Pending(self._loop().create_future(), subscribe=spec))
            frame = codec.subscribe(request_id, mode, topics, spec.backfill, spec.since_ms)
            try:
                await self._send(conn, frame, deadline)
                return await self._reply(fut, deadline)
            except TickwireError as e:
                if e.kind is ErrorKind.IO and self.reconnect_options.enabled and not self.closed:
                    continue  # lost before the reply: again on the next connection
                raise
            finally:
                self._pending.pop(request_id, None)

    async def unsubscribe(self, handle: int) -> None:
        """Stops a subscription (records already queued may still arrive) and no longer resumes
        it."""
        if self.closed:
            raise ClientClosed(self._closed_error())
        sub = self._subs.pop(handle, None)
        if sub is None:
            raise TickwireError(
                Error(ErrorKind.INVALID_ARGUMENT, f"no subscription {handle} on this client")
            )
        conn = self._conn
        if sub.server_id and conn is not None and self._state is ConnectionState.OPEN:
            self._write(conn, codec.unsubscribe(self._request_id(), sub.server_id))

    async def publish(self, ticks: Iterable, *, ack: bool = False) -> int:
        """Sends the ticks in one PUBLISH frame (Tick objects or (topic, price, size[, ts_ns])
        tuples; ts_ns 0 lets the server stamp them).

        With ack, waits for PUBLISH_ACK and returns its `accepted` count as a PublishAck (an int
        that also says how many of them were `late`, PROTOCOL.md S8a); without, returns the
        number of ticks once the frame is written. When the server's topic cap refuses ticks for
        new topics, an Error event with code TOPIC_LIMIT says so and `accepted` counts only the
        ticks applied. Raises ServerError (INVALID_REQUEST naming the
        bad tick, FORBIDDEN, UNAVAILABLE) when the server rejects the frame, and TickwireError
        (invalid_argument) for a frame larger than the server's MAX_MSG_SIZE. At most once: a
        frame in flight when the connection breaks is not resent (ConnectionLost).
        """
        deadline = time.monotonic() + self.request_timeout
        conn = await self._wait_open(deadline)
        request_id = self._request_id()
        payload, n = codec.publish_payload(request_id, ticks, ack)
        if len(payload) > conn.max_payload:
            raise TickwireError(
                Error(
                    ErrorKind.INVALID_ARGUMENT,
                    f"PUBLISH of {n} ticks is {len(payload)} bytes, over the server's "
                    f"MAX_MSG_SIZE {conn.max_payload}: publish fewer ticks per call",
                )
            )
        frame = codec.frame(FrameType.PUBLISH, payload)
        if not ack:
            # A rejection (non-fatal ERROR with this request_id) arrives as an Error event.
            await self._send(conn, frame, deadline)
            return n
        fut = self._expect(request_id, _Pending(self._loop().create_future()))
        try:
            await self._send(conn, frame, deadline)
            return await self._reply(fut, deadline)
        finally:
            self._pending.pop(request_id, None)

    async def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; Closed once the client is closed and every event was taken; None
        when `timeout` (seconds) passes first."""
        if not self._events:
            if self._end_delivered:
                return Closed(self._close_reason)
            self._event_ready.clear()
            try:
                await asyncio.wait_for(self._event_ready.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        ev = self._events.popleft()
        if isinstance(ev, Batch):
            self._queued_batches -= 1
            if self._queued_batches <= self._queue_capacity // 2:
                self._space.set()
        elif isinstance(ev, Closed):
            self._end_delivered = True
        else:
            self._queued_notices -= 1
        return ev

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.next_event()
            if isinstance(ev, Closed):
                return
            yield ev

    async def records(self) -> AsyncIterator:
        """Only the records (Tick, Bar), one at a time; ends after close(), raises TickwireError
        when an error closes the client. Other events are skipped."""
        async for ev in self:
            if isinstance(ev, Batch):
                for r in ev.records:
                    yield r
        if self._close_reason is not None:
            raise TickwireError.of(self._close_reason)

    async def close(self) -> None:
        """Closes the connection (idempotent); pending requests fail with ClientClosed."""
        self._close(None)
        sup = self._supervisor
        if sup is not None and sup is not asyncio.current_task():
            await asyncio.wait({sup})

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ----------------------------------------------------------------------- connection setup

    async def _start(self) -> None:
        """First connection: no retry, errors raised to the caller of connect()."""
        try:
            conn = await self._handshake()
        except TickwireError as e:
            self._state = ConnectionState.CLOSED
            self._closed_event.set()
            raise TickwireError.of(e.error) from None
        a = conn.auth_ok
        self._auth_info = AuthInfo(
            session_id=a.session_id,
            heartbeat_interval_ms=a.heartbeat_interval_ms,
            heartbeat_timeout_ms=a.heartbeat_timeout_ms,
            max_msg_size=a.max_msg_size,
            batch_window_ms=a.batch_window_ms,
            server_version=a.server_version,
            protocol_version=a.protocol_version,
            bar_close_delay_ms=a.bar_close_delay_ms,
            watermark_ms=a.watermark_ms,
            stream_epoch=a.stream_epoch,
        )
        self._stream_epoch = a.stream_epoch
        self._conn = conn
        self._set_state(ConnectionState.OPEN)
        self._supervisor = self._loop().create_task(self._supervise(conn))

    async def _handshake(self) -> _Conn:
        """TCP (+TLS) connect, AUTH, AUTH_OK, all within connect_timeout."""
        try:
            return await asyncio.wait_for(self._handshake_steps(), self.connect_timeout)
        except asyncio.TimeoutError:
            raise TickwireError(
                Error(
                    ErrorKind.TIMEOUT,
                    f"no AUTH_OK from {self.host}:{self.port} within {self.connect_timeout} s",
                    fatal=True,
                )
            ) from None

    async def _handshake_steps(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=(self._server_hostname or self.host) if self._ssl else None,
                limit=256 * 1024,
            )
        except (OSError, _ssl.SSLError) as e:
            raise TickwireError(
                Error(ErrorKind.CONNECT, f"connect to {self.host}:{self.port}: {e}", fatal=True)
            ) from None
        try:
            writer.write(codec.auth(self._username, self._password, self._client_name))
            while True:
                ftype, payload = await self._read_frame(reader, codec.MAX_MSG_SIZE_LIMIT)
                if ftype == FrameType.AUTH_OK:
                    auth_ok = codec.auth_ok(payload)
                    break
                if ftype == FrameType.ERROR:
                    e = codec.error(payload)
                    e.fatal = True
                    raise TickwireError(e)
                raise ProtocolViolation(f"frame type {ftype} before AUTH_OK")
        except ProtocolViolation as e:
            writer.transport.abort()
            raise TickwireError(Error(ErrorKind.PROTOCOL, str(e), fatal=True)) from None
        except (asyncio.IncompleteReadError, OSError) as e:
            writer.transport.abort()
            raise TickwireError(
                Error(ErrorKind.IO, f"connection lost during AUTH: {_describe(e)}", fatal=True)
            ) from None
        except BaseException:
            writer.transport.abort()
            raise
        interval = self._heartbeat_override or (auth_ok.heartbeat_interval_ms or 15000) / 1000
        if self._idle_override is not None:
            idle = self._idle_override
        else:
            idle = auth_ok.heartbeat_timeout_ms / 1000
        return _Conn(reader, writer, auth_ok, interval, idle)

    async def _read_frame(self, reader: asyncio.StreamReader, max_payload: int):
        header = await reader.readexactly(4)
        size = codec.parse_header(header, max_payload)
        body = await reader.readexactly(size + 1)
        self._stats.frames_received += 1
        self._stats.bytes_received += size + 5
        return body[0], body[1:]

    # ---------------------------------------------------------------------------- supervision

    async def _supervise(self, conn: _Conn) -> None:
        """Serves the connection; with reconnect enabled, replaces it when it is lost."""
        try:
            serving = self._loop().create_task(self._serve(conn))
            while True:
                reason = await serving
                if self._closing:
                    return
                if not (self.reconnect_options.enabled and _retryable(reason)):
                    self._close(reason)
                    return
                self._disconnected(reason)
                serving = await self._reconnect(reason)
                if serving is None:
                    return
        except asyncio.CancelledError:
            pass
        except Exception as e:  # a bug: close rather than hang with a dead task
            log.exception("tickwire client failed")
            self._close(Error(ErrorKind.PROTOCOL, f"client failure: {e!r}", fatal=True))

    def _disconnected(self, reason: Error) -> None:
        self._drop_connection(reason)
        self._stats.disconnects += 1
        log.info("tickwire: connection lost: %s", reason)
        self._notify(replace(reason, fatal=False, message=reason.message + " (reconnecting)"))
        self._notify(Disconnected(reason))

    async def _reconnect(self, reason: Error) -> Optional[asyncio.Task]:
        """Attempts until a connection is back with every subscription resumed, and returns the
        task serving it; None when the client closed instead."""
        ro = self.reconnect_options
        attempt = 0
        while not self._closing:
            attempt += 1
            if ro.max_attempts and attempt > ro.max_attempts:
                self._close(
                    replace(
                        reason,
                        message=f"gave up reconnecting after {ro.max_attempts} attempts; "
                        f"last error: {reason}",
                    )
                )
                return None
            u = self._rng.random()
            if reason.kind is ErrorKind.SERVER and reason.retry_after_ms:
                delay = retry_after_delay(ro, reason.retry_after_ms, u)
            else:
                delay = backoff_delay(ro, attempt, u)
            self._notify(Reconnecting(attempt, delay, reason))
            await asyncio.sleep(delay)
            if self._closing:
                return None
            self._stats.reconnect_attempts += 1
            try:
                conn = await self._handshake()
            except TickwireError as e:
                reason = e.error
                if not _retryable(reason):
                    self._close(reason)
                    return None
                log.info("tickwire: reconnect attempt %d failed: %s", attempt, reason)
                continue
            self._conn = conn
            previous_epoch = self._stream_epoch
            serving = self._loop().create_task(self._serve(conn))
            lost, resumed = await self._resume(conn, serving, previous_epoch)
            if self._closing:
                serving.cancel()
                return None
            if lost is not None:
                reason = lost
                self._disconnected(lost)
                continue
            self._stats.reconnects += 1
            self._set_state(ConnectionState.OPEN)
            log.info("tickwire: reconnected (attempt %d, %d subscriptions)", attempt, resumed)
            self._notify(Reconnected(attempt, resumed, previous_epoch, self._stream_epoch))
            return serving
        return None

    async def _resume(
        self, conn: _Conn, serving: asyncio.Task, previous_epoch: int
    ) -> tuple[Optional[Error], int]:
        """Re-subscribes everything while `serving` reads the connection (history arrives
        between the replies): a TICK subscription after the last seq of every topic it received
        (resume_after, PROTOCOL.md S8c, read under `previous_epoch`) and from its
        resume_from_ns (the first SUBSCRIBE_OK's, advanced by each resume whose marker came),
        since_ms from what was received for the rest and for bars (or the caller's backfill /
        since_ms again when cut before its history_end). Returns (why the connection was lost
        meanwhile or None, subscriptions resumed)."""
        waits = {}
        lookback_ms = int(round(self.reconnect_options.resume_lookback * 1000))
        for handle, sub in self._subs.items():
            sub.server_id = 0
            # Cut before the end of the caller's history (PROTOCOL.md S8c): topics whose replay
            # was not reached yet get it only from the caller's own backfill or since_ms, so
            # those are asked for again (what came already is dropped as duplicates). Bars
            # cannot combine a backfill with the since_ms that covers the topics already live,
            # so a bar backfill resumes by since_ms as before.
            resend = sub.history_pending and (sub.mode is Mode.TICK or sub.since_ms > 0)
            if resend:
                backfill, since = sub.backfill, sub.since_ms
                self._stats.history_resends += 1
            else:
                backfill = 0
                since = resume_since_ms(
                    sub.since_ms,
                    sub.anchor_ms,
                    self._delivered.newest_point(sub.mode, sub.wildcard, sub.topics),
                    lookback_ms,
                )
            # Ticks resume by the server's numbering, whatever the producers stamped: a tick
            # back-dated while the client was away still comes. Positions take at most half of
            # a frame; topics left out (and topics not received yet) resume by the accept order
            # from the subscription's resume_from_ns and by since_ms.
            positions = []
            resume_from_ns = 0
            if sub.mode is Mode.TICK:
                positions = self._delivered.tick_positions(
                    sub.wildcard, sub.topics, conn.max_payload // 2
                )
                resume_from_ns = sub.resume_from_ns
            request_id = self._request_id()
            waits[handle] = self._expect(
                request_id,
                _Pending(self._loop().create_future(), resume_handle=handle,
                         resent_history=resend),
            )
            self._write(
                conn,
                codec.subscribe(request_id, sub.mode, sub.topics, backfill, since, positions,
                                previous_epoch, resume_from_ns),
            )
        # The positions were read under the old stream; a new one (the server restarted without
        # its history, PROTOCOL.md S7a) numbers every topic from 1 again. Nothing of the new
        # connection was read yet (`serving` has not run).
        self._stream_epoch = conn.auth_ok.stream_epoch
        if self._stream_epoch != previous_epoch:
            self._delivered.reset_tick_numbering()
            self._stats.stream_epoch_changes += 1
        if waits:
            answered = asyncio.gather(*waits.values(), return_exceptions=True)
            done, _ = await asyncio.wait(
                {serving, answered}, timeout=self.request_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                answered.cancel()
                conn.abort(Error(ErrorKind.TIMEOUT, "no reply to a resumed SUBSCRIBE within "
                                 f"{self.request_timeout} s", fatal=True))
                return await serving, 0
            if answered not in done:
                answered.cancel()
        if serving.done():
            return serving.result(), 0
        resumed = sum(1 for h in waits if h in self._subs and self._subs[h].server_id)
        return None, resumed

    async def _serve(self, conn: _Conn) -> Error:
        """Reads and dispatches frames until the connection ends; returns why."""
        heartbeats = self._loop().create_task(self._heartbeats(conn))
        try:
            while True:
                ftype, payload = await self._read_frame(conn.reader, conn.max_payload)
                conn.last_rx = time.monotonic()
                reason = await self._dispatch(conn, ftype, payload)
                if reason is not None:
                    return reason
        except ProtocolViolation as e:
            return Error(ErrorKind.PROTOCOL, str(e), fatal=True)
        except (asyncio.IncompleteReadError, OSError) as e:
            if conn.lost is not None:
                return conn.lost
            return Error(ErrorKind.IO, f"connection lost: {_describe(e)}", fatal=True)
        finally:
            heartbeats.cancel()
            conn.writer.transport.abort()

    async def _heartbeats(self, conn: _Conn) -> None:
        """HEARTBEAT every heartbeat_interval; a connection silent for idle_timeout (heartbeat
        echoes included) is dropped as dead even without a FIN."""
        last_sent = time.monotonic()
        while True:
            now = time.monotonic()
            if (
                conn.idle_timeout > 0
                and not conn.read_paused
                and now - conn.last_rx > conn.idle_timeout
            ):
                conn.abort(
                    Error(
                        ErrorKind.TIMEOUT,
                        f"nothing from the server for {conn.idle_timeout:g} s",
                        fatal=True,
                    )
                )
                return
            if now - last_sent >= conn.heartbeat_interval:
                last_sent = now
                self._stats.heartbeats_sent += 1
                self._write(conn, codec.heartbeat(_now_ms()))
            wake = last_sent + conn.heartbeat_interval
            if conn.idle_timeout > 0:
                wake = min(wake, now + max(conn.idle_timeout / 4, 0.001))
            await asyncio.sleep(max(0.0, wake - time.monotonic()))

    # ------------------------------------------------------------------------------- dispatch

    async def _dispatch(self, conn: _Conn, ftype: int, payload: bytes) -> Optional[Error]:
        """Handles one frame; returns an Error when the connection must end."""
        if ftype == FrameType.DATA_BATCH:
            await self._on_batch(conn, payload)
        elif ftype == FrameType.HEARTBEAT:
            self._stats.heartbeat_echoes += 1
        elif ftype == FrameType.SUBSCRIBE_OK:
            self._on_subscribe_ok(codec.parse(codec.pb.SubscribeOk, payload, "SUBSCRIBE_OK"))
        elif ftype == FrameType.PUBLISH_ACK:
            m = codec.parse(codec.pb.PublishAck, payload, "PUBLISH_ACK")
            p = self._pending.pop(m.request_id, None)
            if p is not None and not p.future.done():
                p.future.set_result(PublishAck(m.accepted, m.late))
        elif ftype == FrameType.ERROR:
            return self._on_error(codec.error(payload))
        elif ftype in _NOT_FROM_SERVER:
            raise ProtocolViolation(f"unexpected {FrameType(ftype).name} from the server")
        else:
            # A frame type this version does not know (a later protocol addition): skipped.
            self._stats.unknown_frames += 1
        return None

    def _on_subscribe_ok(self, m) -> None:
        request_id, server_id = m.request_id, m.subscription_id
        p = self._pending.pop(request_id, None)
        if p is None or p.future.done():
            # Its caller gave up waiting (timeout): nobody holds this subscription.
            if self._conn is not None:
                self._write(self._conn, codec.unsubscribe(self._request_id(), server_id))
            return
        if p.resume_handle:
            sub = self._subs.get(p.resume_handle)
            if sub is not None:
                sub.server_id = server_id
                if sub.mode is Mode.TICK:
                    if not sub.resume_from_ns:
                        sub.resume_from_ns = m.resume_from_ns  # the first one the server gave
                    sub.ok_resume_from_ns = m.resume_from_ns  # taken when its marker arrives
                # A resume that did not ask for the caller's history again waits for none of
                # it (its marker ends the replay of its positions and since_ms only).
                sub.history_pending = p.resent_history and m.history_end
            elif self._conn is not None:  # unsubscribed while its resume was in flight
                self._write(self._conn, codec.unsubscribe(self._request_id(), server_id))
            p.future.set_result(None)
            return
        # Registered here, before any later frame is handled, so that a reconnect right after
        # resumes it.
        spec = p.subscribe
        assert spec is not None
        sub = replace(
            spec,
            handle=self._next_handle,
            server_id=server_id,
            anchor_ms=spec.since_ms if spec.since_ms > 0 else _now_ms(),
            resume_from_ns=m.resume_from_ns if spec.mode is Mode.TICK else 0,
            # A server without end-of-history markers (history_end false) sends none to wait for.
            history_pending=m.history_end and (spec.backfill > 0 or spec.since_ms > 0),
        )
        self._next_handle += 1
        self._subs[sub.handle] = sub
        p.future.set_result(sub.handle)

    def _on_error(self, e: Error) -> Optional[Error]:
        # TOPIC_LIMIT reports refused ticks of a PUBLISH; its PUBLISH_ACK (if asked for) follows
        # and answers the request.
        answers = e.request_id and e.code != ErrorCode.TOPIC_LIMIT
        p = self._pending.pop(e.request_id, None) if answers else None
        if p is not None and not p.future.done():
            if p.resume_handle:
                # The server refuses a subscription it accepted before (permissions changed,
                # ...): it is dropped, and the caller hears why.
                self._subs.pop(p.resume_handle, None)
                self._stats.resubscribe_failures += 1
                self._notify(
                    replace(
                        e,
                        fatal=False,
                        request_id=0,
                        message=f"resuming subscription {p.resume_handle} failed: {e.message}",
                    )
                )
                p.future.set_result(None)
            else:
                p.future.set_exception(TickwireError.of(e))
            return e if e.fatal else None
        if e.fatal:
            return e  # reported as the disconnect or close reason
        self._notify(e)
        return None

    async def _on_batch(self, conn: _Conn, payload: bytes) -> None:
        batch_seq, records, unknown, marks = codec.data_batch(payload)
        self._stats.batches += 1
        self._stats.unknown_records += unknown
        if batch_seq != conn.last_batch_seq + 1:
            self._stats.batch_gaps += 1
            self._notify(
                Error(
                    ErrorKind.BATCH_GAP,
                    f"DATA_BATCH batch_seq {batch_seq} after {conn.last_batch_seq} "
                    f"(expected {conn.last_batch_seq + 1})",
                )
            )
        conn.last_batch_seq = batch_seq
        kept = []
        delivered = self._delivered
        dups_before = delivered.duplicates
        epochs_before = delivered.topic_epoch_changes
        m = 0  # history_end markers keep their place among the records kept
        for i, r in enumerate(records):
            while m < len(marks) and marks[m].record_index <= i:
                marks[m].record_index = len(kept)
                m += 1
            if isinstance(r, Tick):
                new, gap_after = delivered.accept_tick(
                    r.topic, r.seq, r.prev_seq, r.ts_ns, r.topic_epoch
                )
                if gap_after:
                    self._stats.tick_gaps += 1
                    self._notify(TickGap(r.topic, r.seq, r.prev_seq, gap_after))
            elif isinstance(r, Bar):
                new = delivered.accept_bar(r.interval, r.topic, r.start_ms)
            elif isinstance(r, Watermark):
                if not self._watermarks:
                    continue
                # A resumed connection may repeat the last one: keep them ascending.
                last = self._last_watermark.get(r.interval)
                new = last is None or r.start_ms > last
                if new:
                    self._last_watermark[r.interval] = r.start_ms
            else:
                new = True  # a record kind without a resume position
            if new:
                kept.append(r)
        for mark in marks[m:]:
            mark.record_index = len(kept)
        self._stats.duplicates_dropped += delivered.duplicates - dups_before
        self._stats.topic_epoch_changes += delivered.topic_epoch_changes - epochs_before
        history_ends = self._history_ends(marks)
        if not kept and not history_ends:
            return
        self._stats.records += len(kept)
        self._stats.history_ends += len(history_ends)
        # Backpressure: while the queue holds queue_capacity batches, stop reading the socket
        # (the server's slow-consumer rule then applies, as for any consumer that stops reading).
        if self._queued_batches >= self._queue_capacity:
            conn.read_paused = True
            self._stats.read_pauses += 1
            while self._queued_batches >= self._queue_capacity and not self._closing:
                self._space.clear()
                await self._space.wait()
            conn.read_paused = False
            conn.last_rx = time.monotonic()
            if self._closing:
                return
        self._queued_batches += 1
        self._events.append(Batch(batch_seq, kept, history_ends))
        self._event_ready.set()

    def _history_ends(self, marks: list) -> list:
        """The markers with the client's handle for the server's subscription_id; those of
        subscriptions dropped meanwhile are left out."""
        by_server_id = {sub.server_id: handle for handle, sub in self._subs.items()
                        if sub.server_id}
        out = []
        for mark in marks:
            handle = by_server_id.get(mark.subscription)
            if handle is not None:
                mark.subscription = handle
                sub = self._subs[handle]
                sub.history_pending = False  # its history is all here
                # Everything accepted before this resume's resume_from_ns has now been received
                # or reported: later resumes start there (PROTOCOL.md S8c).
                if sub.ok_resume_from_ns > sub.resume_from_ns:
                    sub.resume_from_ns = sub.ok_resume_from_ns
                out.append(mark)
        return out

    # -------------------------------------------------------------------------------- helpers

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _set_state(self, state: ConnectionState) -> None:
        self._state = state
        if state is ConnectionState.OPEN:
            self._open.set()
        else:
            self._open.clear()

    def _request_id(self) -> int:
        self._next_request_id = self._next_request_id % 0xFFFFFFFF + 1  # 1 .. 2^32-1
        return self._next_request_id

    def _expect(self, request_id: int, pending: _Pending) -> asyncio.Future:
        self._pending[request_id] = pending
        return pending.future

    def _closed_error(self) -> Error:
        if self._close_reason is not None:
            return replace(self._close_reason, kind=ErrorKind.CLOSED, request_id=0,
                           message=f"client closed: {self._close_reason}")
        return Error(ErrorKind.CLOSED, "client closed", fatal=True)

    async def _wait_open(self, deadline: float) -> _Conn:
        """The current connection once it is open, waiting for a reconnect until `deadline`."""
        while True:
            if self.closed:
                raise ClientClosed(self._closed_error())
            if self._state is ConnectionState.OPEN and self._conn is not None:
                return self._conn
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TickwireError.of(
                    Error(ErrorKind.TIMEOUT, "not connected: still reconnecting")
                )
            waiter = self._loop().create_task(self._open.wait())
            closed = self._loop().create_task(self._closed_event.wait())
            await asyncio.wait({waiter, closed}, timeout=remaining,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            closed.cancel()

    def _write(self, conn: _Conn, frame: bytes) -> None:
        transport = conn.writer.transport
        if not transport.is_closing():
            conn.writer.write(frame)

    async def _send(self, conn: _Conn, frame: bytes, deadline: float) -> None:
        """Writes a request frame, waiting for the socket to take it (backpressure)."""
        if conn is not self._conn or conn.writer.transport.is_closing():
            raise TickwireError.of(Error(ErrorKind.IO, "connection lost before the request"))
        conn.writer.write(frame)
        try:
            await asyncio.wait_for(conn.writer.drain(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise TickwireError.of(
                Error(ErrorKind.TIMEOUT, "the server did not take the request in time")
            ) from None
        except (OSError, RuntimeError) as e:
            raise TickwireError.of(Error(ErrorKind.IO, f"write: {_describe(e)}")) from None

    async def _reply(self, fut: asyncio.Future, deadline: float):
        try:
            return await asyncio.wait_for(
                asyncio.shield(fut), max(0.0, deadline - time.monotonic())
            )
        except asyncio.TimeoutError:
            raise TickwireError.of(
                Error(ErrorKind.TIMEOUT, f"no reply within {self.request_timeout} s")
            ) from None

    def _notify(self, ev: Event) -> None:
        """Queues an event that is not a batch (never blocks: the oldest notice is dropped when
        queue_capacity notices wait)."""
        if self._state is ConnectionState.CLOSED:
            return
        if self._queued_notices >= self._queue_capacity:
            for i, old in enumerate(self._events):
                if not isinstance(old, (Batch, Closed)):
                    del self._events[i]
                    self._queued_notices -= 1
                    self._stats.dropped_events += 1
                    break
        self._events.append(ev)
        self._queued_notices += 1
        self._event_ready.set()

    def _fail_pending(self, error: Error) -> None:
        pending, self._pending = self._pending, {}
        for request_id, p in pending.items():
            if not p.future.done():
                p.future.set_exception(TickwireError.of(replace(error, request_id=request_id)))

    def _drop_connection(self, reason: Error) -> None:
        """Closes the socket and fails what waited on it; subscriptions and what was delivered
        stay."""
        self._set_state(ConnectionState.RECONNECTING)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort(reason)
        self._fail_pending(
            Error(ErrorKind.IO, f"connection lost before the reply ({reason})")
        )
        for sub in self._subs.values():
            sub.server_id = 0

    def _close(self, reason: Optional[Error]) -> None:
        if self._state is ConnectionState.CLOSED or self._closing:
            return
        self._closing = True
        if reason is not None:
            reason = replace(reason, fatal=True)
            log.info("tickwire: closed: %s", reason)
            self._notify(reason)
        self._close_reason = reason
        self._set_state(ConnectionState.CLOSED)
        self._fail_pending(self._closed_error())
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort(Error(ErrorKind.CLOSED, "client closed", fatal=True))
        self._space.set()
        self._events.append(Closed(reason))
        self._event_ready.set()
        self._closed_event.set()
        sup = self._supervisor
        if sup is not None and sup is not asyncio.current_task() and not sup.done():
            sup.cancel()


def _describe(e: BaseException) -> str:
    if isinstance(e, asyncio.IncompleteReadError):
        return "end of stream"
    return str(e) or type(e).__name__


async def connect(
    host: str,
    port: int,
    user: str,
    password: str,
    **options,
) -> AsyncClient:
    """Connects, sends AUTH and waits for AUTH_OK; raises ServerError (AUTH_FAILED,
    AUTH_RATE_LIMITED, ...) or TickwireError (connect, timeout) without retrying.

    Options (keywords): client_name, ssl (True or an SSLContext), ca_file, cert_file, key_file,
    server_hostname, connect_timeout, request_timeout, heartbeat_interval (default: the
    server's), idle_timeout (default: the server's heartbeat timeout; 0 = off), reconnect (True,
    False or ReconnectOptions), queue_capacity, watermarks (True: Watermark records in batches,
    PROTOCOL.md S8d). Times are in seconds.
    """
    client = AsyncClient(host, port, user, password, **options)
    await client._start()
    return client
