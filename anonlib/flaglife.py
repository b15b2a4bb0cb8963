"""The flag's life across entry types, derived by running the model: where it is set, cleared,
carried from one kind of entry to another, and lost.

:func:`transitions` starts from every row of the reference table
(:data:`anonlib.reference.ENTRY_SETUPS`: ``P A[0]`` mapped by one kind of
entry), applies every operation of a small alphabet to that page, and
records how the entry of ``P A[0]`` and its exclusivity moved. While each
operation runs, the model's entry and flag updates (:class:`~anonlib.mem.Mem`'s
``set``, ``set_exclusive`` and ``clear_exclusive``) are watched, and the
function of ``anonlib/mm`` that made the change names the edge: the model's
transition functions are named after the kernel functions they stand for,
so the name is the kernel's (Linux 6.12, the ``mainline`` scheme).

Nothing here is typed by hand: change a rule in ``anonlib/mm`` and the edges
(and the picture :func:`flag_life_figure` draws from them) change with it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import model
from .mem import Mem
from .ops import (
    Advice,
    Exit,
    Kernel,
    KernelAction,
    Ksm,
    Madvise,
    Op,
    PageRef,
    Write,
    to_text,
)
from .results import ModelError
from .schemes import MAINLINE, Scheme
from .state import ZERO_FOLIO, World
from .views.reference import A0, B0, ENTRY_SETUPS, OPERATIONS, build

if TYPE_CHECKING:
    from matplotlib.typing import LineStyleType

#: What is applied to ``P A[0]`` besides the reference table's columns: the
#: operations that end a non-present entry, and short sequences (each run as one
#: step) that need a second actor: the fork child leaves before the parent writes,
#: or a twin page with the same data lets KSM merge ``P A[0]``.
EXTRA_OPERATIONS: dict[str, tuple[Op, ...]] = {
    "migrate-end": (Kernel(KernelAction.MIGRATE_END, A0),),
    "device-private-end": (Kernel(KernelAction.DEVICE_PRIVATE_END, A0),),
    "swapcache-drop": (Kernel(KernelAction.SWAPCACHE_DROP, A0),),
    "dontfork": (Madvise("P", "A", 0, Advice.DONTFORK),),
    "child exits, then write": (Exit("Q"), Write(A0, "y")),
    "ksm with a twin": (Write(B0, "x"), Ksm(A0, B0)),
}

#: Edge categories, in the order the picture's key lists them.
CATEGORIES = ("set", "cleared", "carried", "lost")

_MM = str(Path(__file__).resolve().parent / "mm")


@dataclass(frozen=True, order=True)
class Node:
    """What maps ``P A[0]``: the kind of entry and what it says about exclusivity.

    ``kind`` is one of ``present PTE``, ``PMD / hugetlb``, ``swap``,
    ``migration``, ``device-private``, ``device-exclusive``, ``hwpoison``,
    ``zero page``, ``none``; ``flag`` is ``excl``, ``shared`` or ``""``
    where the entry carries no exclusivity at all.
    """

    kind: str
    flag: str

    def __str__(self) -> str:
        return f"{self.kind} {self.flag}".strip()


@dataclass(frozen=True, order=True)
class Edge:
    """One move of the flag: from one node to another, by one kernel function.

    ``function`` is the model function (named after the kernel's) that made
    the change, as ``caller -> helper`` when the change was made by one of the
    rmap helpers; ``example`` is one scenario statement that takes it.
    """

    category: str
    source: Node
    target: Node
    function: str
    example: str

    def __str__(self) -> str:
        return f"{self.category:8} {self.source} -> {self.target}: {self.function} ({self.example})"


def node(world: World, scheme: Scheme = MAINLINE, ref: PageRef = A0) -> Node:
    """The node of ``ref`` in ``world``."""
    st = model.page_state(world, scheme, ref)
    if isinstance(st, ModelError) or st.kind == "none":
        return Node("none", "")
    if st.kind == "present" and st.page is not None and st.page[0] == ZERO_FOLIO:
        return Node("zero page", "")
    flag = "" if st.exclusive is None else ("excl" if st.exclusive else "shared")
    if st.kind == "hwpoison":
        return Node("hwpoison", "")
    if st.kind == "present":
        p = world.proc(ref.proc)
        v = p.vma(ref.mapping) if p is not None else None
        huge = v is not None and (v.huge is not None)
        return Node("PMD / hugetlb" if huge else "present PTE", flag)
    return Node(st.kind, flag)


def category(source: Node, target: Node) -> str | None:
    """How the flag moved between two nodes, or None when there is nothing to draw.

    set: it becomes exclusive; cleared: exclusive becomes maybe shared;
    carried: exclusive stays exclusive under another kind of entry; lost:
    exclusive becomes an entry that records nothing (hwpoison, none, the zero page).
    """
    if source == target:
        return None
    if target.flag == "excl":
        return "carried" if source.flag == "excl" else "set"
    if source.flag != "excl":
        return None
    return "cleared" if target.flag == "shared" else "lost"


def _mm_functions(frame: Any) -> list[str]:
    """The anonlib/mm functions on the stack, innermost first."""
    names = []
    while frame is not None:
        name = frame.f_code.co_name
        if frame.f_code.co_filename.startswith(_MM) and name[0] not in "_<":
            names.append(name)  # the model's own helpers (_name) have no kernel counterpart
        frame = frame.f_back
    return names


def _label(stack: list[str]) -> str:
    if not stack:
        return "?"
    if stack[0].startswith("folio_") and len(stack) > 1:  # an rmap helper: say who called it
        return f"{stack[1]} -> {stack[0]}"
    return stack[0]


def _node_of(m: Mem, scheme: Scheme) -> Node:
    """The node of ``P A[0]`` in a working copy, mid-operation (no garbage collection)."""
    world = World(config=m.config, procs=tuple(m.procs.values()),
                  folios=tuple(m.folios.values()), handles=tuple(m.handles.values()),
                  slots=tuple(m.slots.values()), next_id=m.next_id, copies=m.copies)
    return node(world, scheme)


@contextmanager
def _watching(chain: list[tuple[Node, str]], scheme: Scheme) -> Iterator[None]:
    """Append (node, function) to ``chain`` whenever an entry or flag update moves ``P A[0]``.

    The watch replaces Mem's update methods on the class while the block runs
    and puts them back after it: one :func:`transitions` at a time per process.
    """
    originals: dict[str, Callable[..., Any]] = {
        name: getattr(Mem, name) for name in ("set", "set_vma", "set_exclusive", "clear_exclusive")}

    def wrap(name: str) -> Callable[..., Any]:
        original = originals[name]

        def watched(self: Mem, *args: Any, **kw: Any) -> Any:
            result = original(self, *args, **kw)
            now = _node_of(self, scheme)
            if now != chain[-1][0]:
                chain.append((now, _label(_mm_functions(sys._getframe(1)))))
            return result
        return watched

    try:
        for name in originals:
            setattr(Mem, name, wrap(name))
        yield
    finally:
        for name, original in originals.items():
            setattr(Mem, name, original)


def _steps(chain: list[tuple[Node, str]]) -> list[tuple[Node, Node, str]]:
    """The moves of a chain, one per kernel function.

    Within one function the model may update the page's flag before the
    entry (the kernel clears the entry first, under the page table lock):
    what a reader of the page tables can see is only where the function
    leaves the page, so consecutive updates by the same function are one
    move, named by that function. A "none" between two functions is an
    entry cleared to be filled again and is left out the same way.
    """
    merged: list[tuple[Node, str]] = [chain[0]]
    for n, label in chain[1:]:
        base = label.split(" -> ")[0]
        if len(merged) > 1 and merged[-1][1].split(" -> ")[0] == base:
            merged[-1] = (n, base)
        else:
            merged.append((n, label))
    kept = [c for i, c in enumerate(merged)
            if not (0 < i < len(merged) - 1 and c[0].kind == "none")]
    return [(a[0], b[0], b[1]) for a, b in zip(kept, kept[1:], strict=False) if a[0] != b[0]]


def transitions(scheme: Scheme = MAINLINE) -> list[Edge]:
    """Every distinct edge (category, source, target, function), with the first example found.

    An operation that moves the page several times (a fault, then a
    device-exclusive conversion) gives one edge per move. Deterministic:
    rows and operations are tried in their tables' order and the result is
    sorted.
    """
    ops = {**{name: (op,) for name, op in OPERATIONS.items()}, **EXTRA_OPERATIONS}
    found: dict[tuple[str, Node, Node, str], Edge] = {}
    for row, setup in ENTRY_SETUPS.items():
        try:
            start = build(setup, scheme)
        except ValueError:
            continue
        for seq in ops.values():
            chain = [(node(start, scheme), "")]
            r: model.Step | ModelError = model.Step(start, model.OK)
            now = start
            with _watching(chain, scheme):
                for op in seq:
                    r = model.apply(now, op, scheme)
                    if isinstance(r, ModelError):
                        break
                    now = r.world
            if isinstance(r, ModelError):
                continue
            final = node(r.world, scheme)
            if final != chain[-1][0]:  # changed by no watched update: say so, do not guess
                chain.append((final, "?"))
            example = f"{row}: " + "; ".join(to_text(op) for op in seq)
            for src, dst, fn in _steps(chain):
                cat = category(src, dst)
                key = (cat or "", src, dst, fn)
                if cat is not None and key not in found:
                    found[key] = Edge(cat, src, dst, fn, example)
    return sorted(found.values(), key=lambda e: (CATEGORIES.index(e.category), e.source,
                                                 e.target, e.function))


def edges_text(edges: list[Edge]) -> str:
    """One line per edge, grouped by category."""
    return "\n".join(str(e) for e in edges)


# ------------------------------------------------------------------ picture
#: Where each node sits (x, y): exclusive entries around the present PTE in the
#: middle, each maybe-shared twin further out, where pages come from at the bottom.
_POSITION: dict[Node, tuple[float, float]] = {
    Node("present PTE", "excl"): (0.0, 0.0),
    Node("present PTE", "shared"): (0.0, -4.6),
    Node("PMD / hugetlb", "excl"): (0.0, 4.6),
    Node("PMD / hugetlb", "shared"): (9.0, 4.6),
    Node("swap", "excl"): (-6.8, 2.6),
    Node("swap", "shared"): (-11.3, 4.4),
    Node("migration", "excl"): (-6.8, -1.6),
    Node("migration", "shared"): (-11.3, -4.0),
    Node("device-private", "excl"): (6.0, 1.6),
    Node("device-private", "shared"): (11.3, -0.9),
    Node("device-exclusive", "excl"): (6.0, -3.4),
    Node("device-exclusive", "shared"): (11.0, -3.4),
    Node("none", ""): (-6.0, -5.6),
    Node("zero page", ""): (11.0, -5.6),
    Node("hwpoison", ""): (0.0, -7.6),
}
# colour (Okabe-Ito) and line style: colour is never the only cue
_CAT_STYLE: dict[str, tuple[str, LineStyleType]] = {
    "set": ("#009E73", "-"), "cleared": ("#D55E00", "--"),
    "carried": ("#0072B2", "-"), "lost": ("#000000", ":"),
}
_CAT_WORDS = {"set": "set", "cleared": "cleared: maybe shared from now on",
              "carried": "carried to another kind of entry",
              "lost": "lost: the entry records nothing"}


#: Where along its arc (0 = source, 1 = target) a label may sit, best first.
_LABEL_SPOTS = (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85)


def _place_labels(fig: Any, ax: Any, ends: dict[str, Any], rad: float) -> None:
    """Move each edge label to the first spot on its arc where it overlaps nothing placed.

    The arcs are matplotlib's ``arc3`` curves, quadratic Beziers whose control
    point is computed in display coordinates, so the spots are too. Labels are
    placed against the node boxes and the labels
    already placed, and must stay inside the axes; a label with no free spot
    keeps the least crowded one. The biggest labels go first; the order is
    fixed, so the picture is the same on every run.
    """
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        # matplotlib does not annotate FigureCanvasAgg.get_renderer
        renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    to_screen, to_data = ax.transData, ax.transData.inverted()
    frame = ax.get_window_extent(renderer)
    pad = 6 * fig.dpi / 100  # pixels of clearance around a box or a label
    taken = [p.get_window_extent(renderer).padded(pad) for p in ax.patches
             if str(p.get_gid()).startswith("node:")]
    labels = [t for t in ax.texts if str(t.get_gid()).startswith("label:")]
    # The biggest labels first: they have the fewest free spots.
    labels.sort(key=lambda t: (-t.get_text().count("\n"), -len(t.get_text()), str(t.get_gid())))
    for text in labels:
        gid = str(text.get_gid())
        (ax0, ay0), (bx0, by0) = to_screen.transform(ends[gid[len("label:"):]])
        cx, cy = (ax0 + bx0) / 2 + rad * (by0 - ay0), (ay0 + by0) / 2 - rad * (bx0 - ax0)
        best: tuple[int, tuple[float, float], Any] | None = None
        for t in _LABEL_SPOTS:
            sx = (1 - t) ** 2 * ax0 + 2 * t * (1 - t) * cx + t * t * bx0
            sy = (1 - t) ** 2 * ay0 + 2 * t * (1 - t) * cy + t * t * by0
            text.set_position(to_data.transform((sx, sy)))
            box = text.get_window_extent(renderer).padded(pad)
            inside = (frame.x0 <= box.x0 and box.x1 <= frame.x1
                      and frame.y0 <= box.y0 and box.y1 <= frame.y1)
            clashes = sum(box.overlaps(other) for other in taken) + (0 if inside else 100)
            if best is None or clashes < best[0]:
                best = (clashes, (sx, sy), box)
            if clashes == 0:
                break
        assert best is not None
        text.set_position(to_data.transform(best[1]))
        taken.append(best[2])


def drawn(edges: list[Edge]) -> list[Edge]:
    """The edges the picture draws: all but unmapping (to ``none``), the same for every entry."""
    return [e for e in edges if not (e.category == "lost" and e.target.kind == "none")]


def flag_life_figure(edges: list[Edge]) -> Any:
    """Draw the edges: one box per node, one arrow per (source, target), named by its functions.

    Returns a matplotlib Figure (13 x 9 in; render it at 120 dpi or more).
    Edges to ``none`` (unmapping) are not drawn; the note under the key names
    their function. Each edge's label sits on its arc, at the first of a few
    points along it where the label overlaps no box and no label placed
    before it (``_place_labels``). Artists carry ``gid`` labels
    (``node:present PTE excl``, ``edge:swap excl->present PTE excl``,
    ``label:swap excl->present PTE excl``).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    shown = drawn(edges)
    pairs: dict[tuple[Node, Node], list[Edge]] = {}
    for e in shown:
        pairs.setdefault((e.source, e.target), []).append(e)
    nodes = sorted({n for pair in pairs for n in pair})
    fig = Figure(figsize=(13.0, 9.0), dpi=100)
    ax = fig.add_axes((0.0, 0.08, 1.0, 0.87))
    ax.set_xlim(-13.2, 13.2)
    ax.set_ylim(-8.2, 5.3)
    ax.set_axis_off()
    fig.text(0.5, 0.965, "PG_anon_exclusive across entry types: every move the model of "
             "Linux 6.12 makes", ha="center", fontsize=11, fontweight="bold")
    for n in nodes:
        x, y = _POSITION[n]
        fill = "#c8ebe0" if n.flag == "excl" else "#fbe3b3" if n.flag == "shared" else "#eeeeee"
        ax.add_patch(FancyBboxPatch((x - 1.8, y - 0.45), 3.6, 0.9, zorder=3,
                                    boxstyle="round,pad=0,rounding_size=0.12", facecolor=fill,
                                    edgecolor="#333333", linewidth=0.8, gid=f"node:{n}"))
        ax.text(x, y, {"excl": f"{n.kind}\nexclusive", "shared": f"{n.kind}\nmaybe shared"}
                .get(n.flag, n.kind), ha="center", va="center", fontsize=8.5, fontweight="bold",
                zorder=4)
    ends: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
    for (src, dst), group in pairs.items():
        a, b = _POSITION[src], _POSITION[dst]
        colour, ls = _CAT_STYLE[group[0].category]
        rad = 0.18
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=9, color=colour,
                                     linestyle=ls, linewidth=1.1, shrinkA=16, shrinkB=16,
                                     connectionstyle=f"arc3,rad={rad}", gid=f"edge:{src}->{dst}",
                                     zorder=2))
        ends[f"{src}->{dst}"] = (a, b)
        label = "\n".join(sorted({e.function.replace(" -> ", " >\n  ") for e in group}))
        ax.text(*a, label, fontsize=7.5, ha="center", va="center", color="#000000",
                family="monospace", zorder=5, gid=f"label:{src}->{dst}",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": colour,
                      "linewidth": 0.6})
    _place_labels(fig, ax, ends, rad=0.18)
    for cat, x in zip(CATEGORIES, (0.02, 0.12, 0.47, 0.76), strict=True):
        colour, ls = _CAT_STYLE[cat]
        fig.add_artist(Line2D([x, x + 0.035], [0.065, 0.065], color=colour, linestyle=ls,
                              linewidth=1.4, transform=fig.transFigure))
        fig.text(x + 0.042, 0.065, _CAT_WORDS[cat], fontsize=7.5, va="center")
    gone = sorted({e.function for e in edges if e not in shown})
    if gone:
        fig.text(0.02, 0.025, "Not drawn: unmapping (munmap, MADV_DONTNEED) ends every entry "
                 f"the same way, in {', '.join(gone)}; the flag goes with the freed page.",
                 fontsize=7.5)
    return fig
