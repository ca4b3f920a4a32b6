"""`avmm data fetch` against a local HTTP server (started by the test) serving Binance-style daily
zips and .CHECKSUM files: download, verification, bad checksum, resume, missing days."""

from __future__ import annotations

import hashlib
import http.server
import io
import sys
import threading
import zipfile

import pytest

from avmm.data import fetch as F
from avmm.data.convert import convert
from avmm.errors import UserError


def make_zip(name: str, rows: int, seed: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        lines = [
            f"{i + 1 + seed * 10**6},{60000 + (i * 7 + seed) % 100 / 10:.1f},0.00{i % 9 + 1},1.0,"
            f"{1722470400000 + i * 10},{'true' if (i + seed) % 2 else 'false'},true"
            for i in range(rows)
        ]
        z.writestr(name.replace(".zip", ".csv"), "\n".join(lines) + "\n")
    return buf.getvalue()


class Server:
    """Serves ``files`` (url path -> bytes); honours Range unless ``ranges`` is False; records
    requests; can cut a response short once (``cut``: path -> bytes to send before dropping)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True
        self.cut: dict[str, int] = {}
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and outer.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if self.path in outer.cut:
                    n = outer.cut.pop(self.path)
                    self.wfile.write(part[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    def publish(self, market: str, kind: str, symbol: str, day: str, body: bytes, checksum: str | None = None):
        name = f"{symbol}-{kind}-{day}.zip"
        path = f"/data/{F.MARKETS[market]}/daily/{kind}/{symbol}/{name}"
        self.files[path] = body
        h = checksum or hashlib.sha256(body).hexdigest()
        self.files[path + ".CHECKSUM"] = f"{h}  {name}\n".encode()
        return path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_fetch_verify_and_skip(server, tmp_path):
    bodies = {}
    for i, day in enumerate(["2024-08-01", "2024-08-02", "2024-08-03"]):
        bodies[day] = make_zip(f"BTCUSDT-trades-{day}.zip", 500, i)
        server.publish("spot", "trades", "BTCUSDT", day, bodies[day])
    seen = []
    s = F.fetch(
        "spot",
        "trades",
        "btcusdt",
        "2024-08-01",
        "2024-08-03",
        tmp_path,
        base_url=server.url,
        on_progress=lambda name, n, total: seen.append((name, n, total)),
    )
    assert sorted(s.downloaded) == [f"BTCUSDT-trades-{d}.zip" for d in bodies]
    for d, b in bodies.items():
        assert (tmp_path / f"BTCUSDT-trades-{d}.zip").read_bytes() == b
    assert not list(tmp_path.glob("*.part"))
    assert sum(n for name, n, _ in seen if name.endswith("2024-08-01.zip")) == len(bodies["2024-08-01"])
    # second run: everything verified and skipped, no archive downloaded again
    server.requests.clear()
    s2 = F.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-03", tmp_path, base_url=server.url)
    assert len(s2.skipped) == 3 and not s2.downloaded
    assert all(p.endswith(".CHECKSUM") for p, _ in server.requests)
    # the downloads convert
    out = convert(sorted(tmp_path.glob("*.zip")), tmp_path / "o.parquet")
    assert out.kinds["trade"] == 1500 and out.issues == {}


def test_fetch_bad_checksum(server, tmp_path):
    good = make_zip("BTCUSDT-aggTrades-2024-08-01.zip", 100, 1)
    bad = make_zip("BTCUSDT-aggTrades-2024-08-02.zip", 100, 2)
    server.publish("um", "aggTrades", "BTCUSDT", "2024-08-01", good)
    server.publish("um", "aggTrades", "BTCUSDT", "2024-08-02", bad, checksum="0" * 64)
    with pytest.raises(F.FetchError, match="1 file\\(s\\) failed checksum") as ei:
        F.fetch("um", "aggTrades", "BTCUSDT", "2024-08-01", "2024-08-02", tmp_path, base_url=server.url)
    assert ei.value.summary.downloaded == ["BTCUSDT-aggTrades-2024-08-01.zip"]
    assert not (tmp_path / "BTCUSDT-aggTrades-2024-08-02.zip").exists()
    assert not (tmp_path / "BTCUSDT-aggTrades-2024-08-02.zip.part").exists()


def test_fetch_resume_with_range(server, tmp_path):
    body = make_zip("BTCUSDT-bookTicker-2024-08-01.zip", 20_000, 3)
    path = server.publish("um", "bookTicker", "BTCUSDT", "2024-08-01", body)
    # a previous run was interrupted: a partial file is on disk
    part = tmp_path / "BTCUSDT-bookTicker-2024-08-01.zip.part"
    part.write_bytes(body[:1000])
    s = F.fetch("um", "bookTicker", "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=server.url)
    assert s.resumed == ["BTCUSDT-bookTicker-2024-08-01.zip"] and s.bytes == len(body) - 1000
    assert (path, "bytes=1000-") in server.requests
    assert (tmp_path / "BTCUSDT-bookTicker-2024-08-01.zip").read_bytes() == body


def test_fetch_connection_dropped_then_resumed(server, tmp_path):
    body = make_zip("BTCUSDT-trades-2024-08-01.zip", 20_000, 4)
    path = server.publish("spot", "trades", "BTCUSDT", "2024-08-01", body)
    server.cut[path] = 5000  # the first response is cut after 5000 bytes
    s = F.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=server.url)
    assert (tmp_path / "BTCUSDT-trades-2024-08-01.zip").read_bytes() == body
    assert [r for p, r in server.requests if p == path] == [None, "bytes=5000-"], server.requests
    assert s.resumed or s.downloaded


def test_fetch_server_without_range_restarts(server, tmp_path):
    body = make_zip("BTCUSDT-trades-2024-08-01.zip", 2000, 5)
    server.publish("spot", "trades", "BTCUSDT", "2024-08-01", body)
    server.ranges = False
    (tmp_path / "BTCUSDT-trades-2024-08-01.zip.part").write_bytes(b"junk" * 100)
    s = F.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=server.url)
    assert s.downloaded == ["BTCUSDT-trades-2024-08-01.zip"]
    assert (tmp_path / "BTCUSDT-trades-2024-08-01.zip").read_bytes() == body


def test_fetch_missing_days_and_bad_args(server, tmp_path):
    with pytest.raises(UserError, match="no spot trades archive"):
        F.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-02", tmp_path, base_url=server.url)
    server.publish("spot", "trades", "BTCUSDT", "2024-08-02", make_zip("x.zip", 10, 1))
    s = F.fetch("spot", "trades", "BTCUSDT", "2024-08-01", "2024-08-02", tmp_path, base_url=server.url)
    assert s.missing == ["BTCUSDT-trades-2024-08-01.zip"] and len(s.downloaded) == 1
    for args in [("eu", "trades"), ("spot", "klines")]:
        with pytest.raises(UserError):
            F.fetch(*args, "BTCUSDT", "2024-08-01", "2024-08-01", tmp_path, base_url=server.url)
    with pytest.raises(UserError, match="before"):
        F.fetch("spot", "trades", "BTCUSDT", "2024-08-03", "2024-08-01", tmp_path, base_url=server.url)
    with pytest.raises(UserError, match="bad date"):
        F.fetch("spot", "trades", "BTCUSDT", "2024-13-01", "2024-08-01", tmp_path, base_url=server.url)


def test_fetch_cli(server, tmp_path, monkeypatch, capsys):
    from avmm.cli import main

    server.publish("um", "trades", "ETHUSDT", "2024-08-01", make_zip("e.zip", 100, 1))
    server.publish("um", "trades", "ETHUSDT", "2024-08-02", make_zip("e.zip", 100, 2), checksum="f" * 64)

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["avmm", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code or 0
        return code, capsys.readouterr()

    code, out = run(
        "data",
        "fetch",
        "--market",
        "um",
        "--kind",
        "trades",
        "--symbol",
        "ETHUSDT",
        "--from",
        "2024-08-01",
        "--to",
        "2024-08-01",
        "-o",
        tmp_path,
        "--base-url",
        server.url,
    )
    assert code == 0 and "downloaded 1 file" in out.out
    code, out = run(
        "data",
        "fetch",
        "--market",
        "um",
        "--kind",
        "trades",
        "--symbol",
        "ETHUSDT",
        "--from",
        "2024-08-01",
        "--to",
        "2024-08-02",
        "-o",
        tmp_path,
        "--base-url",
        server.url,
    )
    assert code == 2 and len(out.err.strip().splitlines()) == 1 and "checksum" in out.err
    assert "1 already present" in out.out
