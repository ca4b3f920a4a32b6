"""The API keys the emulator accepts (``avmm emulate --keys FILE``) and Binance's signatures.

The file is TOML (``[[keys]]`` tables) or JSON (a list, or ``{"keys": [...]}``); each entry has
``api_key``, ``type`` (``"hmac"`` or ``"ed25519"``) and ``secret`` (HMAC) or ``public_key`` (the
Ed25519 public key, PEM)::

    [[keys]]
    api_key = "mm1"
    type = "ed25519"
    public_key = \"\"\"-----BEGIN PUBLIC KEY-----
    MCowBQYDK2VwAyEA...
    -----END PUBLIC KEY-----\"\"\"

    [[keys]]
    api_key = "ccxt"
    type = "hmac"
    secret = "..."

Each key is one account. Signatures are Binance's: HMAC-SHA256 of the payload, hex (compared without
regard to case); Ed25519 over the payload, base64. The WebSocket API's payload is every parameter but
``signature``, sorted by name, as ``name=value`` joined by ``&`` (values not percent-encoded:
``ws_payload``); REST's is the query string as sent followed by the body (``rest_payload``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avmm.errors import UserError, missing_extra

HMAC = "hmac"
ED25519 = "ed25519"
KINDS = (HMAC, ED25519)
KEY_FORMAT = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")  # what Binance would parse as a key (else -2014)


@dataclass
class ApiKey:
    """One API key: its kind and what verifies its signatures (never printed: ``repr`` hides it)."""

    api_key: str
    kind: str
    secret: bytes = field(default=b"", repr=False)
    public: Any = field(default=None, repr=False)

    def verify(self, payload: str, signature: str) -> bool:
        """Whether ``signature`` signs ``payload`` with this key."""
        if self.kind == HMAC:
            want = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
            return hmac.compare_digest(want, signature.strip().lower())
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        from cryptography.exceptions import InvalidSignature

        try:
            self.public.verify(sig, payload.encode())
        except (InvalidSignature, ValueError):
            return False
        return True


def _value(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def ws_payload(params: dict[str, Any]) -> str:
    """The WebSocket API's signature payload: every parameter but ``signature``, sorted by name,
    ``name=value`` joined by ``&`` (numbers as sent: parse the request with ``parse_float=str``)."""
    return "&".join(f"{k}={_value(params[k])}" for k in sorted(params) if k != "signature")


def rest_payload(query: str, body: str) -> tuple[str, str | None]:
    """REST's signature payload (the query string as sent, then the body) without the
    ``signature`` parameter, and the signature (None: not sent)."""
    sig = None
    parts: list[str] = []
    for raw in (query, body):
        keep = []
        for kv in raw.split("&") if raw else []:
            if kv.startswith("signature="):
                sig = kv[len("signature=") :]
            else:
                keep.append(kv)
        parts.append("&".join(keep))
    return parts[0] + parts[1], sig


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        raise missing_extra("avmm emulate --keys", "live", "cryptography") from None
    return Ed25519PublicKey, load_pem_public_key


def _entry(where: str, e: Any) -> ApiKey:
    if not isinstance(e, dict):
        raise UserError(f"{where}: expected a table with api_key, type and secret or public_key")
    unknown = sorted(set(e) - {"api_key", "type", "secret", "public_key"})
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r} (use api_key, type, secret, public_key)")
    key = e.get("api_key")
    if not isinstance(key, str) or not KEY_FORMAT.match(key):
        raise UserError(f"{where}: api_key must be 1 to 128 letters, digits, '-' or '_'")
    kind = str(e.get("type", "")).lower()
    if kind not in KINDS:
        raise UserError(f"{where} ({key}): type must be 'hmac' or 'ed25519', got {e.get('type')!r}")
    if kind == HMAC:
        secret = e.get("secret")
        if not isinstance(secret, str) or not secret:
            raise UserError(f"{where} ({key}): an hmac key needs its secret")
        if "public_key" in e:
            raise UserError(f"{where} ({key}): an hmac key has a secret, not a public_key")
        return ApiKey(key, HMAC, secret=secret.encode())
    pem = e.get("public_key")
    if not isinstance(pem, str) or "BEGIN PUBLIC KEY" not in pem:
        raise UserError(f"{where} ({key}): an ed25519 key needs its public_key (PEM, BEGIN PUBLIC KEY)")
    if "secret" in e:
        raise UserError(f"{where} ({key}): an ed25519 key has a public_key, not a secret")
    pub_cls, load = _crypto()
    try:
        pub = load(pem.strip().encode())
    except (ValueError, TypeError) as ex:
        raise UserError(f"{where} ({key}): public_key is not a PEM public key ({ex})") from None
    if not isinstance(pub, pub_cls):
        raise UserError(f"{where} ({key}): public_key is not an Ed25519 key")
    return ApiKey(key, ED25519, public=pub)


def parse_keys(entries: Any, where: str = "keys") -> list[ApiKey]:
    """The keys of a parsed keys file (a list of entries, or ``{"keys": [...]}``).

    Raises
    ------
    UserError
        A bad entry or a key given twice (one line naming the entry; never a secret).
    """
    if isinstance(entries, dict):
        extra = sorted(set(entries) - {"keys"})
        if extra:
            raise UserError(f"{where}: unknown section {extra[0]!r} (expected [[keys]] entries)")
        entries = entries.get("keys")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: no keys (expected [[keys]] entries with api_key, type, secret or public_key)")
    out: list[ApiKey] = []
    seen: set[str] = set()
    for i, e in enumerate(entries, 1):
        k = _entry(f"{where}: key {i}", e)
        if k.api_key in seen:
            raise UserError(f"{where}: key {i}: api_key {k.api_key!r} given twice")
        seen.add(k.api_key)
        out.append(k)
    return out


def load_keys(path: Path | str) -> list[ApiKey]:
    """Read a keys file (TOML, or JSON when it ends in ``.json`` or starts with ``[`` / ``{``).

    Raises
    ------
    UserError
        A missing or unreadable file, bad TOML / JSON, or a bad entry (one line).
    """
    p = Path(path)
    where = f"--keys {p}"
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"{where}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{where}: cannot read ({e})") from None
    suffix = p.suffix.lower()
    data: Any = None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise UserError(f"{where}: not valid JSON ({e})") from None
    elif suffix != ".toml" and text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None  # ``[[keys]]``: TOML
    if data is None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"{where}: not valid TOML ({e})") from None
    return parse_keys(data, where)
