"""``<json>.partial``: finished points appended and read back; another sweep's file refused."""

from __future__ import annotations

import pytest

from avmm.errors import UserError
from avmm.sweep.partial import Partial

FP = {"base config": {"quoting": {"size": 1.0}}, "grid / ranges": {"grid": {"quoting.refresh_s": [1, 2]}}}


def rec(v, keys):
    return {"window": [None, None], "keys": keys, "figures": {"pnl_net": v}, "config": {}}


def test_roundtrip_and_a_cut_last_line(tmp_path):
    p = tmp_path / "o.json.partial"
    a = Partial(p, FP)
    a.start(resume=False)
    a.add(rec(1.0, {"quoting.refresh_s": 1}))
    a.add(rec(float("nan"), {"quoting.refresh_s": 2}))
    a.close()
    with open(p, "a") as fh:
        fh.write('{"window": [null, nu')  # cut short by a kill
    b = Partial(p, dict(FP))
    b.start(resume=True)
    assert b.get((None, None), {"quoting.refresh_s": 1})["figures"]["pnl_net"] == 1.0
    assert b.get((None, None), {"quoting.refresh_s": 2}) is not None
    assert b.get((None, None), {"quoting.refresh_s": 3}) is None
    b.remove()
    assert not p.exists()


def test_refusals(tmp_path):
    p = tmp_path / "o.json.partial"
    a = Partial(p, FP)
    a.start(resume=False)
    a.add(rec(1.0, {"quoting.refresh_s": 1}))
    a.close()
    with pytest.raises(UserError, match="continue it with --resume"):
        Partial(p, FP).start(resume=False)
    other = {**FP, "grid / ranges": {"grid": {"quoting.refresh_s": [1, 3]}}}
    with pytest.raises(UserError, match=r"from a different sweep \(grid / ranges differ\)"):
        Partial(p, other).start(resume=True)
    other = {**FP, "base config": {}}
    with pytest.raises(UserError, match=r"base config differ"):
        Partial(p, other).start(resume=True)
    with pytest.raises(UserError, match="not found"):
        Partial(tmp_path / "none.partial", FP).start(resume=True)
    with pytest.raises(UserError, match="needs --json"):
        Partial(None, FP).start(resume=True)
    bad = tmp_path / "bad.partial"
    bad.write_text("hello\n")
    with pytest.raises(UserError, match="not an avmm sweep partial"):
        Partial(bad, FP).start(resume=True)
