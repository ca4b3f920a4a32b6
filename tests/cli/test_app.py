"""The `avmm` application: a usage error (unknown command or option, a bad value) is one line on
stderr and exit code 2."""

import pytest


@pytest.mark.parametrize(
    "args, needle",
    [
        (["quote", "--mid", "x", "--gamma", "1", "--sigma", "1", "--k", "1"], "--mid"),
        (["nosuch"], "nosuch"),
        (["quote", "--bogus", "1"], "--bogus"),
    ],
)
def test_usage_errors_are_one_line_exit_2(run_cli, args, needle):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
