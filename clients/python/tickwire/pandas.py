"""pandas helpers (optional: `pip install 'tickwire[pandas]'`, or Debian's python3-pandas).

    frame = tickwire.pandas.bars_to_frame(bars)

pandas is imported when a helper is called, so `import tickwire` works without it.
"""

from __future__ import annotations

from typing import Iterable

from .records import Bar, Batch, Mode, Tick

__all__ = ["bars_to_frame", "ticks_to_frame"]

_BAR_COLUMNS = ["topic", "interval", "open", "high", "low", "close", "volume", "count", "vwap"]
_TICK_COLUMNS = ["topic", "price", "size", "seq", "prev_seq"]


def _pandas():
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "tickwire.pandas needs pandas, which is not installed: "
            "pip install 'tickwire[pandas]' (or apt install python3-pandas)"
        ) from e
    return pandas


def _flatten(items: Iterable, kind: type) -> list:
    out = []
    for item in items:
        if isinstance(item, kind):
            out.append(item)
        elif isinstance(item, Batch):
            out.extend(r for r in item.records if isinstance(r, kind))
        else:
            raise TypeError(f"expected {kind.__name__} or Batch, got {type(item).__name__}")
    return out


def _utc_index(pd, values: list, unit: str, name: str):
    """A UTC DatetimeIndex from integer times (exact: pandas keeps int64 nanoseconds)."""
    return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True), name=name)


def bars_to_frame(bars: Iterable):
    """A DataFrame of bars (Bar objects, or Batches whose bars are taken), one row each, in the
    order given.

    Index `start`: the bucket start as a DatetimeIndex in UTC (exact: start_ms is whole
    milliseconds). Columns: topic, interval ("second" or "minute"), open, high, low, close,
    volume, count (int64), vwap.
    """
    pd = _pandas()
    rows = _flatten(bars, Bar)
    index = _utc_index(pd, [b.start_ms for b in rows], "ms", "start")
    data = {
        "topic": [b.topic for b in rows],
        "interval": [
            b.interval.name.lower() if isinstance(b.interval, Mode) else str(b.interval)
            for b in rows
        ],
        "open": [b.open for b in rows],
        "high": [b.high for b in rows],
        "low": [b.low for b in rows],
        "close": [b.close for b in rows],
        "volume": [b.volume for b in rows],
        "count": pd.array([b.count for b in rows], dtype="int64"),
        "vwap": [b.vwap for b in rows],
    }
    frame = pd.DataFrame(data, index=index, columns=_BAR_COLUMNS)
    return frame.astype({c: "float64" for c in ("open", "high", "low", "close", "volume", "vwap")})


def ticks_to_frame(ticks: Iterable):
    """A DataFrame of ticks (Tick objects, or Batches whose ticks are taken).

    Index `time`: ts_ns as a DatetimeIndex in UTC (nanoseconds, exact). Columns: topic, price,
    size, seq and prev_seq (uint64).
    """
    pd = _pandas()
    rows = _flatten(ticks, Tick)
    index = _utc_index(pd, [t.ts_ns for t in rows], "ns", "time")
    data = {
        "topic": [t.topic for t in rows],
        "price": pd.array([t.price for t in rows], dtype="float64"),
        "size": pd.array([t.size for t in rows], dtype="float64"),
        "seq": pd.array([t.seq for t in rows], dtype="uint64"),
        "prev_seq": pd.array([t.prev_seq for t in rows], dtype="uint64"),
    }
    return pd.DataFrame(data, index=index, columns=_TICK_COLUMNS)
