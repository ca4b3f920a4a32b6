"""The session's log file (``live/logs.py``): written by a thread, rotated by size, and never holding
a secret -- an API key in the environment, one registered by the gateway, or one after the names
Binance's APIs give them, in a message or a traceback."""

from __future__ import annotations

import pytest

from avmm.errors import UserError
from avmm.live.logs import Redact, env_secrets, open_log

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # a fake Binance API key
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_secrets_never_reach_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AVMM_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_SECRET_KEY", SECRET)
    monkeypatch.setenv("AVMM_SHORT_TOKEN", "abc")  # too short to mask everywhere
    path = tmp_path / "s.log"
    lf = open_log(path, secrets=["registered-by-the-gateway-0123"])
    log = lf.logger
    log.info("logon with %s", KEY)
    log.warning("request GET /api/v3/account?timestamp=1&signature=9f8e7d6c5b4a&recvWindow=5000")
    log.info("headers {'X-MBX-APIKEY': 'abcdef123456', 'Content-Type': 'application/json'}")
    log.info('{"apiKey": "zzzzzzzzzzzz", "listenKey": "pqrstuvwxyz01234"}')
    log.info("the gateway's own: registered-by-the-gateway-0123")
    try:
        raise RuntimeError(f"session.logon refused for {SECRET}")
    except RuntimeError:
        log.exception("logon failed")
    lf.redact.add("added-later-secret-456")
    log.info("then added-later-secret-456")
    log.info("position 0.002 pnl 1.5 abc")
    lf.close()
    text = path.read_text()
    for s in (KEY, SECRET, "9f8e7d6c5b4a", "abcdef123456", "zzzzzzzzzzzz", "pqrstuvwxyz01234", "registered-by-the",
              "added-later"):  # fmt: skip
        assert s not in text, s
    assert "logon with ***" in text
    assert "signature=***&recvWindow=5000" in text
    assert "RuntimeError: session.logon refused for ***" in text  # the traceback too
    assert "position 0.002 pnl 1.5 abc" in text
    assert text.count("Z INFO ") >= 6 and "Z ERROR logon failed" in text


def test_env_secrets_are_picked_by_name():
    env = {"AVMM_API_KEY": KEY, "MY_TOKEN": "t0k3n-value", "PATH": "/usr/bin:/bin", "HOME": "/root", "X_SECRET": "s"}
    assert sorted(env_secrets(env)) == sorted([KEY, "t0k3n-value"])
    with pytest.raises(ValueError):
        Redact().add("abc")


def test_the_file_rotates_by_size(tmp_path):
    path = tmp_path / "s.log"
    lf = open_log(path, max_bytes=2000, backups=2)
    for i in range(200):
        lf.logger.info("feed: reconnects +1 (%d)", i)
    lf.close()
    assert (tmp_path / "s.log.1").exists() and (tmp_path / "s.log.2").exists()
    assert not (tmp_path / "s.log.3").exists()
    assert all(p.stat().st_size <= 2000 for p in tmp_path.glob("s.log*"))
    assert "(199)" in path.read_text()


def test_a_log_that_cannot_be_written_is_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        open_log(tmp_path / "none" / "s.log")
    with pytest.raises(UserError, match="is a folder"):
        open_log(tmp_path)
