"""A World as SVG, in pure Python: the state diagram without matplotlib.

The same picture as :func:`anonlib.views.figure.world_figure` (page tables
on the left, folios and their pages in the middle, swap slots under them,
GUP holders on the right, an arrow from each entry to what it leads to),
drawn as one self-contained ``<svg>`` string. It needs only the standard
library, so it also runs where matplotlib does not: the book's scenario lab
runs the model in the reader's browser (Pyodide) and draws with it.

Both drawings place things by the one layout, :func:`layout`; the styles
(Okabe-Ito colours, each doubled by a hatch, a line style or a word) are
the ones :mod:`anonlib.views.figure` uses, defined here. The SVG defines no
ids (hatches are drawn as clipped lines, arrowheads as triangles), so any
number of them can sit in one page, hidden or not. Elements carry
``data-gid`` labels like the figure's ``gid`` (``entry:P A[0]``,
``page:3.0``, ``arrow:pte:P A[0]->3.0``, ``holder:pin:H``). Deterministic:
the same World gives the same string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..mem import Mem
from ..ops import MapKind
from ..schemes import Scheme
from ..state import ZERO_FOLIO, Entry, EntryKind, Process, Vma, World
from .markup import esc
from .render import OKABE_ITO, entry_fields

#: A line style, by matplotlib's name for it.
LineStyle = Literal["-", "--", ":", "-."]

#: Fill colour, hatch and arrow line style per entry kind.
KIND_STYLE: dict[str, tuple[str, str, LineStyle]] = {
    "present": (OKABE_ITO["blue"], "", "-"),
    "swap": (OKABE_ITO["orange"], "..", "--"),
    "migration": (OKABE_ITO["vermillion"], "//", "--"),
    "device-private": (OKABE_ITO["purple"], "xx", ":"),
    "device-exclusive": (OKABE_ITO["sky"], "\\\\", "-."),
    "hwpoison": (OKABE_ITO["black"], "++", ":"),
    "none": ("#bbbbbb", "", "-"),
}
EXCLUSIVE_FILL = OKABE_ITO["green"]
#: Edge colour, line style and width of the holder of a FOLL_PIN and of a FOLL_GET reference.
HOLDER_STYLE: dict[str, tuple[str, LineStyle, float]] = {
    "pin": (OKABE_ITO["black"], "-", 1.6), "get": ("#555555", "--", 1.2)}

# x positions (layout units; the drawing spans 0..12)
X_PROC, X_MAP, X_ENTRY, W_ENTRY = 0.05, 0.25, 0.55, 3.1
X_FOLIO, W_FOLIO = 4.9, 3.75
X_PAGE, W_PAGE, W_FLAG = 5.05, 3.2, 0.6
X_HOLDER, W_HOLDER = 9.35, 2.6
XMAX = 12.0
H_BOX = 0.78  # box height in row units


def rgb(color: str) -> tuple[int, int, int]:
    """``#RRGGBB`` as three integers."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def short(value: str, width: int = 10) -> str:
    """A page's data as the drawing shows it: its repr, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 2] + "…'"


def entry_label(m: Mem, e: Entry | None, index: int, huge: bool, idx: str) -> str:
    """The short label of an entry box, from the fields the text and the table use."""
    f = dict(entry_fields(m, e, index, huge))
    kind = f["kind"]
    if kind == "swap":
        return f"{idx} swap{' ' + f['excl'] if f['excl'] else ''}"
    if kind == "migration":
        return f"{idx} migration {f['write'].replace('exclusive', 'excl')}"
    if kind in ("none", "hwpoison"):
        return f"{idx} {kind}"
    return f"{idx} {kind} {f['write']}"


@dataclass(frozen=True)
class Left:
    """One row of the page-table column: a process, a mapping, or an entry."""

    what: str  # proc, vma, entry
    key: str
    proc: Process
    vma: Vma | None = None
    index: int = -1  # -1: the huge (PMD / hugetlb) entry


@dataclass
class Layout:
    """Where everything goes, in rows from the top (``top`` rows in all, 0.5 = first row)."""

    left: list[Left] = field(default_factory=list)
    page_rows: dict[tuple[int, int], float] = field(default_factory=dict)
    folio_span: dict[int, tuple[float, float]] = field(default_factory=dict)
    zero_row: float | None = None
    slots_label: float = 0.0
    slot_rows: dict[int, float] = field(default_factory=dict)
    holder_rows: dict[str, float] = field(default_factory=dict)
    top: float = 6.0


def vma_caption(v: Vma) -> str:
    """The label of a mapping's row: name, kind, size and protection."""
    return f"{v.name}: {v.kind.value} {v.npages} {'rw' if v.writable else 'ro'}"


def entry_row(m: Mem, v: Vma, index: int
              ) -> tuple[Entry | None, str, str, bool, str]:
    """An entry row (``index`` < 0: the huge entry): the entry, its label, its kind,
    whether it is the huge entry and its level (``pmd``, ``hugetlb``, or "" for a PTE)."""
    huge = index < 0
    e = v.huge if huge else v.ptes[index]
    level = ("hugetlb" if v.kind is MapKind.HUGETLB else "pmd") if huge else ""
    text = entry_label(m, e, 0 if huge else index, huge,
                       f"[*] {level}" if huge else f"[{index}]")
    return e, text, "none" if e is None else e.kind.value, huge, level


def layout(world: World) -> Layout:
    """The rows of every box: a pure function of the World (the figure and the SVG share it)."""
    lay = Layout()
    left = lay.left
    for p in world.procs:
        left.append(Left("proc", p.name, p))
        for v in p.vmas:
            left.append(Left("vma", f"{p.name} {v.name}", p, v))
            if v.huge is not None or v.kind is MapKind.HUGETLB:  # hugetlb: never PTEs
                left.append(Left("entry", f"{p.name} {v.name}[*]", p, v))
            else:
                left += [Left("entry", f"{p.name} {v.name}[{i}]", p, v, i)
                         for i in range(len(v.ptes)) if i not in v.holes]
    mid = 0.0
    zero_used = any(
        e is not None and e.kind is EntryKind.PRESENT and e.folio == ZERO_FOLIO
        for p in world.procs for v in p.vmas for e in ((v.huge,) + v.ptes)
    ) or any(h.folio == ZERO_FOLIO for h in world.handles)
    if zero_used:
        lay.zero_row, mid = 0.5, 1.4
    for f in world.folios:
        start = mid
        mid += 1.0  # the folio's label
        for i in range(len(f.pages)):
            lay.page_rows[(f.id, i)] = mid + 0.5
            mid += 1.0
        lay.folio_span[f.id] = (start, mid + 0.1)
        mid += 0.4
    if world.slots:
        lay.slots_label = mid + 0.7
        mid += 1.2
        for sl in world.slots:
            lay.slot_rows[sl.id] = mid + 0.5
            mid += 1.0
    # holders sit beside the page they hold, pushed down to avoid overlaps
    next_free = 0.0
    pr = lay.page_rows
    for h in sorted(world.handles, key=lambda h: (pr.get((h.folio, h.page), 0.0), h.name)):
        want = lay.zero_row if h.folio == ZERO_FOLIO else pr.get((h.folio, h.page))
        at = max(want if want is not None else 0.5, next_free + 0.5)
        lay.holder_rows[h.name] = at
        next_free = at + 0.6
    lay.top = max(float(len(left)), mid, next_free, 6.0)
    return lay


# ------------------------------------------------------------------------- SVG
_WIDTH = 800  # px: the figure's 8 in at 100 dpi
_ROW = 20.0  # px per row: the figure's 0.2 in
_PAD = 4.0
_UNIT = (_WIDTH - 2 * _PAD) / XMAX  # px per layout unit of x
_DASH = {"-": "", "--": "5,3", ":": "1.5,2.5", "-.": "6,2,1.5,2"}


def _n(v: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros (stable text)."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


class _Svg:
    def __init__(self, head: float, fs: float) -> None:
        self.parts: list[str] = []
        self.head = head  # rows above the first row (titles)
        self.fs = fs

    def x(self, u: float) -> float:
        return _PAD + u * _UNIT

    def y(self, row: float) -> float:
        return _PAD + (self.head + row) * _ROW

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str,
             sw: float, gid: str = "", rx: float = 0.0, dash: str = "",
             opacity: float = 1.0) -> None:
        attrs = (f'x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="{_n(sw)}"')
        if rx:
            attrs += f' rx="{_n(rx)}"'
        if dash:
            attrs += f' stroke-dasharray="{dash}"'
        if opacity != 1.0:
            attrs += f' fill-opacity="{_n(opacity)}"'
        if gid:
            attrs += f' data-gid="{esc(gid)}"'
        self.parts.append(f"<rect {attrs}/>")

    def text(self, x: float, y: float, s: str, gid: str = "", bold: bool = False,
             color: str = "#000000", size: float | None = None, anchor: str = "") -> None:
        attrs = f'x="{_n(x)}" y="{_n(y)}"'
        if size is not None:
            attrs += f' font-size="{_n(size)}"'
        if bold:
            attrs += ' font-weight="bold"'
        if color != "#000000":
            attrs += f' fill="{color}"'
        if anchor:
            attrs += f' text-anchor="{anchor}"'
        if gid:
            attrs += f' data-gid="{esc(gid)}"'
        self.parts.append(f"<text {attrs}>{esc(s)}</text>")

    def hatch(self, x: float, y: float, w: float, h: float, kind: str, color: str) -> None:
        """The figure's hatches, as lines (and dots) computed inside the box: no ids."""
        segs: list[tuple[float, float, float, float]] = []
        step = 5.0
        if kind in ("//", "////", "xx"):  # rising lines: x - (y0 + h - y) = c
            segs += _diagonals(x, y, w, h, step if kind != "////" else 3.5, rising=True)
        if kind in ("\\\\", "xx"):
            segs += _diagonals(x, y, w, h, step, rising=False)
        if kind == "++":
            segs += [(x, y + k, x + w, y + k) for k in _steps(h, step)]
            segs += [(x + k, y, x + k, y + h) for k in _steps(w, step)]
        if segs:
            d = "".join(f"M{_n(a)} {_n(b)}L{_n(c)} {_n(e)}" for a, b, c, e in segs)
            self.parts.append(f'<path d="{d}" stroke="{color}" stroke-width="0.7" fill="none"/>')
        if kind == "..":
            dots = "".join(f"M{_n(x + i)} {_n(y + j)}h0.01"
                           for i in _steps(w, 4.0) for j in _steps(h, 4.0))
            self.parts.append(f'<path d="{dots}" stroke="{color}" stroke-width="1.6" '
                              'stroke-linecap="round" fill="none"/>')

    def arrow(self, x0: float, y0: float, x1: float, y1: float, color: str, ls: str,
              lw: float, gid: str) -> None:
        """A line ending in a filled triangle at (x1, y1)."""
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy) or 1.0
        ux, uy = dx / length, dy / length
        x1, y1 = x1 - 2 * ux, y1 - 2 * uy  # as matplotlib's shrinkB
        x0, y0 = x0 + ux, y0 + uy
        head = 4.0 + lw
        bx, by = x1 - head * ux, y1 - head * uy
        px, py = -uy * head * 0.45, ux * head * 0.45
        dash = _DASH.get(ls, "")
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<g data-gid="{esc(gid)}"><path d="M{_n(x0)} {_n(y0)}L{_n(bx)} {_n(by)}" '
            f'stroke="{color}" stroke-width="{_n(lw)}" fill="none"{extra}/>'
            f'<path d="M{_n(x1)} {_n(y1)}L{_n(bx + px)} {_n(by + py)}L{_n(bx - px)} '
            f'{_n(by - py)}Z" fill="{color}"/></g>')


def _steps(span: float, step: float) -> list[float]:
    out, k = [], step / 2
    while k < span:
        out.append(k)
        k += step
    return out


def _diagonals(x: float, y: float, w: float, h: float, step: float,
               rising: bool) -> list[tuple[float, float, float, float]]:
    """45-degree lines ``step`` apart, clipped to the box (x, y, w, h)."""
    segs = []
    c = step / 2
    while c < w + h:
        # the line through (x + c, y + h) going up-right (rising) or (x + c, y) down-right
        a0, a1 = max(0.0, c - h), min(w, c)  # x offsets where the line is inside the box
        if a1 > a0:
            if rising:
                segs.append((x + a0, y + h - (c - a0), x + a1, y + h - (c - a1)))
            else:
                segs.append((x + a0, y + (c - a0), x + a1, y + (c - a1)))
        c += step
    return segs


def world_svg(world: World, scheme: Scheme, title: str | None = None) -> str:
    """``world`` (under ``scheme``) as an SVG string, 800 px wide, 20 px a row.

    ``title`` goes above the columns. The key is separate, as HTML
    (:func:`legend_html`): a player shows one key for all its frames.
    """
    m = Mem(world, scheme)
    lay = layout(world)
    head = 1.0 + (1.0 if title else 0.0)
    rows = lay.top + head + 0.4
    height = rows * _ROW + 2 * _PAD
    fs = 11.0
    c = _Svg(head, fs)
    R = _ROW
    hb = H_BOX * R
    c.parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="anonlib-svg" '
        f'viewBox="0 0 {_WIDTH} {_n(height)}" width="{_WIDTH}" height="{_n(height)}" '
        f'role="img" aria-label="{esc(title or "the state")}" '
        f'font-family="DejaVu Sans,Verdana,system-ui,sans-serif" font-size="{_n(fs)}" '
        'dominant-baseline="central" style="max-width:100%;height:auto;background:#fff">')

    for x, text in ((X_PROC, "page tables"), (X_FOLIO, "physical memory"),
                    (X_HOLDER, "GUP references" if world.handles else "")):
        if text:
            c.text(c.x(x), c.y(-0.45), text, bold=True, color="#333333", size=fs + 0.5)
    if title:
        c.text(c.x(XMAX / 2), c.y(-1.35), title, size=fs + 1, anchor="middle", gid="title")
    if not world.procs:
        c.text(c.x(X_ENTRY), c.y(0.5), "(no processes yet)", color="#555555", gid="label:empty")
    if not world.folios and not world.slots:
        c.text(c.x(X_FOLIO + 0.1), c.y(0.5), "(no anonymous memory in use)", color="#555555")

    # --- physical memory --------------------------------------------------------------
    flag = scheme.anon_exclusive
    for f in world.folios:
        start, end = lay.folio_span[f.id]
        c.rect(c.x(X_FOLIO), c.y(start), W_FOLIO * _UNIT, (end - start) * R, "#f4f4f4",
               "#777777", 0.8, gid=f"folio:{f.id}", rx=0.15 * _UNIT)
        sc = " swapcache" if f.swapcache is not None else ""
        c.text(c.x(X_FOLIO + 0.1), c.y(start + 0.5), f"folio {f.id} {f.kind.value} "
               f"ref={m.refcount(f.id)} pin={m.pincount(f.id)}{sc}", gid=f"label:folio {f.id}")
        for i, pg in enumerate(f.pages):
            r = lay.page_rows[(f.id, i)]
            top = c.y(r) - hb / 2
            excl = flag and pg.anon_exclusive
            c.rect(c.x(X_PAGE), top, W_FLAG * _UNIT, hb, EXCLUSIVE_FILL if excl else "#ffffff",
                   "#333333", 0.6, gid=f"flag:{f.id}.{i}")
            if flag and not excl:
                c.hatch(c.x(X_PAGE), top, W_FLAG * _UNIT, hb, "////", "#333333")
            c.rect(c.x(X_PAGE), top, W_PAGE * _UNIT, hb, "none", "#333333", 0.8,
                   gid=f"page:{f.id}.{i}")
            poison = " hwpoison" if pg.hwpoison else ""
            c.text(c.x(X_PAGE + W_FLAG + 0.1), c.y(r), f"{f.id}.{i} {short(pg.data)} "
                   f"map={m.mapcount(f.id, i)}{poison}", gid=f"label:page {f.id}.{i}")
    if lay.zero_row is not None:
        c.rect(c.x(X_PAGE), c.y(lay.zero_row) - hb / 2, W_PAGE * _UNIT, hb, "#eeeeee",
               "#333333", 0.8, gid="page:zero")
        c.text(c.x(X_PAGE + 0.1), c.y(lay.zero_row), "zero page '0'", gid="label:zero page")
    if world.slots:
        c.text(c.x(X_FOLIO + 0.1), c.y(lay.slots_label), "swap", bold=True)
        color, hatch, _ls = KIND_STYLE["swap"]
        for sl in world.slots:
            r = lay.slot_rows[sl.id]
            top = c.y(r) - hb / 2
            c.rect(c.x(X_PAGE), top, W_FLAG * _UNIT, hb, "#fff4dc", color, 0.8)
            c.hatch(c.x(X_PAGE), top, W_FLAG * _UNIT, hb, hatch, color)
            c.rect(c.x(X_PAGE), top, W_PAGE * _UNIT, hb, "none", color, 0.8,
                   gid=f"slot:{sl.id}")
            c.text(c.x(X_PAGE + W_FLAG + 0.1), c.y(r), f"slot {sl.id} {short(sl.data)} "
                   f"count={m.swap_count(sl.id)}", gid=f"label:swap slot {sl.id}")

    # --- page tables and arrows -------------------------------------------------------
    for i, row in enumerate(lay.left):
        r = i + 0.5
        if row.what == "proc":
            pinned = " (MMF_HAS_PINNED)" if row.proc.has_pinned else ""
            c.text(c.x(X_PROC), c.y(r), f"process {row.key}{pinned}", bold=True,
                   gid=f"label:process {row.key}")
            continue
        assert row.vma is not None
        v = row.vma
        if row.what == "vma":
            c.text(c.x(X_MAP), c.y(r), vma_caption(v), gid=f"label:{row.key}")
            continue
        e, text, kind, huge, level = entry_row(m, v, row.index)
        color, hatch, ls = KIND_STYLE[kind]
        top = c.y(r) - hb / 2
        c.rect(c.x(X_ENTRY), top, W_ENTRY * _UNIT, hb, color, color,
               1.0 if e is not None else 0.5, gid=f"entry:{row.key}",
               opacity=0.25 if e is not None else 0.1)
        if hatch:  # the kind's hatch in a strip at the right end, clear of the label
            c.hatch(c.x(X_ENTRY + W_ENTRY - W_FLAG), top, W_FLAG * _UNIT, hb, hatch, color)
            c.rect(c.x(X_ENTRY + W_ENTRY - W_FLAG), top, W_FLAG * _UNIT, hb, "none", color, 1.0)
        c.text(c.x(X_ENTRY + 0.1), c.y(r), text,
               color="#000000" if e is not None else "#666666", gid=f"label:{row.key}")
        if e is None:
            continue
        x0, y0 = c.x(X_ENTRY + W_ENTRY), c.y(r)
        if e.kind is EntryKind.SWAP:
            if e.slot in lay.slot_rows:
                c.arrow(x0, y0, c.x(X_PAGE), c.y(lay.slot_rows[e.slot]), color, ls, 1.2,
                        f"arrow:swap:{row.key}->slot {e.slot}")
        elif e.folio == ZERO_FOLIO:
            if lay.zero_row is not None:
                c.arrow(x0, y0, c.x(X_PAGE), c.y(lay.zero_row), color, ls, 1.2,
                        f"arrow:{level or 'pte'}:{row.key}->zero page")
        elif huge and e.folio in lay.folio_span:
            start, end = lay.folio_span[e.folio]
            name = level if kind == "present" else kind
            c.arrow(x0, y0, c.x(X_FOLIO), c.y((start + end) / 2), color, ls, 2.6,
                    f"arrow:{name}:{row.key}->folio {e.folio}")
        elif (e.folio, e.page) in lay.page_rows:
            name = "pte" if kind == "present" else kind
            c.arrow(x0, y0, c.x(X_PAGE), c.y(lay.page_rows[(e.folio, e.page)]), color, ls,
                    1.2, f"arrow:{name}:{row.key}->{e.folio}.{e.page}")

    # --- GUP holders -------------------------------------------------------------------
    for h in world.handles:
        r = lay.holder_rows[h.name]
        kind = "pin" if h.pin else "get"
        color, ls, lw = HOLDER_STYLE[kind]
        what = "DMA" if h.pin else "pipe"
        flags = ("PIN" if h.pin else "GET") + (" rw" if h.write else " ro")
        flags += " LT" if h.longterm else ""
        c.rect(c.x(X_HOLDER), c.y(r) - hb / 2, W_HOLDER * _UNIT, hb, "#ffffff", color, lw,
               gid=f"holder:{kind}:{h.name}", rx=0.0 if h.pin else 0.35 * _UNIT,
               dash=_DASH.get(ls, ""))
        c.text(c.x(X_HOLDER + 0.1), c.y(r), f"{what} {h.name}: {flags}", gid=f"label:ref {h.name}")
        if h.folio == ZERO_FOLIO:
            target_row, target = lay.zero_row, "zero page"
        else:
            target_row, target = lay.page_rows.get((h.folio, h.page)), f"{h.folio}.{h.page}"
        if target_row is not None:
            c.arrow(c.x(X_HOLDER), c.y(r), c.x(X_PAGE + W_PAGE), c.y(target_row), color, ls, lw,
                    f"arrow:{kind}:{h.name}->{target}")
    c.parts.append("</svg>")
    return "".join(c.parts)


# ------------------------------------------------------------------ the key, as HTML
_SWATCH = "display:inline-block;width:18px;height:11px;vertical-align:-1px;margin-right:4px;"


def _hatch_css(kind: str, color: str) -> str:
    line = f"{color} 0 1px,transparent 1px 4px"
    return {
        "..": f"radial-gradient({color} 0.9px,transparent 1.3px) 0 0/4px 4px,",
        "//": f"repeating-linear-gradient(-45deg,{line}),",
        "\\\\": f"repeating-linear-gradient(45deg,{line}),",
        "xx": f"repeating-linear-gradient(45deg,{line}),repeating-linear-gradient(-45deg,{line}),",
        "++": f"repeating-linear-gradient(0deg,{line}),repeating-linear-gradient(90deg,{line}),",
    }.get(kind, "")


def legend_html(flag: bool = True) -> str:
    """The drawing's key as HTML (inline CSS swatches, hatches as CSS gradients)."""
    items = []
    for kind in ("present", "swap", "migration", "device-private", "device-exclusive",
                 "hwpoison"):
        color, hatch, _ls = KIND_STYLE[kind]
        r, g, b = rgb(color)
        tint = f"rgba({r},{g},{b},0.25)"
        items.append((f"background:{_hatch_css(hatch, color)}{tint};border:1px solid {color}",
                      f"{kind} entry"))
    if flag:
        items.append((f"background:{EXCLUSIVE_FILL};border:1px solid #333", "PG_anon_exclusive"))
        items.append(("background:repeating-linear-gradient(-45deg,#333 0 1px,#fff 1px 3px);"
                      "border:1px solid #333", "flag clear (shared)"))
    blue = KIND_STYLE["present"][0]
    items.append((f"height:0;border-top:2px solid {blue};margin-bottom:4px", "PTE"))
    items.append((f"height:0;border-top:4px solid {blue};margin-bottom:3px", "PMD / hugetlb"))
    items.append(("height:0;border-top:2px solid #000;margin-bottom:4px", "FOLL_PIN (DMA device)"))
    items.append(("height:0;border-top:2px dashed #555;margin-bottom:4px", "FOLL_GET (pipe)"))
    spans = "".join(f'<span style="margin-right:12px;white-space:nowrap">'
                    f'<span style="{_SWATCH}{css}"></span>{label}</span>' for css, label in items)
    return (f'<div class="anonlib-key" style="font:11px/1.8 system-ui,sans-serif;color:#000;'
            f'background:#fff">{spans}</div>')
