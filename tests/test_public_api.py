"""The public API: the names ``import avmm`` offers, pinned, and imported only on first use."""

import subprocess
import sys

import avmm

PUBLIC = [
    "BacktestConfig",
    "BacktestResult",
    "Backtester",
    "Config",
    "EVENT_DTYPE",
    "Engine",
    "StrategyConfig",
    "UserError",
    "__version__",
    "convert",
    "iter_columns",
    "iter_events",
    "load_config",
    "one_quote",
    "read_meta",
    "run_backtest",
    "to_params",
    "write_events",
]


def test_the_public_names_are_pinned():
    assert sorted(avmm.__all__) == sorted(PUBLIC)


def test_every_public_name_resolves_to_its_object():
    from avmm.backtest.runner import run_backtest
    from avmm.core.engine import Engine

    for name in PUBLIC:
        assert getattr(avmm, name) is not None, name
    assert avmm.Engine is Engine
    assert avmm.run_backtest is run_backtest


def test_an_unknown_name_is_an_attribute_error():
    try:
        avmm.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_import_avmm_loads_no_heavy_library():
    code = (
        "import sys, avmm; heavy = [m for m in ('numpy', 'numba', 'pyarrow', 'pydantic', 'typer', 'rich')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_entry_points_document_parameters_and_returns():
    for name in ("run_backtest", "convert", "write_events", "iter_columns", "load_config", "one_quote"):
        doc = getattr(avmm, name).__doc__ or ""
        assert "Parameters" in doc and "Returns" in doc, name
    for name in ("Engine", "Backtester"):
        assert "Parameters" in (getattr(avmm, name).__doc__ or ""), name


def test_type_checkers_see_every_export():
    """The ``TYPE_CHECKING`` imports of ``avmm/__init__.py`` name exactly the lazy exports, so type
    checkers (and the import contracts, which read them) see every public name's real module."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(avmm.__file__).read_text())
    guarded: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    guarded[alias.name] = imp.module or ""
    assert guarded == avmm._EXPORTS
