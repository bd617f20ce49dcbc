"""The values the client hands out: records (Tick, Bar), events and errors.

Every int64/uint64 of the wire (ts_ns, seq, start_ms, count) is a Python int, so it is exact.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Optional, Union

__all__ = [
    "Mode",
    "ErrorCode",
    "ErrorKind",
    "ConnectionState",
    "Tick",
    "Bar",
    "Batch",
    "LostRange",
    "HistoryEnd",
    "PublishAck",
    "Error",
    "TickGap",
    "Disconnected",
    "Reconnecting",
    "Reconnected",
    "Closed",
    "Event",
    "AuthInfo",
    "Stats",
    "TickwireError",
    "ServerError",
    "ConnectionLost",
    "ClientClosed",
    "RequestTimeout",
    "error_code",
]


class Mode(enum.IntEnum):
    """Subscription modes; the numbers are the wire enum `Mode`."""

    SECOND = 1  # one closed bar per topic per UTC second
    MINUTE = 2  # one closed bar per topic per UTC minute
    TICK = 3  # every published tick

    @classmethod
    def parse(cls, value: Union["Mode", str, int]) -> "Mode":
        """Mode.SECOND, 1, "second" and "SECOND" all give Mode.SECOND."""
        if isinstance(value, Mode):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(f"unknown mode {value!r} (second, minute or tick)") from None
        return cls(value)

    @property
    def interval_ms(self) -> int:
        """Bucket length of a bar mode; 0 for TICK."""
        return {Mode.SECOND: 1000, Mode.MINUTE: 60000}.get(self, 0)


class ErrorCode(enum.IntEnum):
    """Wire error codes. Servers may add codes: `error_code()` keeps unknown ones as plain ints."""

    ERROR_CODE_UNSPECIFIED = 0
    AUTH_REQUIRED = 1
    AUTH_FAILED = 2
    AUTH_RATE_LIMITED = 3
    AUTH_TIMEOUT = 4
    MALFORMED_FRAME = 5
    FRAME_TOO_LARGE = 6
    UNKNOWN_FRAME_TYPE = 7
    INVALID_REQUEST = 8
    FORBIDDEN = 9
    HEARTBEAT_TIMEOUT = 10
    SLOW_CONSUMER = 11
    SERVER_DRAINING = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    TOPIC_LIMIT = 15  # ticks for new topics refused by the topic cap: a report, not an answer


def error_code(value: int) -> Union[ErrorCode, int]:
    """The ErrorCode for `value`, or `value` itself when this version does not know it."""
    try:
        return ErrorCode(value)
    except ValueError:
        return int(value)


def code_name(code: Union[ErrorCode, int]) -> str:
    return code.name if isinstance(code, ErrorCode) else f"CODE_{int(code)}"


class ErrorKind(str, enum.Enum):
    """Where an error came from."""

    SERVER = "server"  # an ERROR frame from the server (`code` says which)
    CONNECT = "connect"  # resolving, TCP or TLS connect failed
    TIMEOUT = "timeout"  # connect, a reply, or an idle connection took too long
    IO = "io"  # the connection broke (EOF, reset, write failure)
    PROTOCOL = "protocol"  # the server sent something the protocol does not allow
    BATCH_GAP = "batch_gap"  # DATA_BATCH batch_seq skipped a number
    INVALID_ARGUMENT = "invalid_argument"  # a call the client refuses before sending anything
    CLOSED = "closed"  # the client is closed


class ConnectionState(str, enum.Enum):
    CONNECTING = "connecting"  # connect() has not returned yet
    OPEN = "open"  # connected, authenticated, every subscription (re)established
    RECONNECTING = "reconnecting"  # lost: waiting, connecting, authenticating or resubscribing
    CLOSED = "closed"  # for good: close(), an error retrying cannot fix, or reconnect gave up


@dataclass(slots=True)
class Tick:
    """A tick as published (seq/prev_seq are set by the server) or as delivered."""

    topic: str
    price: float
    size: float
    ts_ns: int = 0  # ns since the Unix epoch; 0 on publish = the server stamps its receive time
    seq: int = 0  # per topic, strictly increasing (set by the server)
    prev_seq: int = 0  # seq of the topic's previous tick, 0 for its first
    # The incarnation of the topic's numbering (PROTOCOL.md S7a, set by the server; 0 from
    # servers without epochs): seqs compare only within one topic_epoch.
    topic_epoch: int = 0

    @property
    def time(self) -> _dt.datetime:
        """ts_ns as an aware UTC datetime (microsecond precision; ts_ns itself is exact)."""
        return _utc(self.ts_ns // 1000, 1_000_000)


@dataclass(slots=True)
class Bar:
    """A closed SECOND or MINUTE bar: OHLC, volume, count and vwap of a topic's bucket."""

    topic: str
    interval: Mode
    start_ms: int  # bucket start, ms since the Unix epoch, aligned to the UTC second/minute
    open: float
    high: float
    low: float
    close: float
    volume: float  # sum of tick sizes
    count: int  # number of ticks
    vwap: float  # sum(price*size)/volume; 0 when volume is 0

    @property
    def start(self) -> _dt.datetime:
        """start_ms as an aware UTC datetime."""
        return _utc(self.start_ms, 1000)


@dataclass(slots=True)
class Watermark:
    """The interval starting at start_ms, and every earlier one, is final on this connection
    (PROTOCOL.md S8d): every bar of it came before this record, so a subscribed topic without a
    bar for it had no trade in it. One per interval on a connection with a SECOND (MINUTE)
    subscription, also when nothing traded."""

    interval: Mode
    start_ms: int  # start of the newest final interval, ms since the Unix epoch

    @property
    def start(self) -> _dt.datetime:
        """start_ms as an aware UTC datetime."""
        return _utc(self.start_ms, 1000)


def _utc(value: int, per_second: int) -> _dt.datetime:
    seconds, rest = divmod(value, per_second)
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc) + _dt.timedelta(
        microseconds=rest * (1_000_000 // per_second)
    )


@dataclass(slots=True)
class LostRange:
    """Ticks of `topic` a resume will not deliver: seqs from_seq..to_seq (inclusive; to_seq 0:
    to the end of that numbering) of the numbering `topic_epoch`."""

    topic: str
    from_seq: int
    to_seq: int
    topic_epoch: int = 0


@dataclass(slots=True)
class HistoryEnd:
    """The end of one subscription's history replay (PROTOCOL.md S8c): every replayed record
    of the subscription came before it, what follows is live. Once per subscribe() with backfill
    or since_ms, and once per resume after a reconnect (from servers with the extension)."""

    subscription: int  # the handle subscribe() returned
    truncated: bool = False  # something asked for was not replayed (one of the three below)
    retention: bool = False  # the server's history no longer held records asked for
    backfill_limit: bool = False  # the server's MAX_BACKFILL_RECORDS cut the replay
    epoch_changed: bool = False  # a resume position belonged to another stream or topic epoch
    lost: list = field(default_factory=list)  # of LostRange: ticks a resume will not deliver
    lost_omitted: int = 0  # further lost ranges the server knew of but did not list
    record_index: int = 0  # where it sat in its Batch: after records[:record_index]


@dataclass(slots=True)
class Batch:
    """One DATA_BATCH with the records not delivered before (resume duplicates removed).

    Records of kinds this version does not know (newer servers) are skipped and counted in
    Stats.unknown_records.
    """

    batch_seq: int
    records: list  # of Tick, Bar and Watermark
    # End-of-history markers in this batch, in order (each with its place among `records`).
    history_ends: list = field(default_factory=list)  # of HistoryEnd


class PublishAck(int):
    """What publish(ack=True) returns: the number of ticks accepted (it is that int), and
    `late`, how many of them were late (folded into no bar, PROTOCOL.md S8a; 0 from servers
    without the extension)."""

    late: int

    def __new__(cls, accepted: int, late: int = 0) -> "PublishAck":
        obj = super().__new__(cls, accepted)
        obj.late = late
        return obj

    @property
    def accepted(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"PublishAck(accepted={int(self)}, late={self.late})"


@dataclass(slots=True)
class Error:
    """An error: an ERROR from the server, or one the client detected.

    As an event it reports something that answers no request: a non-fatal ERROR, a lost
    connection (fatal=False while reconnecting), a subscription the server refused on resume, or
    (fatal=True) the error that closed the client.
    """

    kind: ErrorKind
    message: str
    code: Union[ErrorCode, int] = ErrorCode.ERROR_CODE_UNSPECIFIED
    fatal: bool = False
    request_id: int = 0
    retry_after_ms: int = 0

    @property
    def code_name(self) -> str:
        return code_name(self.code)

    def __str__(self) -> str:
        text = f"{self.code_name}: {self.message}" if self.kind is ErrorKind.SERVER else (
            f"{self.kind.value}: {self.message}"
        )
        if self.retry_after_ms:
            text += f" (retry after {self.retry_after_ms} ms)"
        return text


@dataclass(slots=True)
class TickGap:
    """A tick whose prev_seq is not the last seq received on its topic: ticks were missed
    (PROTOCOL.md S7), for example because they fell out of the server's retention during an
    outage. Sent just before the batch that holds the tick."""

    topic: str
    seq: int
    prev_seq: int
    last_seq: int  # the last seq received on the topic before this tick


@dataclass(slots=True)
class Disconnected:
    """The connection was lost; the client reconnects (reconnect enabled)."""

    reason: Error


@dataclass(slots=True)
class Reconnecting:
    """Reconnect attempt `attempt` (1-based) starts after `delay` seconds."""

    attempt: int
    delay: float
    reason: Error  # the last failure


@dataclass(slots=True)
class Reconnected:
    """Attempt `attempt` succeeded and `resubscribed` subscriptions were resumed."""

    attempt: int
    resubscribed: int
    # The server's AUTH_OK stream_epoch before and after (PROTOCOL.md S7a): when they differ
    # the server restarted without its history and ticks are numbered from 1 again.
    previous_stream_epoch: int = 0
    stream_epoch: int = 0

    @property
    def stream_epoch_changed(self) -> bool:
        return self.previous_stream_epoch != self.stream_epoch


@dataclass(slots=True)
class Closed:
    """The client is closed: the last event. `reason` is None after close()."""

    reason: Optional[Error] = None


Event = Union[Batch, Error, TickGap, Disconnected, Reconnecting, Reconnected, Closed]


@dataclass(slots=True)
class AuthInfo:
    """The server's AUTH_OK of the first connection."""

    session_id: str
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    max_msg_size: int
    batch_window_ms: int
    server_version: str
    protocol_version: int
    bar_close_delay_ms: int = 0  # BAR_CLOSE_DELAY_MS (0 from servers without watermarks)
    watermark_ms: int = 0  # the SECOND watermark when the session began (0: none yet)
    stream_epoch: int = 0  # names the server's numbering (PROTOCOL.md S7a; 0: none)


@dataclass(slots=True)
class Stats:
    """Counters for monitoring and tests."""

    frames_received: int = 0
    bytes_received: int = 0
    batches: int = 0
    records: int = 0  # records delivered (after duplicate filtering)
    batch_gaps: int = 0  # batch_seq discontinuities on one connection
    read_pauses: int = 0  # times reading stopped because the event queue was full
    dropped_events: int = 0  # notices dropped because nobody read the queue
    heartbeats_sent: int = 0
    unknown_records: int = 0  # records of kinds this version does not know (skipped)
    unknown_frames: int = 0  # frames of types this version does not know (skipped)
    disconnects: int = 0  # established connections lost
    reconnect_attempts: int = 0  # connection attempts after a loss
    reconnects: int = 0  # attempts that ended with every subscription resumed
    resubscribe_failures: int = 0  # subscriptions the server refused on resume (dropped)
    duplicates_dropped: int = 0  # records already delivered, filtered out
    tick_gaps: int = 0  # ticks whose prev_seq was not the last seq seen (TickGap events)
    heartbeat_echoes: int = 0  # HEARTBEAT replies received
    history_ends: int = 0  # end-of-history markers delivered
    topic_epoch_changes: int = 0  # ticks that started a new topic_epoch on a known topic
    stream_epoch_changes: int = 0  # reconnects that found another stream_epoch
    history_resends: int = 0  # resumes that asked again for a history cut before its end


class TickwireError(Exception):
    """Raised by the client's calls. `error` holds the details (kind, code, fatal, ...)."""

    def __init__(self, error: Error):
        super().__init__(str(error))
        self.error = error

    @property
    def kind(self) -> ErrorKind:
        return self.error.kind

    @property
    def code(self) -> Union[ErrorCode, int]:
        return self.error.code

    @property
    def fatal(self) -> bool:
        return self.error.fatal

    @property
    def retry_after_ms(self) -> int:
        return self.error.retry_after_ms

    @staticmethod
    def of(error: Error) -> "TickwireError":
        """The exception class that fits `error`."""
        cls = {
            ErrorKind.SERVER: ServerError,
            ErrorKind.IO: ConnectionLost,
            ErrorKind.CLOSED: ClientClosed,
            ErrorKind.TIMEOUT: RequestTimeout,
        }.get(error.kind, TickwireError)
        return cls(error)


class ServerError(TickwireError):
    """The server answered with an ERROR (AUTH_FAILED, INVALID_REQUEST, FORBIDDEN, ...)."""


class ConnectionLost(TickwireError):
    """The connection broke before the reply came (an acked publish is not resent)."""


class ClientClosed(TickwireError):
    """The client is closed."""


class RequestTimeout(TickwireError):
    """No reply (or no connection) within the timeout."""
