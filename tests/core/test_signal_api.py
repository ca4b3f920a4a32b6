"""A user's signal compiled into the core: its effect, its errors, its cache."""

import numpy as np
import pytest

from avmm.core.engine import Engine
from avmm.core.signals import signal_source
from avmm.errors import UserError
from tests.builders import make_engine

NS = 1_000_000_000
T0 = 1_700_000_000 * NS

BASE = {
    "model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.05, "k": 50.0, "A": 1.0, "tau_s": 60.0},
    "quoting": {"tick": 0.01, "lot": 0.001, "size": 0.01, "refresh_s": 1.0},
    "risk": {"max_position": 1.0},
    "logging": {"sample_rate": 0.0},
}

SHIFT = """
from numba import njit
from avmm.core.signal_api import MID, KIND

@njit
def signal(ts_ns, v, params, st):
    st[0] += 1.0
    return params[0], params[1], 1.0
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AVMM_CACHE", str(tmp_path / "cache"))


def engine(tmp_path, text=SHIFT, params=(0.0, 1.0), name="sig.py", function="signal") -> Engine:
    f = tmp_path / name
    f.write_text(text)
    return make_engine(BASE, signals={"file": str(f), "params": list(params), "function": function})


def ladder_after_one_quote(e: Engine) -> dict:
    e.on_quote(T0, 99.90, 1.0, 100.10, 1.0)  # wide: the post-only clamp stays out of the way
    return e.ladder()


def test_a_shift_moves_both_quotes_and_the_state_is_kept(tmp_path):
    plain = ladder_after_one_quote(make_engine(BASE))
    e = engine(tmp_path, params=(-0.03, 1.0))
    lad = ladder_after_one_quote(e)
    assert lad["bids"][0][0] == pytest.approx(plain["bids"][0][0] - 0.03)
    assert lad["asks"][0][0] == pytest.approx(plain["asks"][0][0] - 0.03)
    assert e.value("n_sig_calls") == 1 and e.state["sig_st"][0][0] == 1.0
    e.on_trade(T0 + 1, 100.0, 0.5, 1)
    assert e.value("n_sig_calls") == 2 and e.state["sig_st"][0][0] == 2.0


def test_a_neutral_signal_changes_nothing(tmp_path):
    plain = ladder_after_one_quote(make_engine(BASE))
    assert ladder_after_one_quote(engine(tmp_path)) == plain


NAN = """
import math
from numba import njit

@njit
def signal(ts_ns, v, params, st):
    return math.nan, 1.0, 1.0
"""


def test_a_nan_is_counted_and_ignored(tmp_path):
    e = engine(tmp_path, text=NAN)
    plain = ladder_after_one_quote(make_engine(BASE))
    assert ladder_after_one_quote(e) == plain
    assert e.value("n_sig_bad") == 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("def signal(:\n", r"sig.py:1: SyntaxError"),
        ("x = 1\nraise ValueError('boom')\n", r"sig.py:2: ValueError: boom \(while loading the signal\)"),
        ("from numba import njit\n", r"sig.py: no function named 'signal'"),
        ("def signal(ts_ns, v, params, st):\n    return 0.0, 1.0, 1.0\n", r"signal is not a numba @njit function"),
        (
            "from numba import njit\n@njit\ndef signal(ts_ns, v, params, st):\n    return 0.0\n",
            r"signal returns float64: it must return three numbers",
        ),
        (
            "from numba import njit\n@njit\ndef signal(ts_ns, v, params, st):\n    return undefined_name, 1.0, 1.0\n",
            r"sig.py:4: signal does not compile",
        ),
        (
            "from numba import njit\n@njit\ndef signal(ts_ns, v):\n    return 0.0, 1.0, 1.0\n",
            r"signal does not compile",
        ),
        (
            "from numba import njit\n@njit\ndef signal(ts_ns, v, params, st):\n    return 1j, 1.0, 1.0\n",
            r"it must return three numbers",
        ),
    ],
)
def test_a_broken_signal_is_one_line(tmp_path, text, match):
    with pytest.raises(UserError, match=match) as ei:
        engine(tmp_path, text=text)
    assert "\n" not in str(ei.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="signals.file: .*nope.py: no such file"):
        signal_source(str(tmp_path / "nope.py"), "signal")


def test_the_cache_is_keyed_by_the_file_content(tmp_path):
    f = tmp_path / "sig.py"
    f.write_text(SHIFT)
    k1 = signal_source(str(f), "signal").key
    f.write_text(SHIFT.replace("params[1], 1.0", "params[1], 2.0"))
    k2 = signal_source(str(f), "signal").key
    assert k1 != k2
    f.write_text(SHIFT)
    assert signal_source(str(f), "signal").key == k1
    # the edited signal runs, not the one compiled before the edit
    e1 = engine(tmp_path, params=(0.0, 1.0))
    e1.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    e2 = engine(tmp_path, text=SHIFT.replace("params[1], 1.0", "params[1], 2.0"), params=(0.0, 1.0))
    e2.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    assert e1.value("sig_skew") == 1.0 and e2.value("sig_skew") == 2.0


def test_the_backtest_loop_runs_the_signal(tmp_path):
    from avmm.backtest.runner import run_backtest
    from avmm.config import Config
    from avmm.data.synth import generate

    ev = next(generate(20_000, 3))
    f = tmp_path / "sig.py"
    f.write_text(SHIFT)
    plain = run_backtest(ev, Config.model_validate(BASE))
    neutral = run_backtest(ev, Config.model_validate({**BASE, "signals": {"file": str(f), "params": [0.0, 1.0]}}))
    # a neutral signal in the loop: every fill and sample bit for bit
    assert neutral.fills.tobytes() == plain.fills.tobytes()
    assert neutral.samples.tobytes() == plain.samples.tobytes()
    wide = run_backtest(ev, Config.model_validate({**BASE, "signals": {"file": str(f), "params": [0.0, 3.0]}}))
    assert wide.summary["fills"] < plain.summary["fills"]
    assert np.isfinite(wide.summary["pnl_net"])
