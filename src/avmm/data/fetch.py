"""Download Binance public data archives (daily zips) with checksum verification and resume.

``fetch(market, kind, symbol, date_from, date_to, out_dir, base_url=None, on_progress=None)``

URL layout (as on data.binance.vision; the base URL is configurable, ``--base-url`` or the
environment variable ``AVMM_BINANCE_DATA_URL``)::

    {base}/data/spot/daily/{kind}/{SYMBOL}/{SYMBOL}-{kind}-{YYYY-MM-DD}.zip
    {base}/data/futures/um/daily/{kind}/{SYMBOL}/{SYMBOL}-{kind}-{YYYY-MM-DD}.zip
    ... and the same URL + ".CHECKSUM": "<sha256>  <file name>"

Per day: the checksum is fetched first (HTTP 404: no archive for that day, counted ``missing``);
a file already present with the right checksum is skipped; otherwise the download goes to
``NAME.zip.part``, resumed with an HTTP Range request when a partial file exists (a server that
ignores Range restarts it), verified, and renamed. A checksum mismatch deletes the download and is
reported; the command then fails (exit 2) after trying every day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from avmm.errors import UserError, missing_extra

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://data.binance.vision"
MARKETS = {"spot": "spot", "um": "futures/um"}
KINDS = ("bookTicker", "aggTrades", "trades")
MAX_DAYS = 3700
RETRIES = 3

OnProgress = Callable[[str, int, int | None], None]  # (file name, bytes advanced, total or None)


@dataclass
class FetchSummary:
    downloaded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already present and verified
    missing: list[str] = field(default_factory=list)  # 404
    bad_checksum: list[str] = field(default_factory=list)
    bytes: int = 0

    def lines(self) -> list[str]:
        out = [
            f"downloaded {len(self.downloaded)} file(s) ({self.bytes / 1e6:.1f} MB), "
            f"{len(self.resumed)} resumed, {len(self.skipped)} already present, "
            f"{len(self.missing)} not published, {len(self.bad_checksum)} failed the checksum"
        ]
        for name in self.missing:
            out.append(f"  not published: {name}")
        for name in self.bad_checksum:
            out.append(f"  checksum mismatch (deleted): {name}")
        return out


def _httpx() -> ModuleType:
    """The ``httpx`` module (the optional extra ``avmm[fetch]``); a one-line error without it."""
    try:
        import httpx
    except ImportError:
        raise missing_extra("avmm data fetch", "fetch", "httpx") from None
    return httpx


def archive_url(base: str, market: str, kind: str, symbol: str, day: dt.date) -> str:
    return f"{base.rstrip('/')}/data/{MARKETS[market]}/daily/{kind}/{symbol}/{symbol}-{kind}-{day.isoformat()}.zip"


def _days(a: str, b: str) -> list[dt.date]:
    try:
        d0, d1 = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
    except ValueError as e:
        raise UserError(f"bad date ({e}); use YYYY-MM-DD") from None
    if d1 < d0:
        raise UserError(f"--to {b} is before --from {a}")
    n = (d1 - d0).days + 1
    if n > MAX_DAYS:
        raise UserError(f"date range of {n} days is too long (max {MAX_DAYS})")
    return [d0 + dt.timedelta(days=i) for i in range(n)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _get_checksum(cl: httpx.Client, url: str) -> str | None:
    httpx = _httpx()
    for attempt in range(RETRIES):
        try:
            r = cl.get(url)
        except httpx.HTTPError as e:
            if attempt == RETRIES - 1:
                raise UserError(f"{url}: network error ({e})") from None
            time.sleep(0.2 * (attempt + 1))
            continue
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            if attempt == RETRIES - 1:
                raise UserError(f"{url}: HTTP {r.status_code}")
            continue
        m = re.match(r"\s*([0-9a-fA-F]{64})\b", r.text)
        if not m:
            raise UserError(f"{url}: not a checksum file ({r.text[:60]!r})")
        return m.group(1).lower()
    return None


def _download(cl: httpx.Client, url: str, part: Path, on_progress: OnProgress | None) -> tuple[int, bool]:
    """Download (resuming) into ``part``; returns (bytes transferred, resumed?)."""
    httpx = _httpx()
    name = part.name[: -len(".part")]
    for attempt in range(RETRIES):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with cl.stream("GET", url, headers=headers) as r:
                if r.status_code == 416 and have:  # nothing left: the part file is complete
                    return 0, True
                if r.status_code == 404:
                    raise UserError(f"{url}: HTTP 404 (checksum published but archive missing)")
                if r.status_code not in (200, 206):
                    raise httpx.HTTPStatusError(f"HTTP {r.status_code}", request=r.request, response=r)
                resumed = r.status_code == 206 and have > 0
                if not resumed:
                    have = 0
                length = r.headers.get("content-length")
                total = have + int(length) if length and length.isdigit() else None
                if on_progress is not None:
                    on_progress(name, have, total)
                got = 0
                with open(part, "ab" if resumed else "wb") as f:
                    for chunk in r.iter_bytes():  # as received: a dropped connection keeps its bytes
                        f.write(chunk)
                        got += len(chunk)
                        if on_progress is not None:
                            on_progress(name, len(chunk), total)
                return got, resumed
        except UserError:
            raise
        except (httpx.HTTPError, OSError) as e:
            if attempt == RETRIES - 1:
                raise UserError(f"{url}: download failed ({e}); run again to resume") from None
            time.sleep(0.2 * (attempt + 1))
    return 0, False


def _check_args(market: str, kind: str, symbol: str, base_url: str | None) -> tuple[str, str]:
    """``(SYMBOL, base URL)`` after checking the arguments."""
    if market not in MARKETS:
        raise UserError(f"unknown market {market!r} (spot or um)")
    if kind not in KINDS:
        raise UserError(f"unknown kind {kind!r} ({', '.join(KINDS)})")
    symbol = symbol.upper()
    if not re.fullmatch(r"[A-Z0-9]{2,30}", symbol):
        raise UserError(f"bad symbol {symbol!r}")
    base = base_url or os.environ.get("AVMM_BINANCE_DATA_URL") or DEFAULT_BASE_URL
    if not re.match(r"https?://", base):
        raise UserError(f"bad base URL {base!r} (http:// or https://)")
    return symbol, base


def _fetch_day(cl: httpx.Client, url: str, out_dir: Path, s: FetchSummary, on_progress: OnProgress | None) -> None:
    """Fetch one day's archive ``url`` into ``out_dir`` (see the module docstring); noted in ``s``."""
    name = url.rsplit("/", 1)[1]
    dest = out_dir / name
    part = out_dir / (name + ".part")
    want = _get_checksum(cl, url + ".CHECKSUM")
    if want is None:
        s.missing.append(name)
        return
    if dest.exists():
        if sha256_file(dest) == want:
            s.skipped.append(name)
            return
        dest.unlink()
    got, resumed = _download(cl, url, part, on_progress)
    s.bytes += got
    if sha256_file(part) != want:
        part.unlink()
        s.bad_checksum.append(name)
        return
    os.replace(part, dest)
    (s.resumed if resumed else s.downloaded).append(name)


def fetch(
    market: str,
    kind: str,
    symbol: str,
    date_from: str,
    date_to: str,
    out_dir: Path,
    base_url: str | None = None,
    on_progress: OnProgress | None = None,
    timeout: float = 60.0,
) -> FetchSummary:
    """Download the daily archives of ``symbol`` from ``date_from`` to ``date_to`` into ``out_dir``.

    Parameters
    ----------
    market : str
        ``"spot"`` or ``"um"`` (USD-M futures).
    kind : str
        ``"bookTicker"``, ``"aggTrades"`` or ``"trades"``.
    symbol : str
        The symbol, e.g. ``"BTCUSDT"`` (case-insensitive).
    date_from, date_to : str
        First and last day, ``YYYY-MM-DD`` (inclusive).
    out_dir : Path
        Where the archives go (created if missing).
    base_url : str or None
        The archive server; None: ``AVMM_BINANCE_DATA_URL`` or ``DEFAULT_BASE_URL``.
    on_progress : callable or None
        Called with ``(file name, bytes advanced, total bytes or None)`` while downloading.
    timeout : float
        HTTP timeout in seconds.

    Returns
    -------
    FetchSummary
        The files downloaded, resumed, already present and not published, and the bytes
        transferred.

    Raises
    ------
    FetchError
        Some archive failed its checksum (deleted), or none of the days is published.
    UserError
        Bad arguments, a network error, or ``httpx`` (``avmm[fetch]``) not installed.
    """
    httpx = _httpx()
    symbol, base = _check_args(market, kind, symbol, base_url)
    days = _days(date_from, date_to)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir}: is a file; give a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"-o {out_dir}: cannot create ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"-o {out_dir}: folder is not writable")
    s = FetchSummary()
    with httpx.Client(timeout=timeout, follow_redirects=True) as cl:
        for day in days:
            try:
                _fetch_day(cl, archive_url(base, market, kind, symbol, day), out_dir, s, on_progress)
            except OSError as e:  # the disk (a full disk, a read-only mount); the network is _download's
                raise UserError(f"-o {out_dir}: cannot write ({e.strerror or e}); kept the days done so far") from None
    if s.bad_checksum:
        raise FetchError(
            s,
            f"{len(s.bad_checksum)} file(s) failed checksum verification and were deleted: "
            + ", ".join(s.bad_checksum),
        )
    if s.missing and not (s.downloaded or s.resumed or s.skipped):
        raise FetchError(s, f"no {market} {kind} archive published for {symbol} {date_from}..{date_to} at {base}")
    return s


class FetchError(UserError):
    """A user error that carries the partial summary."""

    def __init__(self, summary: FetchSummary, message: str):
        super().__init__(message)
        self.summary = summary
