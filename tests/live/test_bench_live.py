"""``avmm bench live``: the stage table's arithmetic, and the bench end to end against the emulator
(every stage measured, sane figures, the JSON), a replay too short for --frames as one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avmm.live.bench import KEYS, STAGES, _median_tables, pcts_us, stage_table


def _rows(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.integers(50, 5000, size=(n, len(STAGES)))
    t0 = 1_700_000_000_000_000_000 + np.arange(n) * 1_000_000
    return np.concatenate([t0[:, None], t0[:, None] + np.cumsum(gaps, axis=1)], axis=1)


def test_stage_table_splits_each_frame_into_its_stages():
    rows = _rows(1000)
    t = stage_table(rows)
    assert list(t) == [*STAGES, "intent", "total"]
    d = np.diff(rows, axis=1)
    for k, name in enumerate(STAGES):
        assert t[name]["p50"] == pytest.approx(np.percentile(d[:, k], 50) / 1e3)
        assert t[name]["max"] == pytest.approx(d[:, k].max() / 1e3)
        assert t[name]["n"] == 1000
    assert t["total"]["p50"] == pytest.approx(np.percentile(rows[:, -1] - rows[:, 0], 50) / 1e3)
    assert t["intent"]["p99"] == pytest.approx(np.percentile(rows[:, -2] - rows[:, 0], 99) / 1e3)
    only = stage_table(rows, np.arange(1000) % 4 == 0)
    assert only["core"]["n"] == 250
    assert pcts_us(np.zeros(0, dtype=np.int64)) == {"p50": None, "p99": None, "p999": None, "max": None, "n": 0}


def test_the_median_of_runs_is_taken_per_figure():
    a, b, c = (stage_table(_rows(200, s)) for s in (1, 2, 3))
    m = _median_tables([a, b, c])
    for name in (*STAGES, "intent", "total"):
        for k in KEYS:
            assert m[name][k] == sorted(t[name][k] for t in (a, b, c))[1]


def _check_table(t: dict, n: int) -> None:
    assert set(t) == {*STAGES, "intent", "total"}
    for name, row in t.items():
        assert row["n"] == n, name
        vals = [row[k] for k in KEYS]
        assert all(v is not None and math.isfinite(v) and v >= 0 for v in vals), (name, row)
        assert row["p50"] <= row["p99"] <= row["p999"] <= row["max"], (name, row)
    for name in (*STAGES, "intent"):  # each frame's total is the sum of its stages: it dominates each one
        for k in KEYS:
            assert t["total"][k] >= t[name][k], (name, k)


@pytest.mark.slow  # ~90 s (four phases against four emulators with the private side): make test-slow
@pytest.mark.xdist_group("live")
def test_bench_live_end_to_end(run_cli, tmp_path):
    pytest.importorskip("picows")
    pytest.importorskip("aiohttp")
    out = tmp_path / "live.json"
    r = run_cli("bench", "live", "--frames", "150", "--max", "--json", str(out), timeout=900)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["frames"] == 150 and d["warmup"] == 100 and d["speed"] is None and d["venue"] == "binance-spot"
    _check_table(d["stages_us"], 150)
    assert 0 < d["requoted"] <= 150  # requote_always: most frames move the targets
    _check_table(d["stages_requote_us"], d["requoted"])
    b2b, idle = d["stages_back_to_back_us"], d["stages_after_idle_us"]
    assert b2b["total"]["n"] + idle["total"]["n"] == 150 and idle["total"]["n"] >= 0
    run = d["runs"][0]
    assert run["actions"] >= d["requoted"] and run["encoder"]["rid"] >= run["actions"]
    assert run["encoder"]["unknown"] == run["encoder"]["full"] == run["encoder"]["bad"] == 0
    rt = d["runtime_us"]
    assert rt["n"] > 0 and 0 <= rt["p50"] <= rt["p99"] <= rt["p999"] <= rt["max"]
    assert "paper runtime" in r.stdout and "receive" in r.stdout and "encode" in r.stdout and "send" in r.stdout
    assert run["api_closed_early"] is False and run["api_answers"] > 0  # the venue read every order frame
    null = d["null_us"]
    assert null["n"] == 150 and 0 < null["p50"] <= null["p99"]
    share = d["avmm_share_us"]
    assert share["p50"] == pytest.approx(d["stages_requote_us"]["total"]["p50"] - null["p50"])
    assert "null client" in r.stdout and "avmm's own share" in r.stdout
    live, fill = d["live_us"], d["fill_to_order_us"]  # LiveSession's real orders, filled by the emulator
    assert live["n"] > 0 and 0 < live["p50"] <= live["p99"] and run["live_fills"] > 0
    assert fill["n"] > 0 and 0 < fill["p50"] <= fill["p99"]
    assert "live" in r.stdout and "requote" in r.stdout  # the rows (a narrow terminal wraps their names)


def test_since_takes_a_rings_samples_after_a_mark():
    from avmm.live.bench import _since
    from avmm.live.latency import LatencyRing

    r = LatencyRing(8)
    for v in range(5):
        r.add(v)
    assert list(_since(r, 2)) == [2, 3, 4]
    for v in range(5, 13):
        r.add(v)
    assert sorted(_since(r, 7)) == [7, 8, 9, 10, 11, 12]
    assert sorted(_since(r, 0)) == list(range(5, 13))  # only what the ring still holds


def test_bench_keys_are_a_venue_file_and_a_private_client_file(tmp_path):
    pytest.importorskip("cryptography")
    import stat
    import tomllib

    from avmm.emulator.keys import load_keys as venue_keys
    from avmm.live.bench import BENCH_ED25519, bench_keys
    from avmm.live.keys import load_keys

    venue, client = bench_keys(tmp_path)
    assert stat.S_IMODE(client.stat().st_mode) == 0o600
    k = load_keys(client, env={})
    assert k.api_key.reveal() == BENCH_ED25519 and k.can_logon  # Ed25519: logged on, orders unsigned
    assert [e["api_key"] for e in tomllib.loads(venue.read_text())["keys"]] == ["avmm-bench", BENCH_ED25519]
    assert venue_keys(venue)


@pytest.mark.xdist_group("live")
def test_a_replay_shorter_than_the_frames_asked_is_one_line(run_cli, tmp_path):
    pytest.importorskip("picows")
    pytest.importorskip("aiohttp")
    from avmm.data.synth import write_synth
    from tests.builders import assert_one_line_error

    store = tmp_path / "short.parquet"
    write_synth(store, 400, 3, quote_rate=1000.0, trade_rate=100.0)
    r = run_cli("bench", "live", "--store", str(store), "--frames", "5000", "--max", timeout=600)
    assert_one_line_error(r, "the replay ended after", "--frames 5,000")


def test_a_tuning_is_applied_for_the_block_and_undone():
    import gc
    import os

    from avmm.live.bench import Tuning, applied

    cpus0 = os.sched_getaffinity(0)
    one = min(cpus0)
    notes: list[str] = []
    assert gc.isenabled()
    with applied(Tuning(cpus=[one], gc_manual=True), notes):
        assert os.sched_getaffinity(0) == {one} and not gc.isenabled()
    assert os.sched_getaffinity(0) == cpus0 and gc.isenabled() and notes == []
    with applied(None, notes):
        assert os.sched_getaffinity(0) == cpus0 and gc.isenabled()
    assert Tuning(cpus=[0, 1], rt_priority=5, gc_manual=True).describe() == "--cpu 0,1 --rt-priority 5 --gc manual"
    assert Tuning(cpus=[1], busy_poll=True).describe() == "--cpu 1 --busy-poll"


def test_polled_spins_the_loop_while_the_phase_runs():
    """``polled``: with ``busy_poll`` the phase runs on a loop that never sleeps (its sleeps come
    back after many zero-timeout polls), and the spinning stops with the phase."""
    import asyncio

    from avmm.live.bench import Tuning, polled

    async def phase() -> int:
        await asyncio.sleep(0.02)
        return len(asyncio.all_tasks())

    async def go(tu: Tuning | None) -> tuple[int, int]:
        n = await polled(phase(), tu)
        await asyncio.sleep(0)
        return n, len(asyncio.all_tasks())

    spun, after = asyncio.run(go(Tuning(busy_poll=True)))
    plain, _ = asyncio.run(go(None))
    assert spun == plain + 1  # the spinning task, alive during the phase
    assert after == 1  # only go() itself: the spinning task ended with the phase


@pytest.mark.slow  # ~90 s (six phases against three emulators): make test-slow; applied() is tested above
@pytest.mark.xdist_group("live")
def test_bench_live_with_and_without_a_tuning(run_cli, tmp_path):
    pytest.importorskip("picows")
    pytest.importorskip("aiohttp")
    out = tmp_path / "live.json"
    r = run_cli("bench", "live", "--frames", "150", "--max", "--cpu", "0", "--gc", "manual", "--json", str(out),
                timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert [run["tuned"] for run in d["runs"]] == [False, True]
    tu = d["tuned"]
    assert tu["tuning"] == "--cpu 0 --gc manual" and tu["not_applied"] == []
    assert tu["total_us"]["n"] == 150 and 0 < tu["total_us"]["p50"] <= tu["total_us"]["p99"]
    assert tu["runtime_us"]["n"] > 0
    assert "the tuning compared: --cpu 0 --gc manual" in r.stdout and "live runtime p99" in r.stdout


def test_bad_tuning_options_are_one_line(run_cli):
    from tests.builders import assert_one_line_error

    assert_one_line_error(run_cli("bench", "live", "--cpu", "x"), "--cpu x")
    assert_one_line_error(run_cli("bench", "live", "--gc", "sometimes"), "--gc sometimes")
    r = run_cli("bench", "live", "--busy-poll", "--rt-priority", "5")
    assert_one_line_error(r, "--busy-poll with --rt-priority 5")
