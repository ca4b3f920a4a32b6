"""avmm.one_quote: one quote from fixed inputs, in model units, with its inputs checked."""

import math

import pytest

from avmm.core.config import StrategyConfig
from avmm.core.quote import one_quote
from avmm.errors import UserError


def _cfg(**model) -> StrategyConfig:
    m = {"kind": "as", "gamma": 0.1, "sigma": 2.0, "k": 1.5, "tau_s": 1.0, "horizon_s": 1.0, "horizon_cycle": False}
    return StrategyConfig.model_validate({"model": {**m, **model}})


def test_inventory_is_in_model_units_whatever_the_lot():
    # the paper's example: r = s - q * gamma * sigma^2 * tau = 100 - 2 * 0.1 * 4 * 1
    for q_unit in (None, 1.0, 0.001):
        cfg = _cfg() if q_unit is None else _cfg(q_unit=q_unit)
        out = one_quote(cfg, 100.0, 2.0, round_prices=False)
        assert out["reservation_price"] == pytest.approx(99.2)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"mid": math.nan}, "mid"),
        ({"mid": -5.0}, "mid"),
        ({"q": math.inf}, "q"),
        ({"best_bid": 99.0}, "go together"),
        ({"best_bid": 101.0, "best_ask": 100.0}, "0 < bid < ask"),
    ],
)
def test_bad_inputs_are_one_line_user_errors(kwargs, needle):
    args = {"mid": 100.0, "q": 0.0, **kwargs}
    with pytest.raises(UserError, match=needle):
        one_quote(_cfg(), **args)


def test_estimated_parameters_cannot_be_quoted_without_data():
    with pytest.raises(UserError, match="model.gamma is 'auto'"):
        one_quote(StrategyConfig(), 100.0)
    with pytest.raises(UserError, match="model.sigma is 'auto'"):
        one_quote(_cfg(sigma="auto"), 100.0)
    with pytest.raises(UserError, match="model.k is 'auto'"):
        one_quote(_cfg(k="auto"), 100.0)
    with pytest.raises(UserError, match="model.k is 'spread'"):
        one_quote(_cfg(k="spread"), 100.0)
