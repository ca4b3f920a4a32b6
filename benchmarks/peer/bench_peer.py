"""``make bench-peer``: avmm and hftbacktest 2.4.4 on the same work, side by side.

    python benchmarks/peer/bench_peer.py                      # 1M events, 5 runs of each tool
    python benchmarks/peer/bench_peer.py --events 50000 --runs 1 --json bench_peer.json

1. makes hftbacktest's virtualenv (``.venv-peer/`` in the repo root: ``python -m venv`` + ``pip install
   hftbacktest==2.4.4``) if it is missing;
2. generates the comparison stream (``stream.py``) or reuses it from ``.bench-peer/``;
3. runs each tool once to warm up (avmm: the compiled loop into numba's disk cache), then alternates
   them, ``--runs`` times each, every run in a fresh process: avmm as a user runs it (``avmm backtest
   STORE --config avmm_peer.toml --json F``), hftbacktest through ``hbt_mm.py`` (which compiles its
   strategy on a warm-up run before the timed one);
4. prints fills, orders, cancels, PnL and the medians of the loops' wall time and logical events per
   second (a logical event is a quote update or a trade, not an hftbacktest row), and the ratios
   avmm / hftbacktest.

Speed is the compiled loop's rate in both tools, JIT excluded: avmm's ``events_per_s`` (and
``events_per_s_e2e``, with the Parquet reading, when avmm reports it); hftbacktest's loop timed
around the strategy's ``elapse`` loop, its input already in memory. Errors (no network for pip, a
tool that fails) are one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import stream  # noqa: E402  (this folder, not a package)

from avmm.errors import UserError  # noqa: E402

REPO = HERE.parents[1]
HBT_VERSION = "2.4.4"
CONFIG = HERE / "avmm_peer.toml"
TOOLS = ("avmm", "hftbacktest")


class ToolFailed(UserError):
    pass


def _run(cmd: list[str], what: str, timeout: float = 1800) -> str:
    """Run ``cmd``; its stdout, or a one-line error naming ``what`` and the tool's last line."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolFailed(f"{what}: {e}") from None
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit code {r.returncode}"
        raise ToolFailed(f"{what} failed (exit {r.returncode}): {last}")
    return r.stdout


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _hbt_version(py: Path) -> str | None:
    if not py.exists():
        return None
    r = subprocess.run(
        [str(py), "-c", "import hftbacktest; print(hftbacktest.__version__)"], capture_output=True, text=True
    )
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_venv(venv: Path) -> Path:
    """``venv``'s python with hftbacktest HBT_VERSION in it, made (or completed) if needed."""
    py = _venv_python(venv)
    if _hbt_version(py) == HBT_VERSION:
        return py
    print(f"bench-peer: installing hftbacktest {HBT_VERSION} into {venv} ...", file=sys.stderr)
    if not py.exists():
        _run([sys.executable, "-m", "venv", str(venv)], f"python -m venv {venv}")
    _run(
        [str(py), "-m", "pip", "install", "--quiet", f"hftbacktest=={HBT_VERSION}"],
        f"pip install hftbacktest=={HBT_VERSION} into {venv} (needs PyPI)",
    )
    if _hbt_version(py) != HBT_VERSION:
        raise ToolFailed(f"{venv}: hftbacktest {HBT_VERSION} does not import after the install")
    return py


def run_avmm(store: Path, config: Path, sets: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as d:
        out = Path(d) / "avmm.json"
        cmd = [sys.executable, "-m", "avmm", "backtest", str(store), "--config", str(config), "--json", str(out)]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.perf_counter()
        _run(cmd, "avmm backtest")
        proc_s = time.perf_counter() - t0
        doc = json.loads(out.read_text())
    keep = (
        "events",
        "fills",
        "fill_qty",
        "maker_fills",
        "taker_fills",
        "orders",
        "cancels",
        "rejects_post_only",
        "rejects_risk",
        "pnl_gross",
        "pnl_net",
        "fees",
        "position",
        "wall_s",
        "events_per_s",
        "events_per_s_e2e",
    )
    res = {k: doc[k] for k in keep if k in doc}
    res["process_s"] = proc_s
    return res


def run_hbt(py: Path, npz: Path, extra: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = _run([str(py), str(HERE / "hbt_mm.py"), str(npz), *extra], "hftbacktest (hbt_mm.py)")
    proc_s = time.perf_counter() - t0
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise ToolFailed("hftbacktest (hbt_mm.py) printed no JSON line")
    res = json.loads(lines[-1])
    res["process_s"] = proc_s
    return res


def _versions(py: Path, mods: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, platform, importlib\n"
        "out = {'python': platform.python_version()}\n"
        f"for m in {mods!r}:\n"
        "    try:\n"
        "        out[m] = importlib.import_module(m).__version__\n"
        "    except Exception:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def _git_commit() -> str | None:
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def _spread(vals: list[float]) -> dict[str, float]:
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per tool: the counts of its first run (and whether every run gave the same), the medians."""
    out: dict[str, Any] = {}
    for tool, rs in runs.items():
        first = rs[0]
        same = all(all(r.get(k) == first.get(k) for k in ("fills", "orders", "cancels")) for r in rs)
        keys = ("events", "fills", "fill_qty", "orders", "cancels", "pnl_gross", "pnl_net")
        s = {k: first.get(k) for k in keys}
        s["rejects_post_only"] = first.get("rejects_post_only")
        s["counts_identical_across_runs"] = same
        s["wall_s"] = _spread([r["wall_s"] for r in rs])
        s["events_per_s"] = _spread([r["events_per_s"] for r in rs])
        if all(r.get("events_per_s_e2e") for r in rs):
            s["events_per_s_e2e"] = _spread([r["events_per_s_e2e"] for r in rs])
        out[tool] = s
    a, h = out["avmm"], out["hftbacktest"]
    ratios = {
        "fills": a["fills"] / h["fills"] if h["fills"] else None,
        "fill_qty": a["fill_qty"] / h["fill_qty"] if a.get("fill_qty") and h.get("fill_qty") else None,
        "orders": a["orders"] / h["orders"] if h["orders"] else None,
        "cancels": a["cancels"] / h["cancels"] if h["cancels"] else None,
        "speed": a["events_per_s"]["median"] / h["events_per_s"]["median"],
    }
    if "events_per_s_e2e" in a:
        ratios["speed_e2e"] = a["events_per_s_e2e"]["median"] / h["events_per_s"]["median"]
    out["ratios_avmm_over_hftbacktest"] = ratios
    return out


def table(summary: dict[str, Any], versions: dict[str, str]) -> str:
    head = (
        f"{'tool':12s} {'version':16s} {'fills':>8s} {'orders':>9s} {'cancels':>9s} {'gross':>9s} {'net':>9s} "
        f"{'wall s':>7s} {'events/s (median, min-max)':>32s}"
    )
    lines = [head, "-" * len(head)]
    for tool in TOOLS:
        s = summary[tool]
        ev = s["events_per_s"]
        rate = f"{ev['median'] / 1e6:.2f}M ({ev['min'] / 1e6:.2f}-{ev['max'] / 1e6:.2f}M)"
        lines.append(
            f"{tool:12s} {versions[tool]:16s} {s['fills']:>8,} {s['orders']:>9,} {s['cancels']:>9,} "
            f"{s['pnl_gross']:>9.2f} {s['pnl_net']:>9.2f} {s['wall_s']['median']:>7.3f} {rate:>32s}"
        )
        if "events_per_s_e2e" in s:
            e = s["events_per_s_e2e"]
            lines.append(
                f"{'':12s} {'':16s} {'(end to end, Parquet reading included)':>58s} {'':7s} "
                f"{e['median'] / 1e6:.2f}M ({e['min'] / 1e6:.2f}-{e['max'] / 1e6:.2f}M)".rstrip()
            )
    r = summary["ratios_avmm_over_hftbacktest"]
    ratio = f"avmm / hftbacktest: fills {r['fills']:.3f}x, orders {r['orders']:.3f}x, speed {r['speed']:.2f}x"
    if "speed_e2e" in r:
        ratio += f" (end to end {r['speed_e2e']:.2f}x)"
    if r.get("fill_qty"):
        ratio += f"; fill volume {r['fill_qty']:.3f}x"
    lines.append(ratio)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each tool, alternated (default 5)")
    ap.add_argument("--events", type=int, default=1_000_000, help="logical events of the stream (default 1M)")
    ap.add_argument("--seed", type=int, default=1, help="the stream's seed")
    ap.add_argument("--json", type=Path, default=None, help="write the runs, the summary and the machine here")
    ap.add_argument("--dir", type=Path, default=stream.DEFAULT_DIR, help="stream cache (default .bench-peer/)")
    ap.add_argument("--venv", type=Path, default=REPO / ".venv-peer", help="hftbacktest's virtualenv")
    ap.add_argument("--config", type=Path, default=CONFIG, help="avmm's pinned config")
    ap.add_argument("--set", action="append", default=[], help="extra avmm config override (repeatable)")
    args = ap.parse_args(argv)
    try:
        return _main(args)
    except UserError as e:
        print(f"bench-peer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench-peer: interrupted", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    from avmm.outputs import check_output, write_text

    if args.runs < 1:
        raise UserError(f"--runs: must be >= 1, got {args.runs}")
    if args.events < 1000:
        raise UserError(f"--events: must be >= 1000, got {args.events}")
    if not args.config.is_file():
        raise UserError(f"--config: {args.config} is not a file")
    if args.json is not None:
        check_output(args.json, "--json")
    py = ensure_venv(args.venv)
    p = stream.peer_params(args.events, args.seed)
    t0 = time.perf_counter()
    files = stream.ensure(p, args.dir)
    print(f"bench-peer: stream {files['store'].parent} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    hbt_args = ["--tick", repr(p.tick), "--lot", repr(p.lot)]

    def one(tool: str) -> dict[str, Any]:
        if tool == "avmm":
            return run_avmm(files["store"], args.config, args.set)
        return run_hbt(py, files["hbt"], hbt_args)

    for tool in TOOLS:  # warm-up: numba caches, the page cache
        one(tool)
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TOOLS}
    for i in range(args.runs):
        for tool in TOOLS if i % 2 == 0 else TOOLS[::-1]:
            r = one(tool)
            runs[tool].append(r)
            print(
                f"bench-peer: run {i + 1}/{args.runs} {tool:11s} fills {r['fills']:,} orders {r['orders']:,} "
                f"{r['events_per_s'] / 1e6:.2f}M events/s",
                file=sys.stderr,
            )
    summary = summarize(runs)
    av = _versions(Path(sys.executable), ("avmm", "numba", "numpy", "pyarrow"))
    hv = _versions(py, ("hftbacktest", "numba", "numpy"))
    commit = _git_commit()
    versions = {
        "avmm": f"{av.get('avmm', '?')}" + (f" ({commit})" if commit else ""),
        "hftbacktest": hv.get("hftbacktest", "?"),
    }
    print(table(summary, versions))
    if args.json is not None:
        doc = {
            "stream": {"key": p.key(), **json.loads(files["meta"].read_text())},
            "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
            "config_set": args.set,
            "runs_each": args.runs,
            "summary": summary,
            "runs": runs,
            "machine": machine(),
            "versions": {"avmm": {**av, "git": commit}, "hftbacktest_venv": hv},
        }
        write_text(args.json, json.dumps(doc, indent=2) + "\n", "--json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
