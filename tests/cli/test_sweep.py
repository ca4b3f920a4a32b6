"""``avmm sweep``: points bit-identical to ``avmm backtest``, the same table on Ray as on the local
pool, resume after Ctrl-C, honest selection windows, Optuna's budget, the report, and every bad
input as one line (exit 2) before any work.

The base config is pinned (``benchmarks/configs/bench_l1.toml``: every key written out), so a
change of today's defaults does not move these tests.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avmm.sweep.jobs import TIMING_KEYS
from tests.builders import REPO, assert_one_line_error, error_lines

BASE = REPO / "benchmarks" / "configs" / "bench_l1.toml"
GRID = ["--grid", "quoting.refresh_s=0.5,2", "--grid", "backtest.maker_fee=0.0002,-0.0001"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    from avmm.data.synth import write_synth

    path = tmp_path_factory.mktemp("sweep") / "s.parquet"
    write_synth(path, 6000, 5)
    return path


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _same_figures(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k in TIMING_KEYS:
            continue
        x, y = a[k], b[k]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), k
        else:
            assert x == y, (k, x, y)


def _sets(keys: dict) -> list[str]:
    out = []
    for k, v in keys.items():
        out += ["--set", f"{k}={v}"]
    return out


@pytest.mark.parametrize("how", [["--workers", "2", "--per-pass", "1"], ["--workers", "1", "--per-pass", "4"]])
def test_four_points_equal_four_backtests(run_cli, run_main, store, tmp_path, how):
    """A local pool of 2 processes, one point a job; and one pass over the data with 4 configs."""
    out = tmp_path / "sweep.json"
    r = run_cli("sweep", store, "-c", BASE, *GRID, *how, "--json", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    doc = _load(out)
    assert len(doc["points"]) == 4
    assert not Path(str(out) + ".partial").exists()
    vals = [p["figures"]["pnl_net"] for p in doc["points"]]
    assert vals == sorted(vals, reverse=True)
    assert all(p["figures"]["fills"] > 0 for p in doc["points"])
    for i, p in enumerate(doc["points"]):
        one = tmp_path / f"bt{i}.json"
        code, _, err = run_main("backtest", store, "-c", BASE, *_sets(p["keys"]), "--json", one, "--no-progress")
        assert code == 0, err
        single = _load(one)
        _same_figures(
            single,
            {**p["figures"], "config": single["config"], "config_toml": single["config_toml"], "data": single["data"]},
        )
        assert p["config"] == single["config"]


def test_table_top_and_metric(run_cli, store):
    r = run_cli(
        "sweep",
        store,
        "-c",
        BASE,
        *GRID,
        "--workers",
        "1",
        "--metric",
        "fills",
        "--minimize",
        "--top",
        "2",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert "sweep: 4 points, by fills (smallest first)" in r.stdout
    rows = [x for x in r.stdout.splitlines() if x.startswith("│")]
    assert len(rows) == 2


# ---------------------------------------------------------------- Ray
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """``ray start --head`` with 2 CPUs on 127.0.0.1 (its own process group, ended in teardown)."""
    pytest.importorskip("ray")
    port = _free_port()
    ray_bin = Path(sys.executable).with_name("ray")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    proc = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--port",
            str(port),
            "--node-ip-address",
            "127.0.0.1",
            "--include-dashboard",
            "false",
            "--object-store-memory",
            "200000000",
            "--disable-usage-stats",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "ray start ended"
            time.sleep(0.2)
        time.sleep(2)
        yield f"127.0.0.1:{port}"
    finally:
        pgid = os.getpgid(proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(10)


def _table(stdout: str) -> str:
    return "\n".join(x for x in stdout.splitlines() if x.startswith("│"))


def test_ray_same_table_as_the_local_pool(run_cli, store, ray_cluster):
    pytest.importorskip("ray")
    local = run_cli("sweep", store, "-c", BASE, *GRID, "--workers", "2", "--per-pass", "1", "--no-progress")
    assert local.returncode == 0, local.stderr
    own = run_cli(
        "sweep", store, "-c", BASE, *GRID, "--executor", "ray", "--workers", "2", "--per-pass", "1", "--no-progress"
    )
    assert own.returncode == 0, own.stderr
    assert _table(own.stdout) == _table(local.stdout) and _table(local.stdout).count("\n") == 3
    there = run_cli(
        "sweep",
        store,
        "-c",
        BASE,
        *GRID,
        "--executor",
        "ray",
        "--ray-address",
        ray_cluster,
        "--per-pass",
        "2",
        "--no-progress",
    )
    assert there.returncode == 0, there.stderr
    assert _table(there.stdout) == _table(local.stdout)


# ---------------------------------------------------------------- Ctrl-C and --resume
@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> Path:
    from avmm.data.synth import write_synth

    path = tmp_path_factory.mktemp("sweep-big") / "m.parquet"
    write_synth(path, 200_000, 4)
    return path


def test_interrupted_sweep_resumes_to_the_same_table(run_cli, big_store, tmp_path):
    grid = ["--grid", "quoting.refresh_s=0.5,1,2,4", "--grid", "backtest.maker_fee=0.0002,0.0001,0"]
    whole = run_cli("sweep", big_store, "-c", BASE, *grid, "--workers", "1", "--per-pass", "12", "--no-progress")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "o.json"
    partial = Path(str(out) + ".partial")
    env = dict(os.environ, AVMM_CACHE=str(REPO / ".cache-test"))
    env.pop("AVMM_DEBUG", None)
    args = [
        sys.executable,
        "-m",
        "avmm",
        "sweep",
        str(big_store),
        "-c",
        str(BASE),
        *grid,
        "--workers",
        "2",
        "--per-pass",
        "1",
        "--json",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None:
        if partial.exists() and len(partial.read_text().splitlines()) >= 2:  # the header and a point
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = error_lines(err)
    assert lines == [f"avmm: interrupted by SIGINT; kept {partial} (outputs in progress were removed)"], err
    kept = len(partial.read_text().splitlines()) - 1
    assert 1 <= kept < 12
    assert not out.exists()
    # another grid: refused, the partial file untouched
    other = run_cli("sweep", big_store, "-c", BASE, "--grid", "quoting.refresh_s=0.5,1", "--json", out, "--resume")
    assert_one_line_error(other, str(partial), "from a different sweep", "grid / ranges")
    other = run_cli("sweep", big_store, "-c", BASE, "--set", "model.gamma=0.2", *grid, "--json", out, "--resume")
    assert_one_line_error(other, "base config")
    # without --resume: refused too (the finished points are not thrown away)
    again = run_cli("sweep", big_store, "-c", BASE, *grid, "--json", out)
    assert_one_line_error(again, "--resume")
    done = run_cli("sweep", big_store, "-c", BASE, *grid, "--workers", "2", "--json", out, "--resume", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert _table(done.stdout) == _table(whole.stdout)
    assert not partial.exists() and len(_load(out)["points"]) == 12


# ---------------------------------------------------------------- honest selection
def test_train_until_reports_the_top_on_the_later_data(run_cli, run_main, store, tmp_path):
    from avmm.data.store import read_meta

    m = read_meta(store)
    lo, hi = int(m["start_ns"]), int(m["end_ns"])
    t = lo + (hi - lo) * 2 // 3
    out = tmp_path / "t.json"
    r = run_cli(
        "sweep",
        store,
        "-c",
        BASE,
        *GRID,
        "--train-until",
        str(t),
        "--top",
        "2",
        "--workers",
        "1",
        "--json",
        out,
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    doc = _load(out)
    (sel,) = doc["selection"]
    assert sel["train_ns"] == [lo, t] and sel["test_ns"] == [t, hi + 1]
    assert len(sel["train"]) == 4 and len(sel["test"]) == 2
    assert [x["keys"] for x in sel["test"]] == [x["keys"] for x in sel["train"][:2]]
    best = sel["test"][0]
    one = tmp_path / "bt.json"
    code, _, err = run_main(
        "backtest", store, "-c", BASE, *_sets(best["keys"]), "--from", str(t), "--json", one, "--no-progress"
    )
    assert code == 0, err
    assert {k: v for k, v in _load(one).items() if k not in ("config", "config_toml", "data")}.keys() == best[
        "figures"
    ].keys()
    _same_figures({k: v for k, v in _load(one).items() if k in best["figures"]}, best["figures"])


def test_folds_walk_forward_windows(run_cli, store, tmp_path):
    from avmm.data.store import read_meta

    m = read_meta(store)
    lo, hi = int(m["start_ns"]), int(m["end_ns"]) + 1
    out = tmp_path / "f.json"
    r = run_cli(
        "sweep",
        store,
        "-c",
        BASE,
        *GRID,
        "--folds",
        "3",
        "--top",
        "1",
        "--workers",
        "2",
        "--json",
        out,
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    folds = _load(out)["selection"]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    b = [lo + (hi - lo) * j // 4 for j in range(5)]
    for i, f in enumerate(folds):
        assert f["train_ns"] == [b[i], b[i + 1]] and f["test_ns"] == [b[i + 1], b[i + 2]]
        assert len(f["train"]) == 4 and len(f["test"]) == 1
        assert f["test"][0]["keys"] == f["train"][0]["keys"]
    assert sum(1 for x in r.stdout.splitlines() if x.startswith("│")) == 3


# ---------------------------------------------------------------- Optuna, random, report
def test_optimize_runs_the_budget(run_cli, store, tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "o.json"
    r = run_cli(
        "sweep",
        store,
        "-c",
        BASE,
        "--range",
        "quoting.refresh_s=0.5:4",
        "--range",
        "model.gamma=0.01:1:log",
        "--optimize",
        "pnl_net",
        "--trials",
        "5",
        "--workers",
        "1",
        "--json",
        out,
        "--report",
        tmp_path / "r.html",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    doc = _load(out)
    assert doc["mode"] == "optimize" and len(doc["points"]) == 5
    for p in doc["points"]:
        assert 0.5 <= p["keys"]["quoting.refresh_s"] <= 4 and 0.01 <= p["keys"]["model.gamma"] <= 1
        assert p["config"]["quoting"]["refresh_s"] == p["keys"]["quoting.refresh_s"]
    html = (tmp_path / "r.html").read_text()
    assert "Pareto front" in html and "plotly-" in html


def test_random_is_seeded(run_cli, store, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        r = run_cli(
            "sweep",
            store,
            "-c",
            BASE,
            "--random",
            "3",
            "--range",
            "model.gamma=0.01:1",
            "--seed",
            "4",
            "--workers",
            "1",
            "--json",
            out,
            "--no-progress",
        )
        assert r.returncode == 0, r.stderr
    assert [p["keys"] for p in _load(a)["points"]] == [p["keys"] for p in _load(b)["points"]]
    assert len(_load(a)["points"]) == 3


# ---------------------------------------------------------------- bad input: one line, exit 2
class _R:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


BAD = [
    (["--grid", "quoting.refresh_s"], "expected KEY=V1,V2"),
    (["--grid", "quoting.nope=1,2"], "no key 'nope' in [quoting]"),
    (["--grid", "quoting.refresh_s=1,-2"], "quoting.refresh_s"),
    (["--grid", "quoting.refresh_s=1,,2"], "an empty value"),
    (["--random", "3", "--range", "quoting.refresh_s=4:1"], "LO must be below HI"),
    (["--random", "3", "--range", "quoting.refresh_s=1-4"], "expected KEY=LO:HI"),
    (["--range", "quoting.refresh_s=1:4"], "--random N"),
    (["--random", "3"], "--range"),
    (["--grid", "quoting.refresh_s=1,2", "--trials", "3"], "--optimize"),
    (["--range", "quoting.refresh_s=1:4", "--optimize", "pnl_net"], "--trials"),
    ([], "nothing to sweep"),
    (["--grid", "quoting.refresh_s=1,2", "--metric", "nope"], "--metric nope"),
    (["--range", "quoting.refresh_s=1:4", "--optimize", "nope", "--trials", "2"], "--optimize nope"),
    (["--grid", "quoting.refresh_s=1,2", "--folds", "2", "--train-until", "2024-01-01"], "--train-until and --folds"),
    (["--grid", "quoting.refresh_s=1,2", "--train-until", "2020-01-01"], "--train-until"),
    (["--grid", "quoting.refresh_s=1,2", "--ray-address", "127.0.0.1:1"], "--ray-address needs --executor ray"),
    (["--grid", "quoting.refresh_s=1,2", "--report", "x.png"], "expected a .html"),
    (["--grid", "quoting.refresh_s=1,2", "--resume"], "--resume needs --json"),
    (["--grid", "quoting.refresh_s=1,2", "--from", "2024-01-02", "--to", "2024-01-01"], "--from"),
    (["--grid", "quoting.refresh_s=1,2", "--set", "quoting.refresh_s=-1"], "quoting.refresh_s"),
]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[" ".join(a) or "none" for a, _ in BAD])
def test_bad_input_one_line(run_main, store, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    r = _R(*run_main("sweep", store, "-c", BASE, *args, "--no-progress"))
    assert_one_line_error(r, needle)
    assert r.stdout == ""


def test_missing_store_and_bad_executor(run_main, tmp_path):
    r = _R(*run_main("sweep", tmp_path / "none.parquet", "--grid", "quoting.refresh_s=1,2"))
    assert_one_line_error(r, "no such file")
    code, _, err = run_main("sweep", "--grid", "quoting.refresh_s=1,2", "--executor", "slurm")
    assert code == 2 and "--executor" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the local pool's server
@pytest.mark.parametrize(
    ("args", "started"),
    [
        (["s.parquet", "--grid", "quoting.refresh_s=1,2"], True),
        (["s.parquet", "--workers", "3", "--executor", "local"], True),
        (["s.parquet", "--workers=2"], True),
        (["s.parquet", "--workers", "1"], False),
        (["s.parquet", "--workers=1"], False),
        (["s.parquet", "--executor", "ray"], False),
        (["s.parquet", "--executor=ray", "--workers", "2"], False),
        (["--help"], False),
    ],
)
def test_the_workers_server_starts_before_the_command_line_loads(monkeypatch, args, started):
    """``avmm sweep`` on a local pool of more than one worker starts the pool's server at once (a
    guess from the raw arguments; the command starts it anyway), stopped at exit."""
    import atexit

    from avmm import cli
    from avmm.sweep import server

    calls: list[object] = []
    monkeypatch.setattr(server, "default_workers", lambda: 2)
    monkeypatch.setattr(server, "start_local", lambda modules=(): calls.append(list(modules)))
    monkeypatch.setattr(atexit, "register", calls.append)
    cli._start_sweep_server(args)
    assert calls == ([["avmm.config"], server.stop_local] if started else [])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_an_error_leaves_no_server_behind(store, tmp_path):
    """A bad --metric, found while the server loads (slowly here, as on a first run's compile): one
    line, and the server is gone with the command, not loading on for a minute."""
    site = "import time\nif b'forkserver' in open('/proc/self/cmdline', 'rb').read():\n    time.sleep(60)\n"
    (tmp_path / "sitecustomize.py").write_text(site)  # the server's interpreter starts slowly
    mark = f"avmm-test-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, AVMM_TEST_MARK=mark, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    cmd = [sys.executable, "-m", "avmm", "sweep", str(store), "-c", str(BASE), *GRID, "--workers", "2"]
    with (tmp_path / "err").open("w+") as err:  # a file: a server left behind would hold a pipe open
        code = subprocess.run([*cmd, "--metric", "nope", "--no-progress"], stderr=err, env=env, timeout=120).returncode
        err.seek(0)
        lines = err.read().strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--metric nope" in lines[0], lines
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if f"AVMM_TEST_MARK={mark}".encode() in environ and b"forkserver" in cmdline:
                left.append(pid)
    assert left == []
