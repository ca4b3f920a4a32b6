"""``calibrate(paths, ...)``: read the stores once and estimate everything from the one pass.

The pieces: ``stores`` (which rows), ``scan`` (the pass: per-block sums and histograms),
``volatility`` (sigma), ``intensity`` (A, k, fill rates), ``book`` (spread, touch and trade sizes),
``bootstrap`` (confidence intervals over time blocks). The result, ``Calibration``, carries every
estimate and turns into the ``--json`` document (``to_json``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avmm.calibrate import book, bootstrap, intensity, volatility
from avmm.calibrate.scan import SKIPS, Scan
from avmm.calibrate.stores import fmt_ns, plan
from avmm.errors import UserError

SCHEMA = "avmm.calibrate/1"
GRID_S = 1.0  # the mid is sampled every second for sigma
STALE_S = 60.0  # a quote older than this is not live: no sigma sample, no trade depth
SLICES = 1000  # the pass keeps its sums per time slice: about this many ...
MIN_SLICE_S = 1.0  # ... each at least this long
BLOCKS = 200  # the bootstrap's blocks: about this many runs of consecutive live slices ...
MIN_BLOCK_S = 10.0  # ... each with at least this much live time
MIN_INCREMENTS = 30  # mid increments needed for sigma
SIGMA_WINDOWS = 20
FIT_R2_NOTE = 0.9  # a fit worse than this gets a note


@dataclass
class Estimate:
    """A value and its bootstrap confidence interval (None without resamples)."""

    value: float
    ci: list[float] | None


@dataclass
class Calibration:
    """Every estimate of one calibration (units: price, seconds, base units)."""

    stores: list[Path]
    symbol: str | None
    tick: float
    lot: float | None
    start_ns: int
    end_ns: int
    window: tuple[int | None, int | None]
    rows: int
    observed_s: float
    grid_s: float
    block_s: float
    blocks: int
    resamples: int
    seed: int
    sigma: Estimate
    sigma_increments: int
    sigma_windows: list[dict[str, Any]]
    fits: dict[str, intensity.SideFit]  # bid, ask, pooled
    est: dict[str, Estimate]  # A, k, A_bid, k_bid, A_ask, k_ask
    bins: intensity.Bins
    fill_rates: list[dict[str, float]]
    spread_ticks: dict[str, Any] | None
    touch_size: dict[str, Any] | None
    trade_size: dict[str, Any] | None
    skipped: dict[str, int]
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document: ``sigma``, ``A``, ``k`` (and ``_bid`` / ``_ask``) numeric at the
        top level, each beside its ``<key>_ci`` ``[lo, hi]`` (null without resamples)."""
        out: dict[str, Any] = {"schema": SCHEMA, "sigma": self.sigma.value, "sigma_ci": self.sigma.ci}
        for key in ("A", "k", "A_bid", "k_bid", "A_ask", "k_ask"):
            out[key] = self.est[key].value
            out[f"{key}_ci"] = self.est[key].ci
        out["units"] = {
            "sigma": "price/sqrt(s)",
            "A": "1/s, per side",
            "k": "1/price",
            "tick": "price",
            "lot": "base units",
            "sizes": "base units",
        }
        out["tick"] = self.tick
        out["lot"] = self.lot
        out["sigma_windows"] = self.sigma_windows
        out["sigma_increments"] = self.sigma_increments
        out["intensity"] = {
            "model": "A exp(-k delta); a trade's reach is in (depth - tick, depth] beyond the touch, (0, depth] at it",
            "method": "poisson-mle",
            "bins": "trades by the lower end of their reach (0 at the touch), half-tick edges",
            "bins_half_ticks": [int(x) for x in self.bins.edges_h],
            **{name: f.to_json(self.bins) for name, f in self.fits.items()},
        }
        out["fill_rates"] = self.fill_rates
        out["spread_ticks"] = self.spread_ticks
        out["touch_size"] = self.touch_size
        out["trade_size"] = self.trade_size
        out["skipped"] = self.skipped
        out["bootstrap"] = {
            "resamples": self.resamples,
            "seed": self.seed,
            "level": bootstrap.LEVEL,
            "blocks": self.blocks,
            "block_s": self.block_s,
        }
        out["data"] = {
            "stores": [str(p) for p in self.stores],
            "symbol": self.symbol,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "start": fmt_ns(self.start_ns),
            "end": fmt_ns(self.end_ns),
            "window": {"start_ns": self.window[0], "end_ns": self.window[1]},
            "rows": self.rows,
            "observed_s": self.observed_s,
            "grid_s": self.grid_s,
            "stale_s": STALE_S,
        }
        out["notes"] = self.notes
        return out


def _slices(start_ns: int, end_ns: int, grid_ns: int) -> tuple[int, int, int]:
    """(t0, slice_ns, n_slices): about ``SLICES`` slices of whole grid steps, each at least
    ``MIN_SLICE_S``."""
    t0 = start_ns // grid_ns * grid_ns
    span = max(end_ns - t0, 1)
    steps = max(math.ceil(MIN_SLICE_S * 1e9 / grid_ns), math.ceil(span / SLICES / grid_ns))
    slice_ns = steps * grid_ns
    return t0, slice_ns, span // slice_ns + 1


@dataclass
class Blocks:
    """The bootstrap's blocks: runs of consecutive live slices with about the same live time
    (``BLOCKS`` of them, each at least ``MIN_BLOCK_S`` live): a session with long dead stretches
    (quotes for minutes, trades for hours) still gets its blocks where the data is."""

    live: np.ndarray  # indices of the live slices
    starts: np.ndarray  # where each block starts in ``live``
    block_s: float  # the live time a block aims at

    @classmethod
    def of(cls, observed: np.ndarray) -> Blocks:
        live = np.flatnonzero(observed > 0)
        target = max(MIN_BLOCK_S, float(observed.sum()) / BLOCKS)
        before = np.concatenate([[0.0], np.cumsum(observed[live])[:-1]])
        gid = np.floor(before / target + 1e-9).astype(np.int64)
        return cls(live, np.flatnonzero(np.diff(gid, prepend=-1)), target)

    def sums(self, per_slice: np.ndarray) -> np.ndarray:
        """Per-slice sums (slices on the first axis) summed per block."""
        return np.asarray(np.add.reduceat(per_slice[self.live], self.starts, axis=0))


def calibrate(
    paths: list[Path] | list[str] | list[Path | str],
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = bootstrap.DEFAULT_SEED,
    chunk_events: int = 1 << 20,
) -> Calibration:
    """Calibrate the model to the stores' data in the window ``[start_ns, end_ns)``.

    Parameters
    ----------
    paths : list of paths
        Event stores (``avmm data convert``), read in time order; they must not overlap.
    start_ns, end_ns : int, optional
        The window on ``local_ts``.
    resamples, seed : int
        The block bootstrap: resamples (0: no confidence intervals) and the generator's seed.
    chunk_events : int
        Rows per chunk read (memory).

    Returns
    -------
    Calibration

    Raises
    ------
    UserError
        A missing or damaged store, overlapping stores, a window without data, no valid quotes,
        too few mid increments or too few trades to fit (one line saying how many were found and
        how many are needed).
    """
    t_start = time.perf_counter()
    if resamples < 0:
        raise UserError(f"--bootstrap {resamples}: must be >= 0 (0: no confidence intervals)")
    st = plan([Path(p) for p in paths], start_ns, end_ns)
    grid_ns = round(GRID_S * 1e9)
    t0, slice_ns, n_slices = _slices(st.start_ns, st.end_ns, grid_ns)
    sc = Scan(t0, slice_ns, n_slices, grid_ns, round(STALE_S * 1e9), st.tick)
    for lt, kind, px, qty, px2, qty2, side in st.chunks(chunk_events):
        sc.add(lt, kind, px, qty, px2, qty2, side)
    where = _where(st.window)
    if sc.rows == 0:
        raise UserError(f"no rows {where}: nothing to calibrate")
    observed = sc.observed_s()
    T = float(observed.sum())
    m = int(sc.n_incr.sum())
    if T == 0:
        raise UserError(f"no valid quotes {where} (found {sc.rows:,} rows): sigma and the depths need QUOTE rows")
    if m < MIN_INCREMENTS:
        raise UserError(
            f"too few mid samples for sigma {where}: found {m:,} one-second increments, need at least {MIN_INCREMENTS}"
        )

    # intensity: per-block bin counts, per side
    reach_total = sc.reach_h.sum(axis=0)  # [side, half ticks]
    for s, name in enumerate(("bid side (sells)", "ask side (buys)")):
        n_side = int(reach_total[s].sum())
        intensity.check_enough(n_side, n_side - int(reach_total[s, 0]), name)
    bins = intensity.choose_bins(reach_total, st.tick)
    blk = bins.counts(sc.reach_h)  # [slice, side, bin]: the table and its quality
    tot = blk.sum(axis=0)
    beyond, touch = _beyond_and_touch(sc)  # [slice, side, half ticks]: the fit
    bt, tt = beyond.sum(axis=0), touch.sum(axis=0)
    ks = {
        "bid": float(intensity.fit_k(bt[0], tt[0], st.tick)[0]),
        "ask": float(intensity.fit_k(bt[1], tt[1], st.tick)[0]),
        "pooled": float(intensity.fit_k(bt.sum(axis=0), tt.sum(axis=0), st.tick)[0]),
    }
    fits = {
        "bid": intensity.fit_side(tot[0], ks["bid"], bins, T),
        "ask": intensity.fit_side(tot[1], ks["ask"], bins, T),
        "pooled": intensity.fit_side(tot.sum(axis=0) / 2.0, ks["pooled"], bins, T),
    }

    sigma = float(volatility.sigma_of(sc.sum_sq.sum(), m, sc.grid_s))
    blocks = Blocks.of(observed)
    cis = _bootstrap(sc, blocks, beyond, touch, st.tick, resamples, seed)
    est = {
        "A": Estimate(fits["pooled"].A, cis["A"]),
        "k": Estimate(fits["pooled"].k, cis["k"]),
        "A_bid": Estimate(fits["bid"].A, cis["A_bid"]),
        "k_bid": Estimate(fits["bid"].k, cis["k_bid"]),
        "A_ask": Estimate(fits["ask"].A, cis["A_ask"]),
        "k_ask": Estimate(fits["ask"].k, cis["k_ask"]),
    }
    skipped = sc.skipped()
    notes = list(st.notes)
    notes += [f"{n:,} {SKIPS[key]}" for key, n in skipped.items() if n]
    for who in ("bid", "ask"):
        r2 = fits[who].r2
        if r2 is not None and r2 < FIT_R2_NOTE:
            notes.append(
                f"the trades' reach on the {who} side is not exponential (R^2 of the log rates {r2:.3g}): "
                "k is the average decay only; see the table of trades by reach"
            )
    return Calibration(
        stores=st.paths,
        symbol=st.symbol,
        tick=st.tick,
        lot=st.lot,
        start_ns=st.start_ns,
        end_ns=st.end_ns,
        window=st.window,
        rows=sc.rows,
        observed_s=T,
        grid_s=sc.grid_s,
        block_s=blocks.block_s,
        blocks=len(blocks.starts),
        resamples=resamples,
        seed=seed,
        sigma=Estimate(sigma, cis["sigma"]),
        sigma_increments=m,
        sigma_windows=volatility.windows(sc.sum_sq, sc.n_incr, blocks.live, t0, slice_ns, sc.grid_s, SIGMA_WINDOWS),
        fits=fits,
        est=est,
        bins=bins,
        fill_rates=intensity.fill_rates(sc.depth_h, T, st.tick),
        spread_ticks=book.spread_ticks(sc.spread_h),
        touch_size=book.sizes(sc.touch_h, st.lot),
        trade_size=book.sizes(sc.trade_h, st.lot),
        skipped=skipped,
        notes=notes,
        wall_s=time.perf_counter() - t_start,
    )


def _where(window: tuple[int | None, int | None]) -> str:
    lo, hi = window
    if lo is None and hi is None:
        return "in the stores"
    return f"in the window [{'-inf' if lo is None else fmt_ns(lo)}, {'+inf' if hi is None else fmt_ns(hi)})"


def _beyond_and_touch(sc: Scan) -> tuple[np.ndarray, np.ndarray]:
    """Per slice and side, the trades beyond the touch by reach lower bound and the trades at the
    touch by depth (half ticks): the reach histogram less the touch trades it holds at 0."""
    beyond = sc.reach_h.copy()
    beyond[:, :, 0] -= sc.touch_d_h.sum(axis=2)
    return beyond, sc.touch_d_h


def _bootstrap(
    sc: Scan, blocks: Blocks, beyond: np.ndarray, touch: np.ndarray, tick: float, resamples: int, seed: int
) -> dict[str, list[float] | None]:
    """The confidence intervals of sigma, A, k (pooled and per side)."""
    keys = ("sigma", "A", "k", "A_bid", "k_bid", "A_ask", "k_ask")
    if resamples == 0:
        return dict.fromkeys(keys)
    observed = blocks.sums(sc.observed_s())
    sum_sq, n_incr = blocks.sums(sc.sum_sq), blocks.sums(sc.n_incr)
    bb, tb = blocks.sums(beyond).astype(np.float64), blocks.sums(touch).astype(np.float64)  # [block, side, h]
    w = bootstrap.weights(observed, resamples, seed)
    out: dict[str, list[float] | None] = {}
    out["sigma"] = bootstrap.interval(volatility.sigma_of(w @ sum_sq, w @ n_incr, sc.grid_s))
    T = w @ observed
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, b_r, t_r in (
            ("", np.tensordot(w, bb.sum(axis=1), axes=1) / 2.0, np.tensordot(w, tb.sum(axis=1), axes=1) / 2.0),
            ("_bid", w @ bb[:, 0, :], w @ tb[:, 0, :]),
            ("_ask", w @ bb[:, 1, :], w @ tb[:, 1, :]),
        ):
            n = b_r.sum(axis=1) + t_r.sum(axis=1)
            out[f"A{name}"] = bootstrap.interval(n / T)
            k = np.full(resamples, np.nan)
            ok = b_r.sum(axis=1) > 0
            if ok.any():
                k[ok] = intensity.fit_k(b_r[ok], t_r[ok], tick)
            out[f"k{name}"] = bootstrap.interval(k)
    return out
