"""The garbage collector during a paper session: ``avmm paper --gc auto`` (automatic collections,
the setup frozen) against ``--gc manual`` (none during the session; the young generations
collected from a timer every second, a full collection every minute, between two events), on the
emulator's replay of the real USD-M capture: the README's figures in "Running unattended".

    python benchmarks/paper_gc.py [--data ../shared/data] [--speed 20] [--runs 3] [--json FILE]

Each run is an ``avmm paper`` process with a journal against ``avmm emulate --speed`` of the whole
capture (344 s of venue time), the modes alternated. From the session's last status line: every
collection's pause after the setup's freeze (``gc.callbacks``: count, p99, max, total per
generation) and the sampled stage latencies (p50 / p99, µs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NAME = "usdm_btcusdt_20240808"
SPAN_S = 344.0


def _store(data: Path, out: Path) -> Path:
    from avmm.data.convert import convert

    src = data / "binance_ws_capture" / f"{NAME}.gz"
    if not src.exists():
        sys.exit(f"{src}: not found")
    full = out / f"{NAME}.parquet"
    if not full.exists():
        convert([src], full)
    return full


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(store: Path, mode: str, speed: float, tmp: Path) -> dict[str, Any]:
    from avmm.emulator import EmulatorProcess

    with EmulatorProcess([str(store), "--venue", "binance-um", "--speed", str(speed)], env=_env()) as emu:
        p = subprocess.run(
            [sys.executable, "-m", "avmm", "paper", "--venue", "binance-um", "--symbol", "BTCUSDT", "--url", emu.url,
             "--journal", str(tmp / f"{mode}.db"), "--status-json", "--gc", mode, "--set", "venue.depth_interval=0ms",
             "--duration", str(SPAN_S / speed + 4.0)],
            capture_output=True, text=True, env=_env(), timeout=900,
        )  # fmt: skip
    if p.returncode != 0:
        sys.exit(f"avmm paper --gc {mode}: exit {p.returncode}: {p.stderr.strip()[-500:]}")
    last = json.loads([x for x in p.stdout.splitlines() if x.startswith("{")][-1])
    keep = {"gc": last["gc"]["pauses"], "latency_us": last["latency_us"], "frames": last["frames"]}
    return {**keep, "wall_s": last["uptime_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    bench = ROOT / ".bench" / "paper"
    bench.mkdir(parents=True, exist_ok=True)
    store = _store(a.data, bench)
    out: dict[str, list[dict[str, Any]]] = {"auto": [], "manual": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            for mode in ("auto", "manual") if i % 2 == 0 else ("manual", "auto"):
                r = _run(store, mode, a.speed, Path(tmp))
                out[mode].append(r)
                print(f"run {i + 1} --gc {mode}: {json.dumps(r)}", flush=True)
    print(f"\n{NAME}, {SPAN_S:g} s at --speed {a.speed:g}, {a.runs} runs per mode")
    print("mode    | collections gen0/1/2 | pause p99 / max (ms), gen0 | gen1 | gen2 | total ms | core p99 µs")
    for mode, runs in out.items():
        n = [sum(r["gc"][f"gen{g}"]["n"] for r in runs) for g in range(3)]

        def q(g: int, k: str, runs: list[dict[str, Any]] = runs) -> str:
            v = [r["gc"][f"gen{g}"].get(k) for r in runs if r["gc"][f"gen{g}"]["n"]]
            return f"{max(v):.3f}" if v else "-"

        total = sum(r["gc"][f"gen{g}"].get("total_ms", 0.0) for r in runs for g in range(3))
        core = sorted(r["latency_us"]["core"][1] for r in runs if r["latency_us"].get("core"))
        print(
            f"{mode:7} | {n[0]}/{n[1]}/{n[2]} | {q(0, 'p99_ms')} / {q(0, 'max_ms')} | {q(1, 'p99_ms')} / "
            f"{q(1, 'max_ms')} | {q(2, 'p99_ms')} / {q(2, 'max_ms')} | {total:.1f} | "
            f"{core[len(core) // 2] if core else '-'}"
        )
    if a.json is not None:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
