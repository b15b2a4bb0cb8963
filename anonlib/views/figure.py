"""A World as a matplotlib figure: page tables on the left, physical memory on the right.

Each process's page-table entries are boxes on the left, coloured and
hatched by entry kind; folios and their pages are boxes in the middle, a
page filled green when PG_anon_exclusive is set and hatched when it is
clear; swap slots sit under the folios; GUP references are drawn as the
outside holders they stand for (a pipe for FOLL_GET, a DMA device for
FOLL_PIN) on the right. Arrows show what each entry leads to, in a style
per entry kind. Colours are the Okabe-Ito palette, and every colour is
doubled by a hatch, a line style or a word, so the figure reads without
colour vision.

The layout is a pure function of the World (:func:`anonlib.views.svg.layout`,
shared with the SVG drawing, which needs no matplotlib): the same World
always gives the same figure. Artists carry ``gid`` labels (``entry:P A[0]``, ``page:3.0``,
``arrow:pte:P A[0]->3.0``, ``holder:pin:H``, ...) so tests can check the
structure without looking at pixels.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Affine2D, Bbox, BboxTransformTo, Transform, TransformedBbox

from ..mem import Mem
from ..schemes import Scheme
from ..state import ZERO_FOLIO, EntryKind, World
from .render import OKABE_ITO
from .svg import (
    EXCLUSIVE_FILL,
    H_BOX,
    HOLDER_STYLE,
    KIND_STYLE,
    W_ENTRY,
    W_FLAG,
    W_FOLIO,
    W_HOLDER,
    W_PAGE,
    X_ENTRY,
    X_FOLIO,
    X_HOLDER,
    X_MAP,
    X_PAGE,
    X_PROC,
    XMAX,
    entry_row,
    layout,
    legend_html,
    short,
    vma_caption,
)

if TYPE_CHECKING:
    from matplotlib.typing import LineStyleType

__all__ = ["EXCLUSIVE_FILL", "HOLDER_STYLE", "KIND_STYLE", "WorldFigure", "figure_png",
           "legend_html", "world_figure"]

# The styles and the layout are shared with the SVG drawing (anonlib.views.svg).
_X_PROC, _X_MAP, _X_ENTRY, _W_ENTRY = X_PROC, X_MAP, X_ENTRY, W_ENTRY
_X_FOLIO, _W_FOLIO = X_FOLIO, W_FOLIO
_X_PAGE, _W_PAGE, _W_FLAG = X_PAGE, W_PAGE, W_FLAG
_X_HOLDER, _W_HOLDER = X_HOLDER, W_HOLDER
_XMAX = XMAX
_H_BOX = H_BOX
_short = short


class _Canvas:
    """Where artists go, and the transforms that place them.

    ``data`` maps the layout's units (x 0.._XMAX, y rows from the bottom) to
    the display; ``box`` maps the unit square to the drawing area (the key is
    placed in those units). On a figure of its own, artists go straight onto
    the Figure: no Axes, whose set-up and per-artist clipping cost more than
    the drawing itself.
    """

    def __init__(self, sink: Figure | Axes, data: Transform, box: Transform, fs: float) -> None:
        self.sink = sink
        self.data = data
        self.box = box
        self.fs = fs

    def add(self, artist: Artist) -> None:
        if not artist.is_transform_set():
            artist.set_transform(self.data)
        if isinstance(self.sink, Figure):
            self.sink.add_artist(artist, clip=False)
        else:
            self.sink.add_artist(artist)

    def text(self, x: float, y: float, s: str, gid: str | None = None, **kw: Any) -> None:
        kw.setdefault("fontsize", self.fs)
        kw.setdefault("va", "center")
        t = Text(x, y, s, **kw)
        if gid:
            t.set_gid(gid)
        self.add(t)

    def arrow(self, start: tuple[float, float], end: tuple[float, float], color: str,
              ls: LineStyleType, lw: float, gid: str) -> None:
        self.add(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=7, color=color,
                                 linestyle=ls, linewidth=lw, shrinkA=1, shrinkB=2, gid=gid,
                                 transform=self.data))


class WorldFigure(Figure):
    """A figure that shows itself as a PNG when it is a notebook cell's value.

    IPython draws a matplotlib Figure only once pyplot has set up its inline
    backend; :func:`world_figure` never imports pyplot, so without this a cell
    ending in ``world_figure(...)`` showed ``<Figure size ... with 0 Axes>``.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def world_figure(world: World, scheme: Scheme, ax: Axes | None = None,
                 title: str | None = None, legend: bool = True) -> Figure:
    """Draw ``world`` (under ``scheme``) and return the figure (8 x 5 in when ``ax`` is None).

    With ``ax``, draws into it (its figure is returned). ``title`` goes above
    the columns; ``legend`` adds the key under them.
    """
    m = Mem(world, scheme)
    own = ax is None

    lay = layout(world)
    left, page_rows, folio_span = lay.left, lay.page_rows, lay.folio_span
    zero_row, slots_label, slot_rows = lay.zero_row, lay.slots_label, lay.slot_rows
    holder_rows, top = lay.holder_rows, lay.top
    head = 1.0 if title else 0.0
    span = top + 0.9 + head  # the layout's height, in rows
    fig: Figure
    if ax is None:
        # 8 in wide; 0.2 in a row up to 5 in, so small worlds give short figures
        key = 0.5 if legend else 0.0
        height = min(5.0, max(2.0, 0.2 * span + key + 0.1))
        fig = WorldFigure(figsize=(8, height), dpi=100)
        rect = Bbox.from_bounds(0.01, (key + 0.05) / height, 0.98, 1 - (key + 0.1) / height)
        box: Transform = BboxTransformTo(TransformedBbox(rect, fig.transFigure))
        data: Transform = Affine2D().scale(1 / _XMAX, 1 / span) + box
        area_in = height * rect.height
        c = _Canvas(fig, data, box, 0.0)
    else:
        fig_ = ax.get_figure()
        assert isinstance(fig_, Figure)
        fig = fig_
        ax.set_axis_off()
        ax.set_xlim(0, _XMAX)
        ax.set_ylim(0, span)
        area_in = fig.get_figheight() * ax.get_position().height
        c = _Canvas(ax, ax.transData, ax.transAxes, 0.0)
    c.fs = max(4.5, min(8.5, 0.55 * area_in * 72 / span))

    def y(row: float) -> float:
        return top - row


    # --- titles ----------------------------------------------------------------------
    for x, label in ((_X_PROC, "page tables"), (_X_FOLIO, "physical memory"),
                     (_X_HOLDER, "GUP references" if world.handles else "")):
        if label:
            c.text(x, top + 0.45, label, fontsize=c.fs + 0.5, fontweight="bold", color="#333333")
    if title:
        c.text(_XMAX / 2, top + 1.35, title, fontsize=c.fs + 1, ha="center", gid="title")

    if not world.procs:
        c.text(_X_ENTRY, y(0.5), "(no processes yet)", color="#555555", gid="label:empty")
    if not world.folios and not world.slots:
        c.text(_X_FOLIO + 0.1, y(0.5), "(no anonymous memory in use)", color="#555555")

    # --- physical memory --------------------------------------------------------------
    flag = scheme.anon_exclusive
    for f in world.folios:
        start, end = folio_span[f.id]
        c.add(FancyBboxPatch((_X_FOLIO, y(end)), _W_FOLIO, end - start,
                             boxstyle="round,pad=0,rounding_size=0.15", facecolor="#f4f4f4",
                             edgecolor="#777777", linewidth=0.8, gid=f"folio:{f.id}"))
        sc = " swapcache" if f.swapcache is not None else ""
        c.text(_X_FOLIO + 0.1, y(start + 0.5), f"folio {f.id} {f.kind.value} "
               f"ref={m.refcount(f.id)} pin={m.pincount(f.id)}{sc}", gid=f"label:folio {f.id}")
        for i, pg in enumerate(f.pages):
            r = page_rows[(f.id, i)]
            if not flag:
                face, hatch = "#ffffff", ""
            elif pg.anon_exclusive:
                face, hatch = EXCLUSIVE_FILL, ""
            else:
                face, hatch = "#ffffff", "////"
            c.add(Rectangle((_X_PAGE, y(r) - _H_BOX / 2), _W_FLAG, _H_BOX, facecolor=face,
                            hatch=hatch, edgecolor="#333333", linewidth=0.6,
                            gid=f"flag:{f.id}.{i}"))
            c.add(Rectangle((_X_PAGE, y(r) - _H_BOX / 2), _W_PAGE, _H_BOX, facecolor="none",
                            edgecolor="#333333", linewidth=0.8, gid=f"page:{f.id}.{i}"))
            poison = " hwpoison" if pg.hwpoison else ""
            c.text(_X_PAGE + _W_FLAG + 0.1, y(r), f"{f.id}.{i} {_short(pg.data)} "
                   f"map={m.mapcount(f.id, i)}{poison}", gid=f"label:page {f.id}.{i}")
    if zero_row is not None:
        c.add(Rectangle((_X_PAGE, y(zero_row) - _H_BOX / 2), _W_PAGE, _H_BOX,
                        facecolor="#eeeeee", edgecolor="#333333", linewidth=0.8, gid="page:zero"))
        c.text(_X_PAGE + 0.1, y(zero_row), "zero page '0'", gid="label:zero page")
    if world.slots:
        c.text(_X_FOLIO + 0.1, y(slots_label), "swap", fontweight="bold")
        color, hatch, _ls = KIND_STYLE["swap"]
        for sl in world.slots:
            r = slot_rows[sl.id]
            c.add(Rectangle((_X_PAGE, y(r) - _H_BOX / 2), _W_FLAG, _H_BOX,
                            facecolor="#fff4dc", hatch=hatch, edgecolor=color, linewidth=0.8))
            c.add(Rectangle((_X_PAGE, y(r) - _H_BOX / 2), _W_PAGE, _H_BOX, facecolor="none",
                            edgecolor=color, linewidth=0.8, gid=f"slot:{sl.id}"))
            c.text(_X_PAGE + _W_FLAG + 0.1, y(r), f"slot {sl.id} {_short(sl.data)} "
                   f"count={m.swap_count(sl.id)}", gid=f"label:swap slot {sl.id}")

    # --- page tables and arrows -------------------------------------------------------
    for i, row in enumerate(left):
        r = i + 0.5
        if row.what == "proc":
            pinned = " (MMF_HAS_PINNED)" if row.proc.has_pinned else ""
            c.text(_X_PROC, y(r), f"process {row.key}{pinned}", fontweight="bold",
                   gid=f"label:process {row.key}")
            continue
        assert row.vma is not None
        v = row.vma
        if row.what == "vma":
            c.text(_X_MAP, y(r), vma_caption(v), gid=f"label:{row.key}")
            continue
        e, label, kind, huge, level = entry_row(m, v, row.index)
        color, hatch, ls = KIND_STYLE[kind]
        c.add(Rectangle((_X_ENTRY, y(r) - _H_BOX / 2), _W_ENTRY, _H_BOX,
                        facecolor=to_rgba(color, 0.25 if e is not None else 0.1),
                        edgecolor=color, linewidth=1.0 if e is not None else 0.5,
                        gid=f"entry:{row.key}"))
        if hatch:  # the kind's hatch in a strip at the right end, clear of the label
            c.add(Rectangle((_X_ENTRY + _W_ENTRY - _W_FLAG, y(r) - _H_BOX / 2), _W_FLAG, _H_BOX,
                            facecolor="none", hatch=hatch, edgecolor=color, linewidth=1.0))
        c.text(_X_ENTRY + 0.1, y(r), label, color="#000000" if e is not None else "#666666",
               gid=f"label:{row.key}")
        if e is None:
            continue
        start_xy = (_X_ENTRY + _W_ENTRY, y(r))
        if e.kind is EntryKind.SWAP:
            if e.slot in slot_rows:
                c.arrow(start_xy, (_X_PAGE, y(slot_rows[e.slot])), color, ls, 1.2,
                        f"arrow:swap:{row.key}->slot {e.slot}")
        elif e.folio == ZERO_FOLIO:
            if zero_row is not None:
                c.arrow(start_xy, (_X_PAGE, y(zero_row)), color, ls, 1.2,
                        f"arrow:{level or 'pte'}:{row.key}->zero page")
        elif huge and e.folio in folio_span:
            start, end = folio_span[e.folio]
            name = level if kind == "present" else kind
            c.arrow(start_xy, (_X_FOLIO, y((start + end) / 2)), color, ls, 2.6,
                    f"arrow:{name}:{row.key}->folio {e.folio}")
        elif (e.folio, e.page) in page_rows:
            name = "pte" if kind == "present" else kind
            c.arrow(start_xy, (_X_PAGE, y(page_rows[(e.folio, e.page)])), color, ls, 1.2,
                    f"arrow:{name}:{row.key}->{e.folio}.{e.page}")

    # --- GUP holders -------------------------------------------------------------------
    for h in world.handles:
        r = holder_rows[h.name]
        kind = "pin" if h.pin else "get"
        color, ls, lw = HOLDER_STYLE[kind]
        what = "DMA" if h.pin else "pipe"
        flags = ("PIN" if h.pin else "GET") + (" rw" if h.write else " ro")
        flags += " LT" if h.longterm else ""
        c.add(FancyBboxPatch((_X_HOLDER, y(r) - _H_BOX / 2), _W_HOLDER, _H_BOX,
                             boxstyle=("square,pad=0" if h.pin else
                                       "round,pad=0,rounding_size=0.35"),
                             facecolor="#ffffff", edgecolor=color, linewidth=lw, linestyle=ls,
                             gid=f"holder:{kind}:{h.name}"))
        c.text(_X_HOLDER + 0.1, y(r), f"{what} {h.name}: {flags}", gid=f"label:ref {h.name}")
        if h.folio == ZERO_FOLIO:
            target_row, target = zero_row, "zero page"
        else:
            target_row, target = page_rows.get((h.folio, h.page)), f"{h.folio}.{h.page}"
        if target_row is not None:
            c.arrow((_X_HOLDER, y(r)), (_X_PAGE + _W_PAGE, y(target_row)), color, ls, lw,
                    f"arrow:{kind}:{h.name}->{target}")

    if legend:
        if own:  # the key's rows are 0.22 in apart whatever the figure's height
            _legend(c, flag, y0=-0.16 / area_in, dy=0.22 / area_in, h=0.13 / area_in)
        else:
            _legend(c, flag)
    return fig


def _legend(c: _Canvas, flag: bool, y0: float = -0.035, dy: float = 0.05,
            h: float = 0.03) -> None:
    """The key, drawn by hand (matplotlib's Legend costs ~30 ms a figure).

    In axes coordinates: the first row at ``y0`` (under the axes by default),
    rows ``dy`` apart, sample boxes ``h`` high.
    """
    fs = 6.5
    items: list[tuple[str, Artist]] = []
    for kind in ("present", "swap", "migration", "device-private", "device-exclusive",
                 "hwpoison"):
        color, hatch, _ls = KIND_STYLE[kind]
        items.append((kind, Rectangle((0, 0), 1, 1, facecolor=to_rgba(color, 0.25),
                                      hatch=hatch, edgecolor=color, linewidth=1.0)))
    if flag:
        items.append(("PG_anon_exclusive", Rectangle((0, 0), 1, 1, facecolor=EXCLUSIVE_FILL,
                                                     edgecolor="#333333", linewidth=0.6)))
        items.append(("flag clear", Rectangle((0, 0), 1, 1, facecolor="#ffffff", hatch="////",
                                              edgecolor="#333333", linewidth=0.6)))
    blue = KIND_STYLE["present"][0]
    items.append(("PTE", Line2D([0, 1], [0.5, 0.5], color=blue, linewidth=1.2)))
    items.append(("PMD/hugetlb", Line2D([0, 1], [0.5, 0.5], color=blue, linewidth=2.6)))
    for kind, label in (("pin", "FOLL_PIN (DMA)"), ("get", "FOLL_GET (pipe)")):
        color, ls, lw = HOLDER_STYLE[kind]
        items.append((label, Line2D([0, 1], [0.5, 0.5], color=color, linestyle=ls,
                                    linewidth=lw)))
    per_row = 6
    for n, (label, art) in enumerate(items):
        col, line = n % per_row, n // per_row
        x0, yy = 0.005 + col * 0.166, y0 - line * dy
        # the sample: a small box 0.025 wide and h high, in axes coordinates
        art.set_transform(Affine2D().scale(0.025, h).translate(x0, yy - h / 2) + c.box)
        art.set_clip_on(False)
        art.set_gid(f"legend:{label}")
        c.add(art)
        c.add(Text(x0 + 0.032, yy, label, fontsize=fs, va="center", transform=c.box,
                   clip_on=False))


def _palette() -> list[int]:
    """The colours a figure uses, with the blends antialiasing makes: an exact PNG palette.

    Greys, and each Okabe-Ito colour mixed with white at four strengths. A
    palette chosen from the image instead (median cut) merges the small
    green PG_anon_exclusive squares into the blue around them.
    """
    colours: list[tuple[int, int, int]] = [(v, v, v) for v in range(0, 256, 17)]
    for hexcolour in OKABE_ITO.values():
        r, g, b, _a = to_rgba(hexcolour)
        for t in (1.0, 0.75, 0.5, 0.25, 0.12):
            rr, gg, bb = (round(255 * (t * c + 1 - t)) for c in (r, g, b))
            colours.append((rr, gg, bb))
    colours += [(0xF4, 0xF4, 0xF4), (0xEE, 0xEE, 0xEE), (0xFF, 0xF4, 0xDC), (0xBB, 0xBB, 0xBB)]
    flat = [c for rgb in colours for c in rgb]
    return flat + flat[:3] * (256 - len(colours))


def figure_png(fig: Figure, dpi: int = 100, palette: bool = False) -> bytes:
    """The figure as PNG bytes, without the (version-dependent) Software metadata.

    ``palette``: map every pixel to the figure's own colours (:func:`_palette`)
    and store an 8-bit palette PNG, a quarter of the size; the static player
    embeds its frames this way.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    if not palette:
        return buf.getvalue()
    from PIL import Image

    buf.seek(0)
    pal = Image.new("P", (1, 1))
    pal.putpalette(_palette())
    img = Image.open(buf).convert("RGB").quantize(palette=pal, dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="png", optimize=True)
    return out.getvalue()
