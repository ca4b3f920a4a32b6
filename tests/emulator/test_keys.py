"""API keys for ``avmm emulate --keys``: the file, and Binance's signatures checked against the
documentation's own examples (binance-spot-api-docs: web-socket-api.md, rest-api.md)."""

from __future__ import annotations

import base64
import json

import pytest

from avmm.emulator.keys import ED25519, HMAC, load_keys, parse_keys, rest_payload, ws_payload
from avmm.errors import UserError

crypto = pytest.importorskip("cryptography")

DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
TWICE = "[[keys]]\napi_key = 'a'\ntype = 'hmac'\nsecret = 'x'\n[[keys]]\napi_key = 'a'\ntype = 'hmac'\nsecret = 'y'\n"


def ed25519_pair() -> tuple[object, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    pem = (
        priv.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return priv, pem


def test_ws_api_hmac_signature_is_the_documented_one():
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "newOrderRespType": "ACK",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": DOC_KEY,
        "signature": "ignored",
    }
    payload = ws_payload(params)
    assert payload.startswith("apiKey=vmPUZE") and payload.endswith("timestamp=1645423376532&type=LIMIT")
    (key,) = parse_keys([{"api_key": DOC_KEY, "type": "hmac", "secret": DOC_SECRET}])
    sig = "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
    assert key.verify(payload, sig) and key.verify(payload, sig.upper())  # hex: any case
    assert not key.verify(payload.replace("52000.00", "52000.01"), sig)
    assert ws_payload({"a": True, "b": False, "c": "0.1"}) == "a=true&b=false&c=0.1"


def test_rest_hmac_signature_is_the_documented_one():
    """REST signs the query string as sent, followed by the body (no ``&`` between them)."""
    (key,) = parse_keys([{"api_key": DOC_KEY, "type": "hmac", "secret": DOC_SECRET}])
    q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert rest_payload(q + "&signature=" + sig, "") == (q, sig)
    assert key.verify(*rest_payload("", q + "&signature=" + sig))
    mixed = rest_payload(
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=x",
    )
    assert key.verify(mixed[0], "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77")


def test_ed25519_signature():
    priv, pem = ed25519_pair()
    (key,) = parse_keys({"keys": [{"api_key": "ed1", "type": "ed25519", "public_key": pem}]})
    assert key.kind == ED25519
    payload = "apiKey=ed1&timestamp=1"
    sig = base64.b64encode(priv.sign(payload.encode())).decode()
    assert key.verify(payload, sig)
    assert not key.verify(payload + "0", sig)
    assert not key.verify(payload, "not base64!")
    other, _ = ed25519_pair()
    assert not key.verify(payload, base64.b64encode(other.sign(payload.encode())).decode())


def test_keys_files_toml_and_json(tmp_path):
    _, pem = ed25519_pair()
    toml = tmp_path / "keys.toml"
    toml.write_text(
        f'[[keys]]\napi_key = "mm"\ntype = "ed25519"\npublic_key = """{pem}"""\n\n'
        '[[keys]]\napi_key = "ccxt"\ntype = "hmac"\nsecret = "s"\n'
    )
    keys = load_keys(toml)
    assert [(k.api_key, k.kind) for k in keys] == [("mm", ED25519), ("ccxt", HMAC)]
    assert "b's'" not in repr(keys[1])  # the secret is never shown
    js = tmp_path / "keys.json"
    js.write_text(json.dumps([{"api_key": "a", "type": "HMAC", "secret": "x"}]))
    assert [k.api_key for k in load_keys(js)] == ["a"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[keys]]\napi_key = 'a'\ntype = 'rsa'\nsecret = 'x'\n", "type must be 'hmac' or 'ed25519'"),
        ("[[keys]]\napi_key = 'a'\ntype = 'hmac'\n", "needs its secret"),
        ("[[keys]]\napi_key = 'a b'\ntype = 'hmac'\nsecret = 'x'\n", "api_key must be"),
        ("[[keys]]\napi_key = 'a'\ntype = 'ed25519'\npublic_key = 'x'\n", "needs its public_key"),
        ("[[keys]]\napi_key = 'a'\ntype = 'hmac'\nsecret = 'x'\ncolour = 1\n", "unknown field 'colour'"),
        (TWICE, "given twice"),
        ("x = 1\n", "unknown section 'x'"),
        ("[[keys", "not valid TOML"),
    ],
)
def test_bad_keys_files_are_one_line_and_never_show_a_secret(tmp_path, text, needle):
    p = tmp_path / "k.toml"
    p.write_text(text)
    with pytest.raises(UserError) as e:
        load_keys(p)
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg and "'y'" not in msg


def test_a_missing_keys_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_keys(tmp_path / "nope.toml")
