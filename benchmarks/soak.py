"""The soak: ``avmm live`` against ``avmm emulate`` (the real Binance capture replayed at ``--speed``)
for ``--minutes`` of wall time, a fault injected every ``--every`` seconds through the emulator's
control endpoint (``POST /_avmm/fault``), rotating through the private knobs (late acks, fills before
acks, fills in parts, executed-then-timeout, never answered, 429s, the WebSocket API socket closed,
the user data stream ended or its listenKey expired, clock skew, a foreign order) and the public ones
(depth diffs dropped or reordered, a stall, the market socket closed or shut down).

    python benchmarks/soak.py [--minutes 30] [--speed 4] [--every 4] [--venue binance-spot] [--data DIR]
                              [--json FILE]

The capture lasts ~650 s (spot) / 344 s (USD-M) of venue time, so the soak is a chain of rounds:
each a fresh emulator (a fresh account) and a fresh ``avmm live`` session on its own journal,
stopped with SIGINT when its replay ends or the time is up. Each round must end reconciled: no
order of ours open at the emulator, every one of our venue trades in the journal exactly once and
no journal fill the venue does not have, the journal's position == the emulator's == the core's.
Prints a one-screen summary; exit 1 when a round is not reconciled or a session failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "soak-emulator-key-1"
CAPTURES = {
    "binance-spot": (["spot_btcusdt_20240808", "spot_btcusdt_20240809"], 650.0, 1e-5),
    "binance-um": (["usdm_btcusdt_20240808"], 344.0, 1e-3),
}
PRIVATE = ["ackdelay:150", "fillfirst:2", "ackdelay:0", "partial:3", "exectimeout:1", "partial:1", "noanswer:1",
           "ratelimit:2", "close/api", "skew:1500", "skew:0", "foreign:1"]  # fmt: skip
PUBLIC = ["drop:5", "reorder", "stall:1", "close/market", "shutdown/market"]
STREAM = {"binance-spot": ["terminated"], "binance-um": ["keyexpired", "close/user"]}


def rotation(venue: str) -> list[str]:
    """Private and public knobs interleaved (a knob that stays set is set back a few steps later)."""
    priv = PRIVATE + STREAM[venue]
    out = []
    for i in range(max(len(priv), len(PUBLIC))):
        if i < len(priv):
            out.append(priv[i])
        if i < len(PUBLIC):
            out.append(PUBLIC[i])
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _store(data: Path, venue: str, out: Path) -> Path:
    from avmm.data.convert import convert

    names = CAPTURES[venue][0]
    srcs = [data / "binance_ws_capture" / f"{n}.gz" for n in names]
    for s in srcs:
        if not s.exists():
            sys.exit(f"soak: {s}: not found (--data names the shared data folder)")
    full = out / f"{names[0]}.parquet"
    if not full.exists():
        convert(srcs, full)
    return full


def _keys(tmp: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    venue = tmp / "venue_keys.toml"
    venue.write_text(f'[[keys]]\napi_key = "{API_KEY}"\ntype = "ed25519"\npublic_key = """{pub.decode()}"""\n')
    client = tmp / "client_keys.toml"
    client.write_text(f'api_key = "{API_KEY}"\nprivate_key = """{pem.decode()}"""\n')
    client.chmod(0o600)
    return venue, client


def venue_state(url: str, venue: str, client: Path, our_orders: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The emulator's view: our open orders, our trades (id -> signed qty), our position. A trade is
    ours when its order's client id is ours or its order id is one the journal was acked with
    (``our_orders``): a spot cancel renames the order (its client id becomes the cancel's, as on
    Binance), so a part-filled order we cancelled no longer carries our prefix."""
    from avmm.live.clock import ClockOffset
    from avmm.live.keys import from_file
    from avmm.live.limits import RateLimits
    from avmm.live.private_rest import SignedRest

    um = venue == "binance-um"

    async def main() -> dict[str, Any]:
        r = SignedRest(url, from_file(client), ClockOffset(), RateLimits(venue), 10.0, 60000)
        sym = {"symbol": "BTCUSDT"}
        try:
            opened = json.loads(await r.request("GET", "/fapi/v1/openOrders" if um else "/api/v3/openOrders", sym))
            trades: list[dict[str, Any]] = []
            from_id = 0
            while True:  # every trade, 1000 at a time
                q = {**sym, "limit": 1000, "fromId": from_id}
                page = json.loads(await r.request("GET", "/fapi/v1/userTrades" if um else "/api/v3/myTrades", q))
                trades += page
                if len(page) < 1000:
                    break
                from_id = int(page[-1]["id"]) + 1
            path = "/fapi/v1/order" if um else "/api/v3/order"
            cids = {}
            for oid in {int(t["orderId"]) for t in trades}:
                o = json.loads(await r.request("GET", path, {**sym, "orderId": oid}))
                cids[oid] = str(o["clientOrderId"])
            pos_um = 0.0
            if um:
                pr = json.loads(await r.request("GET", "/fapi/v2/positionRisk", sym))
                pos_um = sum(float(p["positionAmt"]) for p in pr if p["symbol"] == "BTCUSDT")
        finally:
            await r.close()
        ours = {}
        foreign_pos = 0.0
        for t in trades:
            buy = t["buyer"] if um else t["isBuyer"]
            q = (1 if buy else -1) * float(t["qty"])
            if cids[int(t["orderId"])].startswith("avmm-") or int(t["orderId"]) in our_orders:
                ours[int(t["id"])] = q
            else:
                foreign_pos += q
        mine_open = [o for o in opened if str(o["clientOrderId"]).startswith("avmm-")]
        pos = pos_um - foreign_pos if um else sum(ours.values())
        return {"open": mine_open, "foreign_open": len(opened) - len(mine_open), "trades": ours, "position": pos}

    return asyncio.run(main())


def journal_fills(j: Path) -> list[tuple[int, float]]:
    con = sqlite3.connect(f"file:{j}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT trade_id, side * qty FROM responses WHERE kind = 'fill'").fetchall()
    finally:
        con.close()
    return [(int(a), float(b)) for a, b in rows]


def journal_venue_orders(j: Path) -> set[int]:
    """The venue order ids of the journal's acks (its orders at the venue)."""
    con = sqlite3.connect(f"file:{j}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT venue_oid FROM responses WHERE kind = 'ack' AND venue_oid > 0").fetchall()
    finally:
        con.close()
    return {int(r[0]) for r in rows}


class Session:
    """``avmm live`` in the background, its JSON status lines and stderr read by threads."""

    def __init__(self, cmd: list[str], err_path: Path) -> None:
        self.err = open(err_path, "w+")  # noqa: SIM115 (a file: a full pipe would block the session)
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True, env=_env())
        self.last: dict[str, Any] = {}
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    self.last = json.loads(line)

    def end(self, timeout: float = 120.0) -> tuple[int, str]:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait(30)
        self.th.join(10)
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        return rc, text


def one_round(k: int, store: Path, venue: str, keys: tuple[Path, Path], tmp: Path, args: Any, end_at: float,
              faults: list[str], fi: int) -> tuple[dict[str, Any], int]:  # fmt: skip
    from avmm.emulator import EmulatorProcess

    span_s, lot = CAPTURES[venue][1], CAPTURES[venue][2]
    j = tmp / f"round{k}.db"
    emu_args = [str(store), "--venue", venue, "--speed", str(args.speed), "--keys", str(keys[0])]
    injected: Counter[str] = Counter()
    fault_log: list[tuple[float, str]] = []  # (seconds into the round, the fault)
    with EmulatorProcess(emu_args, env=_env(), timeout=900.0) as emu:
        cmd = [sys.executable, "-m", "avmm", "live", "--venue", venue, "--symbol", "BTCUSDT", "--url", emu.url,
               "--journal", str(j), "--status-json", "--set", f"venue.keys_file={keys[1]}"]  # fmt: skip
        s = Session(cmd, tmp / f"round{k}.err")
        t0 = time.monotonic()
        stop_at = min(end_at, t0 + span_s / args.speed - 2.0)
        next_fault = t0 + args.every
        while time.monotonic() < stop_at and s.p.poll() is None:
            time.sleep(0.1)
            if time.monotonic() >= next_fault and s.last.get("orders", 0) > 0:
                spec = faults[fi % len(faults)]
                fi += 1
                fault_log.append((round(time.monotonic() - t0, 1), spec))
                try:
                    emu.fault(spec)
                    injected[spec.split(":")[0].split("/")[0] + ("/" + spec.split("/")[1] if "/" in spec else "")] += 1
                except Exception as e:  # noqa: BLE001 (counted: the soak goes on)
                    injected[f"refused {spec}: {e}"] += 1
                next_fault += args.every
        emu.fault("ackdelay:0")  # the end: answers on time, so the final cancel-all is not waited out
        emu.fault("partial:1")
        emu.fault("skew:0")  # the venue clock back (``skew`` sets its offset)
        rc, err = s.end()
        wall = time.monotonic() - t0
        state = venue_state(emu.url, venue, keys[1], frozenset(journal_venue_orders(j)))
    fills = journal_fills(j)
    ids = Counter(t for t, _ in fills)
    last = s.last
    jpos = sum(q for _, q in fills)
    problems = []
    if rc != 0:
        problems.append(f"exit {rc}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    if "Traceback" in err:
        problems.append("a traceback on stderr")
    if state["open"]:
        problems.append(f"{len(state['open'])} order(s) of ours left open")
    dup = [t for t, n in ids.items() if n > 1]
    if dup:
        problems.append(f"{len(dup)} fill(s) journaled twice")
    missing = set(state["trades"]) - set(ids)
    extra = set(ids) - set(state["trades"])
    if missing or extra:
        problems.append(f"fills: {len(missing)} venue trade(s) not journaled, {len(extra)} journaled not at the venue")
    core = float(last.get("position_core", float("nan")))
    if not (abs(jpos - state["position"]) < 0.5 * lot and abs(core - state["position"]) < 0.5 * lot):
        problems.append(f"position: journal {jpos:g}, core {core:g}, venue {state['position']:g}")
    r = {
        "round": k,
        "wall_s": round(wall, 1),
        "faults": dict(injected),
        "fills": len(fills),
        "venue_trades": len(state["trades"]),
        "orders": last.get("orders", 0),
        "cancels": last.get("cancels", 0),
        "reconnects": last.get("reconnects", 0),
        "reconciles": last.get("reconciles", 0),
        "stream_restarts": last.get("stream_restarts", 0),
        "halts": last.get("halts", 0),
        "position": state["position"],
        "foreign_open": state["foreign_open"],
        "rate_orders_max": last.get("rate_orders_max", {}),
        "rate_orders": last.get("rate_orders", {}),
        "error_codes": last.get("error_codes", {}),
        "fill_to_order_us": [
            last.get("fill_to_order_us_p50"),
            last.get("fill_to_order_us_p99"),
            last.get("fill_to_order_n", 0),
        ],
        "reconciled": not problems,
        "problems": problems,
    }
    if problems:
        _keep(r, args.keep / f"round{k}", [j, Path(str(j) + "-wal"), tmp / f"round{k}.err"], fills, extra, missing,
              dup, fault_log)  # fmt: skip
    return r, fi


def _keep(r: dict[str, Any], keep: Path, files: list[Path], fills: list[tuple[int, float]], extra: set[int],
          missing: set[int], dup: list[int], fault_log: list[tuple[float, str]]) -> None:  # fmt: skip
    """A round not reconciled: what it takes to find out why -- the journal, the session's stderr,
    the odd fills, the faults and when -- kept in ``keep`` (and in the round's record)."""
    keep.mkdir(parents=True, exist_ok=True)
    for f in files:
        if f.exists():
            shutil.copy2(f, keep / f.name)
    q = dict(fills)
    r["extra_fills"] = [[t, q[t]] for t in sorted(extra)]
    r["missing_trades"] = sorted(missing)
    r["duplicated_fills"] = sorted(dup)
    r["fault_log"] = fault_log
    r["kept"] = str(keep)
    (keep / "round.json").write_text(json.dumps(r, indent=2, default=str))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="wall minutes of soak (default 30)")
    ap.add_argument("--speed", type=float, default=4.0, help="the replay's speed (default 4)")
    ap.add_argument("--every", type=float, default=4.0, help="seconds between two faults (default 4)")
    ap.add_argument("--venue", default="binance-spot", choices=sorted(CAPTURES))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--json", type=Path, default=None, help="write the rounds and the totals as JSON")
    ap.add_argument(
        "--keep", type=Path, default=Path("soak-failed"), help="a round not reconciled: its journal, stderr, faults"
    )
    args = ap.parse_args()
    if not (args.minutes > 0 and args.speed > 0 and args.every > 0):
        sys.exit("soak: --minutes, --speed and --every must be positive")
    faults = rotation(args.venue)
    t_start = time.monotonic()
    end_at = t_start + args.minutes * 60.0
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="avmm-soak-") as d:
        tmp = Path(d)
        store = _store(args.data, args.venue, tmp)
        keys = _keys(tmp)
        fi = 0
        while time.monotonic() < end_at - 20.0 or not rounds:
            r, fi = one_round(len(rounds) + 1, store, args.venue, keys, tmp, args, end_at, faults, fi)
            rounds.append(r)
            end = "reconciled" if r["reconciled"] else "NOT reconciled: " + "; ".join(r["problems"])
            n_faults = sum(r["faults"].values())
            print(f"soak: round {r['round']}: {r['wall_s']:.0f} s, {n_faults} faults, {r['fills']} fills, {end}",
                  file=sys.stderr, flush=True)  # fmt: skip
    total = _summary(rounds, time.monotonic() - t_start, args)
    if args.json is not None:
        args.json.write_text(json.dumps({"rounds": rounds, "total": total}, indent=2, default=str))
    return 0 if total["reconciled"] else 1


def _summary(rounds: list[dict[str, Any]], wall: float, args: Any) -> dict[str, Any]:
    faults: Counter[str] = Counter()
    for r in rounds:
        faults.update(r["faults"])
    codes: Counter[str] = Counter()
    for r in rounds:
        codes.update({str(k): int(v) for k, v in r["error_codes"].items()})
    budget = {}
    for r in rounds:
        for k, used in r["rate_orders_max"].items():
            lim = r["rate_orders"].get(k, [0, 0])[1]
            budget[k] = max(budget.get(k, (0, lim))[0], used), lim
    tot = {
        "venue": args.venue,
        "wall_min": round(wall / 60.0, 1),
        "speed": args.speed,
        "rounds": len(rounds),
        "faults": sum(faults.values()),
        "fills": sum(r["fills"] for r in rounds),
        "orders": sum(r["orders"] for r in rounds),
        "reconnects": sum(r["reconnects"] for r in rounds),
        "reconciles": sum(r["reconciles"] for r in rounds),
        "stream_restarts": sum(r["stream_restarts"] for r in rounds),
        "halts": sum(r["halts"] for r in rounds),
        "reconciled": all(r["reconciled"] for r in rounds),
    }
    line = "=" * 78
    print(line)
    print(f"avmm soak: {args.venue}, {tot['wall_min']} min wall, replay --speed {args.speed:g}, "
          f"a fault every {args.every:g} s, {len(rounds)} round(s)")  # fmt: skip
    print(line)
    print(f"{'round':>5} {'wall s':>7} {'faults':>6} {'fills':>6} {'orders':>7} {'reconn':>6} {'recons':>6} "
          f"{'halts':>5} {'position':>10}  end")  # fmt: skip
    for r in rounds:
        end = "reconciled" if r["reconciled"] else "NOT: " + "; ".join(r["problems"])
        print(f"{r['round']:>5} {r['wall_s']:>7.0f} {sum(r['faults'].values()):>6} {r['fills']:>6} {r['orders']:>7} "
              f"{r['reconnects']:>6} {r['reconciles']:>6} {r['halts']:>5} {r['position']:>10.5f}  {end}")  # fmt: skip
    print(line)
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    print("venue error codes met: " + (", ".join(f"{k} x{v}" for k, v in sorted(codes.items())) or "none"))
    print("order budget, most used / limit: " + ", ".join(f"{k} {u}/{lim}" for k, (u, lim) in budget.items()))
    print(f"totals: {tot['fills']} fills, {tot['orders']} orders, {tot['reconnects']} reconnects, "
          f"{tot['reconciles']} reconciliations, {tot['stream_restarts']} stream restarts, "
          f"{tot['halts']} halts")  # fmt: skip
    f2o = [r["fill_to_order_us"] for r in rounds if r["fill_to_order_us"][0] is not None]
    if f2o:
        print("fill -> replacement order, wire to wire (last 4096 per round), µs: "
              + ", ".join(f"round {r['round']} p50 {x[0]:.0f} p99 {x[1]:.0f} (n {x[2]})"
                          for r, x in zip(rounds, [r["fill_to_order_us"] for r in rounds], strict=True)
                          if x[0] is not None))  # fmt: skip
    ok = "every round reconciled" if tot["reconciled"] else "NOT RECONCILED"
    print(f"end: {ok} (no order of ours open at the emulator, every fill journaled once, journal position == "
          "emulator position == core position)")  # fmt: skip
    print(line)
    return tot


if __name__ == "__main__":
    sys.exit(main())
