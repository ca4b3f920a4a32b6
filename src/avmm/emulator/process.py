"""The emulator for synchronous code: in a thread of this process (``EmulatorThread``) or in its
own process (``EmulatorProcess``, ``avmm emulate`` as a subprocess: two busy processes share the
cores, as a real feed and exchange would).

Both are context managers with ``url`` / ``ws_url``, ``fault(spec)``, ``status()`` and
``accounts()`` (the private side's accounts, with ``keys``)::

    with EmulatorThread("capture.parquet", venue="binance-um", speed=20) as emu:
        feed(emu.url)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from avmm.emulator.faults import Fault, parse_fault
from avmm.emulator.server import Emulator


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class EmulatorThread:
    """An ``Emulator`` serving from a thread with its own event loop (uvloop when installed).

    Takes ``Emulator``'s arguments. ``fault`` and ``status`` are safe to call from any thread.
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.emu = Emulator(*args, **kw)
        self.loop = new_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._err: BaseException | None = None

    def start(self) -> EmulatorThread:
        self._thread = threading.Thread(target=self._main, name="avmm-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._err is not None:
            raise self._err
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.emu.start()
        except BaseException as e:
            self._err = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.emu.stop()

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._thread = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.emu.url

    @property
    def ws_url(self) -> str:
        return self.emu.ws_url

    def _call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def fault(self, spec: str | Fault) -> Fault:
        """Apply a fault now (``NAME[:ARG][@SECONDS]``)."""
        f = spec if isinstance(spec, Fault) else parse_fault(spec)
        return self._call(self.emu.apply_fault, f)

    def begin(self) -> None:
        """Start the replay now."""
        self._call(self.emu.begin)

    def status(self) -> dict[str, Any]:
        return self._call(self.emu.status)

    def accounts(self) -> dict[str, Any]:
        """The private side's accounts (``GET /_avmm/accounts``)."""
        return self._call(self.emu.accounts)

    def wait_done(self, timeout: float = 60.0) -> None:
        """Wait until the replay has sent everything."""
        fut = asyncio.run_coroutine_threadsafe(self.emu.wait_done(timeout), self.loop)
        fut.result(timeout + 5)


class EmulatorProcess:
    """``avmm emulate`` in a subprocess on an ephemeral port: ``args`` are its command-line
    arguments (stores and options, e.g. ``["s.parquet", "--venue", "binance-um", "--max"]``)."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        self.args = [str(a) for a in args]
        self.env = env
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.ws_url = ""

    def start(self) -> EmulatorProcess:
        env = dict(os.environ if self.env is None else self.env)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, "-m", "avmm", "emulate", *self.args]
        if "--port" not in self.args:
            cmd += ["--port", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.timeout
        line = self.proc.stdout.readline()
        if "http://" not in line or time.monotonic() > deadline:
            err = self.proc.stderr.read() if self.proc.stderr is not None else ""
            self.stop()
            raise RuntimeError(f"avmm emulate did not start: {line.strip()} {err.strip()}")
        self.url = line[line.index("http://") :].split()[0]
        self.ws_url = "ws://" + self.url.removeprefix("http://")
        return self

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def fault(self, spec: str) -> Any:
        return self._post("/_avmm/fault", {"fault": spec})

    def status(self) -> Any:
        return self._post("/_avmm/status")

    def accounts(self) -> Any:
        """The private side's accounts (``GET /_avmm/accounts``)."""
        return self._post("/_avmm/accounts")

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()
        self.proc = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
