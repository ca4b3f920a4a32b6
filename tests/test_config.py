"""The config file (`avmm.config`): TOML + pydantic, --set overrides, the strategy's parameters
(`to_params`); a bad value is a one-line `UserError` naming the key and the range."""

import numpy as np
import pytest

from avmm.config import Config, dump_toml, load_config
from avmm.core.config import to_params
from avmm.errors import UserError
from tests.builders import write_toml


def test_defaults_round_trip_through_toml(tmp_path):
    cfg = Config()
    again = load_config(write_toml(tmp_path, dump_toml(cfg)))
    assert again == cfg


def test_subsections_round_trip_through_toml_with_and_without_comments(tmp_path):
    cfg = load_config(None, ["signals.vamp.weight=0.5", "signals.vamp.levels=3", "signals.candles.bar_volume=2.5"])
    for comments in (False, True):
        text = dump_toml(cfg, comments=comments)
        assert "\n[signals.vamp]\nweight = 0.5" in text
        assert load_config(write_toml(tmp_path, text)) == cfg


def test_file_and_overrides(tmp_path):
    p = write_toml(
        tmp_path, "[model]\nkind = 'glft'\ngamma = 0.5\nA = 2.0\nk = 3.0\nsigma = 0.1\n[quoting]\nlevels = 3\n"
    )
    cfg = load_config(p, ["quoting.tick=0.5", "risk.max_position=4"])
    assert cfg.model.kind == "glft" and cfg.quoting.levels == 3 and cfg.quoting.tick == 0.5
    params = to_params(cfg)
    assert params["model"][0] == 2 and params["inv_tick"][0] == 2.0 and params["max_position"][0] == 4.0
    assert np.all(params["sizes"][0][:3] == cfg.quoting.lot)  # size 'auto': one lot


@pytest.mark.parametrize(
    "text, key, hint",
    [
        ("[model]\ngamma = -1\n", "model.gamma", "greater than 0"),
        ("[model]\nsigma = 'fast'\n", "model.sigma", "auto"),
        ("[quoting]\nlevels = 99\n", "quoting.levels", "less than or equal to 16"),
        ("[quoting]\ntick = nan\n", "quoting.tick", "finite"),
        ("[risk]\nmax_position = 0\n", "risk.max_position", "greater than 0"),
        ("[estimators]\nintensity_bins = 1\n", "estimators.intensity_bins", "greater than or equal to 2"),
        ("[quoting]\nlevels = 2\nsizes = [1.0]\n", "quoting", "sizes"),
        ("[model]\ngama = 0.1\n", "model.gama", "not permitted"),
        ("[nosuch]\nx = 1\n", "nosuch", "not permitted"),
    ],
)
def test_bad_values_name_key_and_range(tmp_path, text, key, hint):
    with pytest.raises(UserError) as ei:
        load_config(write_toml(tmp_path, text))
    msg = str(ei.value)
    assert key in msg and hint in msg and "\n" not in msg
    assert str(tmp_path / "cfg.toml") in msg


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="invalid TOML"):
        load_config(write_toml(tmp_path, "[model\n"))
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(UserError, match="section"):
        load_config(None, ["gamma=1"])


# --- numbers at their limits, units and ranges ---------------------------------------------------

HOSTILE = (1e308, -1e308, 10**20, 2**63, -1, 0, 1e-320)


def _numeric_keys():
    """(section, key) of every number in the file."""
    from typing import get_args

    for section, model in Config():
        for key, field in type(model).model_fields.items():
            ann = field.annotation
            kinds = {ann, *get_args(ann)}
            if bool not in kinds and kinds & {int, float} or "float" in str(ann):
                yield section, key


NUMERIC = list(_numeric_keys())


def test_every_number_is_bounded_above():
    """Each numeric key has an upper bound: no value of one can overflow a conversion to int64 ns
    or a count in the params records."""
    assert len(NUMERIC) > 40
    text = dump_toml(Config(), comments=True)
    for section, key in NUMERIC:
        block = text.split(f"[{section}]\n", 1)[1].split("\n\n", 1)[0]
        line = next(x for x in block.splitlines() if x.lstrip("# ").startswith(f"{key} ="))
        assert "<" in line.split("  # ", 1)[1], line


@pytest.mark.parametrize("section, key", NUMERIC)
def test_numbers_at_their_limits(section, key):
    """Any number -- 1e308, 20 digits, 2**63, negative, denormal -- is either rejected with one line
    naming the key or gives params (strategy and backtest) without an overflow."""
    from avmm.backtest.latency import latency_table
    from avmm.backtest.runner import bt_params

    for value in HOSTILE:
        try:
            cfg = load_config(None, [f"{section}.{key}={value!r}"])
            p = to_params(cfg)  # what only the whole config can tell (the skew target's limit) is checked here
        except UserError as e:
            msg = str(e)
            assert f"{section}.{key}" in msg and "\n" not in msg, msg
            continue
        bt_params(cfg, cfg.backtest, p)
        latency_table(cfg.backtest)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("quoting.refresh_s=1e308", "less than or equal to 86400"),
        ("estimators.intensity_window_s=1e308", "less than or equal to 10000000"),
        ("estimators.intensity_min_trades=99999999999999999999", "less than or equal to 1000000000"),
        ("logging.seed=99999999999999999999", "less than or equal to 9223372036854775807"),
        ("backtest.latency_seed=99999999999999999999", "less than or equal to 9223372036854775807"),
        ("risk.max_position=1e308", "less than or equal to 1000000000000"),
        ("model.sigma=1e308", "less than or equal to 1000000000000 or Input should be 'auto'"),
        ("quoting.sizes=[1.0, 1e308]", "quoting.sizes.1 = 1e+308"),
        ("quoting.tick=1e-320", "greater than or equal to 0.000000000001"),
    ],
)
def test_limits_named_in_one_line(override, needle):
    with pytest.raises(UserError) as ei:
        load_config(None, [override])
    msg = str(ei.value)
    assert override.split("=")[0] in msg and "\n" not in msg
    assert needle in msg, msg


def test_huge_literal_is_cut_in_the_message():
    with pytest.raises(UserError) as ei:
        load_config(None, ["quoting.tick=" + "9" * 400])
    msg = str(ei.value)
    assert "quoting.tick" in msg and len(msg) < 200 and "400 characters" in msg


def test_every_key_has_a_description():
    from pydantic import BaseModel

    todo = list(Config())
    n = 0
    while todo:
        section, model = todo.pop()
        for key, field in type(model).model_fields.items():
            value = getattr(model, key)
            if isinstance(value, BaseModel):  # a subsection: [signals.vamp]
                todo.append((f"{section}.{key}", value))
            else:
                assert field.description, f"{section}.{key} has no description"
                n += 1
    assert n > 100


def test_commented_dump_names_units_ranges_and_round_trips(tmp_path):
    cfg = load_config(None, ["quoting.levels=2", "quoting.sizes=[0.5, 0.25]", "model.xi=0.2", 'model.kind="glft"'])
    text = dump_toml(cfg, comments=True)
    lines = text.splitlines()
    gamma = next(x for x in lines if x.startswith("gamma ="))
    assert gamma.split("#")[1].strip().startswith("risk aversion, 1/(price * q unit); 'auto': implied by")
    assert gamma.endswith('> 0, <= 1e6 or "auto"')
    assert any(x.startswith("refresh_s = 2.0") and "s; > 0, <= 86400" in x for x in lines)
    assert any(x.startswith('kind = "glft"') and "one of as | as-rolling | glft" in x for x in lines)
    assert any(x.startswith("# q_unit = (not set)") for x in lines)  # unset keys listed, commented out
    assert any(x.startswith("seed = 0") and "<= 2**63 - 1" in x for x in lines)
    for x in lines:
        if "=" in x and not x.startswith("["):
            assert "#" in x, f"no unit/range comment: {x}"
    assert load_config(write_toml(tmp_path, text)) == cfg


def test_strings_are_escaped_in_toml(tmp_path):
    cfg = load_config(None, ['backtest.latency_file="a \\"quoted\\" \\\\ path.npy"'])
    again = load_config(write_toml(tmp_path, dump_toml(cfg, comments=True)))
    assert again.backtest.latency_file == 'a "quoted" \\ path.npy'


def test_every_number_at_its_upper_bound_at_once():
    """Every key at the top of its range together: the params records hold them without overflow
    (every ns interval positive, every float finite)."""
    from typing import get_args, get_origin

    import annotated_types

    from avmm.backtest.runner import bt_params

    data: dict = {}
    for section, model in Config():
        for key, field in type(model).model_fields.items():
            top = [m.le for m in field.metadata if isinstance(m, annotated_types.Le)]
            is_list = get_origin(field.annotation) is list
            numeric = not is_list and (field.annotation in (int, float) or "float" in str(field.annotation))
            if not top and numeric:  # a number or 'auto': the bound sits on the number's own type
                metas = [m for a in get_args(field.annotation) for m in getattr(a, "__metadata__", ())]
                metas += [x for m in metas for x in getattr(m, "metadata", ())]  # inside a pydantic Field
                top = [m.le for m in metas if isinstance(m, annotated_types.Le)]
            if top and numeric:
                data.setdefault(section, {})[key] = top[0]
    data["backtest"].pop("maker_fee"), data["backtest"].pop("taker_fee")
    cfg = Config.model_validate(data)
    p = to_params(cfg)
    bp = bt_params(cfg, cfg.backtest, p)
    for rec in (p, bp):
        for name in rec.dtype.names:
            v = rec[name]
            if v.dtype.kind == "f" and name not in ("sigma", "A", "k"):  # NaN: 'auto'
                assert np.all(np.isfinite(v)), name
            if name.endswith("_ns"):
                assert np.all(v > 0) or name in ("feed_ns", "timer_ns"), (name, v)
