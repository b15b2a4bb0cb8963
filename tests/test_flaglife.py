"""The flag's life picture: its edges are what the model does, not a hand-drawn list."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from anonlib import flaglife, mm
from anonlib.flaglife import Edge, Node, category, drawn, flag_life_figure, transitions
from anonlib.mm import memory
from anonlib.schemes import get_scheme

PTE_X = Node("present PTE", "excl")
PTE_S = Node("present PTE", "shared")
SWAP_X = Node("swap", "excl")


def _pairs(edges: list[Edge]) -> set[tuple[str, str, str, str]]:
    return {(e.category, str(e.source), str(e.target), e.function) for e in edges}


def test_the_central_moves_are_found_with_their_kernel_functions():
    got = _pairs(transitions())
    assert ("carried", "present PTE excl", "swap excl", "try_to_unmap_one") in got
    assert ("carried", "swap excl", "present PTE excl", "do_swap_page") in got
    assert ("cleared", "present PTE excl", "present PTE shared",
            "copy_present_pte -> folio_try_dup_anon_rmap") in got
    assert ("set", "none", "present PTE excl", "do_anonymous_page") in got
    assert ("set", "present PTE shared", "present PTE excl", "wp_page_copy") in got
    assert ("lost", "present PTE excl", "hwpoison", "memory_failure") in got


def test_every_function_named_is_a_model_function_of_that_name():
    """Each name is a function of anonlib/mm (whose docstring cites the kernel's)."""
    names: set[str] = set()
    for info in pkgutil.iter_modules(mm.__path__):
        module = importlib.import_module(f"anonlib.mm.{info.name}")
        names |= {n for n, f in inspect.getmembers(module, inspect.isfunction)
                  if f.__module__ == module.__name__}
    for e in transitions():
        for fn in e.function.split(" -> "):
            assert fn in names, (fn, str(e))


def test_the_edges_follow_the_scheme():
    """Without the swap PTE's exclusive bit, swap-out clears the flag instead of carrying it."""
    old = _pairs(transitions(get_scheme("no-swp-exclusive")))
    assert ("carried", "present PTE excl", "swap excl", "try_to_unmap_one") not in old
    assert any(c == "cleared" and s == "present PTE excl" and t == "swap shared"
               for c, s, t, _f in old)


def test_the_edges_follow_the_code(monkeypatch):
    """A first touch that forgot to set the flag: the do_anonymous_page edge disappears."""
    monkeypatch.setattr(memory, "folio_add_new_anon_rmap", lambda m, fid, huge=False: None)
    got = _pairs(transitions())
    assert ("set", "none", "present PTE excl", "do_anonymous_page") not in got


def test_no_move_is_left_unnamed():
    assert all("?" not in e.function for e in transitions())


def test_categories():
    assert category(PTE_S, PTE_X) == "set"
    assert category(PTE_X, PTE_S) == "cleared"
    assert category(PTE_X, SWAP_X) == "carried"
    assert category(PTE_X, Node("hwpoison", "")) == "lost"
    assert category(PTE_S, Node("none", "")) is None
    assert category(PTE_X, PTE_X) is None


def test_deterministic_and_the_watch_is_removed():
    from anonlib.mem import Mem

    before = Mem.set, Mem.set_vma, Mem.set_exclusive, Mem.clear_exclusive
    assert transitions() == transitions()
    assert (Mem.set, Mem.set_vma, Mem.set_exclusive, Mem.clear_exclusive) == before


def test_the_figure_draws_one_arrow_per_pair_of_nodes_and_every_node():
    edges = transitions()
    fig = flag_life_figure(edges)
    ax = fig.axes[0]
    gids = {a.get_gid() for a in ax.patches}
    pairs = {(str(e.source), str(e.target)) for e in drawn(edges)}
    assert {g for g in gids if g and g.startswith("edge:")} == {f"edge:{s}->{t}" for s, t in pairs}
    assert {f"node:{n}" for pair in pairs for n in pair} <= gids
    assert all(n in flaglife._POSITION for e in edges for n in (e.source, e.target))


def test_only_fork_and_ksm_clear_the_flag():
    cleared = {e.function.split(" -> ")[0] for e in transitions() if e.category == "cleared"}
    assert cleared == {"copy_present_pte", "copy_huge_pmd", "copy_hugetlb_page_range",
                       "copy_nonpresent_pte", "write_protect_page"}


def test_no_label_overlaps_a_box_or_another_label_or_leaves_the_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = flag_life_figure(transitions())
    fig.set_dpi(120)  # the chapter renders it at 120 dpi
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    labels = [(t.get_gid(), t.get_bbox_patch().get_window_extent(renderer))
              for t in ax.texts if str(t.get_gid()).startswith("label:")]
    nodes = [(p.get_gid(), p.get_window_extent(renderer))
             for p in ax.patches if str(p.get_gid()).startswith("node:")]
    assert len(labels) == len({p.get_gid() for p in ax.patches
                               if str(p.get_gid()).startswith("edge:")})
    clashes = [(g, h) for i, (g, box) in enumerate(labels)
               for h, other in labels[i + 1:] + nodes if box.overlaps(other)]
    assert not clashes
    page = fig.bbox
    outside = [g for g, box in labels
               if not (page.x0 <= box.x0 and box.x1 <= page.x1
                       and page.y0 <= box.y0 and box.y1 <= page.y1)]
    assert not outside
    assert fig.get_size_inches()[0] * 120 >= 1500
