"""API keys: sources, file modes, signatures, and the key never printed."""

from __future__ import annotations

import base64
import pickle
import sys
import traceback

import pytest

from avmm.errors import UserError
from avmm.live.keys import Keys, Secret, from_file, load_keys, payload

SECRET = "YtP1BudNOWZE1ag5uzCkh4hIC7qSmQOu797r5EJBFGhxBYivjj8HIX0iiiPof5yG"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


def ed25519_pem() -> tuple[bytes, object]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, k.public_key()


def test_hmac_signature_is_binances_example():
    """The HMAC-SHA256 of a Binance documentation payload (checked with openssl) is reproduced."""
    k = Keys.hmac_key(API_KEY, SECRET)
    msg = (
        b"symbol=BTC-210129-40000-C&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=2000"
        b"&recvWindow=5000&timestamp=1611825601400"
    )
    assert k.sign(msg) == "7c12045972f6140e765e0f2b67d28099718df805732676494238f50be830a7d7"
    assert not k.can_logon


def test_ed25519_signature_verifies_and_is_base64():
    pem, pub = ed25519_pem()
    k = Keys.ed25519_key(API_KEY, pem)
    sig = k.sign(b"apiKey=x&timestamp=1")
    pub.verify(base64.b64decode(sig), b"apiKey=x&timestamp=1")  # raises if wrong
    assert k.can_logon


def test_payload_sorted_without_signature():
    assert payload({"timestamp": 5, "apiKey": "k", "signature": "s", "b": True}) == b"apiKey=k&b=true&timestamp=5"


def test_secret_and_keys_print_redacted():
    """repr, str, format, f-strings, containers and tracebacks with locals never show the key."""
    pem, _ = ed25519_pem()
    for k in (Keys.hmac_key(API_KEY, SECRET), Keys.ed25519_key(API_KEY, pem)):
        texts = [repr(k), str(k), f"{k}", repr([k, k.api_key]), f"{k.api_key:>40}", str({"k": k.api_key})]
        for t in texts:
            assert API_KEY not in t and SECRET not in t and "PRIVATE" not in t
        assert str(k.api_key) == "***"
        with pytest.raises(TypeError):
            pickle.dumps(k)
        with pytest.raises(TypeError):
            pickle.dumps(k.api_key)

        def fails(keys: Keys) -> None:
            secret_here = keys.api_key  # noqa: F841 (a local the traceback may show)
            raise RuntimeError("forced")

        try:
            fails(k)
        except RuntimeError:
            tb = "".join(traceback.TracebackException(*sys.exc_info(), capture_locals=True).format())
        assert "forced" in tb and "secret_here" in tb
        assert API_KEY not in tb and SECRET not in tb


def test_secret_equality_and_reveal():
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert Secret("abc").reveal() == "abc"


def test_env_hmac_then_ed25519(tmp_path):
    k = load_keys(None, {"AVMM_API_KEY": API_KEY, "AVMM_API_SECRET": SECRET})
    assert k.kind == "hmac" and k.api_key.reveal() == API_KEY
    pem, _ = ed25519_pem()
    f = tmp_path / "k.pem"
    f.write_bytes(pem)
    f.chmod(0o600)
    k = load_keys(None, {"AVMM_API_KEY": API_KEY, "AVMM_PRIVATE_KEY_FILE": str(f)})
    assert k.kind == "ed25519"
    f.chmod(0o644)
    with pytest.raises(UserError, match=r"readable by others \(mode 0644\).*chmod 600"):
        load_keys(None, {"AVMM_API_KEY": API_KEY, "AVMM_PRIVATE_KEY_FILE": str(f)})


def test_env_errors_are_one_line():
    with pytest.raises(UserError, match="neither AVMM_API_SECRET"):
        load_keys(None, {"AVMM_API_KEY": API_KEY})
    with pytest.raises(UserError, match="both set"):
        load_keys(None, {"AVMM_API_KEY": API_KEY, "AVMM_API_SECRET": "s", "AVMM_PRIVATE_KEY_FILE": "x"})
    with pytest.raises(UserError, match="no API keys"):
        load_keys(None, {})


def test_keys_file_modes_and_forms(tmp_path):
    f = tmp_path / "keys.toml"
    f.write_text(f'api_key = "{API_KEY}"\napi_secret = "{SECRET}"\n')
    f.chmod(0o640)
    with pytest.raises(UserError) as e:
        from_file(f)
    assert "mode 0640" in str(e.value) and "\n" not in str(e.value) and SECRET not in str(e.value)
    f.chmod(0o600)
    assert from_file(f).kind == "hmac"
    # env first
    assert load_keys(f, {"AVMM_API_KEY": "other", "AVMM_API_SECRET": "x"}).api_key.reveal() == "other"
    assert load_keys(f, {}).api_key.reveal() == API_KEY
    # Ed25519 inline and by a relative path
    pem, _ = ed25519_pem()
    f.write_text(f'api_key = "{API_KEY}"\nprivate_key = """{pem.decode()}"""\n')
    assert from_file(f).kind == "ed25519"
    (tmp_path / "p.pem").write_bytes(pem)
    (tmp_path / "p.pem").chmod(0o600)
    f.write_text(f'api_key = "{API_KEY}"\nprivate_key_file = "p.pem"\n')
    assert from_file(f).kind == "ed25519"


@pytest.mark.parametrize(
    "text, needle",
    [
        ('api_secret = "s"\n', "no api_key"),
        ('api_key = "k"\n', "exactly one of"),
        ('api_key = "k"\napi_secret = "s"\nprivate_key = "p"\n', "exactly one of"),
        ('api_key = "k"\nsecret = "s"\n', "unknown key 'secret'"),
        ('api_key = "k"\nprivate_key = "not a pem"\n', "not an unencrypted PEM private key"),
        ("api_key = \n", "not TOML"),
    ],
)
def test_keys_file_errors(tmp_path, text, needle):
    f = tmp_path / "keys.toml"
    f.write_text(text)
    f.chmod(0o600)
    with pytest.raises(UserError) as e:
        from_file(f)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert '"s"' not in str(e.value) and "not a pem" not in str(e.value)


def test_rsa_key_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(65537, 2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    f = tmp_path / "keys.toml"
    f.write_text(f'api_key = "k"\nprivate_key = """{pem}"""\n')
    f.chmod(0o600)
    with pytest.raises(UserError, match="not an Ed25519 private key"):
        from_file(f)
