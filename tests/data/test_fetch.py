"""Binance archive downloads (`avmm.data.fetch`) against a local HTTP archive_server: download,
verification, bad checksum, resume, missing days."""

from __future__ import annotations

import pytest

from avmm.data import fetch
from avmm.data.convert import convert
from avmm.errors import UserError
from tests.archive_server import make_zip


def test_fetch_verify_and_skip(archive_server, tmp_path):
    bodies = {}
    for i, day in enumerate(["2024-08-01", "2024-08-02", "2024-08-03"]):
        bodies[day] = make_zip(f"BTCUSDT-trades-{day}.zip", 500, i)
        archive_server.publish("spot", "trades", "BTCUSDT", day, bodies[day])
    seen = []
    s = fetch.fetch(
        "spot",
        "trades",
        "btcusdt",
        "2024-08-01",
        "2024-08-03",
        tmp_path,
        base_url=archive_server.url,
        on_progress=lambda name, n, total: seen.append((name, n, total)),
    )
    assert sorted(s.downloaded) == [f"BTCUSDT-trades-{d}.zip" for d in bodies]
    for d, b in bodies.items():
        assert (tmp_path / f"BTCUSDT-trades-{d}.zip").read_bytes() == b
    assert not list(tmp_path.glob("*.part"))
    assert sum(n for name, n, _ in seen if name.endswith("2024-08-01.zip")) == len(bodies["2024-08-01"])
    # second run: everything verified and skipped, no archive downloaded again
    archive_server.requests.clear()
    s2 = fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-03", tmp_path, base_url=archive_server.url)
    assert len(s2.skipped) == 3 and not s2.downloaded
    assert all(p.endswith(".CHECKSUM") for p, _ in archive_server.requests)
    # the downloads convert
    out = convert(sorted(tmp_path.glob("*.zip")), tmp_path / "o.parquet")
    assert out.kinds["trade"] == 1500 and out.issues == {}


def test_fetch_bad_checksum(archive_server, tmp_path):
    good = make_zip("BTCUSDT-aggTrades-2024-08-01.zip", 100, 1)
    bad = make_zip("BTCUSDT-aggTrades-2024-08-02.zip", 100, 2)
    archive_server.publish("um", "aggTrades", "BTCUSDT", "2024-08-01", good)
    archive_server.publish("um", "aggTrades", "BTCUSDT", "2024-08-02", bad, checksum="0" * 64)
    with pytest.raises(fetch.FetchError, match="1 file\\(s\\) failed checksum") as ei:
        fetch.fetch("um", "aggTrades", "BTCUSDT", "2024-08-01", "2024-08-02", tmp_path, base_url=archive_server.url)
    assert ei.value.summary.downloaded == ["BTCUSDT-aggTrades-2024-08-01.zip"]
    assert not (tmp_path / "BTCUSDT-aggTrades-2024-08-02.zip").exists()
    assert not (tmp_path / "BTCUSDT-aggTrades-2024-08-02.zip.part").exists()


def test_fetch_resume_with_range(archive_server, tmp_path):
    body = make_zip("BTCUSDT-bookTicker-2024-08-01.zip", 20_000, 3)
    path = archive_server.publish("um", "bookTicker", "BTCUSDT", "2024-08-01", body)
    # a previous run was interrupted: a partial file is on disk
    part = tmp_path / "BTCUSDT-bookTicker-2024-08-01.zip.part"
    part.write_bytes(body[:1000])
    s = fetch.fetch("um", "bookTicker", "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=archive_server.url)
    assert s.resumed == ["BTCUSDT-bookTicker-2024-08-01.zip"] and s.bytes == len(body) - 1000
    assert (path, "bytes=1000-") in archive_server.requests
    assert (tmp_path / "BTCUSDT-bookTicker-2024-08-01.zip").read_bytes() == body


def test_fetch_connection_dropped_then_resumed(archive_server, tmp_path):
    body = make_zip("BTCUSDT-trades-2024-08-01.zip", 20_000, 4)
    path = archive_server.publish("spot", "trades", "BTCUSDT", "2024-08-01", body)
    archive_server.cut[path] = 5000  # the first response is cut after 5000 bytes
    s = fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=archive_server.url)
    assert (tmp_path / "BTCUSDT-trades-2024-08-01.zip").read_bytes() == body
    assert [r for p, r in archive_server.requests if p == path] == [None, "bytes=5000-"], archive_server.requests
    assert s.resumed or s.downloaded


def test_fetch_server_without_range_restarts(archive_server, tmp_path):
    body = make_zip("BTCUSDT-trades-2024-08-01.zip", 2000, 5)
    archive_server.publish("spot", "trades", "BTCUSDT", "2024-08-01", body)
    archive_server.ranges = False
    (tmp_path / "BTCUSDT-trades-2024-08-01.zip.part").write_bytes(b"junk" * 100)
    s = fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=archive_server.url)
    assert s.downloaded == ["BTCUSDT-trades-2024-08-01.zip"]
    assert (tmp_path / "BTCUSDT-trades-2024-08-01.zip").read_bytes() == body


def test_fetch_missing_days_and_bad_args(archive_server, tmp_path):
    with pytest.raises(UserError, match="no spot trades archive"):
        fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-02", tmp_path, base_url=archive_server.url)
    archive_server.publish("spot", "trades", "BTCUSDT", "2024-08-02", make_zip("x.zip", 10, 1))
    s = fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-02", tmp_path, base_url=archive_server.url)
    assert s.missing == ["BTCUSDT-trades-2024-08-01.zip"] and len(s.downloaded) == 1
    for args in [("eu", "trades"), ("spot", "klines")]:
        with pytest.raises(UserError):
            fetch.fetch(*args, "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=archive_server.url)
    with pytest.raises(UserError, match="before"):
        fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-03", "2024-08-01", tmp_path, base_url=archive_server.url)
    with pytest.raises(UserError, match="bad date"):
        fetch.fetch("spot", "trades", "BTCUSDT", "2024-13-01", "2024-08-01", tmp_path, base_url=archive_server.url)


def test_fetch_output_folder_checked(archive_server, tmp_path, monkeypatch):
    archive_server.publish("spot", "trades", "BTCUSDT", "2024-08-02", make_zip("x.zip", 10, 1))
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(UserError, match="-o .*a-file: is a file; give a folder"):
        fetch.fetch("spot", "trades", "BTCUSDT", "2024-08-02", "2024-08-02", f, base_url=archive_server.url)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fetch.os, "replace", full)  # the disk fills as the download completes
    with pytest.raises(UserError, match="cannot write \\(No space left on device\\)"):
        fetch.fetch(
            "spot", "trades", "BTCUSDT", "2024-08-02", "2024-08-02", tmp_path / "d", base_url=archive_server.url
        )
