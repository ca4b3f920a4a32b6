"""The strategy core's memory: fixed-size NumPy records, allocated once.

The core (``strategy.py``) is a set of ``@njit`` functions over four arrays:

* ``p`` -- ``PARAMS_DTYPE``, length 1: the validated configuration (read-only on the hot path);
* ``s`` -- ``STATE_DTYPE``, length 1: market view, estimators, position, targets, counters;
* ``o`` -- ``ORDER_DTYPE``, length ``MAX_ORDERS``: the strategy's view of its own orders;
* ``a`` -- ``ACTION_DTYPE``, length ``MAX_ACTIONS``: the order actions of the last call.

Record fields compile to fixed offsets (no lookups by name), every buffer is sized by the
constants below, so handling an event allocates nothing. Python reads the same arrays by field
name when it needs to (outside the hot path).
"""

from __future__ import annotations

import numpy as np

from avmm.jit import Block, block_layout

MAX_LEVELS = 16  # ladder levels per side
MAX_ORDERS = 64  # order table slots
OID_MAP = 256  # order id -> slot hints (oid modulo OID_MAP; checked, a scan when stale)
MAX_ACTIONS = 4 * MAX_LEVELS + 8
MAX_INT_BUCKETS = 120  # intensity window sub-buckets
MAX_INT_BINS = 32  # intensity depth bins per side
MAX_VWAP_BUCKETS = 120
LOG_CAP = 256  # sampled-log ring
LOG_WIDTH = 8  # ts, event kind, mid, q, bid, ask, n_actions, sigma
N_MARKS = 8  # stage timing marks
SIG_VIEW = 40  # the signal's view of the market (core/signal_api.py names the slots)
SIG_PARAMS = 16  # the signal's parameters from the config
SIG_STATE = 256  # the signal's own state
BSIG_PARAMS = 16  # the built-in signals' parameters (core/signal_builtin.py)
BSIG_STATE = 96  # their state
DEPTH_CAP = 256  # depth levels kept per side for the signals (the worst dropped when full: core/depth.py)
RATE_CAP = 1024  # risk.max_orders_per_10s at most (the send times of the last ones are kept in a ring)
RATE_WINDOW_NS = 10_000_000_000  # the orders budget's rolling window
DAY_NS = 86_400_000_000_000  # a UTC day (the day's loss limit restarts at 00:00 UTC)

# sides
BID = 1
ASK = -1

# order status
OS_FREE = 0
OS_PENDING_NEW = 1
OS_LIVE = 2
OS_PENDING_CANCEL = 3
OS_PENDING_AMEND = 4

# action kinds
ACT_PLACE = 1
ACT_CANCEL = 2
ACT_AMEND = 3
ACTION_NAMES = {ACT_PLACE: "place", ACT_CANCEL: "cancel", ACT_AMEND: "amend"}

# action flags
AF_TAKE = 1  # a place that is neither post-only nor resting: a marketable limit, immediate-or-cancel (flatten)

# what a risk limit does when it binds (risk.on_limit)
LIMIT_REDUCE = 0  # quote only what reduces |position|
LIMIT_HALT = 1  # cancel everything, quote nothing until resume
LIMIT_FLATTEN = 2  # halt, and taker orders until the position is 0
ON_LIMIT = {"reduce": LIMIT_REDUCE, "halt": LIMIT_HALT, "flatten": LIMIT_FLATTEN}

# why the core is reduce-only or halted (s.limit_why bits)
WHY_LOSS = 1  # risk.max_loss: the session's mark-to-market loss
WHY_LOSS_DAY = 2  # risk.max_loss_day: the UTC day's
WHY_EXTERNAL = 4  # halt / flatten from outside (the kill switch)
WHY_NAMES = {WHY_LOSS: "max_loss", WHY_LOSS_DAY: "max_loss_day", WHY_EXTERNAL: "kill"}

# fair price
FAIR_MID = 0
FAIR_MICRO = 1

# touch rule (how close to the touch the ladder may go)
TOUCH_IMPROVE = 0  # a bid up to the best ask - tick (post-only)
TOUCH_JOIN = 1  # never better than our side's best
TOUCH_BEHIND = 2  # behind_ticks behind our side's best
TOUCH_MODES = {"improve": TOUCH_IMPROVE, "join": TOUCH_JOIN, "behind": TOUCH_BEHIND}

# log record event kinds
EV_QUOTE = 1
EV_TRADE = 2
EV_FILL = 3
EV_TIMER = 4

# stage marks (index into s.tmark)
MK_START = 0
MK_MARKET = 1
MK_ESTIM = 2
MK_QUOTE = 3
MK_DIFF = 4
MK_FILL = 5

PARAMS_DTYPE = np.dtype(
    [
        # model
        ("model", "i8"),
        ("gamma", "f8"),  # fixed gamma; NaN = implied by the skew target (gamma_auto)
        ("gamma_auto", "i8"),  # 1: gamma re-solved every g_update_ns from skew_at_limit
        ("k_spread", "i8"),  # 1: k implied by the market's spread (the liquidity term = spread_ratio half-spreads)
        ("spread_ratio", "f8"),
        ("skew_at_limit", "f8"),  # half-spreads the reservation price moves at |q| = q_limit
        ("q_limit", "f8"),  # max_position / q_unit
        ("g_update_ns", "i8"),
        ("sigma", "f8"),  # fixed sigma (price/sqrt s); NaN = use the volatility estimator
        ("A", "f8"),  # 1/s; NaN = use the intensity estimator
        ("k", "f8"),  # 1/price; NaN = use the intensity estimator
        ("tau_s", "f8"),  # rolling horizon (as-rolling)
        ("horizon_s", "f8"),  # finite horizon T (as)
        ("horizon_cycle", "i8"),  # 1: the finite horizon restarts every horizon_s
        ("delta", "f8"),  # GLFT order size in q units
        ("xi", "f8"),  # GLFT xi
        ("q_unit", "f8"),  # position (base units) that counts as q = 1 in the formulas
        # quoting
        ("tick", "f8"),
        ("inv_tick", "f8"),  # 1/tick when that is an integer, else 0
        ("lot", "f8"),
        ("inv_lot", "f8"),
        ("levels", "i8"),
        ("spacing_ticks", "f8"),
        ("spacing_frac", "f8"),
        ("sizes", "f8", (MAX_LEVELS,)),
        ("size_eta", "f8"),
        ("min_spread", "f8"),
        ("max_spread", "f8"),
        ("post_only", "i8"),
        ("fair", "i8"),
        ("amend", "i8"),
        ("refresh_ns", "i8"),
        ("mid_tol", "f8"),  # fraction of the mid
        ("price_tol_ticks", "f8"),
        ("size_tol", "f8"),  # fraction of the target size
        ("requote_always", "i8"),
        ("fill_requote", "i8"),  # 1: requote at once after an own fill; 0: at the next refresh
        ("reject_requote", "i8"),  # 1: requote on the next event after a reject; 0: at the next refresh
        ("refresh_grid", "i8"),  # 1: refresh on the grid of refresh_ns multiples; 0: refresh_ns after the last
        ("touch", "i8"),  # TOUCH_*
        ("behind_ticks", "f8"),
        # risk
        ("max_position", "f8"),  # base units
        ("max_order_notional", "f8"),  # price x size of one order, quote currency; 0: off
        ("max_orders_10s", "i8"),  # places + amends sent in any rolling 10 s; 0: off
        ("max_loss", "f8"),  # the session's mark-to-market loss, quote currency; 0: off
        ("max_loss_day", "f8"),  # the UTC day's (day_pnl0 + the session's since the day began); 0: off
        ("day_pnl0", "f8"),  # the day's PnL before this session, quote currency (the runtime's, from its journal)
        ("day_pnl_day", "i8"),  # the UTC day (days since the epoch) day_pnl0 is of; -1: the session's first
        ("on_limit", "i8"),  # LIMIT_*: what a loss limit does
        ("loss_on", "i8"),  # 1: max_loss or max_loss_day set (the per-event check runs)
        # estimators
        ("vol_halflife_s", "f8"),
        ("vol_min_obs", "i8"),
        ("int_window_ns", "i8"),
        ("int_buckets", "i8"),
        ("int_bucket_ns", "i8"),  # int_window_ns // int_buckets
        ("int_bin", "f8"),  # depth bin width, price
        ("int_nbins", "i8"),
        ("int_fit_ns", "i8"),
        ("int_per_side", "i8"),
        ("int_min_trades", "i8"),
        ("int_on", "i8"),  # 1: the intensity estimator runs (k is 'auto'); 0: nothing reads it
        ("vwap_window_ns", "i8"),
        ("vwap_buckets", "i8"),
        ("vwap_bucket_ns", "i8"),
        ("sigma_interval_ns", "i8"),  # 0: sigma from every quote event; else the mid sampled on this grid
        # signals
        ("sig_on", "i8"),  # 1: a signal is configured (the runtime compiled it into its loop)
        ("sig_user", "i8"),  # 1: the user's signal file
        ("sig_params", "f8", (SIG_PARAMS,)),
        ("bsig_on", "i8"),  # 1: a built-in signal with a weight other than 0
        ("bsig_params", "f8", (BSIG_PARAMS,)),  # core/signal_builtin.py lays them out
        ("sig_depth", "i8"),  # depth levels below the touch the signals read (the runtime keeps a book)
        # logging
        ("log_rate", "f8"),
        ("seed", "i8"),
    ],
    align=True,
)

STATE_DTYPE = np.dtype(
    [
        # market view
        ("ts_ns", "i8"),
        ("bid", "f8"),
        ("bid_qty", "f8"),
        ("ask", "f8"),
        ("ask_qty", "f8"),
        ("mid", "f8"),
        ("micro", "f8"),
        ("has_book", "i8"),
        ("t0_ns", "i8"),  # first event time (finite-horizon origin)
        # the market's time-averaged spread (k = 'spread'): spread x time since the last solve
        ("spr_sum", "f8"),
        ("spr_dt", "f8"),
        ("spr_prev", "f8"),
        ("spr_prev_ns", "i8"),
        # implied gamma and liquidity term, re-solved every g_update_ns
        ("g_gamma", "f8"),
        ("g_liq", "f8"),  # (1/gamma) ln(1 + gamma/k), price
        ("g_k", "f8"),  # the k that term implies, 1/price
        ("g_last_ns", "i8"),
        ("g_nsolve", "i8"),
        # volatility estimator
        ("vol_prev_mid", "f8"),
        ("vol_prev_ns", "i8"),
        ("vol_num", "f8"),
        ("vol_den", "f8"),
        ("vol_var", "f8"),  # sigma^2 per second
        ("vol_nobs", "i8"),
        ("vol_next_ns", "i8"),  # sigma_interval_ns > 0: the next grid time to sample the mid
        # intensity estimator
        ("int_bucket", "i8"),  # absolute index of the current bucket, -1 before the first trade
        ("int_start_ns", "i8"),
        ("int_ring", "f8", (MAX_INT_BUCKETS, 2 * MAX_INT_BINS)),
        ("int_tot", "f8", (2 * MAX_INT_BINS,)),
        ("int_last_fit_ns", "i8"),
        ("int_A", "f8", (3,)),  # [hit bids, lift asks, pooled]
        ("int_k", "f8", (3,)),
        ("int_ok", "i8", (3,)),
        ("int_ntrades", "i8"),
        ("int_nfits", "i8"),
        # vwap
        ("vwap_bucket", "i8"),
        ("vwap_ring", "f8", (MAX_VWAP_BUCKETS, 2)),
        ("vwap_tot", "f8", (2,)),
        ("vwap", "f8"),
        # position (strategy's view, base units and quote currency)
        ("pos", "f8"),
        ("cash", "f8"),
        ("fees", "f8"),
        ("n_fills", "i8"),
        ("fill_volume", "f8"),
        # quoting
        ("last_quote_ns", "i8"),
        ("last_quote_mid", "f8"),
        ("last_quote_pos", "f8"),
        ("next_refresh_ns", "i8"),  # refresh_grid: the next grid time
        ("dirty", "i8"),
        ("next_oid", "i8"),
        ("o_hwm", "i8"),  # order slots in use are all below this index
        ("oid_slot", "i8", (OID_MAP,)),  # slot of order id oid at oid_slot[oid % OID_MAP] (a hint)
        ("quotable", "i8"),
        ("res_px", "f8"),
        ("fair_px", "f8"),
        ("bid_depth", "f8"),
        ("ask_depth", "f8"),
        ("sigma_used", "f8"),
        ("A_used", "f8"),
        ("k_used", "f8"),
        ("lad_px", "f8", (2, MAX_LEVELS)),  # [0] bids best first, [1] asks best first
        ("lad_qty", "f8", (2, MAX_LEVELS)),
        ("lad_n", "i8", (2,)),
        ("matched", "i8", (MAX_LEVELS,)),  # diff scratch
        # signal: its view, its own state, what it returned last (shift, spread and skew multipliers)
        ("sig_view", "f8", (SIG_VIEW,)),
        ("sig_st", "f8", (SIG_STATE,)),
        ("bsig_st", "f8", (BSIG_STATE,)),
        # the book beyond the touch, for the signals (params.sig_depth > 0; core/depth.py)
        ("dkey", "f8", (2, DEPTH_CAP)),
        ("dqty", "f8", (2, DEPTH_CAP)),
        ("dn", "i8", (2,)),
        ("n_depth_dropped", "i8"),  # depth rows not kept (bad, or worse than a full row)
        ("sig_shift", "f8"),  # price added to the fair price
        ("sig_spread", "f8"),  # the half spread times this
        ("sig_skew", "f8"),  # the inventory skew times this
        ("n_sig_calls", "i8"),
        ("n_sig_bad", "i8"),  # calls whose outputs were not finite (or a multiplier < 0): ignored
        # counters
        ("n_events", "i8"),
        ("n_requotes", "i8"),
        ("n_actions", "i8"),
        ("n_bad_quotes", "i8"),  # NaN/inf/non-positive or crossed books ignored
        ("n_bad_trades", "i8"),
        ("n_unknown_fills", "i8"),
        ("n_table_full", "i8"),
        ("n_rejects", "i8"),
        # risk (core/risk.py): the state the limits put the core in, and what they did
        ("halted", "i8"),  # 1: every order cancelled, nothing quoted until resume
        ("reduce_only", "i8"),  # 1: only orders that reduce |position| are quoted
        ("limit_why", "i8"),  # WHY_* bits: what made it so
        ("limit_ns", "i8"),  # when the last limit bound (or the halt / resume came)
        ("risk_seq", "i8"),  # +1 at every change of halted / reduce_only / limit_why (a runtime watches it)
        ("flatten", "i8"),  # 1: taker orders until |position| < one lot
        ("flat_oid", "i8"),  # the flatten order in flight (0: none)
        ("flat_rejects", "i8"),
        ("pnl", "f8"),  # the session's mark-to-market PnL at the last check (cash + position x mid)
        ("day_end_ns", "i8"),  # the end of the UTC day of the last check (0: before the first)
        ("day_base", "f8"),  # session PnL when the UTC day began (- day_pnl0 on the session's first day)
        ("rate_ts", "i8", (RATE_CAP,)),  # send times of the last places + amends (a ring, max_orders_10s long)
        ("rate_n", "i8"),  # places + amends sent (recorded in the ring)
        ("rate_lo", "i8"),  # the oldest of them still in the window (rate_n - rate_lo: in the window)
        ("n_limit_position", "i8"),  # ladder sizes the position room cut (max_position, reduce-only)
        ("n_limit_notional", "i8"),  # ladder sizes max_order_notional cut
        ("n_limit_rate", "i8"),  # requotes deferred, or orders held back, by the orders budget
        ("n_limit_loss", "i8"),  # max_loss breaches (each latches until resume)
        ("n_limit_loss_day", "i8"),  # max_loss_day breaches
        ("n_halts", "i8"),  # halts entered (limits and from outside)
        ("n_flatten_orders", "i8"),  # taker orders sent to flatten
        # timing and sampled logging
        ("timed", "i8"),
        ("tmark", "i8", (N_MARKS,)),
        ("clockbuf", "i8", (2,)),
        ("rng", "u8"),
        ("log_n", "i8"),
        ("log", "f8", (LOG_CAP, LOG_WIDTH)),
    ],
    align=True,
)

ORDER_DTYPE = np.dtype(
    [
        ("oid", "i8"),
        ("side", "i8"),
        ("status", "i8"),
        ("level", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("leaves", "f8"),
        ("prev_px", "f8"),  # before a pending amend
        ("prev_qty", "f8"),
        ("ts_ns", "i8"),
    ],
    align=True,
)

ACTION_DTYPE = np.dtype(
    [
        ("kind", "i8"),
        ("side", "i8"),
        ("oid", "i8"),
        ("level", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("flags", "i8"),  # AF_*: 0 a normal (post-only when quoting.post_only) order
    ],
    align=True,
)


# One contiguous block holds all four arrays (``CoreMemory``): compiled entry points then take a
# single integer address instead of four array arguments, whose unboxing costs ~100 ns each and an
# allocation. Offsets are compile-time constants.
CORE_PARTS = [(PARAMS_DTYPE, 1), (STATE_DTYPE, 1), (ORDER_DTYPE, MAX_ORDERS), (ACTION_DTYPE, MAX_ACTIONS)]
(OFF_P, OFF_S, OFF_O, OFF_A), CORE_BYTES = block_layout(CORE_PARTS)


def init_state(s: np.ndarray, seed: int = 0) -> np.ndarray:
    """Put a zeroed state record into its starting values."""
    s["int_bucket"] = -1
    s["vwap_bucket"] = -1
    s["vol_prev_ns"] = -1
    s["t0_ns"] = -1
    s["last_quote_ns"] = np.iinfo(np.int64).min // 2
    s["next_oid"] = 1
    s["rng"] = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) % (1 << 64)) | np.uint64(1)
    s["spr_prev_ns"] = -1
    s["sig_spread"] = 1.0
    s["sig_skew"] = 1.0
    for f in (
        "g_gamma",
        "g_liq",
        "g_k",
        "spr_prev",
        "vwap",
        "res_px",
        "fair_px",
        "bid_depth",
        "ask_depth",
        "sigma_used",
        "A_used",
        "k_used",
    ):
        s[f] = np.nan
    s["int_A"] = np.nan
    s["int_k"] = np.nan
    return s


def new_state(seed: int = 0) -> np.ndarray:
    return init_state(np.zeros(1, dtype=STATE_DTYPE), seed)


class CoreMemory:
    """The strategy core's memory in one 64-byte-aligned block, with NumPy views on each part."""

    __slots__ = ("buf", "address", "params", "state", "orders", "actions")

    def __init__(self, params: np.ndarray, seed: int = 0) -> None:
        block = Block(CORE_PARTS)
        self.buf, self.address = block.buf, block.address
        self.params, self.state, self.orders, self.actions = block.views
        self.params[:] = params
        init_state(self.state, seed)


def new_orders() -> np.ndarray:
    return np.zeros(MAX_ORDERS, dtype=ORDER_DTYPE)


def new_actions() -> np.ndarray:
    return np.zeros(MAX_ACTIONS, dtype=ACTION_DTYPE)
