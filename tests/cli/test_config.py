"""`avmm config check`: a bad file is one line naming the key and the range, exit 2; a good one is
printed back."""

from tests.builders import write_toml


def test_cli_config_check(tmp_path, run_cli):
    bad = write_toml(tmp_path, "[quoting]\nlevels = 0\n")
    r = run_cli("config", "check", str(bad))
    assert r.returncode == 2 and "quoting.levels = 0" in r.stderr and "greater than or equal to 1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("config", "check", "--set", "model.gamma=0.5")
    assert r.returncode == 0 and "gamma = 0.5" in r.stdout


def test_cli_config_check_prints_units_and_ranges(run_cli):
    r = run_cli("config", "check", "--set", "quoting.refresh_s=5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(
        x.startswith('gamma = "auto"')
        and x.endswith(
            "1/(price * q unit); 'auto': implied by risk.skew_at_limit, "
            're-solved every gamma_update_s from sigma and the spread; > 0, <= 1e6 or "auto"'
        )
        for x in lines
    )
    assert any(x.startswith("refresh_s = 5.0") and "requote at least this often, s; > 0, <= 86400" in x for x in lines)
    keys = [x for x in lines if "=" in x]
    assert len(keys) > 50 and all("  # " in x for x in keys)
    r = run_cli("config", "check", "--set", "quoting.refresh_s=1e308")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "quoting.refresh_s = 1e+308" in r.stderr and "86400" in r.stderr
