"""The replay source without a server: update-id numbering and the venue's book against the store."""

from __future__ import annotations

from avmm.emulator.replay import BT, DIFF, FIRST_ID, TR, Replay
from tests.emulator.conftest import store_book


def _steps(path):
    r = Replay([path], chunk_events=97)  # small chunks: depth messages straddle chunk ends
    return r, list(r.steps())


def test_diffs_are_continuous_and_rebuild_the_store_book(depth_store):
    r, steps = _steps(depth_store)
    diffs = [s for s in steps if s[0] == DIFF]
    assert diffs
    prev = FIRST_ID
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for _, _, _, U, u, pu, b, a in diffs:
        assert prev + 1 == U and pu == prev and u >= U  # spot: U = prev u + 1; USD-M: pu = prev u
        prev = u
        for book, lv in ((bids, b), (asks, a)):
            for p, q in lv:
                if q > 0:
                    book[p] = q
                else:
                    book.pop(p, None)
    assert r.book.last_u == prev
    assert (bids, asks) == store_book(depth_store)
    assert (r.book.bids, r.book.asks) == (bids, asks)


def test_book_ticker_ids_increase_inside_the_next_diff(depth_store):
    _, steps = _steps(depth_store)
    last_bt = 0
    pending: list[int] = []
    for s in steps:
        if s[0] == BT:
            assert s[3] > last_bt
            last_bt = s[3]
            pending.append(s[3])
        elif s[0] == DIFF:
            assert all(s[3] <= u <= s[4] for u in pending), (pending, s[3], s[4])
            pending = []


def test_one_diff_per_message_and_the_resync_as_one_diff(depth_store):
    from avmm.data.store import read_events
    from avmm.events import DEPTH, F_LAST_IN_BATCH

    ev = read_events(depth_store)
    msgs = int(((ev["kind"] == DEPTH) & (ev["flags"] & F_LAST_IN_BATCH > 0)).sum())
    _, steps = _steps(depth_store)
    # every depth message, the first snapshot and the resync
    assert sum(1 for s in steps if s[0] == DIFF) == msgs + 2


def test_l1_store_serves_its_quotes_as_depth(l1_store):
    r, steps = _steps(l1_store)
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    n_bt = 0
    for s in steps:
        if s[0] == DIFF:
            for book, lv in ((bids, s[6]), (asks, s[7])):
                for p, q in lv:
                    if q > 0:
                        book[p] = q
                    else:
                        book.pop(p, None)
            last_u = s[4]
        elif s[0] == BT:
            n_bt += 1
            assert s[3] == last_u  # the bookTicker's id is the diff's
            assert bids == {s[4]: s[5]} and asks == {s[6]: s[7]}  # the book is the quote, one level a side
    assert n_bt > 100
    assert (bids, asks) == store_book(l1_store)


def test_trade_ids_from_the_store_and_increasing(depth_store, l1_store):
    for p in (depth_store, l1_store):
        _, steps = _steps(p)
        ids = [s[3] for s in steps if s[0] == TR]
        assert ids and ids == sorted(set(ids))
