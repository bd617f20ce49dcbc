"""tickwire.pandas: bars and ticks from the real server as DataFrames."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import tickwire
from tickwire.pandas import bars_to_frame, ticks_to_frame

from conftest import fresh_second_ns
from server import PASSWORD, USER


def test_bars_to_frame(server, topic):
    with tickwire.Client("127.0.0.1", server.port, USER, PASSWORD) as client:
        client.subscribe("second", [topic + ".X", topic + ".Y"])
        cur = fresh_second_ns()
        client.publish([(topic + ".X", 10.0, 1.0, cur), (topic + ".X", 12.0, 3.0, cur + 5),
                        (topic + ".Y", 2.5, 4.0, cur + 7)], ack=True)
        bars = []
        for bar in client.records(timeout=3):
            bars.append(bar)
            if len(bars) == 2:
                break
    frame = bars_to_frame(sorted(bars, key=lambda b: b.topic))
    assert list(frame.columns) == ["topic", "interval", "open", "high", "low", "close", "volume",
                                   "count", "vwap"]
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index.name == "start"
    assert (frame.index == pd.Timestamp(cur // 1_000_000, unit="ms", tz="UTC")).all()
    x = frame.iloc[0]
    assert (x.topic, x.interval, x.open, x.high, x.low, x.close, x.volume, x["count"]) == (
        topic + ".X", "second", 10.0, 12.0, 10.0, 12.0, 4.0, 2)
    assert x.vwap == pytest.approx(11.5)
    assert str(frame["count"].dtype) == "int64"
    assert frame.iloc[1].topic == topic + ".Y"


def test_ticks_to_frame_keeps_nanoseconds(server, topic):
    ts = time.time_ns() - 1_000_000_007
    with tickwire.Client("127.0.0.1", server.port, USER, PASSWORD) as client:
        client.subscribe("tick", [topic])
        client.publish([(topic, 1.5, 2.0, ts), (topic, 1.75, 1.0, ts + 1)], ack=True)
        batches = []
        for ev in client.events(timeout=3):
            if isinstance(ev, tickwire.Batch):
                batches.append(ev)
                if sum(len(b.records) for b in batches) == 2:
                    break
    frame = ticks_to_frame(batches)  # Batches are flattened
    assert [t.value for t in frame.index] == [ts, ts + 1]  # exact ns
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert list(frame["seq"]) == [1, 2] and str(frame["seq"].dtype) == "uint64"


def test_empty_and_wrong_input():
    assert len(bars_to_frame([])) == 0
    with pytest.raises(TypeError, match="expected Bar or Batch, got Tick"):
        bars_to_frame([tickwire.Tick("A", 1.0, 1.0)])


def test_clear_error_without_pandas():
    code = ("import sys; sys.modules['pandas'] = None\n"
            "import tickwire, tickwire.pandas\n"
            "try:\n"
            "    tickwire.pandas.bars_to_frame([])\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert "tickwire.pandas needs pandas" in out.stdout
    assert "pip install 'tickwire[pandas]'" in out.stdout
