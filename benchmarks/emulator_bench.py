"""How many frames per second ``avmm emulate --max`` serves to one client (issue 13).

The emulator runs in its own process (``avmm emulate --max``, uvloop); the client, in this process,
is a bare picows websocket (no decoding: it counts frames and bytes), subscribed to every stream of
the symbol on one combined connection. Measured from the first frame to the replay's end (the
``/_avmm/status`` endpoint says when it has sent everything), several runs, median reported.

Stores: the real spot and USD-M captures of ``../shared/data`` converted (if present) and a
synthetic L1 session (``avmm data synth``), so the figure covers depth diffs and bookTicker alike.

``--keys N`` gives the emulator N API keys: N accounts, each an exchange model fed every market
event (no orders), the cost of the private side on the replay.

Usage::

    .venv/bin/python benchmarks/emulator_bench.py [--repeat 3] [--keys N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))


async def _client(ws_url: str, streams: list[str], status) -> tuple[int, int, float]:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    done = asyncio.get_running_loop().create_future()
    counts = {"n": 0, "bytes": 0, "t0": 0.0, "t1": 0.0}

    class L(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                if counts["n"] == 0:
                    counts["t0"] = time.perf_counter()
                counts["n"] += 1
                counts["bytes"] += len(frame.get_payload_as_memoryview())
                counts["t1"] = time.perf_counter()
            elif frame.msg_type == WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())
            elif frame.msg_type == WSMsgType.CLOSE and not done.done():
                done.set_result(None)

    url = f"{ws_url}/stream?streams={'/'.join(streams)}"
    transport, _ = await ws_connect(L, url)
    while True:
        await asyncio.sleep(0.2)
        st = await asyncio.to_thread(status)
        if st["done"]:
            break
    await asyncio.sleep(0.3)  # frames still in flight
    transport.disconnect()
    return counts["n"], counts["bytes"], counts["t1"] - counts["t0"]


def run_one(store: Path, venue: str, keys: Path | None = None) -> dict:
    from avmm.data.store import read_meta
    from avmm.emulator import EmulatorProcess

    sym = (read_meta(store).get("symbol") or "BTCUSDT").lower()
    kinds = ["bookTicker", "trade", "depth"] if venue == "binance-spot" else ["bookTicker", "aggTrade", "depth@0ms"]
    extra = ["--keys", str(keys)] if keys is not None else []
    with EmulatorProcess([str(store), "--venue", venue, "--max", "--heartbeat", "0", *extra], timeout=600) as p:
        n, nbytes, secs = asyncio.run(_client(p.ws_url, [f"{sym}@{k}" for k in kinds], p.status))
        st = p.status()
    return {"frames": n, "bytes": nbytes, "seconds": secs, "frames_per_s": n / secs, "steps": st["steps"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keys", type=int, default=0, help="API keys (accounts fed the market) to serve")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from avmm.data.convert import convert
    from avmm.data.synth import write_synth

    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        keys = None
        if args.keys:
            keys = Path(tmp) / "keys.toml"
            keys.write_text(
                "".join(f'[[keys]]\napi_key = "k{i}"\ntype = "hmac"\nsecret = "s{i}"\n' for i in range(args.keys))
            )
        stores: list[tuple[str, Path, str]] = []
        synth = Path(tmp) / "synth.parquet"
        write_synth(synth, 300_000, 7, quote_rate=1000.0, trade_rate=200.0)
        stores.append(("synth L1 (300k events)", synth, "binance-spot"))
        cap = DATA / "binance_ws_capture"
        for name, venue in (("spot_btcusdt_20240808", "binance-spot"), ("usdm_btcusdt_20240808", "binance-um")):
            if (cap / f"{name}.gz").exists():
                s = Path(tmp) / f"{name}.parquet"
                convert([cap / f"{name}.gz"], s)
                stores.append((name, s, venue))
        for label, store, venue in stores:
            runs = [run_one(store, venue, keys) for _ in range(args.repeat)]
            fps = statistics.median(r["frames_per_s"] for r in runs)
            r0 = runs[0]
            out[label] = {
                "venue": venue,
                "keys": args.keys,
                "frames": r0["frames"],
                "mb": r0["bytes"] / 1e6,
                "frames_per_s": fps,
                "runs": [round(r["frames_per_s"]) for r in runs],
            }
            print(
                f"{label:28s} {venue:13s} {r0['frames']:>9,} frames {r0['bytes'] / 1e6:8.1f} MB "
                f"{fps:>10,.0f} frames/s (median of {args.repeat}: {out[label]['runs']})",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
