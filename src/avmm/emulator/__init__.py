"""A local Binance for tests and paper trading: REST market data, streams and fault knobs over a
replayed event store (``avmm emulate``), and with API keys its private side: the WebSocket API,
signed REST and user data, orders matched by the backtester's exchange model (``private``,
``matching``, ``keys``, ``limits``, ``formats``). Needs the ``live`` extra (aiohttp; cryptography
for Ed25519 keys) to serve; the replay, the frames and the faults do not.

* ``Emulator`` -- the server (``async with Emulator(store, port=0) as emu: emu.url``);
* ``EmulatorThread`` -- one running in a thread, for synchronous code and tests;
* ``EmulatorProcess`` -- ``avmm emulate`` in a subprocess;
* ``parse_fault`` / ``Fault`` -- the fault knobs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Emulator", "EmulatorThread", "EmulatorProcess", "Fault", "parse_fault"]

_WHERE = {
    "Emulator": "avmm.emulator.server",
    "EmulatorThread": "avmm.emulator.process",
    "EmulatorProcess": "avmm.emulator.process",
    "Fault": "avmm.emulator.faults",
    "parse_fault": "avmm.emulator.faults",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(mod), name)
