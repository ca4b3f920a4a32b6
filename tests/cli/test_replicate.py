"""`avmm replicate as2008 | glft`: the JSON and the figure, bad arguments, a missing extra."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from avmm.cli.replicate import app
from avmm.replicate.as2008 import ROW_KEYS as AS2008_ROW_KEYS
from avmm.replicate.as2008 import run_as2008
from avmm.replicate.glft import run_glft


class TestAS2008:
    def test_cli_writes_json_and_plot(self, tmp_path):
        jp, pp = tmp_path / "as.json", tmp_path / "as.png"
        res = CliRunner().invoke(
            app,
            [
                "as2008",
                "--paths",
                "50",
                "--gamma",
                "0.1",
                "--gamma",
                "1",
                "--seed",
                "5",
                "--json",
                str(jp),
                "--plot",
                str(pp),
            ],
        )
        assert res.exit_code == 0, res.output
        assert "inventory" in res.output and "symmetric" in res.output
        doc = json.loads(jp.read_text())
        assert doc["parameters"]["paths"] == 50 and doc["parameters"]["gammas"] == [0.1, 1.0]
        assert [(r["gamma"], r["strategy"]) for r in doc["rows"]] == [
            (0.1, "inventory"),
            (0.1, "symmetric"),
            (1.0, "inventory"),
            (1.0, "symmetric"),
        ]
        assert all(tuple(r) == AS2008_ROW_KEYS for r in doc["rows"])
        assert doc["rows"] == run_as2008(paths=50, seed=5, gammas=(0.1, 1.0)).rows
        assert pp.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_cli_bad_arguments_exit_2(self, tmp_path, run_main):
        for argv in (
            ["--paths", "0"],
            ["--gamma", "0"],
            ["--json", str(tmp_path / "no" / "x.json")],
            ["--plot", str(tmp_path)],
        ):
            code, _, err = run_main("replicate", "as2008", *argv)
            assert code == 2
            assert err.startswith("avmm: error: ") and err.count("\n") == 1


class TestGLFT:
    def test_cli_writes_json_and_plot(self, tmp_path):
        jp, pp = tmp_path / "glft.json", tmp_path / "glft.png"
        res = CliRunner().invoke(app, ["glft", "--q-max", "10", "--json", str(jp), "--plot", str(pp)])
        assert res.exit_code == 0, res.output
        assert "max |exact - approx|" in res.output
        doc = json.loads(jp.read_text())
        assert doc["parameters"]["Q"] == 10 and len(doc["rows"]) == 21
        assert doc["rows"][0]["ask_exact"] is None and doc["rows"][-1]["bid_exact"] is None
        assert doc["rows"] == run_glft(Q=10).rows
        assert pp.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_cli_bad_arguments_exit_2(self, tmp_path, run_main):
        bad = (["-Q", "0"], ["--json", str(tmp_path / "no" / "x.json")], ["--plot", str(tmp_path)])
        for argv in bad:
            code, _, err = run_main("replicate", "glft", *argv)
            assert code == 2
            assert err.startswith("avmm: error: ")


# matplotlib and plotly made unimportable before the console entry point runs
WITHOUT_PLOTTING = """
import sys
sys.modules["matplotlib"] = None
sys.modules["plotly"] = None
sys.argv = ["avmm", *sys.argv[1:]]
from avmm.cli import main
main()
"""


def test_missing_optional_dependency_is_one_line_exit_2(tmp_path):
    png = tmp_path / "x.png"
    r = subprocess.run(
        [sys.executable, "-c", WITHOUT_PLOTTING, "replicate", "as2008", "--paths", "10", "--plot", str(png)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("avmm: error: ") and "matplotlib" in lines[0]
    assert "pip install 'avmm[report]'" in lines[0]
    assert not png.exists()
