"""The market a backtest runs on, and the venue's accounting that goes with it (Python side).

* ``resolve_market(backtest, meta)`` -- ``backtest.market``, or with ``"auto"`` the data's: the
  store's ``market`` (recorded by ``avmm data convert``), else its source and file names (Binance
  USD-M / futures, tardis ``*-futures`` / ``*-swap`` / ``*-delivery``, ``usdm`` -> perpetual); an
  inverse contract is a perpetual; anything else (spot captures and archives, LOBSTER, the built-in
  session) is spot;
* ``setup_accounting(...)`` -- the loop's records for it: the spot balances at the start (``"auto"``:
  base = ``AUTO_BALANCE_MULTIPLE`` x ``risk.max_position``, quote = the same x the first mid: far
  more than quoting at the position limit needs -- also without the risk check, whose limit the
  position can pass by the orders in flight --, so a default run is the run of an unconstrained
  account, bit for bit) and the funding series (``backtest.funding_file``) or constant rate;
* ``accounting_summary(...)`` -- the summary's figures: the balances, the funding, and from the
  equity samples the initial margin used and the distance to liquidation (Binance's USD-M formula,
  one-way mode, cross margin: wallet = capital + PnL, maintenance = |position| x mark x
  ``maintenance_margin_rate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.core.config import StrategyConfig, max_position_of
from avmm.errors import UserError

SPOT = "spot"
PERPETUAL = "perpetual"
AUTO_BALANCE_MULTIPLE = 100.0  # "auto" balances: this x the position limit (x the first mid)
_DERIVATIVE_WORDS = ("futures", "usdm", "usd-m", "perp", "swap", "delivery", "bitmex", "deribit")
NS_PER_H = 3_600_000_000_000


def resolve_market(b: BacktestConfig, meta: dict[str, Any]) -> str:
    """``spot`` or ``perpetual`` (see the module docstring)."""
    if b.market != "auto":
        return b.market
    if b.contract == "inverse":
        return PERPETUAL
    m = meta.get("market")
    if m in (SPOT, PERPETUAL):
        return str(m)
    names = [str(meta.get("source") or "")] + [str(x) for x in meta.get("sources") or []]
    text = " ".join(names).lower()
    return PERPETUAL if any(w in text for w in _DERIVATIVE_WORDS) else SPOT


@dataclass
class Accounting:
    """What the run's accounting needs beside the loop's records."""

    market: str
    fund_ts: np.ndarray  # int64 ns (empty without a funding file)
    fund_rate: np.ndarray  # float64 per interval
    funding_symbol: str | None = None
    funding_duplicates: int = 0


def _funding(b: BacktestConfig, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str | None, int]:
    files = b.funding_files()
    if not files:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), None, 0
    from avmm.data.readers.binance_funding import read_funding

    fs = read_funding(files)
    sym = meta.get("symbol")
    if fs.symbol and sym and str(sym).upper() != fs.symbol:
        raise UserError(
            f"backtest.funding_file {files[0]}: funding rates of {fs.symbol}, but the data is {str(sym).upper()}"
        )
    return fs.ts_ns, fs.rate, fs.symbol, fs.duplicates


def _checked_market(b: BacktestConfig, meta: dict[str, Any]) -> str:
    market = resolve_market(b, meta)
    why = "" if b.market != "auto" else f" (backtest.market = 'auto': the data is {market}; set it to override)"
    if market == SPOT and (b.funding_files() or b.funding_rate != 0.0):
        raise UserError(f"backtest.funding_rate / funding_file: funding applies to perpetual markets{why}")
    if market == PERPETUAL and (b.initial_base != "auto" or b.initial_quote != "auto"):
        raise UserError(f"backtest.initial_base / initial_quote: spot balances do not apply to a perpetual{why}")
    if market == SPOT and b.contract == "inverse":
        raise UserError("backtest.contract = 'inverse' is a derivative: set backtest.market = 'perpetual'")
    return market


def check_accounting(b: BacktestConfig, meta: dict[str, Any]) -> str:
    """The market, after the checks ``setup_accounting`` makes (the funding file read): for a
    command line to fail before it compiles anything."""
    market = _checked_market(b, meta)
    if market == PERPETUAL:
        _funding(b, meta)
    return market


def setup_accounting(
    cfg: StrategyConfig, b: BacktestConfig, meta: dict[str, Any], bp: np.ndarray, bs: np.ndarray
) -> Accounting:
    """Fill the accounting fields of the loop's params ``bp`` (those the data decides: the market,
    the auto quote balance, the funding source) and state ``bs`` (the balances); read the funding
    file.

    Raises
    ------
    UserError
        Funding on a spot market, balances on a perpetual one (the market resolved from the data),
        a bad funding file, or one for another symbol.
    """
    market = _checked_market(b, meta)
    mp = max_position_of(cfg) * b.contract_size
    spot = market == SPOT
    bp["spot"] = int(spot)
    bp["quote_auto"] = AUTO_BALANCE_MULTIPLE * mp if b.initial_quote == "auto" else 0.0
    bs["base0"] = AUTO_BALANCE_MULTIPLE * mp if b.initial_base == "auto" else float(b.initial_base)
    bs["quote0"] = math.nan if b.initial_quote == "auto" else float(b.initial_quote)
    fts, frate, fsym, dups = _funding(b, meta) if not spot else (np.zeros(0, np.int64), np.zeros(0), None, 0)
    if fts.size:
        bp["fund_on"] = 2
    elif not spot and b.funding_rate != 0.0:
        bp["fund_on"] = 1
    return Accounting(
        market,
        np.ascontiguousarray(fts, dtype=np.int64),
        np.ascontiguousarray(frate, dtype=np.float64),
        fsym,
        dups,
    )


def _fmt_ns(ns: int) -> str:
    return str(np.datetime64(ns, "ns").astype("datetime64[s]")) + "Z"


def _opt(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def margin_figures(samples: np.ndarray, capital: float, b: BacktestConfig) -> tuple[float | None, float | None]:
    """(the largest initial margin used, the smallest distance to the liquidation price in % of
    the mark) over the equity samples; None when there is no sample with a position (the distance:
    none with a liquidation price)."""
    pos, mid, pnl = samples["pos"], samples["mid"], samples["pnl"]
    ok = (pos != 0.0) & (mid > 0.0) & np.isfinite(pnl)
    if not ok.any():
        return None, None
    pos, mid, pnl = pos[ok], mid[ok], pnl[ok]
    cs, mmr = b.contract_size, b.maintenance_margin_rate
    with np.errstate(divide="ignore", invalid="ignore"):
        if b.contract == "inverse":  # base currency: wallet(P) = capital + cash - pos cs / P
            margin = np.abs(pos) * cs / mid / b.leverage
            k = capital + pnl + pos * cs / mid
            liq = cs * (pos + np.abs(pos) * mmr) / k
        else:  # quote currency: wallet(P) = capital + cash + pos cs P
            margin = np.abs(pos) * mid * cs / b.leverage
            k = capital + pnl - pos * mid * cs
            liq = -k / (cs * (pos - np.abs(pos) * mmr))
        dist = np.where(np.isfinite(liq) & (liq > 0.0), np.abs(mid - liq) / mid * 100.0, np.nan)
    return _opt(float(margin.max())), (_opt(float(np.nanmin(dist))) if np.isfinite(dist).any() else None)


def accounting_summary(
    acc: Accounting,
    cfg: StrategyConfig,
    b: BacktestConfig,
    bs: np.record,
    samples: np.ndarray,
    capital: float,
) -> dict[str, Any]:
    """The summary's accounting figures (``None`` where they do not apply to the market)."""
    spot = acc.market == SPOT
    out: dict[str, Any] = {"market": acc.market, "rejects_balance": int(bs["n_rej_balance"])}
    base0 = quote0 = None
    if spot:
        base0 = float(bs["base0"])
        quote0 = float(bs["quote0"])
        fm = float(bs["first_mid"])
        if math.isnan(quote0) and math.isfinite(fm):  # "auto" and never needed during the run
            quote0 = AUTO_BALANCE_MULTIPLE * max_position_of(cfg) * b.contract_size * fm
    out["initial_base"] = base0
    out["initial_quote"] = _opt(quote0) if quote0 is not None else None
    out["final_base"] = base0 + float(bs["pos"]) * b.contract_size if base0 is not None else None
    q1 = quote0 + float(bs["cash"]) if quote0 is not None else None
    out["final_quote"] = _opt(q1) if q1 is not None else None
    margin = dist = None
    if not spot:
        margin, dist = margin_figures(samples, capital, b)
    out["funding"] = None if spot else float(bs["funding"])
    out["funding_payments"] = None if spot else int(bs["n_funding"])
    out["funding_no_mark"] = None if spot else int(bs["n_fund_no_mark"])
    out["leverage"] = None if spot else b.leverage
    out["max_initial_margin"] = margin
    out["min_liquidation_distance_pct"] = dist
    out["funding_note"] = _coverage_note(acc, b, bs) if not spot else None
    return out


def _coverage_note(acc: Accounting, b: BacktestConfig, bs: np.record) -> str | None:
    """A note when the funding file leaves part of the session without funding times."""
    ts = acc.fund_ts
    t0, t1 = int(bs["t_first"]), int(bs["t_last"])
    if not ts.size or t0 < 0:
        return None
    step = int(np.median(np.diff(ts))) if ts.size > 1 else round(b.funding_interval_h * NS_PER_H)
    if ts[0] - step <= t0 and ts[-1] + step >= t1:
        return None
    return (
        f"the funding file covers {_fmt_ns(int(ts[0]))} to {_fmt_ns(int(ts[-1]))}, the data {_fmt_ns(t0)} to "
        f"{_fmt_ns(t1)}: no funding is booked outside the file"
    )
