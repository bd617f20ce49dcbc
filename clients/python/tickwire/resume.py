"""The pure parts of reconnect and resume (no sockets), the same rules as the C++ client
(docs/CLIENT.md, "Reconnect and resume"): backoff delays, the per-topic record of what was
delivered (duplicate filter and gap detection) and the since_ms a subscription resumes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from .records import Mode

__all__ = [
    "ReconnectOptions",
    "backoff_delay",
    "retry_after_delay",
    "tick_point_ms",
    "resume_since_ms",
    "DeliveredState",
    "covers_topic",
]


@dataclass
class ReconnectOptions:
    """How the client reconnects after losing its connection. Times are in seconds."""

    enabled: bool = True
    # Attempt n (1-based) waits initial_backoff * multiplier**(n-1), capped at max_backoff, less
    # a random share of up to `jitter` of it (0.5: uniformly in [d/2, d]), so that clients
    # dropped together do not come back together.
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5
    # Consecutive failed attempts after which the client gives up and closes; 0 = never.
    max_attempts: int = 0
    # A resumed subscription asks for records from this long before the newest one it received,
    # to cover other topics' records that were in flight when the connection broke and ticks
    # stamped out of order by producers; the duplicates this brings are dropped.
    resume_lookback: float = 1.0


def _clamp01(v: float) -> float:
    return min(1.0, max(0.0, v))


def backoff_delay(options: ReconnectOptions, attempt: int, u: float) -> float:
    """Seconds before reconnect attempt `attempt` (1-based); `u` is uniform in [0, 1)."""
    initial = max(0.0, options.initial_backoff)
    cap = max(initial, options.max_backoff)
    multiplier = max(1.0, options.multiplier)
    d = initial
    for _ in range(1, attempt):
        if d >= cap:
            break
        d *= multiplier
    d = min(d, cap)
    return d * (1.0 - _clamp01(options.jitter) * _clamp01(u))


def retry_after_delay(options: ReconnectOptions, retry_after_ms: int, u: float) -> float:
    """Seconds to wait when the server said when to come back (ERROR retry_after_ms): never
    sooner, spread up to `jitter` later so that drained clients do not return at once."""
    return retry_after_ms / 1000.0 * (1.0 + _clamp01(options.jitter) * _clamp01(u))


def tick_point_ms(ts_ns: int) -> int:
    """A tick's resume point: floor(ts_ns / 1e6), the value PROTOCOL.md S8b compares with
    since_ms."""
    return ts_ns // 1_000_000


def resume_since_ms(
    user_since_ms: int, anchor_ms: int, newest_point_ms: Optional[int], lookback_ms: int
) -> int:
    """since_ms for re-subscribing.

    `newest_point_ms` is the newest point the subscription received (None: none), `anchor_ms`
    when it started (the caller's since_ms, or the client's clock at its first SUBSCRIBE_OK),
    `user_since_ms` the caller's own since_ms (0: none), below which it never goes. Always >= 1,
    because since_ms 0 means "no history".
    """
    start = anchor_ms if newest_point_ms is None else max(anchor_ms, newest_point_ms)
    since = start - max(0, lookback_ms)
    if user_since_ms > 0:
        since = max(since, user_since_ms)
    return max(since, 1)


def covers_topic(wildcard: bool, topics: Iterable[str], topic: str) -> bool:
    """Whether a subscription to `topics` (`*` when `wildcard`; prefix patterns "FX.*"
    included) covers `topic`."""
    if wildcard:
        return True
    for t in topics:
        if t == topic or (len(t) >= 2 and t.endswith(".*") and topic.startswith(t[:-1])):
            return True
    return False


# Encoded size of a ResumePoint beyond its topic: tags, lengths and two varints, at most.
_POSITION_OVERHEAD = 26


class _TickState:
    __slots__ = ("last_seq", "max_ts_ns", "epoch")

    def __init__(self) -> None:
        self.last_seq = 0
        self.max_ts_ns = 0
        self.epoch = 0  # topic_epoch of last_seq


class DeliveredState:
    """Per (mode, topic), the last record handed to the user.

    A resume re-sends what the client may already have; this drops those duplicates: a tick
    whose seq is not above the last seq of its topic, a bar whose start_ms is not above the last
    one of its topic and interval. About 100 bytes per distinct topic received per mode.
    """

    def __init__(self) -> None:
        self._ticks: dict[str, _TickState] = {}
        self._bars: dict[Mode, dict[str, int]] = {Mode.SECOND: {}, Mode.MINUTE: {}}
        self._newest: dict[Mode, int] = {}
        self.duplicates = 0
        self.tick_gaps = 0
        self.renumbered = 0
        self.topic_epoch_changes = 0

    def accept_tick(
        self, topic: str, seq: int, prev_seq: int, ts_ns: int, topic_epoch: int = 0
    ) -> tuple[bool, int]:
        """(new?, the last seq seen before it when it reveals a gap, else 0).

        A tick with prev_seq 0 and a ts_ns newer than anything seen on its topic starts a fresh
        numbering (a restarted server that kept no history): it is new, and the topic's seq
        starts over from it. So does a tick whose topic_epoch differs from the last one seen on
        its topic (both non-zero): a new incarnation of the topic's numbering (PROTOCOL.md S7a).
        """
        s = self._ticks.get(topic)
        if s is None:
            s = self._ticks[topic] = _TickState()
        if topic_epoch and s.epoch and topic_epoch != s.epoch:
            self.topic_epoch_changes += 1  # its seqs do not compare with the old ones
            s.last_seq = 0
        if topic_epoch:
            s.epoch = topic_epoch
        gap_after = 0
        if s.last_seq != 0 and seq <= s.last_seq:
            if prev_seq != 0 or ts_ns <= s.max_ts_ns:
                self.duplicates += 1
                return False, 0
            self.renumbered += 1
        elif s.last_seq != 0 and prev_seq != s.last_seq:
            self.tick_gaps += 1
            gap_after = s.last_seq
        s.last_seq = seq
        s.max_ts_ns = max(s.max_ts_ns, ts_ns)
        self._take(Mode.TICK, tick_point_ms(ts_ns))
        return True, gap_after

    def reset_tick_numbering(self) -> None:
        """The server's stream epoch changed (PROTOCOL.md S7a): every topic's numbering starts
        over, so the seqs seen so far no longer mark duplicates. Bar positions stay (start_ms is
        wall time)."""
        for s in self._ticks.values():
            s.last_seq = 0
            s.epoch = 0

    def tick_positions(
        self, wildcard: bool, topics: Iterable[str], max_bytes: int
    ) -> list[tuple[str, int, int]]:
        """Resume positions (PROTOCOL.md S8c) as (topic, after_seq, topic_epoch) of the topics a
        TICK subscription to `topics` has received ticks of, in topic order, at most `max_bytes`
        of them by their encoded size (the rest resume by since_ms)."""
        topics = list(topics)
        out = sorted(
            (topic, s.last_seq, s.epoch)
            for topic, s in self._ticks.items()
            if s.last_seq and covers_topic(wildcard, topics, topic)
        )
        used = 0
        keep = 0
        for topic, _, _ in out:
            cost = len(topic.encode()) + _POSITION_OVERHEAD
            if used + cost > max_bytes:
                break
            used += cost
            keep += 1
        return out[:keep]

    def accept_bar(self, interval: Mode, topic: str, start_ms: int) -> bool:
        bars = self._bars.get(interval)
        if bars is None:
            return True  # an interval this version does not know: nothing to compare with
        last = bars.get(topic)
        if last is not None and start_ms <= last:
            self.duplicates += 1
            return False
        bars[topic] = start_ms
        self._take(interval, start_ms)
        return True

    def newest_point(self, mode: Mode, wildcard: bool, topics: Iterable[str]) -> Optional[int]:
        """Newest resume point received for `mode` on `topics`, or on any topic when
        `wildcard`."""
        if wildcard:
            return self._newest.get(mode)
        newest: Optional[int] = None
        for topic in topics:
            if len(topic) >= 3 and topic.endswith(".*"):
                # A prefix subscription: every topic received under the prefix.
                prefix = topic[:-1]
                if mode is Mode.TICK:
                    points = [tick_point_ms(s.max_ts_ns) for name, s in self._ticks.items()
                              if name.startswith(prefix)]
                else:
                    points = [p for name, p in self._bars.get(mode, {}).items()
                              if name.startswith(prefix)]
                for p in points:
                    if newest is None or p > newest:
                        newest = p
                continue
            if mode is Mode.TICK:
                s = self._ticks.get(topic)
                p = None if s is None else tick_point_ms(s.max_ts_ns)
            else:
                p = self._bars.get(mode, {}).get(topic)
            if p is not None and (newest is None or p > newest):
                newest = p
        return newest

    def _take(self, mode: Mode, point: int) -> None:
        cur = self._newest.get(mode)
        if cur is None or point > cur:
            self._newest[mode] = point
