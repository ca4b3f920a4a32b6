"""Control of a running session, whatever its runtime (``avmm paper`` today, ``avmm live`` next):
the ``avmm ctl`` socket, the kill switch, the log file's events, the alert triggers, the tuning.

A runtime offers what ``Runtime`` lists (``PaperSession`` does): its ``Trader`` (the core, the
gateway, the journal), its clock (``now``), its status, ``stop``, and its feed's counters. The CLI
wraps the session's run in a ``Supervisor``::

    async with Supervisor(session, strat, parse_set=parse_override, alerts=cfg.alerts, ctl=path, ...):
        summary = await session.run(duration)

``Controller`` carries out the commands: ``status``; ``pause`` (every order cancelled, no quoting
until ``resume``: ``Trader.pause``); ``set KEY=VALUE`` (the config file's ``--set`` grammar and
validation, then the running core's params record changed between two events, journaled;
``LIVE_KEYS`` can change, the rest is fixed at start: tick, lot, levels, the model's kind, the
estimators' windows, the signals); ``kill`` (the kill switch: cancel all, ``--flatten`` through
the core's taker orders until flat (``Trader.kill``; at most ``FLATTEN_WAIT_S``), stop the session:
exit 0 and its summary).

``ControlServer`` listens on a Unix socket inside the event loop (asyncio), one JSON object a line
each way: ``{"cmd": "status" | "pause" | "resume" | "kill" | "set", "arg": "model.gamma=0.2",
"flatten": false}`` -> ``{"ok": true, ...}`` or ``{"ok": false, "error": "one line"}``. The socket
file is created with mode 0600 (bound under umask 0177), refused when something else is at the path
or another session answers there, replaced when a crashed run left it (nothing answers), and
removed at the end. ``request`` is the client (``avmm ctl``).

``KillSwitch``: SIGUSR1 (``install_early`` catches one that arrives before the session runs) and a
kill file (``--kill-file``: checked every ``KILL_FILE_S``; its presence kills).

``Supervisor`` also: logs the rare events (``live/logs.py``): the start and the tuning, every health
change (at most ``HEALTH_LOG_BURST`` per ``WATCH_S`` x 10, the rest counted), halts, the ctl
commands, the kill switch, alerts, the feed's counters that moved (sampled every ``WATCH_S``), a
status line every ``STATUS_LOG_S``; raises the alerts (``live/alerts.py``): a halt, the kill switch,
a disconnect longer than ``alerts.disconnect_s``, ``alerts.resync_failures`` failed snapshots in a
row (``reconcile_failed`` is the hook the live gateway's reconciliation calls); applies the tuning
(``live/tuning.py``) and reports all of it in the status (``paused``, ``quoting``, ``killed``,
``ctl``, ``param_changes``, ``tuning``, ``gc``, ``alerts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol

import numpy as np

from avmm.core.config import StrategyConfig, checked, to_params
from avmm.core.state import PARAMS_DTYPE
from avmm.errors import UserError
from avmm.live.alerts import Alerts
from avmm.live.config import AlertsConfig
from avmm.live.journal import Journal
from avmm.live.logs import null_logger
from avmm.live.trader import Trader
from avmm.live.tuning import GcPolicy, busy_poll, normal, pin, realtime

COMMANDS = ("status", "pause", "resume", "set", "kill")
MAX_LINE = 1 << 16
SUN_PATH_MAX = 107  # bytes of a Unix socket's path (sockaddr_un.sun_path, NUL included: 108)
KILL_FILE_S = 1.0
FLATTEN_WAIT_S = 30.0  # a kill with flatten stops at the latest this long after (the position logged)
FLATTEN_POLL_S = 0.05
WATCH_S = 1.0
STATUS_LOG_S = 60.0
HEALTH_LOG_BURST = 20  # health changes logged per 10 x WATCH_S; more are counted
# the keys ``avmm ctl set`` changes while running (None: every key of the section)
LIVE_KEYS: dict[str, tuple[str, ...] | None] = {
    "model": (
        "gamma", "sigma", "A", "k", "spread_ratio", "gamma_update_s", "tau_s", "horizon_s", "horizon_cycle",
        "delta", "xi", "q_unit",
    ),
    "quoting": (
        "spacing_ticks", "spacing_frac", "size", "sizes", "size_eta", "min_spread", "max_spread", "post_only",
        "fair_price", "amend", "refresh_s", "mid_tolerance", "price_tolerance_ticks", "size_tolerance",
        "fill_requote", "reject_requote", "touch", "behind_ticks",
    ),
    "risk": None,
}  # fmt: skip
# params fields fixed at start: what the records' sizes, the compiled signal or the estimators'
# history depend on (a live key whose new value changes one of these is refused: model.k 'auto')
STATIC_PARAMS = frozenset(
    {
        "model", "tick", "inv_tick", "lot", "inv_lot", "levels", "k_spread", "int_on", "int_window_ns",
        "int_buckets", "int_bucket_ns", "int_bin", "int_nbins", "int_fit_ns", "int_per_side", "int_min_trades",
        "vwap_window_ns", "vwap_buckets", "vwap_bucket_ns", "sigma_interval_ns", "vol_halflife_s", "vol_min_obs",
        "refresh_grid", "requote_always", "sig_on", "sig_user", "sig_params", "bsig_on", "bsig_params",
        "sig_depth", "log_rate", "seed",
    }
)  # fmt: skip
LOGGED_COUNTERS = (
    "connects", "connect_failures", "reconnects", "rotations", "server_shutdowns", "gaps", "resyncs",
    "snapshots", "snapshot_retries", "snapshot_errors", "stale_periods", "stale_reconnects", "decode_errors",
    "unknown_frames", "evicted_diffs", "dropped_levels", "connect_waits", "weight_waits",
)  # fmt: skip


def live_keys_text() -> str:
    return ", ".join(f"{s}.*" if ks is None else f"{s}.{{{','.join(ks)}}}" for s, ks in LIVE_KEYS.items())


class Runtime(Protocol):
    """What a session offers to control (``PaperSession``; the live session next)."""

    trader: Trader
    journal: Journal | None
    status_extra: Callable[[], dict[str, Any]] | None

    def now(self) -> int: ...

    def status(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...

    def frames(self) -> int: ...

    def connected(self) -> bool: ...

    def feed_counters(self) -> dict[str, int]: ...


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _at(data: dict[str, Any], keys: list[str]) -> Any:
    node: Any = data
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


# --- the commands ------------------------------------------------------------------------------------
class Controller:
    """The commands on ``runtime`` (its strategy config as run: ``cfg``); ``parse_set`` is the config
    file's ``--set`` grammar (``avmm.config.parse_override``: ``section.key=value`` -> (keys, value))."""

    def __init__(
        self,
        runtime: Runtime,
        cfg: StrategyConfig,
        parse_set: Callable[[str], tuple[list[str], Any]],
        log: logging.Logger,
        alerts: Alerts,
    ) -> None:
        self.rt = runtime
        self.cfg = cfg
        self.params = to_params(cfg)
        self.parse_set = parse_set
        self.log = log
        self.alerts = alerts
        self.killed_by: str | None = None
        self.flattened: bool | None = None
        self.changes = 0
        self._flat_task: asyncio.Task[None] | None = None

    def handle(self, req: Any) -> dict[str, Any]:
        """One request -> its answer (errors as ``{"ok": false, "error": line}``)."""
        try:
            return {"ok": True, **self._do(req)}
        except UserError as e:
            return {"ok": False, "error": str(e)}

    def _do(self, req: Any) -> dict[str, Any]:
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            raise UserError('expected {"cmd": "status" | "pause" | "resume" | "set" | "kill", ...}')
        cmd = req["cmd"]
        if cmd == "status":
            return {"status": self.rt.status()}
        if cmd not in COMMANDS:
            raise UserError(f"unknown command {cmd!r} (use {', '.join(COMMANDS)})")
        if self.killed_by is not None:
            raise UserError(f"the session is stopping (killed by {self.killed_by})")
        if self.rt.trader.stopping:
            raise UserError("the session is stopping")
        if cmd == "pause":
            return {"paused": True, "cancels": self.pause(True)}
        if cmd == "resume":
            return {"paused": False, "cancels": self.pause(False)}
        if cmd == "set":
            arg = req.get("arg")
            if not isinstance(arg, str):
                raise UserError("set needs KEY=VALUE, e.g. model.gamma=0.2")
            return self.set(arg)
        return self.kill("ctl", bool(req.get("flatten", False)))

    async def _stop_when_flat(self) -> None:
        """After a kill with flatten: stop once the core is flat (or gave up), at most
        ``FLATTEN_WAIT_S`` later; the position left is logged."""
        tr = self.rt.trader
        deadline = time.monotonic() + FLATTEN_WAIT_S
        while tr.flattening() and time.monotonic() < deadline:
            await asyncio.sleep(FLATTEN_POLL_S)
        pos = float(tr.engine.state["pos"][0])
        left = "flat" if abs(pos) < tr.cfg.quoting.lot else f"position {pos:g} left"  # (the core may give up)
        if tr.flattening():
            left += f" after {FLATTEN_WAIT_S:g} s"
        self.log.error("kill switch: %s; stopping", left)
        self.rt.stop()

    def pause(self, on: bool) -> int:
        tr = self.rt.trader
        if on == tr.paused:
            return 0
        n = tr.pause(self.rt.now(), on)
        self.log.warning("ctl: %s%s", "paused" if on else "resumed", f" ({n} orders cancelled)" if on else "")
        return n

    def set(self, text: str) -> dict[str, Any]:
        """``section.key=value``: validated like the config file, then applied to the running core."""
        try:
            keys, value = self.parse_set(text)
        except UserError as e:
            raise UserError(str(e).replace("--set ", "set ", 1)) from None
        key = ".".join(keys)
        sec = keys[0]
        if sec not in StrategyConfig.model_fields and sec in ("backtest", "venue", "alerts"):
            raise UserError(f"set {key}: [{sec}] is read at start; it cannot change while running")
        data = self.cfg.model_dump(mode="json")
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UserError(f"set {text!r}: {k} is not a section")
        node[keys[-1]] = value
        new = checked(StrategyConfig, data, "set")
        live = LIVE_KEYS.get(sec, ())
        if len(keys) != 2 or (live is not None and keys[1] not in live):
            raise UserError(f"set {key}: cannot change while running (the keys that can: {live_keys_text()})")
        p = to_params(new)
        changed = [f for f in PARAMS_DTYPE.names or () if not _same(self.params[f], p[f])]
        fixed = [f for f in changed if f in STATIC_PARAMS]
        if fixed:
            raise UserError(f"set {key} = {value!r}: cannot change while running (it changes {', '.join(fixed)})")
        old_v, new_v = _at(self.cfg.model_dump(mode="json"), keys), _at(new.model_dump(mode="json"), keys)
        tr = self.rt.trader
        tr.apply_params(new, p, changed)
        self.cfg, self.params = new, p
        self.changes += 1
        line = f"{key}: {json.dumps(old_v)} -> {json.dumps(new_v)}"
        if self.rt.journal is not None:
            self.rt.journal.event(self.rt.now(), "set", line)
        self.log.warning("ctl: set %s (params %s)", line, ", ".join(changed) or "unchanged")
        return {"key": key, "old": old_v, "new": new_v, "params": changed}

    def kill(self, who: str, flatten: bool = False) -> dict[str, Any]:
        """The kill switch: cancel every order, optionally flatten, stop the session."""
        if self.killed_by is not None:
            return {"killed": self.killed_by, "already": True}
        if self.rt.trader.stopping:  # ending anyway (its orders cancelled)
            return {"killed": None, "already": True}
        self.killed_by = who
        tr = self.rt.trader
        t = self.rt.now()
        if self.rt.journal is not None:
            self.rt.journal.event(t, "kill", who + (" (flatten)" if flatten else ""))
        if flatten:  # the core halted (every order cancelled), then taker orders until flat
            n = tr.kill(t, flatten=True)
            self.flattened = True
        else:
            n = tr.pause(t, True)
        fl = "; flattening" if flatten else ""
        text = f"kill switch ({who}): {n} orders cancelled{fl}; stopping"
        self.log.error("%s", text)
        self.alerts.alert("kill", text)
        loop = asyncio.get_running_loop()
        if flatten:
            self._flat_task = loop.create_task(self._stop_when_flat())
        else:
            loop.call_soon(self.rt.stop)
        return {"killed": who, "cancels": n, "flatten": self.flattened}


# --- the socket ----------------------------------------------------------------------------------------
def check_socket_path(path: Path, what: str = "--ctl") -> Path:
    """A path a control socket can be bound at: short enough, in an existing folder, nothing there
    but a stale socket (removed: its session is gone). One line otherwise."""
    path = Path(path)
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise UserError(f"{what} {path}: too long for a Unix socket ({SUN_PATH_MAX} bytes at most); use a shorter path")
    if not path.parent.is_dir():
        raise UserError(f"{what} {path}: folder {path.parent} does not exist")
    try:
        st = path.lstat()
    except FileNotFoundError:
        return path
    if not stat.S_ISSOCK(st.st_mode):
        raise UserError(f"{what} {path}: exists and is not a socket (not replaced)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a crashed run's: nothing listens
            return path
        except OSError as e:
            raise UserError(f"{what} {path}: cannot check the socket there ({e.strerror or e})") from None
    raise UserError(f"{what} {path}: another session is listening there")


class ControlServer:
    """The ``avmm ctl`` socket at ``path``: JSON lines, answered by ``handle`` inside the event loop."""

    def __init__(self, path: Path, handle: Callable[[Any], dict[str, Any]], log: logging.Logger) -> None:
        self.path = Path(path)
        self.handle = handle
        self.log = log
        self.server: asyncio.AbstractServer | None = None
        self.ino: tuple[int, int] | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        check_socket_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError as e:
            sock.close()
            raise UserError(f"--ctl {self.path}: cannot listen ({e.strerror or e})") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        st = self.path.stat()
        self.ino = (st.st_dev, st.st_ino)
        self.server = await asyncio.start_unix_server(self._client, sock=sock, limit=MAX_LINE)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._send(writer, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                    return
                if not line:
                    return
                try:
                    req = json.loads(line)
                except ValueError:
                    ans: dict[str, Any] = {"ok": False, "error": "not a JSON line"}
                else:
                    ans = self.handle(req)
                await self._send(writer, ans)
        except (ConnectionError, OSError):
            return
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, ans: dict[str, Any]) -> None:
        writer.write(json.dumps(ans, default=str).encode() + b"\n")
        await writer.drain()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in list(self.writers):
                w.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)
            self.server = None
        with contextlib.suppress(FileNotFoundError):
            st = self.path.stat()
            if (st.st_dev, st.st_ino) == self.ino:  # ours (not one a later session bound)
                self.path.unlink()


def request(path: Path, req: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One request to the session listening at ``path``; its answer. One line when nothing listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except FileNotFoundError:
            raise UserError(f"{path}: no such socket (is a session running with --ctl {path}?)") from None
        except ConnectionRefusedError:
            with contextlib.suppress(OSError):
                if not stat.S_ISSOCK(os.stat(path).st_mode):
                    raise UserError(f"{path}: cannot connect (not a socket)") from None
            raise UserError(f"{path}: nothing listens there (the session has ended)") from None
        except OSError as e:
            why = "not a socket" if e.errno == errno.ENOTSOCK else (e.strerror or str(e))
            raise UserError(f"{path}: cannot connect ({why})") from None
        try:
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            raise UserError(f"{path}: no answer within {timeout:g} s") from None
        except OSError as e:
            raise UserError(f"{path}: {e.strerror or e}") from None
    try:
        ans = json.loads(buf)
    except ValueError:
        raise UserError(f"{path}: the session closed the connection without an answer") from None
    if not isinstance(ans, dict):
        raise UserError(f"{path}: not an avmm session's answer")
    return ans


# --- the kill switch ------------------------------------------------------------------------------------
class _Early:
    pending = False
    prev: Any = None


def install_early() -> None:
    """SIGUSR1 before the session runs (loading, connecting) is kept, and kills it as it starts
    (its default action would end the process without a line)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        _Early.pending = True

    _Early.prev = signal.signal(signal.SIGUSR1, handler)


class KillSwitch:
    """SIGUSR1 and the kill file call ``kill(who)`` on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, kill: Callable[[str], Any], kill_file: Path | None) -> None:
        self.loop = loop
        self.kill = kill
        self.kill_file = kill_file
        self.prev: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.loop.call_soon_threadsafe(self.kill, "SIGUSR1")

    def __enter__(self) -> KillSwitch:
        self.prev = signal.signal(signal.SIGUSR1, self._handle)
        if _Early.pending:
            _Early.pending = False
            self.loop.call_soon(self.kill, "SIGUSR1")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        signal.signal(signal.SIGUSR1, self.prev if self.prev is not None else signal.SIG_DFL)

    async def watch_file(self) -> None:
        if self.kill_file is None:
            return
        while True:
            await asyncio.sleep(KILL_FILE_S)
            if os.path.lexists(self.kill_file):
                self.kill(f"kill file {self.kill_file}")
                return


def check_kill_file(path: Path) -> Path:
    """``--kill-file``: its folder exists and it does not (it would stop the session at once)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"--kill-file {path}: folder {path.parent} does not exist")
    if os.path.lexists(path):
        raise UserError(f"--kill-file {path}: exists already (a kill switch thrown); remove it to start")
    return path


# --- the supervisor ------------------------------------------------------------------------------------
class Supervisor:
    """Control, kill switch, log events, alerts and tuning around one session's run (an async context)."""

    def __init__(
        self,
        runtime: Runtime,
        cfg: StrategyConfig,
        *,
        parse_set: Callable[[str], tuple[list[str], Any]],
        alerts: AlertsConfig | None = None,
        log: logging.Logger | None = None,
        ctl: Path | None = None,
        kill_file: Path | None = None,
        cpus: list[int] | None = None,
        rt_priority: int | None = None,
        gc_mode: str = "auto",
        busy_poll: bool = False,
        where: dict[str, Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.rt = runtime
        self.log = log if log is not None else null_logger()
        self.alerts_cfg = alerts if alerts is not None else AlertsConfig()
        self.alerts = Alerts(self.alerts_cfg, self.log, where, self._status_for_alert)
        self.ctl = Controller(runtime, cfg, parse_set, self.log, self.alerts)
        self.ctl_path = ctl
        self.server: ControlServer | None = None
        self.kill_file = kill_file
        self.cpus, self.rt_priority = cpus, rt_priority
        self.rt_error: str | None = None
        self.gc = GcPolicy(gc_mode, runtime.frames)
        self.busy_poll = busy_poll
        self.where = where or {}
        self.warn = warn
        self.tasks: list[asyncio.Task[Any]] = []
        self.switch: KillSwitch | None = None
        self.health_budget = HEALTH_LOG_BURST
        self.health_unlogged = 0

    @property
    def killed_by(self) -> str | None:
        return self.ctl.killed_by

    def reconcile_failed(self, text: str) -> None:
        """The live gateway's hook: reconciliation with the venue failed (bounded retries spent)."""
        self.log.error("reconciliation failed: %s", text)
        self.alerts.alert("reconcile", text)

    # --- status ---------------------------------------------------------------------------------------
    def status_extra(self) -> dict[str, Any]:
        return {
            "killed": self.ctl.killed_by,
            "ctl": str(self.ctl_path) if self.ctl_path is not None else None,
            "param_changes": self.ctl.changes,
            "tuning": self.tuning(),
            "gc": self.gc.status(),
            "alerts": dict(self.alerts.counts),
        }

    def tuning(self) -> dict[str, Any]:
        rt = None
        if self.rt_priority is not None:
            rt = f"not permitted: {self.rt_error}" if self.rt_error else f"SCHED_FIFO {self.rt_priority}"
        return {
            "cpus": sorted(os.sched_getaffinity(0)) if self.cpus is not None else None,
            "rt_priority": rt,
            "gc": self.gc.mode,
            "busy_poll": self.busy_poll,
        }

    def _status_for_alert(self) -> dict[str, Any]:
        st = self.rt.status()
        return {k: v for k, v in st.items() if k not in ("latency_us", "gc")}

    # --- events from the trader --------------------------------------------------------------------------
    def _notify(self, kind: str, text: str) -> None:
        if kind == "halt":
            self.log.warning("halt: %s; orders cancelled", text)
            self.alerts.alert("halt", f"quoting halted: {text}; orders cancelled")
            return
        if self.health_budget > 0:
            self.health_budget -= 1
            self.log.info("health: %s", text)
        else:
            self.health_unlogged += 1

    # --- the context ------------------------------------------------------------------------------------
    async def __aenter__(self) -> Supervisor:
        loop = asyncio.get_running_loop()
        w = self.where
        self.log.info(
            "start: %s %s pid %d%s", w.get("venue", ""), w.get("symbol", ""), os.getpid(),
            f" ctl {self.ctl_path}" if self.ctl_path else "",
        )  # fmt: skip
        if self.cpus is not None:
            self.cpus = pin(self.cpus)
        if self.rt_priority is not None:
            self.rt_error = realtime(self.rt_priority)
            if self.rt_error and self.warn is not None:
                p, why = self.rt_priority, self.rt_error
                self.warn(f"--rt-priority {p}: SCHED_FIFO not permitted ({why}); going on without it")
        self.log.info("tuning: %s", json.dumps(self.tuning()))
        if self.ctl_path is not None:
            self.server = ControlServer(self.ctl_path, self._handle, self.log)
            await self.server.start()
        self.rt.trader.notify = self._notify
        self.rt.status_extra = self.status_extra
        self.switch = KillSwitch(loop, self.kill, self.kill_file)
        self.switch.__enter__()
        self.gc.start()
        self.tasks = [loop.create_task(self._watch()), loop.create_task(self.gc.run())]
        if self.busy_poll:
            self.tasks.append(loop.create_task(busy_poll(), name="avmm-busy-poll"))
        if self.kill_file is not None:
            self.tasks.append(loop.create_task(self.switch.watch_file()))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.switch is not None:
            self.switch.__exit__(None, None, None)
        if self.server is not None:
            await self.server.close()
        self.gc.stop()
        if self.rt_priority is not None and not self.rt_error:
            normal()
        await self.alerts.close()
        self.rt.trader.notify = None
        self.log.info(
            "end: %s; gc %s; alerts %s",
            f"killed by {self.killed_by}" if self.killed_by else ("error" if e is not None else "stopped"),
            json.dumps(self.gc.status()["pauses"]),
            json.dumps(self.alerts.counts),
        )

    def _handle(self, req: Any) -> dict[str, Any]:
        if isinstance(req, dict) and req.get("cmd") not in (None, "status"):
            self.log.info("ctl: %s", json.dumps(req)[:200])
        ans = self.ctl.handle(req)
        if not ans["ok"]:
            self.log.info("ctl: refused: %s", ans["error"])
        return ans

    def kill(self, who: str, flatten: bool = False) -> None:
        self.ctl.kill(who, flatten)

    # --- once a second: what moved, the alerts' conditions, a status line a minute ----------------------
    async def _watch(self) -> None:
        rt, cfg = self.rt, self.alerts_cfg
        prev = rt.feed_counters()
        snaps, fail0 = prev.get("snapshots", 0), _fails(prev)
        down_since = 0.0
        alerted_down = alerted_sync = False
        ticks = 0
        next_status = time.monotonic() + STATUS_LOG_S
        while True:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            c = rt.feed_counters()
            moved = [f"{k} +{c[k] - prev.get(k, 0)}" for k in LOGGED_COUNTERS if k in c and c[k] != prev.get(k, 0)]
            if moved:
                self.log.info("feed: %s", ", ".join(moved))
            prev = c
            ticks += 1
            if ticks % 10 == 0:
                if self.health_unlogged:
                    self.log.info("health: %d more changes not logged", self.health_unlogged)
                self.health_budget, self.health_unlogged = HEALTH_LOG_BURST, 0
            if not rt.connected():
                down_since = down_since or now
                if not alerted_down and now - down_since >= cfg.disconnect_s:
                    alerted_down = True
                    self.alerts.alert("disconnect", f"the feed has been disconnected for {now - down_since:.0f} s")
            else:
                if alerted_down:
                    self.log.warning("the feed is connected again after %.0f s", now - down_since)
                down_since, alerted_down = 0.0, False
            if c.get("snapshots", 0) != snaps:
                snaps, fail0, alerted_sync = c.get("snapshots", 0), _fails(c), False
            elif not alerted_sync and _fails(c) - fail0 >= cfg.resync_failures:
                alerted_sync = True
                self.reconcile_failed(f"the book's snapshot failed {_fails(c) - fail0} times in a row")
            if now >= next_status:
                next_status += STATUS_LOG_S
                self.log.info("status: %s", _status_line(rt.status()))


def _fails(c: dict[str, int]) -> int:
    return c.get("snapshot_errors", 0) + c.get("snapshot_retries", 0)


def _status_line(st: dict[str, Any]) -> str:
    keys = ("reason", "paused", "position", "pnl", "fills", "orders", "cancels", "reconnects", "gaps", "halts")
    return " ".join(f"{k} {st.get(k)}" for k in keys)
