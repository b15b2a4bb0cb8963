"""The state diagram as SVG (anonlib.views.svg): the figure's picture without matplotlib."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from anonlib.scenario.library import find_scenarios
from anonlib.scenario.runner import run_scenario
from anonlib.schemes import MAINLINE, SCHEMES
from anonlib.views.figure import world_figure
from anonlib.views.player import Player, static_player
from anonlib.views.svg import layout, world_svg

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ["history/b02-cve-2020-29374-swap.scn", "history/b10-pte-mapped-thp-rw-pin.scn",
           "history/b11-hugetlb-vmsplice.scn", "history/b06-ro-pin-zero-page.scn"]


def _worlds(name: str):
    result = run_scenario((ROOT / "scenarios" / name).read_text(), name=name)
    assert result.trace, name
    return [step.world for step in result.trace]


def _gids_svg(svg: str) -> set[str]:
    root = ET.fromstring(svg)
    return {el.attrib["data-gid"] for el in root.iter() if "data-gid" in el.attrib}


def _gids_figure(world) -> set[str]:
    fig = world_figure(world, MAINLINE, legend=False)
    return {a.get_gid() for a in fig.artists + fig.texts if a.get_gid()}


@pytest.mark.parametrize("name", SAMPLES)
def test_svg_draws_what_the_figure_draws(name: str):
    """Every labelled box, text and arrow of the matplotlib figure is in the SVG, and no other."""
    for world in _worlds(name):
        svg = world_svg(world, MAINLINE)
        assert _gids_svg(svg) == _gids_figure(world)


def test_svg_is_deterministic_and_has_no_ids():
    world = _worlds(SAMPLES[0])[-1]
    a, b = world_svg(world, MAINLINE), world_svg(world, MAINLINE)
    assert a == b
    assert ' id="' not in a and "url(#" not in a  # many can share a page, hidden or not
    assert ET.fromstring(a).tag == "{http://www.w3.org/2000/svg}svg"


def test_svg_shows_the_flag_only_under_schemes_that_have_it():
    world = _worlds(SAMPLES[1])[-1]
    no_flag = next(s for s in SCHEMES.values() if not s.anon_exclusive)
    assert "#009E73" in world_svg(world, MAINLINE)
    assert "#009E73" not in world_svg(world, no_flag)


def test_layout_rows_do_not_overlap():
    for name in SAMPLES:
        for world in _worlds(name):
            lay = layout(world)
            rows = sorted(lay.holder_rows.values())
            assert all(b - a >= 0.6 for a, b in zip(rows, rows[1:], strict=False))


def test_player_svg_drawing():
    text = (ROOT / "scenarios" / SAMPLES[0]).read_text()
    html = static_player(text, view="figure", drawing="svg")
    assert html.count("<svg ") == html.count('class="anonlib-frame"') > 1
    assert "data:image/png" not in html
    assert static_player(text, view="figure", drawing="svg") == html
    # the default is the same SVG: the chapters and the lab show one picture
    assert static_player(text, view="figure") == html
    assert "<svg " in Player(text, view="figure").to_html()
    assert "data:image/png" in static_player(text, view="figure", drawing="png")
    with pytest.raises(ValueError, match="drawing"):
        static_player(text, drawing="gif")


def test_player_with_svg_needs_no_matplotlib():
    """What the book's lab runs in Pyodide: the command line and the SVG player, without
    matplotlib and without the modules Pyodide leaves out of its standard library."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('matplotlib', 'PIL', 'ipywidgets', 'IPython',"
        " 'numpy', 'lzma', '_lzma', 'ssl', 'sqlite3'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import anonlib\n"
        "from anonlib.views.player import static_player\n"
        "from anonlib.cli import main\n"
        "html = static_player('spawn P\\nP mmap A 1\\nP write A[0] 1\\n', view='figure',"
        " drawing='svg')\n"
        "assert '<svg ' in html\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['run', 'scenarios/history/b02-cve-2020-29374.scn']) == 0\n"
        "    assert main(['explore', '--depth', '1']) == 0\n"
        "print(anonlib.compare('spawn P\\n').verdicts()['mainline'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_every_library_scenario_draws():
    for path in find_scenarios([ROOT / "scenarios"])[::15]:
        result = run_scenario(path.read_text(), name=str(path))
        for step in result.trace[-1:]:
            ET.fromstring(world_svg(step.world, MAINLINE))
