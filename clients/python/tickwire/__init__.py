"""Python client for tickwire stream servers (docs/PROTOCOL.md).

asyncio:

    async with await tickwire.connect("127.0.0.1", 7878, "demo", "demo-pass") as client:
        await client.subscribe("tick", ["AAPL"])
        await client.publish([("AAPL", 187.25, 100)], ack=True)
        async for event in client:
            ...

Blocking (scripts, notebooks):

    with tickwire.Client("127.0.0.1", 7878, "demo", "demo-pass") as client:
        client.subscribe("second", ["*"], backfill=10)
        for bar in client.records(timeout=5):
            ...
"""

from .aio import AsyncClient, connect, make_ssl_context
from .records import (
    AuthInfo,
    Bar,
    Batch,
    ClientClosed,
    Closed,
    ConnectionLost,
    ConnectionState,
    Disconnected,
    Error,
    ErrorCode,
    ErrorKind,
    Event,
    HistoryEnd,
    LostRange,
    Mode,
    PublishAck,
    Reconnected,
    Reconnecting,
    RequestTimeout,
    ServerError,
    Stats,
    Tick,
    TickGap,
    TickwireError,
    Watermark,
)
from .resume import ReconnectOptions
from .sync import Client

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AuthInfo",
    "Bar",
    "Batch",
    "Client",
    "ClientClosed",
    "Closed",
    "ConnectionLost",
    "ConnectionState",
    "Disconnected",
    "Error",
    "ErrorCode",
    "ErrorKind",
    "Event",
    "HistoryEnd",
    "LostRange",
    "Mode",
    "PublishAck",
    "ReconnectOptions",
    "Reconnected",
    "Reconnecting",
    "RequestTimeout",
    "ServerError",
    "Stats",
    "Tick",
    "TickGap",
    "TickwireError",
    "Watermark",
    "connect",
    "make_ssl_context",
]
