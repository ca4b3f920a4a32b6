"""A recording of the feed converts back to the events the feed delivered."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

from avmm.data.convert import ConvertSummary, convert  # noqa: E402
from avmm.data.store import read_events  # noqa: E402
from avmm.events import CLEAR, DEPTH, QUOTE, SNAPSHOT, TRADE  # noqa: E402
from avmm.live.config import VenueConfig, with_origin  # noqa: E402
from avmm.live.feed import Feed  # noqa: E402
from avmm.live.record import Recorder  # noqa: E402
from tests.live.fake_binance import FakeBinance  # noqa: E402
from tests.live.test_feed import Sink, book_equal, synced, until  # noqa: E402

pytestmark = pytest.mark.xdist_group("live")


def record(tmp_path: Path, um: bool, period_ns: int = 3600 * 10**9, rounds: int = 60) -> tuple[Feed, Sink, FakeBinance]:
    venue = "binance-um" if um else "binance-spot"

    async def main() -> tuple[Feed, Sink, FakeBinance]:
        fake = FakeBinance(um=um, seed=5)
        await fake.start()
        sink = Sink()
        rec = Recorder(tmp_path, f"BTCUSDT-{venue}", period_ns=period_ns)
        feed = Feed(venue, "BTCUSDT", with_origin(VenueConfig(), fake.url, venue), sink, recorder=rec)
        task = asyncio.create_task(feed.run())
        try:
            await asyncio.wait_for(fake.connected.wait(), 10)
            await until(lambda: feed.connected and len(fake.clients) == len(feed.links), what="every link")
            await fake.book_ticker()
            await synced(fake, feed)
            for i in range(rounds):
                await fake.diff(drop=(i == rounds // 3))  # one gap: a resync in the recording
                await fake.book_ticker()
                if i % 3 == 0:
                    await fake.trade()
                await asyncio.sleep(0.004)
            await synced(fake, feed)
            await fake.book_ticker()
            await asyncio.sleep(0.05)
        finally:
            feed.stop()
            await asyncio.wait_for(task, 10)
            await fake.stop()
        return feed, sink, fake

    return asyncio.run(main())


def expected_rows(sink: Sink) -> list[tuple]:
    rows = []
    for ts, local, b, bq, a, aq in sink.quotes:
        rows.append((local, QUOTE, ts, b, bq, a, aq, 0))
    for ts, local, px, q, side in sink.trades:
        rows.append((local, TRADE, ts, px, q, 0.0, 0.0, side))
    for local, kind, side, px, q in sink.depth:
        rows.append((local, kind, None, px, q, 0.0, 0.0, side))
    return rows


def store_rows(ev: np.ndarray) -> list[tuple]:
    out = []
    for r in ev:
        k = int(r["kind"])
        ts = int(r["exch_ts"]) if k in (QUOTE, TRADE) else None
        px2, q2 = (float(r["px2"]), float(r["qty2"])) if k == QUOTE else (0.0, 0.0)
        out.append((int(r["local_ts"]), k, ts, float(r["px"]), float(r["qty"]), px2, q2, int(r["side"])))
    return out


def by_kind(rows: list[tuple]) -> dict[int, list[tuple]]:
    return {k: [r for r in rows if r[1] == k] for k in (QUOTE, TRADE, DEPTH, SNAPSHOT, CLEAR)}


@pytest.mark.parametrize("um", [False, True], ids=["spot", "um"])
def test_recording_converts_back_to_the_same_events(tmp_path, um):
    feed, sink, _ = record(tmp_path, um)
    files = sorted(tmp_path.glob("*.gz"))
    assert len(files) == 1
    assert feed.counters.gaps == 1 and feed.counters.snapshots == 2
    store = tmp_path / "out.parquet"
    summary = convert(files, store)
    ev = read_events(store)
    got, want = by_kind(store_rows(ev)), by_kind(expected_rows(sink))
    for k in want:
        assert got[k] == want[k], k
    assert summary.issues.get("seq_gap") == 1  # the reader saw the gap the feed saw
    assert summary.issues.get("other_symbol") is None and summary.issues.get("bad_json") is None
    assert sum(len(v) for v in want.values()) == len(ev)


@pytest.mark.parametrize("period_ns, rounds", [(50_000_000, 80), (1, 24)], ids=["50ms", "every-diff"])
def test_hourly_files_each_start_with_a_snapshot_and_convert_alone(tmp_path, period_ns, rounds):
    """Files of 50 ms, and a new file at every diff (the boundary falls right after each
    snapshot too): each converts alone, from its first line, without a gap the feed did not see."""
    feed, sink, fake = record(tmp_path, um=False, period_ns=period_ns, rounds=rounds)
    files = sorted(tmp_path.glob("*.gz"), key=lambda p: int(first_line(p).split(b" ")[0]))
    assert len(files) >= 3
    gaps = 0
    for f in files[1:]:
        first = first_line(f).split(b" ", 1)[1]
        assert first.startswith(b'{"lastUpdateId":')
        s = _summary(f, tmp_path)
        assert not {"other_symbol", "depth_unsynced"} & set(s.issues), s.issues
        gaps += s.issues.get("seq_gap", 0)
        ev = read_events(s.out)
        kinds = ev["kind"][(ev["kind"] != QUOTE) & (ev["kind"] != TRADE)]
        assert kinds[0] == CLEAR and kinds[1] == SNAPSHOT  # the book from its first line on
    assert gaps <= feed.counters.gaps == 1  # no gap at a file boundary: only the dropped diff
    ev = read_events(_summary(files, tmp_path).out)
    want = by_kind(expected_rows(sink))
    got = by_kind(store_rows(ev))
    assert got[QUOTE] == want[QUOTE] and got[TRADE] == want[TRADE]
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for r in ev:
        if r["kind"] == CLEAR:
            bids, asks = {}, {}
        elif r["kind"] in (DEPTH, SNAPSHOT):
            book = bids if r["side"] > 0 else asks
            if r["qty"] > 0:
                book[float(r["px"])] = float(r["qty"])
            else:
                book.pop(float(r["px"]), None)
    assert sorted(bids.items(), reverse=True) == fake.levels()[0] and sorted(asks.items()) == fake.levels()[1]
    assert book_equal(fake, feed)


def first_line(p: Path) -> bytes:
    with gzip.open(p) as f:
        return f.readline()


_n = [0]


def _summary(files: Path | list[Path], tmp: Path) -> ConvertSummary:
    _n[0] += 1
    return convert(files if isinstance(files, list) else [files], tmp / f"c{_n[0]}.parquet")


def test_a_recording_folder_that_goes_away_is_one_error(tmp_path):
    import shutil

    from avmm.errors import UserError

    folder = tmp_path / "rec"
    folder.mkdir()
    rec = Recorder(folder, "X", period_ns=1)
    rec.line(1, b"{}")
    shutil.rmtree(folder)
    rec.line(2, b"{}")
    rec.start(3)  # a new file in a folder that is gone: no exception here (the feed's hot path)
    with pytest.raises(UserError, match="recording to .*rec"):
        rec.flush()
    with pytest.raises(UserError):
        rec.close()


@pytest.mark.parametrize("quiet", [False, True], ids=["lines", "quiet"])
def test_a_file_removed_while_it_is_written_is_one_error(tmp_path, quiet):
    """The folder deleted under an open file: the lines would go to an unlinked file, lost; the
    next flush says so instead (with lines to write, and without: the flush checks the file)."""
    import shutil

    from avmm.errors import UserError

    folder = tmp_path / "rec"
    folder.mkdir()
    rec = Recorder(folder, "X")
    rec.line(1, b"{}")
    rec.flush()
    rec._pool.submit(lambda: None).result()  # the writer has written it
    rec.flush()
    shutil.rmtree(folder)
    if not quiet:
        rec.line(2, b"{}")
    rec.flush()  # handed over; the writer finds the file gone
    rec._pool.submit(lambda: None).result()
    with pytest.raises(UserError, match=r"recording to .*rec: .*X-.*\.gz: removed while recording"):
        rec.flush()
    with pytest.raises(UserError):
        rec.close()
