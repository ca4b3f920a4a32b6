"""``[venue]``: where the live runtime connects and how its feed keeps itself healthy;
``[alerts]``: where it reports what needs a person (``live/alerts.py``).

Every base URL is configurable (``rest_url``, ``stream_url``, ``ws_api_url``); left unset, each is
the production host of the market chosen on the command line (``--venue binance-spot`` /
``binance-um``). ``with_origin`` points all three at one origin (``--url``: the emulator).
"""

from __future__ import annotations

import shlex
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field

from avmm.core.config import STRICT
from avmm.errors import UserError

VENUES = ("binance-spot", "binance-um")
Venue = Literal["binance-spot", "binance-um"]

# (rest, stream, ws_api) production hosts by venue
PRODUCTION: dict[str, tuple[str, str, str]] = {
    "binance-spot": (
        "https://api.binance.com",
        "wss://stream.binance.com:9443",
        "wss://ws-api.binance.com:443/ws-api/v3",
    ),
    "binance-um": (
        "https://fapi.binance.com",
        "wss://fstream.binance.com",
        "wss://ws-fapi.binance.com/ws-fapi/v1",
    ),
}
DEPTH_INTERVALS = {"binance-spot": ("100ms", "1000ms"), "binance-um": ("0ms", "100ms", "250ms", "500ms")}
WS_API_PATH = {"binance-spot": "/ws-api/v3", "binance-um": "/ws-fapi/v1"}


def _url(schemes: tuple[str, ...]) -> AfterValidator:
    def check(v: str | None) -> str | None:
        if v is None:
            return v
        u = urlsplit(v)
        if u.scheme not in schemes or not u.hostname:
            raise ValueError(f"expected a {' or '.join(schemes)} URL with a host, got {v!r}")
        return v.rstrip("/")

    return AfterValidator(check)


HttpUrl = Annotated[str | None, _url(("http", "https"))]
WsUrl = Annotated[str | None, _url(("ws", "wss"))]


class VenueConfig(BaseModel):
    """``[venue]``: the venue's base URLs and the feed's timers."""

    model_config = STRICT
    rest_url: HttpUrl = Field(
        None, description="REST base URL (unset: https://api.binance.com spot, https://fapi.binance.com USD-M)"
    )
    stream_url: WsUrl = Field(
        None,
        description="market streams base URL (unset: wss://stream.binance.com:9443 spot, "
        "wss://fstream.binance.com USD-M)",
    )
    ws_api_url: WsUrl = Field(
        None,
        description="WebSocket API URL (unset: wss://ws-api.binance.com:443/ws-api/v3 spot, "
        "wss://ws-fapi.binance.com/ws-fapi/v1 USD-M)",
    )
    depth_interval: Literal["100ms", "250ms", "500ms", "1000ms", "0ms"] = Field(
        "100ms", description="depth diff stream speed (spot: 100ms, 1000ms; USD-M: 0ms, 100ms, 250ms, 500ms)"
    )
    um_streams: Literal["split", "combined"] = Field(
        "split",
        description="USD-M market streams: 'split' = two connections as Binance routes them since 2026-04 "
        "(<stream_url>/public/stream: bookTicker + depth; <stream_url>/market/stream: aggTrade); 'combined' = "
        "one legacy <stream_url>/stream connection, for hosts that still serve it (testnet, demo, market-maker "
        "hosts); spot always opens one /stream connection",
    )
    depth_limit: int = Field(1000, ge=5, le=5000, description="levels per side in the REST depth snapshot")
    stale_s: float = Field(5.0, gt=0, le=3600, description="a book stream silent this long is stale, s")
    trade_stale_s: float = Field(
        0.0, ge=0, le=86400, description="the trade stream silent this long is stale, s (0: not watched)"
    )
    stale_reconnect_s: float = Field(
        30.0,
        ge=0,
        le=86400,
        description="all streams stale this long: a new connection replaces the old, s (0: never)",
    )
    rotate_s: float = Field(
        85800.0, gt=0, le=86400, description="replace a connection (make-before-break) this long after it opened, s"
    )
    backoff_min_s: float = Field(0.1, gt=0, le=600, description="first reconnect delay, s (doubled per failure)")
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay, s")
    connect_timeout_s: float = Field(10.0, gt=0, le=600, description="connect / handshake / REST request timeout, s")
    max_connects_5min: int = Field(
        60,
        ge=1,
        le=300,
        description="connection attempts in any 5 minutes, all streams (Binance bans an IP past 300); "
        "an attempt beyond waits",
    )
    rest_weight_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="the share of the venue's REST weight per minute the feed may use (Binance's "
        "X-MBX-USED-WEIGHT-1M, shared by every client on the IP); a snapshot beyond waits for the next minute",
    )

    # --- trading (avmm live) ----------------------------------------------------------------------
    keys_file: str | None = Field(
        None,
        description="TOML file with api_key and api_secret (HMAC) or private_key / private_key_file (Ed25519 "
        "PEM); mode 0600. The environment (AVMM_API_KEY with AVMM_API_SECRET or AVMM_PRIVATE_KEY_FILE) comes first",
    )
    client_prefix: str = Field(
        "avmm",
        pattern=r"^[A-Za-z0-9_]{1,5}$",
        description="the first part of our client order ids (prefix-session-seq): orders without it are foreign",
    )
    foreign_orders: Literal["ignore", "cancel"] = Field(
        "ignore",
        description="open orders on the symbol that are not ours (by client id prefix): left alone or cancelled",
    )
    recv_window_ms: float = Field(
        1000.0, gt=0, le=60000, description="recvWindow of signed requests, ms (the clock offset is estimated)"
    )
    request_timeout_s: float = Field(
        5.0, gt=0, le=600, description="a WebSocket API request unanswered this long is 'unknown' (then queried)"
    )
    reconcile_retries: int = Field(
        5, ge=1, le=100, description="attempts at reconciling with the venue before the session halts"
    )
    countdown_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="USD-M dead-man switch: countdownCancelAll time, s, renewed every third of it (0: off)",
    )
    keep_priority: bool = Field(
        True,
        description="spot: an amend that keeps the price and lowers the quantity goes as "
        "order.amend.keepPriority (the order keeps its place in the queue); else every amend is a cancel-replace",
    )
    max_order_age_s: float = Field(
        0.0, ge=0, le=86400, description="an order older than this is cancelled by the gateway, s (0: never)"
    )
    listen_key_keepalive_s: float = Field(
        1800.0, gt=0, le=3600, description="USD-M listenKey keepalive (PUT) period, s"
    )
    clock_sync_s: float = Field(
        10.0, gt=0, le=3600, description="between two clock offset samples (the WebSocket API 'time'), s"
    )
    clock: Literal["venue", "local"] = Field(
        "venue",
        description="request timestamps on the venue's clock (its offset estimated) or on this machine's as it is "
        "(the emulator replaying at a --speed other than 1 accepts those)",
    )
    rate_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="the share of the venue's order and request limits (exchangeInfo rateLimits) the gateway uses",
    )

    def check_for(self, venue: str) -> None:
        """The keys that depend on the venue: one line naming the key when they do not fit it."""
        if self.depth_interval not in DEPTH_INTERVALS[venue]:
            raise UserError(
                f"venue.depth_interval = {self.depth_interval!r}: not served on {venue} "
                f"(use {' or '.join(DEPTH_INTERVALS[venue])})"
            )

    def urls(self, venue: str) -> tuple[str, str, str]:
        """``(rest, stream, ws_api)``: each key set here, else the production host of ``venue``."""
        rest, stream, ws_api = PRODUCTION[venue]
        return (self.rest_url or rest, self.stream_url or stream, self.ws_api_url or ws_api)


def with_origin(cfg: VenueConfig, origin: str, venue: str) -> VenueConfig:
    """``cfg`` with all three URLs on one origin (``--url http://127.0.0.1:PORT``): REST at the
    origin, the streams at its ws:// twin, the WebSocket API at the venue's path there."""
    u = urlsplit(origin)
    if u.scheme not in ("http", "https", "ws", "wss") or not u.hostname or u.path not in ("", "/"):
        raise UserError(f"--url {origin}: expected an origin like http://127.0.0.1:8080 (scheme, host, port; no path)")
    secure = u.scheme in ("https", "wss")
    host = u.netloc
    http = f"{'https' if secure else 'http'}://{host}"
    ws = f"{'wss' if secure else 'ws'}://{host}"
    return cfg.model_copy(update={"rest_url": http, "stream_url": ws, "ws_api_url": ws + WS_API_PATH[venue]})


def _command(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        argv = shlex.split(v)
    except ValueError as e:
        raise ValueError(f"cannot split {v!r} into words ({e})") from None
    if not argv:
        raise ValueError("empty command")
    return v


class AlertsConfig(BaseModel):
    """``[alerts]``: the alert hook of a live or paper session (``live/alerts.py``): a command, a
    webhook or both, run on a halt, the kill switch, a disconnect longer than ``disconnect_s`` and a
    reconciliation failure."""

    model_config = STRICT
    command: Annotated[str | None, AfterValidator(_command)] = Field(
        None,
        description="run with the alert as JSON on stdin (split into words like a shell line, run without a shell)",
    )
    webhook_url: HttpUrl = Field(None, description="POST the alert as JSON to this URL")
    timeout_s: float = Field(10.0, gt=0, le=600, description="the command's / one POST's time limit, s")
    retries: int = Field(2, ge=0, le=10, description="webhook: attempts after a failed one (backoff 0.5 s, doubled)")
    disconnect_s: float = Field(
        30.0, gt=0, le=86400, description="alert when the feed has been disconnected this long, s"
    )
    resync_failures: int = Field(
        5, ge=1, le=10**6, description="alert when this many book snapshots in a row fail (paper: the feed's resync)"
    )
    min_interval_s: float = Field(
        60.0, ge=0, le=86400, description="at most one alert of a kind this often, s (the others counted and logged)"
    )
