"""The alert hook (``live/alerts.py``): a command gets the alert as JSON on stdin, a webhook on
127.0.0.1 gets it POSTed; failures (exit codes, time limits, HTTP errors, nothing listening) are
counted and logged with bounded retries, never raised; one alert per kind per ``min_interval_s``."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

import pytest

from avmm.live.alerts import Alerts
from avmm.live.config import AlertsConfig

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, r: logging.LogRecord) -> None:
        self.lines.append(f"{r.levelname} {r.getMessage()}")


def _log() -> tuple[logging.Logger, Keep]:
    log = logging.getLogger(f"test.alerts.{time.monotonic_ns()}")
    log.setLevel(logging.INFO)
    h = Keep()
    log.addHandler(h)
    return log, h


async def _server(statuses: list[int]) -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    """A webhook on 127.0.0.1 answering each POST with the next of ``statuses`` (then 200)."""
    got: list[dict[str, Any]] = []

    async def hook(req: web.Request) -> web.Response:
        got.append(await req.json())
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook/s3cr3t-token", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook/s3cr3t-token", got


def test_command_and_webhook_get_the_alert(tmp_path):
    out = tmp_path / "alert.json"
    log, keep = _log()

    async def go() -> list[dict[str, Any]]:
        runner, url, got = await _server([])
        write = 'import sys; open(sys.argv[1], "w").write(sys.stdin.read())'
        cfg = AlertsConfig(command=f"{sys.executable} -c '{write}' {out}", webhook_url=url)
        a = Alerts(cfg, log, {"venue": "binance-um", "symbol": "BTCUSDT"}, lambda: {"position": 0.002})
        assert a.alert("halt", "quoting halted: stale: bookTicker") is True
        await a.close()
        await runner.cleanup()
        assert a.counts == {"alerts": 1, "suppressed": 0, "command_ok": 1, "command_failed": 0, "webhook_ok": 1,
                            "webhook_failed": 0}  # fmt: skip
        return got

    got = asyncio.run(go())
    sent = json.loads(out.read_text())
    assert got == [sent]
    assert sent["kind"] == "halt" and sent["text"] == "quoting halted: stale: bookTicker"
    assert sent["venue"] == "binance-um" and sent["symbol"] == "BTCUSDT" and sent["status"] == {"position": 0.002}
    assert sent["time"].endswith("+00:00") and sent["pid"] > 0
    assert not any("s3cr3t" in x for x in keep.lines)  # the webhook's path is never logged


def test_failures_are_counted_and_logged_with_bounded_retries(tmp_path):
    log, keep = _log()

    async def go() -> tuple[Alerts, list[dict[str, Any]], float]:
        runner, url, got = await _server([500, 503, 502, 500])
        cfg = AlertsConfig(command="sh -c 'echo broken >&2; exit 3'", webhook_url=url, retries=2, min_interval_s=0)
        a = Alerts(cfg, log)
        t = time.monotonic()
        a.alert("kill", "kill switch")
        await a.close()
        dt = time.monotonic() - t
        await runner.cleanup()
        return a, got, dt

    a, got, dt = asyncio.run(go())
    assert len(got) == 3  # 1 + retries, then given up
    assert a.counts["webhook_failed"] == 1 and a.counts["command_failed"] == 1
    assert a.counts["webhook_ok"] == a.counts["command_ok"] == 0
    assert dt >= 1.5  # backoff 0.5 s + 1 s
    assert "ERROR alert kill: command failed: sh: exit 3: broken" in keep.lines
    hook = [x for x in keep.lines if x.startswith("ERROR alert kill: webhook failed: http://127.0.0.1:")]
    assert len(hook) == 1 and hook[0].endswith("/...: HTTP 502 (3 attempts)"), keep.lines


def test_a_hung_command_and_a_dead_webhook_are_time_limited(tmp_path):
    log, keep = _log()

    async def go() -> tuple[Alerts, float]:
        cfg = AlertsConfig(command="sleep 30", webhook_url="http://127.0.0.1:9/nothing", timeout_s=0.5, retries=1)
        a = Alerts(cfg, log)
        t = time.monotonic()
        a.alert("disconnect", "the feed has been disconnected for 30 s")
        await a.close()
        return a, time.monotonic() - t

    a, dt = asyncio.run(go())
    assert dt < 5.0
    assert a.counts["command_failed"] == 1 and a.counts["webhook_failed"] == 1
    assert "ERROR alert disconnect: command failed: sleep: no exit after 0.5s (killed)" in keep.lines
    assert "ERROR alert disconnect: command failed: nosuch" not in keep.lines


def test_a_missing_command_is_a_counted_failure():
    log, keep = _log()

    async def go() -> Alerts:
        a = Alerts(AlertsConfig(command="/nonexistent/alert-hook --x"), log)
        a.alert("halt", "x")
        await a.close()
        return a

    a = asyncio.run(go())
    assert a.counts["command_failed"] == 1
    assert any("alert-hook: cannot run (No such file or directory)" in x for x in keep.lines)


def test_one_alert_per_kind_per_interval(tmp_path):
    out = tmp_path / "n"
    log, keep = _log()

    async def go() -> Alerts:
        append = 'import sys; open(sys.argv[1], "a").write(sys.stdin.read() + chr(10))'  # one write: atomic
        a = Alerts(AlertsConfig(command=f"{sys.executable} -c '{append}' {out}", min_interval_s=60), log)
        assert a.alert("halt", "one")
        assert not a.alert("halt", "two")
        assert a.alert("kill", "three")
        await a.close()
        return a

    a = asyncio.run(go())
    assert a.counts["alerts"] == 2 and a.counts["suppressed"] == 1
    assert [json.loads(x)["text"] for x in out.read_text().splitlines() if x] in (["one", "three"], ["three", "one"])


def test_nothing_configured_logs_only():
    log, keep = _log()

    async def go() -> Alerts:
        a = Alerts(AlertsConfig(), log)
        assert a.alert("halt", "stale") is False
        await a.close()
        return a

    a = asyncio.run(go())
    assert a.counts["alerts"] == 1 and "WARNING ALERT halt: stale" in keep.lines


def test_the_config_section_is_checked(tmp_path):
    from avmm.config import load_config
    from avmm.errors import UserError

    assert load_config(None, ["alerts.command='notify-me --now'"]).alerts.command == "notify-me --now"
    with pytest.raises(UserError, match="alerts.command"):
        load_config(None, ["alerts.command='unbalanced \"quote'"])
    with pytest.raises(UserError, match="alerts.webhook_url"):
        load_config(None, ["alerts.webhook_url='ftp://x'"])
    with pytest.raises(UserError, match="alerts.retries"):
        load_config(None, ["alerts.retries=100"])
