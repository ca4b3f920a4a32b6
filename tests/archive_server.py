"""A local HTTP server (started by the test) serving Binance-style daily zips and their .CHECKSUM
files, for ``avmm.data.fetch`` and ``avmm data fetch``; the ``archive_server`` fixture in
``tests/conftest.py`` starts one."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

from avmm.data import fetch as F


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


class ArchiveServer:
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
