"""The views live in anonlib.views; the old module paths the notebooks import still work."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import anonlib

ROOT = Path(__file__).resolve().parents[1]
OLD_PATHS = ("render", "figure", "player", "reference", "compare")


@pytest.mark.parametrize("name", OLD_PATHS)
def test_an_old_path_is_the_views_module_itself(name: str) -> None:
    old = sys.modules[f"anonlib.{name}"] if name == "compare" else importlib.import_module(
        f"anonlib.{name}")
    assert old is importlib.import_module(f"anonlib.views.{name}")


def test_anonlib_compare_stays_the_function_after_its_module_path_is_imported() -> None:
    code = ("import anonlib\nfrom anonlib.compare import Comparison, compare\n"
            "import anonlib.views.compare as m\n"
            "assert anonlib.compare is compare is m.compare and Comparison is m.Comparison\n"
            "print(anonlib.compare('spawn P', ['mainline']).results[0].status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout == "ok\n"


def test_the_top_level_holds_no_view() -> None:
    views = {p.stem for p in (ROOT / "anonlib" / "views").glob("*.py")} - {"__init__"}
    for name in views:
        path = ROOT / "anonlib" / f"{name}.py"
        if path.exists():  # only a re-export of the views module, nothing of its own
            assert name in OLD_PATHS and "def " not in path.read_text("utf-8"), name


def test_import_anonlib_loads_neither_matplotlib_nor_ipywidgets() -> None:
    code = ("import anonlib, anonlib.render, sys\n"
            "print(sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout == "[]\n"


def test_lazy_names_come_from_the_views() -> None:
    assert anonlib.static_player.__module__ == "anonlib.views.player"


def test_the_views_escape_html_in_one_place() -> None:
    from anonlib.views.markup import esc

    assert esc("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
    paths = [*(ROOT / "anonlib" / "views").glob("*.py"), ROOT / "anonlib" / "race" / "view.py",
             ROOT / "anonlib" / "scenario" / "runner.py"]
    for path in paths:
        if path.name != "markup.py":
            assert "html.escape" not in path.read_text("utf-8"), path


def test_scheme_named_resolves_a_name_once_with_the_nearest_name_on_error() -> None:
    from anonlib.scenario import InputError
    from anonlib.scenario.parser import scheme_named
    from anonlib.schemes import MAINLINE, SCHEMES

    assert all(scheme_named(n) is s for n, s in SCHEMES.items())
    assert scheme_named(MAINLINE) is MAINLINE
    nearest = r"unknown scheme 'page-cuont'; did you mean 'page-count'\?"
    with pytest.raises(InputError, match=nearest):
        scheme_named("page-cuont")
    with pytest.raises(InputError, match="a scheme is a name .str. or a Scheme, not int"):
        scheme_named(3)


def test_the_views_the_runner_and_the_cli_look_schemes_up_through_scheme_named() -> None:
    anonlib = ROOT / "anonlib"
    paths = [*(anonlib / "views").glob("*.py"), *(anonlib / "scenario").glob("*.py"),
             anonlib / "cli.py"]
    for path in paths:
        text = path.read_text("utf-8")
        uses = text.count("SCHEMES[")
        assert uses == (1 if path.name == "parser.py" else 0), path
