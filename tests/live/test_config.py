"""``[venue]``: production defaults, one origin for the emulator, bad values as one line."""

from __future__ import annotations

import pytest

from avmm.config import load_config
from avmm.errors import UserError
from avmm.live.config import PRODUCTION, VenueConfig, with_origin


def test_unset_urls_are_the_production_hosts():
    cfg = VenueConfig()
    assert cfg.urls("binance-spot") == (
        "https://api.binance.com",
        "wss://stream.binance.com:9443",
        "wss://ws-api.binance.com:443/ws-api/v3",
    )
    assert cfg.urls("binance-um") == (
        "https://fapi.binance.com",
        "wss://fstream.binance.com",
        "wss://ws-fapi.binance.com/ws-fapi/v1",
    )
    assert set(PRODUCTION) == {"binance-spot", "binance-um"}


def test_each_url_set_in_the_file_wins(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[venue]\nrest_url = "https://testnet.binance.vision/"\nstale_s = 2\n')
    cfg = load_config(p).venue
    assert cfg.urls("binance-spot") == (
        "https://testnet.binance.vision",
        "wss://stream.binance.com:9443",
        "wss://ws-api.binance.com:443/ws-api/v3",
    )
    assert cfg.stale_s == 2.0


def test_one_origin_sets_all_three():
    cfg = with_origin(VenueConfig(), "http://127.0.0.1:8765", "binance-um")
    assert cfg.urls("binance-um") == ("http://127.0.0.1:8765", "ws://127.0.0.1:8765", "ws://127.0.0.1:8765/ws-fapi/v1")
    cfg = with_origin(VenueConfig(), "https://emu.local:443", "binance-spot")
    assert cfg.urls("binance-spot")[1:] == ("wss://emu.local:443", "wss://emu.local:443/ws-api/v3")


@pytest.mark.parametrize("origin", ["127.0.0.1:80", "ftp://x", "http://x/path", "http://"])
def test_a_bad_origin_is_one_line(origin):
    with pytest.raises(UserError, match=r"^--url .*: expected an origin"):
        with_origin(VenueConfig(), origin, "binance-spot")


@pytest.mark.parametrize(
    "text, key",
    [
        ('stream_url = "https://x"', "venue.stream_url"),
        ('rest_url = "wss://x"', "venue.rest_url"),
        ("stale_s = 0", "venue.stale_s"),
        ("depth_limit = 6000", "venue.depth_limit"),
        ('um_streams = "both"', "venue.um_streams"),
        ("wat = 1", "venue.wat"),
    ],
)
def test_bad_keys_name_themselves(tmp_path, text, key):
    p = tmp_path / "c.toml"
    p.write_text(f"[venue]\n{text}\n")
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        load_config(p)


def test_a_depth_speed_the_venue_does_not_serve_is_one_line():
    VenueConfig(depth_interval="0ms").check_for("binance-um")
    with pytest.raises(UserError, match=r"venue.depth_interval = '0ms': not served on binance-spot"):
        VenueConfig(depth_interval="0ms").check_for("binance-spot")


def test_um_streams_from_the_file(tmp_path):
    assert VenueConfig().um_streams == "split"
    p = tmp_path / "c.toml"
    p.write_text('[venue]\num_streams = "combined"\n')
    assert load_config(p).venue.um_streams == "combined"
