"""Counting what a reader skips, repairs or notes: ``Counters`` (by kind, with a few ``file:line``
examples) and ``ISSUE_HELP`` (what each kind means: S skipped, R repaired, N noted).

A reader never drops a record silently: every record it cannot use is added here, and the convert
summary and the store's metadata report the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ProgressFn = Callable[[int], None]  # called with the number of source bytes consumed since last call

# Issue counter keys (see ConvertSummary): what was skipped (S), repaired (R) or only noted (N).
ISSUE_HELP: dict[str, str] = {
    "corrupt_gzip": "S: gzip stream corrupt or truncated; the rest of that file was skipped",
    "corrupt_zip": "S: zip member corrupt or truncated (bad CRC, cut data); the rest of that file was skipped",
    "empty_file": "N: a file without data rows (empty, or a header only): nothing read from it",
    "corrupt_id": (
        "N: a message whose id jumps far ahead of the stream and back (one corrupt id): kept, "
        "the ids after it are not counted as duplicates"
    ),
    "truncated_line": "S: a line with too few fields or cut JSON (usually the last line)",
    "malformed_row": "S: a CSV row with too many fields / unparsable line",
    "bad_json": "S: a line whose JSON could not be decoded",
    "non_numeric": "S: a numeric field that is not a number (or empty)",
    "non_finite_price": "S: NaN or infinite price",
    "non_positive_price": "S: zero or negative price",
    "non_finite_size": "S: NaN or infinite size",
    "non_positive_size": "S: zero or negative size (negative for depth rows)",
    "crossed_book": "S: quote with best bid above best ask",
    "locked_book": "N: quote with best bid equal to best ask (kept)",
    "empty_book_side": "S: quote with one side empty (LOBSTER dummy price)",
    "duplicate": "S: duplicated message (same trade id / update id / identical row)",
    "reordered": "R: row moved back to restore local_ts order (flag F_REORDERED)",
    "seq_gap": (
        "N: depth sequence gap detected (a CLEAR flagged F_SEQ_GAP is written at the gap; resync at the next snapshot)"
    ),
    "depth_unsynced": "S: depth diff dropped while waiting for a snapshot (before the first / after a gap)",
    "depth_stale": "S: depth diff older than the snapshot it follows (normal at sync)",
    "unknown_message": "S: message of a kind the reader does not use",
    "unknown_side": "N: trade with unknown aggressor side (kept, side 0)",
    "unpaired_row": "S: LOBSTER message row without an orderbook row (or vice versa)",
    "trading_halt": "N: LOBSTER trading halt message (type 7)",
    "book_mismatch": "N: LOBSTER orderbook row that does not follow from its message and the row before (kept)",
    "bad_timestamp": "S: zero, negative or non-numeric timestamp",
    "other_symbol": (
        "S: message for another symbol than the one converted (or a bare snapshot that no diff of the symbol brackets)"
    ),
    "agg_trade_skipped": (
        "S: aggTrade message not stored: the capture has @trade messages, which carry the same executions"
    ),
    "derived_quote": (
        "N: QUOTE derived from the depth book after a batch (a file without quotes of its own; flag F_DERIVED)"
    ),
}

MAX_NOTES = 5


@dataclass
class Counters:
    """Counts of every skipped / repaired record by kind, with a few located examples."""

    issues: dict[str, int] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, n: int = 1, where: str | None = None) -> None:
        if n <= 0:
            return
        self.issues[key] = self.issues.get(key, 0) + int(n)
        if where is not None:
            lst = self.notes.setdefault(key, [])
            if len(lst) < MAX_NOTES:
                lst.append(where)

    def add_mask(self, key: str, bad: np.ndarray, path: Path | str, lines: np.ndarray | None) -> None:
        """Count the True entries of ``bad``; note the first few lines."""
        n = int(np.count_nonzero(bad))
        if n == 0:
            return
        self.issues[key] = self.issues.get(key, 0) + n
        lst = self.notes.setdefault(key, [])
        if lines is not None and len(lst) < MAX_NOTES:
            for ln in lines[np.flatnonzero(bad)[: MAX_NOTES - len(lst)]]:
                lst.append(f"{Path(path).name}:{int(ln)}")


class Recorder(Counters):
    """Counters stand-in for a reader running on a worker thread (``prefetch``): every call is
    logged, to be replayed into the real counters by the consumer in pull order, so counts and
    notes come out exactly as if the reader had run on the consumer's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple] = []

    def add(self, key: str, n: int = 1, where: str | None = None) -> None:
        if n <= 0:
            return
        self.log.append((key, int(n), None if where is None else [where]))

    def add_mask(self, key: str, bad: np.ndarray, path: Path | str, lines: np.ndarray | None) -> None:
        n = int(np.count_nonzero(bad))
        if n == 0:
            return
        notes: list[str] = []
        if lines is not None:
            name = Path(path).name
            notes = [f"{name}:{int(ln)}" for ln in lines[np.flatnonzero(bad)[:MAX_NOTES]]]
        self.log.append((key, n, notes))

    def progress(self, nbytes: int) -> None:
        self.log.append((None, nbytes, None))

    def take(self) -> list[tuple]:
        log, self.log = self.log, []
        return log


def replay(c: Counters, log: list[tuple], progress: ProgressFn | None) -> None:
    """Apply a ``Recorder``'s log to the real counters ``c`` (and progress calls), in log order."""
    for key, n, notes in log:
        if key is None:
            if progress is not None:
                progress(n)
            continue
        c.issues[key] = c.issues.get(key, 0) + n
        if notes is not None:
            lst = c.notes.setdefault(key, [])
            for w in notes[: max(MAX_NOTES - len(lst), 0)]:
                lst.append(w)
