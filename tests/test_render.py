"""Renderers: the rows, the diff in words, the HTML table and the matplotlib figure.

Text and HTML are checked exactly on small worlds built by a few statements;
the figure by its structure (the artists' ``gid`` labels), never by pixels.
"""

from __future__ import annotations

import pathlib
from html.parser import HTMLParser

import pytest

from anonlib import run_scenario
from anonlib.scenario.library import is_size_variant
from anonlib.schemes import MAINLINE, SCHEMES
from anonlib.state import World
from anonlib.views.figure import figure_png, legend_html, world_figure
from anonlib.views.render import (
    diff_cells,
    diff_rows,
    diff_words,
    world_html,
    world_rows,
    world_text,
)


def worlds(text: str, scheme: str = "mainline") -> list[World]:
    """The world before the first statement and after each one."""
    r = run_scenario(text, scheme)
    assert r.status == "ok", str(r)
    assert r.initial is not None
    return [r.initial] + [s.world for s in r.trace]


def steps(text: str, scheme: str = "mainline") -> list[list[str]]:
    """diff_words of every statement of a scenario."""
    ws = worlds(text, scheme)
    return [diff_words(a, b, SCHEMES[scheme]) for a, b in zip(ws, ws[1:], strict=False)]


SWAP = """\
spawn P
P mmap A 1
P write A[0] x
P fork Q
kernel swapout P A[0]
Q read A[0]
P write A[0] y
Q exit
"""


# ------------------------------------------------------------------ rows
def test_rows_follow_world_text_line_by_line():
    w = worlds(SWAP)[5]  # after the swap-out: a swap entry, a slot
    rows = world_rows(w, MAINLINE)
    assert [r.key for r in rows] == [
        "process P", "P A", "P A[0]", "process Q", "Q A", "Q A[0]", "swap slot 2"]
    assert len(rows) == len(world_text(w, MAINLINE).splitlines())
    entry = rows[2]
    assert entry.fields == (("level", "pte"), ("kind", "swap"), ("write", ""), ("excl", "shared"),
                            ("target", "slot 2"), ("sd", "sd"))


# ------------------------------------------------------------------ diff in words
def test_diff_words_of_a_swap_story():
    assert steps(SWAP) == [
        ["new process P"],
        ["new mapping P A (base, 1 page, rw)"],
        ["P A[0]: none -> present writable 1.0",
         "new folio 1 (small)",
         "page 1.0: data 'x', exclusive, mapcount 1"],
        ["P A[0]: present writable -> present read-only",
         "new process Q",
         "new mapping Q A (base, 1 page, rw)",
         "Q A[0]: none -> present read-only 1.0",
         "folio 1: refcount 1 -> 2",
         "page 1.0: exclusive -> shared, mapcount 1 -> 2"],
        ["P A[0]: present read-only 1.0 -> swap slot 2 shared",
         "Q A[0]: present read-only 1.0 -> swap slot 2 shared",
         "folio 1 freed",
         "new swap slot 2 (data 'x')"],
        ["Q A[0]: swap slot 2 shared -> present read-only 3.0",
         "new folio 3 (small)",
         "page 3.0: data 'x', shared, mapcount 1",
         "swap slot 2: count 2 -> 1"],
        ["P A[0]: swap slot 2 shared -> present writable 4.0",
         "new folio 4 (small)",
         "page 4.0: data 'y', exclusive, mapcount 1",
         "swap slot 2: count 1 -> 0"],
        ["process Q exited",
         "folio 3: refcount 2 -> 1",
         "page 3.0: mapcount 1 -> 0"],
    ]


def test_diff_words_of_the_swap_cache_and_freed_slots():
    """On hand-made worlds, so the phrases do not depend on when the model frees things."""
    from anonlib.state import Folio, FolioKind, Page, Slot

    cached = Folio(3, FolioKind.SMALL, (Page("x"),), swapcache=(2,))
    with_cache = World(folios=(cached,), slots=(Slot(2, "x"),))
    dropped = World(folios=(Folio(3, FolioKind.SMALL, (Page("x"),)),))
    assert diff_words(with_cache, dropped, MAINLINE) == [
        "folio 3: refcount 1 -> 0, removed from the swap cache", "swap slot 2 freed"]
    assert diff_words(dropped, with_cache, MAINLINE) == [
        "folio 3: refcount 0 -> 1, added to the swap cache ([2])", "new swap slot 2 (data 'x')"]
    assert diff_words(with_cache, World(), MAINLINE) == ["folio 3 freed", "swap slot 2 freed"]


def test_diff_words_of_a_thp_split_pin_and_exit():
    text = """\
spawn P
P mmap T thp
P write T[0] x
kernel split-pmd P T
P pin T[2] rw as H
unpin H
P exit
"""
    assert steps(text)[2:] == [
        ["P T[*]: none -> pmd present writable 1.0",
         "new folio 1 (thp)",
         "page 1.0: data 'x', exclusive, mapcount 1",
         "page 1.1: data '0', shared, mapcount 1",
         "page 1.2: data '0', shared, mapcount 1",
         "page 1.3: data '0', shared, mapcount 1"],
        ["P T[0]: none -> present writable 1.0",
         "P T[1]: none -> present writable 1.1",
         "P T[2]: none -> present writable 1.2",
         "P T[3]: none -> present writable 1.3",
         "P T[*]: pmd present writable 1.0 -> none",
         "folio 1: refcount 1 -> 4",
         "page 1.1: shared -> exclusive",
         "page 1.2: shared -> exclusive",
         "page 1.3: shared -> exclusive"],
        ["P: MMF_HAS_PINNED set",
         "folio 1: refcount 4 -> 5, pins 0 -> 1",
         "new ref H: pin rw by P at T[2] -> 1.2"],
        ["folio 1: refcount 5 -> 4, pins 1 -> 0",
         "ref H dropped"],
        ["process P exited",
         "folio 1 freed"],
    ]


def test_diff_words_of_the_other_entry_kinds():
    text = """\
spawn P
P mmap A 1
P read A[0]
P mmap B 1
P write B[0] v
kernel migrate-begin P B[0]
kernel migrate-end P B[0]
kernel device-private P B[0]
P read B[0]
kernel device-exclusive P B[0]
kernel poison P B[0]
P mprotect B ro
P munmap A
"""
    got = steps(text)
    assert got[2] == ["P A[0]: none -> present read-only zero page"]
    assert got[5][0] == "P B[0]: present writable soft-dirty -> migration writable"
    assert got[6][0] == "P B[0]: migration writable 1.0 -> present writable 2.0 soft-dirty"
    assert got[7][0] == "P B[0]: present writable 2.0 -> device-private writable 3.0"
    assert got[8][0] == "P B[0]: device-private writable 3.0 -> present writable 4.0"
    # 6.12: the device-exclusive entry holds a reference but no map count
    # (mm/rmap.c: page_make_device_exclusive_one drops it)
    assert got[9] == ["P B[0]: present writable -> device-exclusive writable",
                      "page 4.0: mapcount 1 -> 0"]
    assert got[10] == ["P B[0]: device-exclusive writable soft-dirty -> hwpoison",
                       "folio 4: refcount 1 -> 0",
                       "page 4.0: hwpoisoned"]
    assert got[11] == ["P B: prot rw -> ro"]
    assert got[12] == ["mapping P A unmapped"]


def test_diff_words_without_the_flag_names_no_exclusivity():
    got = steps("spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\n", "legacy-mapcount")
    assert got[2][2] == "page 1.0: data 'x', mapcount 1"
    assert "page 1.0: mapcount 1 -> 2" in got[3]
    assert not any("exclusive" in line or "shared" in line for s in got for line in s)


def test_diff_of_a_world_with_itself_is_empty_and_diffs_are_deterministic():
    ws = worlds(SWAP)
    for w in ws:
        assert diff_words(w, w, MAINLINE) == []
        assert diff_cells(w, w, MAINLINE) == frozenset()
    assert [diff_words(a, b, MAINLINE) for a, b in zip(ws, ws[1:], strict=False)] == steps(SWAP)


def test_diff_cells_name_the_changed_fields_and_new_rows():
    ws = worlds(SWAP)
    cells = diff_cells(ws[3], ws[4], MAINLINE)  # the fork
    assert ("P A[0]", "write") in cells
    assert ("P A[0]", "excl") in cells  # the page's flag, shown on the entry too
    assert ("P A[0]", "target") not in cells
    assert ("process Q", "*") in cells and ("Q A[0]", "*") in cells
    assert ("page 1.0", "flag") in cells and ("page 1.0", "mapcount") in cells
    kinds = {(c.key, c.what) for c in diff_rows(ws[3], ws[4], MAINLINE)}
    assert ("process Q", "new") in kinds and ("folio 1", "changed") in kinds


# ------------------------------------------------------------------ HTML
class _Cells(HTMLParser):
    """Table rows as lists of (text, highlighted) cells; and every start tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, bool]]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self._hit = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
            self._hit = dict(attrs).get("data-changed") == "1"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell), self._hit))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def cells(html_text: str) -> _Cells:
    p = _Cells()
    p.feed(html_text)
    return p


def texts(p: _Cells) -> list[list[str]]:
    return [[t for t, _h in row] for row in p.rows]


def test_world_html_has_world_text_content_exactly():
    ws = worlds(SWAP)
    p = cells(world_html(ws[6], MAINLINE))  # after Q read A[0]: swapped in, in the swap cache
    assert texts(p) == [
        ["entry", "kind", "write", "excl", "target", ""],
        ["process P", ""],
        ["A", "base 1 page", "rw", ""],
        ["[0]", "swap", "", "shared", "slot 2", "sd"],
        ["process Q", ""],
        ["A", "base 1 page", "rw", ""],
        ["[0]", "present", "ro", "shared", "3.0", "sd"],
        ["page", "data", "mapcount", "PG_anon_exclusive", ""],
        ["folio 3 small", "refcount=2", "pins=0", "swapcache=[2]"],
        ["3.0", "'x'", "1", "-", ""],
        ["swap slot 2", "data='x'", "count=1"],
    ]
    assert not any(hit for row in p.rows for _t, hit in row)


def test_world_html_highlights_exactly_the_changed_cells():
    ws = worlds(SWAP)
    p = cells(world_html(ws[4], MAINLINE, diff_cells(ws[3], ws[4], MAINLINE)))
    hits = [[t for t, hit in row if hit] for row in p.rows]
    assert hits == [
        [], [], [],
        ["ro", "shared"],  # P A[0]: write-protected, the flag cleared by fork
        ["process Q"],  # new rows: every cell with something in it
        ["A", "base 1 page", "rw"],
        ["[0]", "present", "ro", "shared", "1.0", "sd"],
        [],
        ["refcount=2"],
        ["2", "-"],  # page 1.0: the map count and the flag
    ]


def test_world_html_escapes_everything():
    ws = worlds('spawn P\nP mmap A 1\nP write A[0] "<script>&\\""\n')
    out = world_html(ws[-1], MAINLINE)
    assert "<script>" not in out and "&lt;script&gt;&amp;" in out
    p = cells(out)
    assert set(p.tags) <= {"div", "table", "thead", "tbody", "tr", "th", "td"}
    assert ["1.0", "'<script>&\"'", "1", "anon_exclusive", ""] in texts(p)


def test_world_html_of_the_empty_world_and_without_the_flag():
    assert texts(cells(world_html(World(), MAINLINE))) == [
        ["entry", "kind", "write", "excl", "target", ""], ["(no processes)"],
        ["page", "data", "mapcount", "PG_anon_exclusive", ""], ["(no folios)"]]
    ws = worlds("spawn P\nP mmap A 1\nP write A[0] x\n", "page-count")
    assert texts(cells(world_html(ws[-1], SCHEMES["page-count"]))) == [
        ["entry", "kind", "write", "", "target", ""], ["process P", ""],
        ["A", "base 1 page", "rw", ""], ["[0]", "present", "rw", "", "1.0", "sd"],
        ["page", "data", "mapcount", "", ""], ["folio 1 small", "refcount=1", "pins=0", ""],
        ["1.0", "'x'", "1", "", ""]]


def test_world_html_is_deterministic_and_self_contained():
    ws = worlds(SWAP)
    for a, b in zip(ws, ws[1:], strict=False):
        one = world_html(b, MAINLINE, diff_cells(a, b, MAINLINE))
        assert one == world_html(b, MAINLINE, diff_cells(a, b, MAINLINE))
        assert "http" not in one and "<script" not in one and "<style" not in one


# ------------------------------------------------------------------ figure
FIG = """\
spawn P
P mmap A 2
P mmap T thp
P write A[0] x
P write T[0] t
P fork Q
P pin A[0] rw as H
Q get T[1] ro as G
kernel swapout Q A[0]
P read A[1]
"""


def artists(fig) -> list:  # type: ignore[no-untyped-def]
    """What the figure holds: its own artists, then each Axes' children."""
    return list(fig.artists) + [a for ax in fig.axes for a in ax.get_children()]


def gids(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.get_gid() for a in artists(fig) if a.get_gid()]


def test_figure_structure_counts_entries_pages_arrows_and_holders():
    w = worlds(FIG)[-1]
    g = gids(world_figure(w, MAINLINE))
    # the rw pin unshared P A[0] into folio 3; the swap-out of Q A[0] freed folio 1
    assert sorted(x for x in g if x.startswith("arrow:")) == [
        "arrow:get:G->2.1",
        "arrow:pin:H->3.0",
        "arrow:pmd:P T[*]->folio 2",
        "arrow:pmd:Q T[*]->folio 2",
        "arrow:pte:P A[0]->3.0",
        "arrow:pte:P A[1]->zero page",
        "arrow:swap:Q A[0]->slot 4",
    ]
    assert sorted(x for x in g if x.startswith("entry:")) == [
        "entry:P A[0]", "entry:P A[1]", "entry:P T[*]",
        "entry:Q A[0]", "entry:Q A[1]", "entry:Q T[*]"]
    assert sorted(x for x in g if x.startswith(("page:", "slot:", "folio:"))) == [
        "folio:2", "folio:3", "page:2.0", "page:2.1", "page:2.2", "page:2.3", "page:3.0",
        "page:zero", "slot:4"]
    assert sorted(x for x in g if x.startswith("holder:")) == ["holder:get:G", "holder:pin:H"]
    assert sum(x.startswith("legend:") for x in g) == 12  # 6 kinds, 2 flag states, 4 lines
    assert "label:process P" in g and "label:Q A" in g


def test_figure_labels_say_what_colours_show():
    w = worlds(FIG)[-1]
    fig = world_figure(w, MAINLINE)
    labels = {a.get_gid(): a.get_text() for a in artists(fig)
              if a.get_gid() and hasattr(a, "get_text")}
    assert labels["label:process P"] == "process P (MMF_HAS_PINNED)"
    assert labels["label:P A[0]"] == "[0] present rw"
    assert labels["label:Q A[0]"] == "[0] swap shared"
    assert labels["label:P T[*]"] == "[*] pmd present ro"
    assert labels["label:folio 3"] == "folio 3 small ref=2 pin=1"
    assert labels["label:page 3.0"] == "3.0 'x' map=1"
    assert labels["label:swap slot 4"] == "slot 4 'x' count=1"
    assert labels["label:ref H"] == "DMA H: PIN rw"
    assert labels["label:ref G"] == "pipe G: GET ro"


def test_figure_every_entry_kind_smoke():
    text = """\
spawn P
P mmap A 5
P write A[0] a
P write A[1] b
P write A[2] c
P write A[3] d
kernel migrate-begin P A[0]
kernel device-private P A[1]
kernel device-exclusive P A[2]
kernel poison P A[3]
kernel swapout P A[4]
"""
    w = worlds(text)[-1]
    g = gids(world_figure(w, MAINLINE))
    arrows = sorted(x.split(":")[1] for x in g if x.startswith("arrow:"))
    assert arrows == ["device-exclusive", "device-private", "hwpoison", "migration"]
    png = figure_png(world_figure(w, MAINLINE))
    assert png.startswith(b"\x89PNG") and b"Software" not in png


def test_figure_into_given_axes_and_sizes():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot(1, 1, 1)
    assert world_figure(worlds(FIG)[-1], MAINLINE, ax=ax, title="after") is fig
    assert "title" in gids(fig)
    # 8 in wide; 0.2 in a row, at most 5 in high
    mid = world_figure(worlds(FIG)[-1], MAINLINE).get_size_inches()
    assert mid[0] == 8.0 and 2.5 < mid[1] < 5.0
    big = world_figure(worlds(FIG + "P fork R\nR fork S\n")[-1], MAINLINE)
    assert tuple(big.get_size_inches()) == (8.0, 5.0)
    small = world_figure(World(), MAINLINE).get_size_inches()
    assert small[0] == 8.0 and small[1] < mid[1]


def test_figure_is_deterministic():
    w = worlds(FIG)[-1]
    assert figure_png(world_figure(w, MAINLINE)) == figure_png(world_figure(w, MAINLINE))
    assert (figure_png(world_figure(w, MAINLINE), palette=True)
            == figure_png(world_figure(w, MAINLINE), palette=True))


def test_palette_png_keeps_the_exclusive_green():
    import io

    from PIL import Image

    from anonlib.views.figure import EXCLUSIVE_FILL

    png = figure_png(world_figure(worlds(FIG)[-1], MAINLINE), palette=True)
    img = Image.open(io.BytesIO(png))
    assert img.mode == "P"
    green = tuple(int(EXCLUSIVE_FILL[i:i + 2], 16) for i in (1, 3, 5))
    assert green in {rgb for _n, rgb in img.convert("RGB").getcolors(256) or []}


@pytest.mark.parametrize("flag", [True, False])
def test_legend_html(flag: bool):
    out = legend_html(flag)
    assert ("PG_anon_exclusive" in out) is flag
    assert "FOLL_PIN" in out and "http" not in out


def test_figure_hugetlb_rows_before_and_after_the_first_fault():
    g = gids(world_figure(worlds("spawn P\nP mmap H hugetlb\n")[-1], MAINLINE))
    assert [x for x in g if x.startswith(("entry:", "arrow:"))] == ["entry:P H[*]"]
    g = gids(world_figure(worlds("spawn P\nP mmap H hugetlb\nP write H[1] x\nP fork Q\n")[-1],
                          MAINLINE))
    assert [x for x in g if x.startswith(("entry:", "arrow:"))] == [
        "entry:P H[*]", "arrow:hugetlb:P H[*]->folio 1",
        "entry:Q H[*]", "arrow:hugetlb:Q H[*]->folio 1"]


# Every library file but cow.c's mTHP size variants above 16 kB, of which one, the largest
# world (a 1 MB mTHP partially shared with a child), stands for the rest: drawing 504 worlds
# of up to 256-page folios would take longer than the rest of the suite.
SCENARIOS = sorted(
    p for p in (pathlib.Path(__file__).resolve().parents[1] / "scenarios").rglob("*.scn")
    if not is_size_variant(p) or p.name == "a01-basic-cow-partially-shared-mthp-1024kb.scn")


@pytest.mark.skipif(not SCENARIOS, reason="no scenario library")
def test_every_renderer_on_the_final_state_of_every_library_scenario():
    """A smoke test over every scenario of the library (each under the scheme it names)."""
    for path in SCENARIOS:
        r = run_scenario(path.read_text(), name=path.name)
        if r.initial is None or not r.trace:
            continue
        scheme = SCHEMES[r.scheme]
        last, before = r.trace[-1].world, (r.trace[-2].world if len(r.trace) > 1 else r.initial)
        assert diff_words(before, last, scheme) == diff_words(before, last, scheme)
        assert world_html(last, scheme, diff_cells(before, last, scheme))
        fig = world_figure(last, scheme)
        entries = [x for x in gids(fig) if x.startswith("entry:")]
        assert len(entries) == sum(1 for row in world_rows(last, scheme) if row.kind == "entry"
                                   ) + sum(1 for p in last.procs for v in p.vmas
                                           if v.kind.value == "hugetlb" and v.huge is None), path


def test_a_world_figure_shows_itself_as_a_png_in_a_notebook():
    """A cell ending in world_figure(...) displays the picture, not ``<Figure size ...>``."""
    from IPython.core.formatters import DisplayFormatter

    world = run_scenario("spawn P\nP mmap A 1\nP write A[0] x\n").world
    data, _meta = DisplayFormatter().format(world_figure(world, MAINLINE))
    assert data["image/png"].startswith(b"\x89PNG")
