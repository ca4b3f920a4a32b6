"""Binance's local-book sequence rules (`avmm.venues.binance.depth_sync`): diffs buffered until a
snapshot, stale diffs at sync, the first diff bracketing the snapshot, continuity (spot ``U`` /
``u``, USD-M ``pu``), duplicates, gaps (the gapping diff buffered, a replay stopped with the rest
kept), eviction at ``max_pending``, reset."""

from __future__ import annotations

import pytest

from avmm.venues.binance.depth_sync import (
    APPLY,
    BUFFERED,
    DUPLICATE,
    EVICTED,
    GAP,
    MAX_PENDING,
    STALE,
    DepthSync,
    bracket,
)
from avmm.venues.binance.messages import Depth


def spot(U: int, u: int) -> Depth:
    """A spot diff (no ``pu``)."""
    return Depth(U=U, u=u, b=[], a=[])


def usdm(U: int, u: int, pu: int) -> Depth:
    """A USD-M futures diff; ``pu`` is the previous diff's ``u``."""
    return Depth(U=U, u=u, b=[], a=[], pu=pu)


def synced(last_update_id: int = 100, first: Depth | None = None) -> DepthSync:
    """A DepthSync after a snapshot and its first diff (spot 101..110 unless ``first``)."""
    s = DepthSync()
    assert s.on_snapshot(last_update_id) == []
    assert s.on_diff(first or spot(last_update_id + 1, 110)) == APPLY
    return s


def test_outcomes_are_distinct():
    assert len({APPLY, STALE, DUPLICATE, GAP, BUFFERED, EVICTED}) == 6


# ---------------------------------------------------------------- bracket
@pytest.mark.parametrize(
    "U, u, want",
    [
        (90, 99, -1),
        (95, 100, -1),  # u == L: older than the snapshot on spot
        (95, 101, 0),
        (101, 105, 0),  # U == L + 1
        (102, 105, 1),  # L + 1 missing: the snapshot is too old
    ],
)
def test_spot_bracket_is_u_le_l_plus_1_le_u(U, u, want):
    assert bracket(spot(U, u), 100) == want


@pytest.mark.parametrize(
    "U, u, want",
    [
        (90, 99, -1),  # u < L
        (95, 100, 0),  # u == L: brackets on USD-M
        (100, 105, 0),  # U == L
        (101, 105, 1),
    ],
)
def test_usdm_bracket_is_u_le_l_le_u(U, u, want):
    assert bracket(usdm(U, u, pu=U - 1), 100) == want


# ---------------------------------------------------------------- before a snapshot
def test_diffs_are_buffered_until_a_snapshot_with_their_context():
    s = DepthSync()
    d1, d2 = spot(101, 103), spot(104, 105)
    assert s.on_diff(d1, "line 1") == BUFFERED
    assert s.on_diff(d2, "line 2") == BUFFERED
    assert not s.synced and s.pending == [(d1, "line 1"), (d2, "line 2")]
    out = s.on_snapshot(100)
    assert out == [(d1, "line 1", APPLY), (d2, "line 2", APPLY)]  # the caller's context handed back
    assert s.synced and s.pending == [] and s.last_u == 105


def test_a_snapshot_with_nothing_buffered_waits_for_the_bracketing_diff():
    s = DepthSync()
    assert s.on_snapshot(100) == []
    assert s.synced and s.last_u == 100
    assert s.on_diff(spot(95, 100)) == STALE
    assert s.on_diff(spot(101, 104)) == APPLY
    assert s.last_u == 104


# ---------------------------------------------------------------- stale diffs at sync
def test_spot_stale_diffs_at_sync_then_the_bracketing_one_applies():
    s = DepthSync()
    diffs = [spot(90, 99), spot(95, 100), spot(100, 105), spot(106, 110)]
    for d in diffs:
        assert s.on_diff(d) == BUFFERED
    out = s.on_snapshot(100)
    assert [o for _, _, o in out] == [STALE, STALE, APPLY, APPLY]  # u <= L is stale on spot
    assert [d for d, _, _ in out] == diffs
    assert s.synced and s.last_u == 110 and s.pending == []


def test_usdm_stale_is_u_below_the_snapshot():
    s = DepthSync()
    diffs = [usdm(80, 89, 79), usdm(90, 99, 89), usdm(99, 100, 99), usdm(101, 105, 100)]
    for d in diffs:
        assert s.on_diff(d) == BUFFERED
    out = s.on_snapshot(100)
    # u == L is not stale on USD-M: U <= L <= u brackets the snapshot
    assert [o for _, _, o in out] == [STALE, STALE, APPLY, APPLY]
    assert s.last_u == 105


# ---------------------------------------------------------------- the first diff after a snapshot
@pytest.mark.parametrize("first", [spot(102, 110), usdm(101, 110, 100)], ids=["spot", "usdm"])
def test_the_first_diff_must_bracket_the_snapshot(first):
    # buffered before the snapshot: the replay reports the gap and keeps the diff
    s = DepthSync()
    assert s.on_diff(first, "ctx") == BUFFERED
    assert s.on_snapshot(100) == [(first, "ctx", GAP)]
    assert not s.synced and s.pending == [(first, "ctx")]
    # arriving after the snapshot: the same
    s = DepthSync()
    s.on_snapshot(100)
    assert s.on_diff(first, "ctx") == GAP
    assert not s.synced and s.pending == [(first, "ctx")]


# ---------------------------------------------------------------- continuity and duplicates
def test_spot_continuity_is_u_after_the_last_u():
    s = synced(100)  # last u 110
    assert s.on_diff(spot(111, 115)) == APPLY
    assert s.on_diff(spot(116, 116)) == APPLY
    assert s.last_u == 116
    assert s.on_diff(spot(118, 120)) == GAP  # 117 missing
    assert not s.synced


def test_usdm_continuity_is_pu_equal_to_the_last_u():
    s = synced(100, first=usdm(95, 110, 94))
    # U overlapping the last diff is fine as long as pu is the last u
    assert s.on_diff(usdm(105, 115, 110)) == APPLY
    assert s.last_u == 115
    # U == last u + 1 but pu says a diff came between: a gap
    assert s.on_diff(usdm(116, 120, 117)) == GAP
    assert not s.synced


@pytest.mark.parametrize(
    "first, again",
    [(spot(101, 110), spot(105, 110)), (usdm(95, 110, 94), usdm(100, 108, 99))],
    ids=["spot", "usdm"],
)
def test_a_diff_not_newer_than_the_last_is_a_duplicate(first, again):
    s = synced(100, first=first)
    assert s.on_diff(first) == DUPLICATE
    assert s.on_diff(again) == DUPLICATE
    assert s.synced and s.last_u == 110 and s.pending == []


# ---------------------------------------------------------------- gaps
def test_a_gap_buffers_the_gapping_diff_until_the_next_snapshot():
    s = synced(100)  # last u 110
    gapping, later = spot(120, 125), spot(126, 130)
    assert s.on_diff(gapping, "g") == GAP
    assert not s.synced and s.pending == [(gapping, "g")]
    assert s.on_diff(later, "l") == BUFFERED
    # the resync snapshot replays from the gapping diff
    assert s.on_snapshot(119) == [(gapping, "g", APPLY), (later, "l", APPLY)]
    assert s.synced and s.last_u == 130


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_gap_in_the_replay_stops_it_and_keeps_the_rest(market):
    ids = [(101, 105), (106, 110), (115, 120), (121, 125), (126, 130)]  # 111..114 missing
    if market == "spot":
        diffs = [spot(U, u) for U, u in ids]
    else:
        diffs = [usdm(U, u, pu) for (U, u), pu in zip(ids, [100, 105, 112, 120, 125], strict=True)]
    s = DepthSync()
    for i, d in enumerate(diffs):
        assert s.on_diff(d, i) == BUFFERED
    out = s.on_snapshot(100 if market == "spot" else 101)
    assert out == [(diffs[0], 0, APPLY), (diffs[1], 1, APPLY), (diffs[2], 2, GAP)]
    assert not s.synced
    assert s.pending == [(diffs[2], 2), (diffs[3], 3), (diffs[4], 4)]  # the gapping diff and the rest
    # the next snapshot starts from them
    out = s.on_snapshot(114 if market == "spot" else 115)
    assert [(c, o) for _, c, o in out] == [(2, APPLY), (3, APPLY), (4, APPLY)]
    assert s.synced and s.last_u == 130 and s.pending == []


# ---------------------------------------------------------------- eviction
def test_eviction_at_max_pending_drops_the_oldest():
    s = DepthSync(max_pending=3)
    diffs = [spot(101 + 5 * i, 105 + 5 * i) for i in range(5)]
    assert [s.on_diff(d, i) for i, d in enumerate(diffs[:3])] == [BUFFERED] * 3
    assert s.evicted is None
    assert s.on_diff(diffs[3], 3) == EVICTED
    assert s.evicted == (diffs[0], 0)
    assert s.on_diff(diffs[4], 4) == EVICTED
    assert s.evicted == (diffs[1], 1)
    assert s.pending == [(diffs[2], 2), (diffs[3], 3), (diffs[4], 4)]
    assert DepthSync().max_pending == MAX_PENDING


# ---------------------------------------------------------------- reset
def test_reset_forgets_the_book_and_the_buffer():
    s = synced(100)
    s.reset()
    assert not s.synced and s.pending == []
    assert s.on_diff(spot(111, 115)) == BUFFERED  # no longer checked against the old book
    s.reset()
    assert s.pending == []
    # a new snapshot syncs again from scratch
    assert s.on_snapshot(200) == []
    assert s.on_diff(spot(150, 199)) == STALE
    assert s.on_diff(spot(201, 205)) == APPLY
    assert s.synced and s.last_u == 205


def test_a_snapshot_while_synced_restarts_from_it():
    s = synced(100)  # last u 110
    assert s.on_snapshot(120) == []
    assert s.on_diff(spot(111, 115)) == STALE  # older than the new snapshot
    assert s.on_diff(spot(119, 125)) == APPLY  # brackets 121
    assert s.last_u == 125
