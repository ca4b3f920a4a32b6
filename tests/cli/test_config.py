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
