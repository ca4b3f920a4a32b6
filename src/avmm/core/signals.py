"""A user's signal compiled into a runtime's loop (``[signals]``; the API is ``core/signal_api.py``).

The loops (the backtest's ``run_chunk``, the ``Engine``'s ``on_quote_at`` / ``on_trade_at``) call
``signal_none.signal_step``: nothing, compiled away, no cost without a signal. With a signal file,
``compiled_variant`` writes a copy of the user's file, a copy of ``signal_slot.py`` importing the
user's function, and a copy of the loop's module calling that slot's ``signal_step``, into
``$AVMM_CACHE/signals/<key>/`` (``~/.cache/avmm``), and imports the copy. Each file is named by the
hash of its content, so numba's on-disk cache (``cache=True``) serves a second run in about a
second, and an edit of the signal file is a new key: never stale. (The cache directory of numba is
keyed by avmm's own source: an avmm upgrade recompiles too. Modules the signal file imports itself
are not part of the key.)

A signal that cannot be loaded -- no such file, a syntax error, an exception on import, no ``@njit``
function of that name, a function that does not return three numbers -- is one ``UserError``
naming the file (and the line when Python or numba says it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from avmm._version import __version__
from avmm.errors import UserError

SLOT_IMPORT = "from avmm.core.signal_none import signal as user_signal"
SLOT_LINE = "from avmm.core.signal_none import signal_depth, signal_step"
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SignalSource:
    """The signal file as read once: what is compiled is what was hashed."""

    path: Path
    text: bytes
    function: str

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        for part in (self.function.encode(), self.text, _package_hash()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return h.hexdigest()[:20]


@functools.cache
def _package_hash() -> bytes:
    """avmm's version and every source file: the compiled copies inline avmm's code, and numba
    tracks only their own files (this holds even with an explicit ``NUMBA_CACHE_DIR``)."""
    h = hashlib.sha256(__version__.encode())
    pkg = _HERE.parent
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode())
        h.update(f.read_bytes())
    return h.digest()


def signal_source(file: str | None, function: str, builtins: bool = False) -> SignalSource | None:
    """The signal file named by ``signals.file``, read (a missing or unreadable file is one line);
    without a file, ``signal_none`` when a built-in signal is on (the loops then call the slot), or
    None: no signal, the default loops."""
    if file is None:
        if not builtins:
            return None
        none = _HERE / "signal_none.py"
        return SignalSource(none, none.read_bytes(), "signal")
    path = Path(file).expanduser()
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"signals.file: {path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"signals.file: {path}: is a folder, not a Python file") from None
    except OSError as e:
        raise UserError(f"signals.file: {path}: cannot be read ({e.strerror})") from None
    if not function.isidentifier():
        raise UserError(f"signals.function: {function!r} is not a Python name")
    return SignalSource(path.resolve(), text, function)


def _cache_root() -> Path:
    d = os.environ.get("AVMM_CACHE")
    return (Path(d) if d else Path.home() / ".cache" / "avmm") / "signals"


def _write_once(path: Path, data: bytes) -> None:
    """``path`` with ``data`` unless it is there already (written to a temp file and renamed, so a
    concurrent process never imports half a file)."""
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # a concurrent writer's identical file may win: either is the same
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UserError(
            f"signals: cannot write the compiled signal to {path.parent} ({e.strerror}); set AVMM_CACHE"
        ) from None


def _user_error(src: SignalSource, copy: Path, e: BaseException) -> UserError:
    """One line naming the user's file and line for an error raised while importing its copy."""
    if isinstance(e, SyntaxError):
        return UserError(f"{src.path}:{e.lineno}: {type(e).__name__}: {e.msg}")
    line = None
    for fr in traceback.extract_tb(e.__traceback__):
        if Path(fr.filename).resolve() == copy.resolve():
            line = fr.lineno
    where = f"{src.path}:{line}" if line else str(src.path)
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return UserError(f"{where}: {type(e).__name__}{': ' + msg if msg else ''} (while loading the signal)")


def _check_function(src: SignalSource, mod: ModuleType, copy: Path) -> None:
    """The signal is an ``@njit`` function taking (int64, float64[:], float64[:], float64[:]) and
    returning three numbers."""
    from numba import types
    from numba.core.errors import NumbaError
    from numba.core.registry import CPUDispatcher

    fn = getattr(mod, src.function, None)
    if fn is None:
        raise UserError(f"{src.path}: no function named {src.function!r} (signals.function)")
    if not isinstance(fn, CPUDispatcher):
        raise UserError(f"{src.path}: {src.function} is not a numba @njit function; decorate it with @njit")
    arr = types.float64[::1]
    try:
        fn.compile((types.int64, arr, arr, arr))
    except (NumbaError, TypeError) as e:  # TypeError: a signature the function cannot take
        raise _compile_error(src, copy, str(e)) from None
    ret = fn.nopython_signatures[-1].return_type
    parts = list(getattr(ret, "types", ())) if isinstance(ret, types.BaseTuple) else []
    ok = len(parts) == 3 and all(isinstance(t, (types.Integer, types.Float)) for t in parts)
    if not ok:
        raise UserError(
            f"{src.path}: {src.function} returns {ret}: it must return three numbers (shift, spread_mult, skew_mult)"
        )


def _compile_error(src: SignalSource, copy: Path, text: str) -> UserError:
    """numba's message in one line: its first line saying what is wrong, at the line of the user's
    file it names (or, for an unknown name, the first line using it)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    skip = ("Failed in ", "During:", "File ", "^", "Resolution failure", "- ")
    what = next((x for x in lines if not x.startswith(skip)), lines[0] if lines else "unknown error")
    m = re.findall(r'File "([^"]+)", line (\d+)', text)
    line = next((int(n) for f, n in m if Path(f).resolve() == copy.resolve()), None)
    name = re.search(r"name '(\w+)' is not defined", text)
    if line is None and name:
        src_lines = src.text.decode(errors="replace").splitlines()
        pat = re.compile(rf"\b{re.escape(name.group(1))}\b")
        line = next((i + 1 for i, x in enumerate(src_lines) if pat.search(x) and not x.lstrip().startswith("#")), None)
    where = f"{src.path}:{line}" if line else str(src.path)
    return UserError(f"{where}: {src.function} does not compile: {what}")


def compiled_variant(src: SignalSource, template: Path, name: str) -> ModuleType:
    """The module ``template`` (a loop calling ``signal_slot.signal_step``) compiled with the user's
    signal: its copy, the slot's and the user file's, written once under their content's key and
    imported."""
    key = src.key
    d = _cache_root() / key
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"signals: cannot write the compiled signal to {d} ({e.strerror}); set AVMM_CACHE") from None
    user_mod, slot_mod = f"avmm_usersig_{key}", f"avmm_sigslot_{key}"
    slot_text = (_HERE / "signal_slot.py").read_text()
    if SLOT_IMPORT not in slot_text:
        raise RuntimeError("signal_slot.py: the signal import line is missing")
    slot_text = slot_text.replace(SLOT_IMPORT, f"from {user_mod} import {src.function} as user_signal")
    text = template.read_text()
    if SLOT_LINE not in text:
        raise RuntimeError(f"{template}: the signal slot import is missing")
    text = text.replace(SLOT_LINE, f"from {slot_mod} import signal_depth, signal_step")
    vkey = hashlib.sha256(text.encode()).hexdigest()[:12]
    var_mod = f"avmm_sig{name}_{key}_{vkey}"
    copy = d / f"{user_mod}.py"
    _write_once(copy, src.text)
    _write_once(d / f"{slot_mod}.py", slot_text.encode())
    _write_once(d / f"{var_mod}.py", text.encode())
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))
    importlib.invalidate_caches()
    try:
        user = importlib.import_module(user_mod)
    except Exception as e:  # the user's code: any error on import is theirs
        raise _user_error(src, copy, e) from None
    _check_function(src, user, copy)
    return importlib.import_module(var_mod)


def run_error(src: SignalSource, e: BaseException) -> UserError:
    """An exception out of a compiled loop with this signal in it (raised by the signal: the loops
    raise nothing of their own)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return UserError(f"{src.path}: {src.function} raised {type(e).__name__}{': ' + msg if msg else ''} (at run time)")


def entry_module(src: SignalSource | None) -> Any:
    """The ``Engine``'s entry points: ``core.entry``, or its copy with the signal compiled in."""
    from avmm.core import entry

    if src is None:
        return entry
    return compiled_variant(src, _HERE / "entry.py", "entry")
