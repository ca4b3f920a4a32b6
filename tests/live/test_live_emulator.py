"""``avmm live`` against the emulator's private side (``avmm emulate --keys``), replaying real
Binance captures: after each run -- clean, under a fault knob, killed with ``kill -9`` and
restarted on its journal -- no order of ours is left open at the venue, every venue fill is in the
journal exactly once (by trade id), the core's position equals the venue's, and the order budget was
never exceeded (127.0.0.1 only).

The default suite runs one clean session per venue with several faults at once and the kill -9
test; ``-m slow`` (``make test-slow``) runs every fault knob on its own, on both venues.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("picows")
pytest.importorskip("aiohttp")
pytest.importorskip("cryptography")

from tests.live.test_paper_emulator import _env, capture  # noqa: E402

pytestmark = pytest.mark.xdist_group("live")
API_KEY = "mm-emulator-key-1"
SPEED = 20.0
SPAN_S = 240.0  # of capture: 12 s of wall time at --speed 20
CAPTURE = {"binance-spot": "spot_btcusdt_20240808", "binance-um": "usdm_btcusdt_20240808"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live_emu")


@pytest.fixture(scope="module")
def keys(root: Path) -> tuple[Path, Path]:
    """(the venue's keys file: the public key; the client's: the private key, mode 0600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    venue = root / "venue_keys.toml"
    venue.write_text(f'[[keys]]\napi_key = "{API_KEY}"\ntype = "ed25519"\npublic_key = """{pub.decode()}"""\n')
    client = root / "client_keys.toml"
    client.write_text(f'api_key = "{API_KEY}"\nprivate_key = """{pem.decode()}"""\n')
    client.chmod(0o600)
    return venue, client


def emulator(root: Path, venue: str, keys: tuple[Path, Path], *faults: str) -> Any:
    from avmm.emulator import EmulatorProcess

    store = capture(CAPTURE[venue], root, SPAN_S)
    args: list[Any] = [store, "--venue", venue, "--speed", str(SPEED), "--keys", keys[0]]
    for f in faults:
        args += ["--fault", f]
    return EmulatorProcess(args, env=_env(), timeout=900.0)  # (a cold numba cache compiles the matching engine)


def live(url: str, venue: str, client: Path, journal: Path, *extra: str, duration: float | None = None) -> Any:
    cmd = [sys.executable, "-m", "avmm", "live", "--venue", venue, "--symbol", "BTCUSDT", "--url", url]
    cmd += ["--journal", str(journal), "--status-json", "--set", f"venue.keys_file={client}", *extra]
    if duration is not None:
        cmd += ["--duration", str(duration)]
    err = open(str(journal) + f".{time.monotonic_ns()}.err", "w+")  # noqa: SIM115 (a file: a full pipe would block it)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=_env())
    p.err_file = err  # type: ignore[attr-defined]
    return p


def venue_state(url: str, venue: str, client: Path) -> dict[str, Any]:
    """The venue's view of the account: our open orders, every trade, the position."""
    from avmm.live.clock import ClockOffset
    from avmm.live.keys import from_file
    from avmm.live.limits import RateLimits
    from avmm.live.private_rest import SignedRest

    async def main() -> dict[str, Any]:
        r = SignedRest(url, from_file(client), ClockOffset(), RateLimits(venue), 10.0, 60000)
        try:
            if venue == "binance-um":
                opened = json.loads(await r.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}))
                trades = json.loads(await r.request("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "limit": 1000}))
                pr = json.loads(await r.request("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"}))
                pos = sum(float(p["positionAmt"]) for p in pr if p["symbol"] == "BTCUSDT")
                side = [1 if t["buyer"] else -1 for t in trades]
            else:
                opened = json.loads(await r.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}))
                trades = json.loads(await r.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "limit": 1000}))
                side = [1 if t["isBuyer"] else -1 for t in trades]
            # ours: the orders with our client ids (a foreign order may fill on the account too)
            path = "/fapi/v1/order" if venue == "binance-um" else "/api/v3/order"
            cids = {}
            for oid in {int(t["orderId"]) for t in trades}:
                o = json.loads(await r.request("GET", path, {"symbol": "BTCUSDT", "orderId": oid}))
                cids[oid] = str(o["clientOrderId"])
            mine = [cids[int(t["orderId"])].startswith("avmm-") for t in trades]
            keep = [i for i, m in enumerate(mine) if m]
            foreign_pos = sum(side[i] * float(trades[i]["qty"]) for i in range(len(trades)) if not mine[i])
            trades, side = [trades[i] for i in keep], [side[i] for i in keep]
            if venue == "binance-spot":
                pos = sum(s * float(t["qty"]) for s, t in zip(side, trades, strict=True))
            foreign_fills = len(mine) - len(keep)
        finally:
            await r.close()
        by_id = {int(t["id"]): (s, float(t["qty"])) for s, t in zip(side, trades, strict=True)}
        return {"open": opened, "trades": by_id, "n_trades": len(trades), "position": pos,
                "foreign_fills": foreign_fills, "foreign_position": foreign_pos}  # fmt: skip

    return asyncio.run(main())


def journal_fills(j: Path) -> list[tuple[int, int, float]]:
    """(trade id, side, qty) of every fill the journal holds, every session."""
    con = sqlite3.connect(f"file:{j}?mode=ro", uri=True)
    try:
        return [(int(a), int(b), float(c)) for a, b, c in
                con.execute("SELECT trade_id, side, qty FROM responses WHERE kind = 'fill'").fetchall()]  # fmt: skip
    finally:
        con.close()


def finish(p: Any, timeout: float = 180.0, sig: int | None = None) -> tuple[str, str, dict[str, Any]]:
    """Wait for (or stop) the session; its stdout, stderr and last status."""
    if sig is not None:
        p.send_signal(sig)
    out, _ = p.communicate(timeout=timeout)
    p.err_file.seek(0)
    err = p.err_file.read()
    p.err_file.close()
    sts = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return out, err, (sts[-1] if sts else {})


def wait_status(p: Any, cond: Any, timeout: float = 240.0) -> dict[str, Any]:
    """Read status lines until ``cond(status)``; the status."""
    deadline = time.monotonic() + timeout
    assert p.stdout is not None
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            st = json.loads(line)
            if cond(st):
                return st
    raise AssertionError("the status never met the condition")


def check_reconciled(state: dict[str, Any], fills: list[tuple[int, int, float]], position: float, lot: float) -> None:
    """No orphan order; every venue fill journaled once, none invented; the position the venue's."""
    assert state["open"] == [], state["open"]
    ids = [f[0] for f in fills]
    dup = [k for k, v in Counter(ids).items() if v > 1]
    assert not dup, f"fills journaled twice: {dup}"
    assert set(ids) == set(state["trades"]), (
        sorted(set(state["trades"]) - set(ids)),
        sorted(set(ids) - set(state["trades"])),
    )
    venue = state["position"]
    # USD-M's position is the account's (a foreign order's fills in it; the core takes it at each
    # reconciliation): ours is the venue's, or the venue's less the foreign fills
    ok = [abs(position - venue) < 0.5 * lot, abs(position - (venue - state["foreign_position"])) < 0.5 * lot]
    assert any(ok), (position, venue, state["foreign_position"])


def run_session(root: Path, keys: tuple[Path, Path], venue: str, name: str, faults: tuple[str, ...] = (),
                runtime: tuple[tuple[float, str], ...] = (), duration: float = 12.0,
                extra: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """One session (faults at start, and ``runtime`` ones posted after so many wall seconds of
    quoting); the venue's state after it, the journal's fills, the last status."""
    j = root / f"{name}.db"
    for sfx in ("", "-wal", "-shm", ".log"):
        Path(str(j) + sfx).unlink(missing_ok=True)
    with emulator(root, venue, keys, *faults) as emu:
        p = live(emu.url, venue, keys[1], j, *extra, duration=duration)
        if runtime:
            wait_status(p, lambda st: st.get("orders", 0) > 0)
            t0 = time.monotonic()
            for at, spec in runtime:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                emu.fault(spec)
        out, err, last = finish(p)
        state = venue_state(emu.url, venue, keys[1])
    assert p.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    return {"state": state, "fills": journal_fills(j), "last": last, "err": err, "out": out, "journal": j}


def _position(r: dict[str, Any]) -> float:
    return float(r["last"]["position_core"])


def _budget_kept(r: dict[str, Any]) -> None:
    last = r["last"]
    lim = {k: v[1] for k, v in last["rate_orders"].items()}
    for k, used in last["rate_orders_max"].items():
        assert used <= lim[k], (k, used, lim[k])
    assert "-1015" not in last["error_codes"]  # the venue never refused an order for the budget


# --- the default suite -------------------------------------------------------------------------------
def test_spot_session_with_faults_reconciles(root, keys):
    """Spot: fills before their acks, fills in parts, orders executed then answered -1007, a
    foreign order at the start, the WebSocket API socket closed mid-session and the user data
    subscription ended (eventStreamTerminated)."""
    r = run_session(
        root, keys, "binance-spot", "spot_faults",
        faults=("fillfirst:3", "partial:2", "exectimeout:2@30", "foreign:1"),
        runtime=((2.0, "close/api"), (5.0, "terminated")),
    )  # fmt: skip
    last = r["last"]
    assert last["venue_fills"] > 0 and last["mode"] == "live"
    assert last["reconnects"] >= 1 and last["stream_restarts"] >= 1 and last["reconciles"] >= 3
    assert last["fill_to_order_n"] > 0 and last["fill_to_order_us_p50"] > 0  # fill -> replacement, timed
    # the foreign order: left alone (the default: still open, or filled by the market), never
    # counted as ours (its fills are not in the journal: check_reconciled)
    foreign = [o for o in r["state"]["open"] if not str(o["clientOrderId"]).startswith("avmm-")]
    assert len(foreign) + r["state"]["foreign_fills"] >= 1
    r["state"]["open"] = [o for o in r["state"]["open"] if o not in foreign]
    check_reconciled(r["state"], r["fills"], _position(r), 1e-5)
    _budget_kept(r)


def test_usdm_session_with_faults_reconciles(root, keys):
    """USD-M: late acks, a listenKey that expires, the user stream's socket closed, the venue's
    clock jumping 3 s, a burst of 429s; the countdownCancelAll heartbeat on, off at the end."""
    r = run_session(
        root, keys, "binance-um", "um_faults",
        faults=("ackdelay:50", "partial:2", "noanswer:1@40"),
        runtime=((2.0, "keyexpired"), (4.0, "close/user"), (6.0, "skew:3000"), (7.0, "ratelimit:3")),
    )  # fmt: skip
    last = r["last"]
    assert last["venue_fills"] > 0
    assert last["stream_restarts"] >= 2 and last["reconciles"] >= 3
    assert last["countdowns"] >= 1
    check_reconciled(r["state"], r["fills"], _position(r), 1e-3)
    _budget_kept(r)


def test_kill_9_and_restart_on_the_same_journal(root, keys):
    """``kill -9`` mid-session, then a restart on the same journal: the orders the dead process
    left are cancelled, its fills the journal missed are booked (by trade id, never twice), and the
    position at the end is the venue's."""
    venue = "binance-spot"
    j = root / "kill9.db"
    with emulator(root, venue, keys) as emu:
        p = live(emu.url, venue, keys[1], j)
        wait_status(p, lambda st: st.get("fills", 0) >= 2 and len(st["our_bids"]) + len(st["our_asks"]) > 0)
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL
        left = venue_state(emu.url, venue, keys[1])
        assert left["open"], "the killed process left orders at the venue"
        time.sleep(1.0)  # the replay goes on: the orphans may fill meanwhile
        p2 = live(emu.url, venue, keys[1], j, duration=6.0)
        out, err, last = finish(p2)
        state = venue_state(emu.url, venue, keys[1])
    assert p2.returncode == 0, err[-3000:]
    fills = journal_fills(j)
    check_reconciled(state, fills, float(last["position_core"]), 1e-5)
    con = sqlite3.connect(j)
    sessions = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
    con.close()
    assert sessions == 2
    r = subprocess.run([sys.executable, "-m", "avmm", "report", str(j)], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr


def test_the_key_is_in_no_output_nor_journal(root, keys):
    """The API key and the private key: in no output, log line or journal byte of a session."""
    r = run_session(root, keys, "binance-spot", "secrets", duration=4.0)
    client = keys[1].read_text()
    pem_body = "".join(client.split('"""')[1].splitlines()[1:-1])
    blob = b""
    for sfx in ("", "-wal", ".log"):
        f = Path(str(r["journal"]) + sfx)
        if f.exists():
            blob += f.read_bytes()
    for secret in (API_KEY, pem_body):
        assert secret not in r["out"] and secret not in r["err"]
        assert secret.encode() not in blob


# --- the fault matrix (make test-slow) ------------------------------------------------------------------
MATRIX = [
    ("ackdelay", ("ackdelay:200",), ()),
    ("fillfirst", ("fillfirst:5",), ()),
    ("partial", ("partial:3",), ()),
    ("exectimeout", ("exectimeout:3@20",), ()),
    ("noanswer", ("noanswer:2@20",), ()),
    ("skew", (), ((2.0, "skew:4000"),)),
    ("ratelimit", (), ((2.0, "ratelimit:5"),)),
    ("orderlimit", ("orderlimit:20",), ()),
    ("close_api", (), ((2.0, "close/api"),)),
    ("foreign_cancel", ("foreign:2",), ()),
]
SPOT_ONLY = [("terminated", (), ((2.0, "terminated"),))]
UM_ONLY = [("keyexpired", (), ((2.0, "keyexpired"),)), ("close_user", (), ((2.0, "close/user"),))]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("venue", "name", "faults", "runtime"),
    [("binance-spot", *m) for m in MATRIX + SPOT_ONLY] + [("binance-um", *m) for m in MATRIX + UM_ONLY],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_fault_matrix(root, keys, venue, name, faults, runtime):
    extra = ("--set", "venue.foreign_orders=cancel") if name == "foreign_cancel" else ()
    r = run_session(root, keys, venue, f"{venue}-{name}", faults=faults, runtime=runtime, extra=extra)
    if name == "foreign_cancel":  # cancelled at the start: nothing foreign is left open either
        assert r["last"]["open_orders"] == 0
    check_reconciled(r["state"], r["fills"], _position(r), 1e-3 if venue == "binance-um" else 1e-5)
    _budget_kept(r)
