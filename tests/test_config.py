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


def test_file_and_overrides(tmp_path):
    p = write_toml(
        tmp_path, "[model]\nkind = 'glft'\ngamma = 0.5\nA = 2.0\nk = 3.0\nsigma = 0.1\n[quoting]\nlevels = 3\n"
    )
    cfg = load_config(p, ["quoting.tick=0.5", "risk.max_position=4"])
    assert cfg.model.kind == "glft" and cfg.quoting.levels == 3 and cfg.quoting.tick == 0.5
    params = to_params(cfg)
    assert params["model"][0] == 2 and params["inv_tick"][0] == 2.0 and params["max_position"][0] == 4.0
    assert np.all(params["sizes"][0][:3] == cfg.quoting.size)


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
