"""API keys for the live gateway: where they come from, how they sign, and how they never print.

Sources, first found wins:

* environment: ``AVMM_API_KEY`` with ``AVMM_API_SECRET`` (an HMAC-SHA256 secret) or
  ``AVMM_PRIVATE_KEY_FILE`` (an Ed25519 private key, PEM);
* ``venue.keys_file``: a TOML file ``api_key = "..."`` with ``api_secret = "..."`` (HMAC) or
  ``private_key = "-----BEGIN PRIVATE KEY-----..."`` (a multi-line string) / ``private_key_file = "key.pem"`` (Ed25519;
  a relative path is taken from the keys file's folder).

A file holding a secret (the keys file, a PEM file) must be readable by its owner only (mode 0600 or
stricter), else one line names it and its mode.

``Secret`` holds the text and prints as ``***`` (``repr``, ``str``, ``format``): the key, the secret
and the signer are never in a log, the journal, a status line or a traceback's values; it refuses to
be pickled. ``Keys.sign(payload)`` signs Binance's ``k=v&...`` payload: hex for HMAC, base64 for
Ed25519 (``cryptography``). Only Ed25519 keys can ``session.logon`` on the WebSocket API; HMAC keys
sign every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal

from avmm.errors import UserError

ENV_KEY = "AVMM_API_KEY"
ENV_SECRET = "AVMM_API_SECRET"
ENV_PEM = "AVMM_PRIVATE_KEY_FILE"
REDACTED = "***"

KeyKind = Literal["ed25519", "hmac"]


class Secret:
    """A secret string that prints as ``***``. ``reveal()`` is the only way to the text."""

    __slots__ = ("_v",)

    def __init__(self, value: str) -> None:
        self._v = value

    def reveal(self) -> str:
        return self._v

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._v, other._v)

    def __hash__(self) -> int:
        return hash(REDACTED)

    def __bool__(self) -> bool:
        return bool(self._v)


class Keys:
    """One API key and its signer. Prints as ``Keys(ed25519, ***)``."""

    __slots__ = ("api_key", "kind", "_signer", "source")

    def __init__(self, api_key: Secret, kind: KeyKind, signer: Any, source: str) -> None:
        self.api_key = api_key
        self.kind: KeyKind = kind
        self._signer = signer  # bytes (HMAC secret) or an Ed25519PrivateKey
        self.source = source  # where they came from (no secret in it)

    def __repr__(self) -> str:
        return f"Keys({self.kind}, {REDACTED})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Keys cannot be pickled")

    @property
    def can_logon(self) -> bool:
        """``session.logon`` takes Ed25519 keys only."""
        return self.kind == "ed25519"

    def secrets(self) -> list[str]:
        """The texts a log must mask (``live/logs.py``): the API key, an HMAC secret."""
        out = [self.api_key.reveal()]
        if self.kind == "hmac":
            out.append(self._signer.decode())
        return out

    def sign(self, payload: bytes) -> str:
        """Binance's signature of ``payload``: HMAC-SHA256 hex, or Ed25519 base64."""
        if self.kind == "hmac":
            return hmac.new(self._signer, payload, hashlib.sha256).hexdigest()
        return base64.b64encode(self._signer.sign(payload)).decode()

    @classmethod
    def hmac_key(cls, api_key: str, secret: str, source: str = "arguments") -> Keys:
        if not api_key or not secret:
            raise UserError(f"{source}: the API key and the secret must not be empty")
        return cls(Secret(api_key), "hmac", secret.encode(), source)

    @classmethod
    def ed25519_key(cls, api_key: str, pem: bytes, source: str = "arguments") -> Keys:
        if not api_key:
            raise UserError(f"{source}: the API key must not be empty")
        return cls(Secret(api_key), "ed25519", _load_pem(pem, source), source)


def _load_pem(pem: bytes, source: str) -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        raise UserError("Ed25519 keys need cryptography: pip install 'avmm[live]'") from None
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        # the library's message names the format problem, never the key's bytes
        reason = str(e).split("\n")[0][:120]
        raise UserError(f"{source}: not an unencrypted PEM private key ({reason})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{source}: not an Ed25519 private key (RSA keys are not supported)")
    return key


def check_private(path: Path, what: str) -> bytes:
    """The bytes of a file holding a secret: it must exist and be readable by its owner only."""
    try:
        st = path.stat()
    except OSError as e:
        raise UserError(f"{what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {path}: not a file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise UserError(f"{what} {path}: readable by others (mode {mode:04o}); it holds a secret: chmod 600 {path}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"{what} {path}: {e.strerror or e}") from None


def from_env(env: dict[str, str] | None = None) -> Keys | None:
    """The keys in the environment, or None when ``AVMM_API_KEY`` is unset."""
    env = dict(os.environ) if env is None else env
    key = env.get(ENV_KEY)
    if not key:
        return None
    secret, pem = env.get(ENV_SECRET), env.get(ENV_PEM)
    if secret and pem:
        raise UserError(f"{ENV_SECRET} and {ENV_PEM} are both set: set one (HMAC secret or Ed25519 key file)")
    if secret:
        return Keys.hmac_key(key, secret, f"${ENV_SECRET}")
    if pem:
        p = Path(pem).expanduser()
        return Keys.ed25519_key(key, check_private(p, f"${ENV_PEM}"), f"${ENV_PEM} {p}")
    raise UserError(f"{ENV_KEY} is set but neither {ENV_SECRET} (HMAC) nor {ENV_PEM} (Ed25519 PEM) is")


def from_file(path: Path) -> Keys:
    """The keys in a TOML keys file (mode 0600)."""
    raw = check_private(path, "venue.keys_file")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        # TOMLDecodeError's message names a line and column, never the value
        raise UserError(f"venue.keys_file {path}: not TOML ({str(e).splitlines()[0][:120]})") from None
    known = {"api_key", "api_secret", "private_key", "private_key_file"}
    extra = sorted(set(doc) - known)
    if extra:
        raise UserError(f"venue.keys_file {path}: unknown key {extra[0]!r} (expected {', '.join(sorted(known))})")
    key = doc.get("api_key")
    if not isinstance(key, str) or not key:
        raise UserError(f"venue.keys_file {path}: no api_key")
    given = [k for k in ("api_secret", "private_key", "private_key_file") if k in doc]
    if len(given) != 1:
        raise UserError(
            f"venue.keys_file {path}: set exactly one of api_secret (HMAC), private_key or private_key_file "
            f"(Ed25519), got {len(given)}"
        )
    what = given[0]
    v = doc[what]
    if not isinstance(v, str) or not v:
        raise UserError(f"venue.keys_file {path}: {what} must be a non-empty string")
    src = f"venue.keys_file {path}"
    if what == "api_secret":
        return Keys.hmac_key(key, v, src)
    if what == "private_key":
        return Keys.ed25519_key(key, v.encode(), src)
    pem_path = Path(v).expanduser()
    if not pem_path.is_absolute():
        pem_path = path.parent / pem_path
    return Keys.ed25519_key(key, check_private(pem_path, f"{src}: private_key_file"), f"{src}: private_key_file")


def load_keys(keys_file: str | Path | None, env: dict[str, str] | None = None) -> Keys:
    """The keys: the environment first, then ``venue.keys_file``; one line when there are none."""
    k = from_env(env)
    if k is not None:
        return k
    if keys_file:
        return from_file(Path(keys_file).expanduser())
    raise UserError(
        f"no API keys: set {ENV_KEY} and {ENV_SECRET} (HMAC) or {ENV_PEM} (Ed25519), or venue.keys_file in the config"
    )


def payload(params: dict[str, Any]) -> bytes:
    """Binance's signature payload of WebSocket API ``params``: every parameter but ``signature``,
    sorted by name, ``k=v`` joined by ``&``, not percent-encoded."""
    return "&".join(f"{k}={_text(params[k])}" for k in sorted(params) if k != "signature").encode()


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
