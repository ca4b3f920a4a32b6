"""Binance's rules for a local order book kept from depth diffs and a REST snapshot.

One state machine for every consumer of Binance depth streams: the capture reader
(``avmm.data.readers.binance_ws``) now, the live feed next. It never writes rows and never counts:
each call returns an *outcome* and the caller emits, counts or resynchronises as it needs.

The rules (Binance's "how to manage a local order book correctly"), per diff ``U`` (first update
id), ``u`` (last update id) and, on USD-M futures, ``pu`` (the previous diff's ``u``; spot diffs
have none, ``pu = -1``):

* until a snapshot has been seen, diffs are buffered (``BUFFERED``; at most ``max_pending``, the
  oldest is then dropped: ``EVICTED``, with the dropped diff in ``evicted``);
* at a snapshot with id ``L`` the buffered diffs are replayed: those with ``u <= L`` (spot) /
  ``u < L`` (USD-M) are ``STALE``; the first applied diff must bracket the snapshot,
  ``U <= L+1 <= u`` (spot) / ``U <= L <= u`` (USD-M);
* then each diff must continue the previous one: ``U == prev_u + 1`` (spot) or ``pu == prev_u``
  (USD-M); a diff not newer than the last applied one is a ``DUPLICATE``;
* a break is a ``GAP``: the book is unknown from then on, and the diff that showed the gap is
  buffered again, waiting for the next snapshot.
"""

from __future__ import annotations

from typing import Any, Protocol

APPLY = 0  # apply the diff to the book
STALE = 1  # older than the snapshot it follows (normal at sync)
DUPLICATE = 2  # not newer than the last applied diff
GAP = 3  # sequence break: the book is unknown until the next snapshot
BUFFERED = 4  # kept until a snapshot arrives
EVICTED = 5  # kept, and the oldest buffered diff dropped (``DepthSync.evicted``)

MAX_PENDING = 10_000


class Diff(Protocol):
    """The update ids of a depth diff (``venues.binance.messages.Depth`` has them)."""

    U: int
    u: int
    pu: int


def bracket(diff: Diff, last_update_id: int) -> int:
    """Where ``diff`` lies against a snapshot with id ``last_update_id`` (the rule for the first
    diff after a snapshot): -1 older (stale), 0 brackets it, 1 newer (the snapshot is too old)."""
    lid = last_update_id
    if diff.pu != -1:  # USD-M
        if diff.u < lid:
            return -1
        return 0 if lid >= diff.U else 1
    if diff.u <= lid:
        return -1
    return 0 if lid + 1 >= diff.U else 1


class DepthSync:
    """Sequence state of one symbol's depth stream.

    Buffered diffs are kept with an opaque ``ctx`` of the caller's (its arrival time, line number,
    ...) and handed back with their outcome when a snapshot replays them.

    Attributes
    ----------
    synced : bool
        A snapshot has been applied and no gap seen since.
    last_u : int
        ``u`` of the last applied diff (or the snapshot's id right after it).
    pending : list of (diff, ctx)
        Diffs buffered while not synced, oldest first.
    """

    __slots__ = ("synced", "need_first", "last_u", "lid", "pending", "max_pending", "evicted")

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.synced = False
        self.need_first = False  # the next diff is the first after a snapshot
        self.last_u = 0
        self.lid = 0
        self.pending: list[tuple[Any, Any]] = []
        self.max_pending = max_pending
        self.evicted: tuple[Any, Any] | None = None

    def on_diff(self, diff: Diff, ctx: Any = None) -> int:
        """The outcome of a new diff: buffered while not synced, else checked against the
        sequence (``APPLY``, ``STALE``, ``DUPLICATE`` or ``GAP``)."""
        if not self.synced:
            self.pending.append((diff, ctx))
            if len(self.pending) > self.max_pending:
                self.evicted = self.pending.pop(0)
                return EVICTED
            return BUFFERED
        return self._check(diff, ctx)

    def _check(self, diff: Diff, ctx: Any) -> int:
        um = diff.pu != -1
        if self.need_first:
            lid = self.lid
            if (diff.u < lid) if um else (diff.u <= lid):
                return STALE
            if not ((diff.U <= lid <= diff.u) if um else (diff.U <= lid + 1 <= diff.u)):
                return self._gap(diff, ctx)
            self.need_first = False
            self.last_u = diff.u
            return APPLY
        if diff.u <= self.last_u:
            return DUPLICATE
        if not ((diff.pu == self.last_u) if um else (self.last_u + 1 == diff.U)):
            return self._gap(diff, ctx)
        self.last_u = diff.u
        return APPLY

    def _gap(self, diff: Diff, ctx: Any) -> int:
        self.synced = False
        self.need_first = False
        self.pending = [(diff, ctx)]
        return GAP

    def on_snapshot(self, last_update_id: int) -> list[tuple[Any, Any, int]]:
        """Apply a snapshot: returns ``(diff, ctx, outcome)`` for each buffered diff it replays, in
        order. A gap among them stops the replay; that diff and the rest stay buffered."""
        self.synced = True
        self.need_first = True
        self.lid = last_update_id
        self.last_u = last_update_id
        pending, self.pending = self.pending, []
        out: list[tuple[Any, Any, int]] = []
        for k, (diff, ctx) in enumerate(pending):
            if not self.synced:  # a gap among the buffered diffs: keep the rest for the next snapshot
                self.pending.extend(pending[k:])
                break
            out.append((diff, ctx, self._check(diff, ctx)))
        return out

    def reset(self) -> None:
        """Forget the book (a reconnect): buffer diffs until the next snapshot."""
        self.synced = False
        self.need_first = False
        self.pending = []
