"""The explored world: its setup (``--pages``, ``--after``) and the kernel's known gaps.

:class:`WorldSpec` is the small world a search starts from: one process ``P``
and its mappings, and the statements run before the search. :data:`KNOWN_GAPS`
are the violations the real kernel has knowingly; :func:`gap_of` names the one a
violation is, so that the search reports it in its own section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import model
from ..invariants import Violation, check
from ..ops import MTHP_SIZES, MapKind, Mmap, Op, Spawn, to_text
from ..results import ModelError
from ..schemes import Scheme
from ..state import Config, FolioKind, World
from .alphabet import HANDLE_NAMES, PROC_NAMES, Names

__all__ = ["KNOWN_GAPS", "KnownGap", "WorldSpec", "gap_of"]


@dataclass(frozen=True)
class WorldSpec:
    """The explored world's setup: one process ``P`` and its mappings ``A``, ``B``, ...

    ``--pages`` text: comma-separated ``base:N``, ``thp[:N]`` (``thp_pages``),
    ``hugetlb[:N]`` (``hugetlb_pages``), ``mthp[:N]`` (one mapping of one mTHP block of N
    pages, ``mthp_pages=N``); e.g. ``base:1``, ``thp:2``, ``base:1,hugetlb:2``, ``mthp:4``.
    ``after``: scenario statements run after the mappings, before the search
    starts (``P write A[0] P1``, to start from a written page, say).
    """

    mappings: tuple[tuple[MapKind, int], ...]
    config: Config = Config()
    after: tuple[Op, ...] = ()

    @classmethod
    def parse(cls, spec: str, after: str = "") -> WorldSpec:
        maps: list[tuple[MapKind, int]] = []
        thp = hugetlb = mthp = None
        for item in (s.strip() for s in spec.split(",") if s.strip()):
            kind, _, num = item.partition(":")
            if kind not in ("base", "thp", "hugetlb", "mthp") or (num and not num.isdigit()):
                raise ValueError(f"bad page spec {item!r}: use base:N, thp[:N], hugetlb[:N] "
                                 "or mthp[:N]")
            n = int(num) if num else None
            if kind == "base":
                if not n:
                    raise ValueError(f"bad page spec {item!r}: base needs a page count, base:1")
                maps.append((MapKind.BASE, n))
                continue
            if n is not None and (n < 2 or n & (n - 1)):
                raise ValueError(f"bad page spec {item!r}: the size is a power of two >= 2")
            if kind == "mthp":
                if n is not None and n not in MTHP_SIZES:
                    raise ValueError(f"bad page spec {item!r}: an mTHP has 4 to 256 pages")
                if mthp is not None and n is not None and n != mthp:
                    raise ValueError("every mthp mapping has the same size (config mthp_pages)")
                mthp = n if n is not None else mthp
                maps.append((MapKind.MTHP, 0))
            elif kind == "thp":
                if thp is not None and n is not None and n != thp:
                    raise ValueError("every thp mapping has the same size (config thp_pages)")
                thp = n if n is not None else thp
                maps.append((MapKind.THP, 0))
            else:
                if hugetlb is not None and n is not None and n != hugetlb:
                    raise ValueError("every hugetlb mapping has the same size (hugetlb_pages)")
                hugetlb = n if n is not None else hugetlb
                maps.append((MapKind.HUGETLB, 0))
        if not maps:
            raise ValueError("no mappings: give --pages, e.g. base:1")
        if len(maps) > 26:
            raise ValueError("at most 26 mappings")
        default = Config()
        config = Config(thp_pages=thp or default.thp_pages,
                        hugetlb_pages=hugetlb or default.hugetlb_pages,
                        mthp_pages=(mthp,) if mthp else default.mthp_pages)
        ws = cls(tuple(maps), config)
        if after.strip():
            ws = cls(ws.mappings, config, ws._parse_after(after))
        return ws

    def _parse_after(self, text: str) -> tuple[Op, ...]:
        from ..scenario import ScenarioError, parse
        from ..scenario.parser import split_statements
        from ..scenario.source import clip

        lines = split_statements(text)
        head = self.header() + [to_text(op) for op in self.setup()]
        sc = parse("\n".join(head + lines), "<after>")
        if isinstance(sc, ScenarioError):
            where = sc.line - len(head)
            if 1 <= where <= len(lines):
                raise ValueError(f"--after: statement {where} ({clip(lines[where - 1], 80)}), "
                                 f"column {sc.column}: {sc.message}")
            raise ValueError(f"--after: {sc.message}")
        ops = [op for st in sc.statements if (op := st.op) is not None]
        if len(ops) != len(sc.statements):
            raise ValueError("--after takes operations only (no expect or show)")
        return tuple(ops[len(self.setup()):])

    def text(self) -> str:
        out = []
        for kind, n in self.mappings:
            if kind is MapKind.BASE:
                out.append(f"base:{n}")
            elif kind is MapKind.THP:
                out.append(f"thp:{self.config.thp_pages}")
            elif kind is MapKind.MTHP:
                out.append(f"mthp:{self.config.mthp_pages[0]}")
            else:
                out.append(f"hugetlb:{self.config.hugetlb_pages}")
        return ",".join(out)

    def after_text(self) -> str:
        return "; ".join(to_text(op) for op in self.after)

    def setup(self) -> list[Op]:
        """The mmap statements (without ``after``)."""
        ops: list[Op] = [Spawn("P")]
        for i, (kind, n) in enumerate(self.mappings):
            ops.append(Mmap("P", chr(ord("A") + i), kind, n))
        return ops

    def header(self) -> list[str]:
        """The scenario's ``config`` line, if the sizes differ from the defaults."""
        c, d = self.config, Config()
        words = []
        if c.thp_pages != d.thp_pages:
            words.append(f"thp_pages={c.thp_pages}")
        if c.hugetlb_pages != d.hugetlb_pages:
            words.append(f"hugetlb_pages={c.hugetlb_pages}")
        if c.swap_slots != d.swap_slots:
            words.append(f"swap_slots={c.swap_slots}")
        if c.mthp_pages != d.mthp_pages:
            words.append("mthp_pages=" + ":".join(str(n) for n in c.mthp_pages))
        return [f"config {' '.join(words)}"] if words else []

    def statements(self) -> list[str]:
        """Header, mmaps and ``after``, as scenario lines."""
        return self.header() + [to_text(op) for op in self.setup() + list(self.after)]

    def names(self) -> Names:
        """Fresh-name counters past every name the setup uses."""
        procs, handles = 1, 0
        for op in self.after:
            for name in _names_in(op):
                if name in PROC_NAMES:
                    procs = max(procs, PROC_NAMES.index(name) + 1)
                if name in HANDLE_NAMES:
                    handles = max(handles, HANDLE_NAMES.index(name) + 1)
        return Names(procs, handles)

    def initial(self, scheme: Scheme) -> World:
        """The world the search starts from; ValueError if ``after`` fails or breaks a rule."""
        w = model.initial_world(self.config)
        for op in self.setup() + list(self.after):
            r = model.apply(w, op, scheme)
            if isinstance(r, ModelError):
                raise ValueError(f"setup statement '{to_text(op)}' failed under {scheme.name}: "
                                 f"{r.message}")
            w = r.world
        bad = check(w, scheme)
        if bad:
            raise ValueError(f"the setup already violates {bad[0].invariant.id} under "
                             f"{scheme.name}")
        return w


def _names_in(op: Op) -> list[str]:
    out = []
    for attr in ("proc", "parent", "child", "handle"):
        v = getattr(op, attr, None)
        if isinstance(v, str):
            out.append(v)
    page = getattr(op, "page", None)
    if page is not None:
        out.append(page.proc)
    return out



@dataclass(frozen=True)
class KnownGap:
    """A violation the kernel has knowingly: labelled in reports, never hidden."""

    id: str
    invariant: str
    title: str
    source: str
    matches: Callable[[World, Scheme, Violation], bool]


def _hugetlb_foll_get_leak(world: World, scheme: Scheme, v: Violation) -> bool:
    """Every INV-12 offender is a FOLL_GET reference on a hugetlb page (hugetlb_wp's map count)."""
    handles = {h.name: h for h in world.handles}
    for offender in v.offenders:
        h = handles.get(offender.handle) if offender.handle is not None else None
        if h is None or h.pin:
            return False
        f = world.folio(h.folio)
        if f is None or f.kind is not FolioKind.HUGETLB:
            return False
    return bool(v.offenders)


KNOWN_GAPS: tuple[KnownGap, ...] = (
    KnownGap(
        "hugetlb-vmsplice",
        "INV-12",
        "hugetlb_wp reuses a hugetlb page its map count says is unshared, although a FOLL_GET "
        "reference (vmsplice) from another process holds it: the reference sees the write",
        "mm/hugetlb.c: hugetlb_wp; tools/testing/selftests/mm/cow.c marks the hugetlb vmsplice "
        "cases XFAIL (6.10)",
        _hugetlb_foll_get_leak,
    ),
)



def gap_of(world: World, scheme: Scheme, v: Violation, gaps: tuple[KnownGap, ...]) -> str:
    """The id of the known gap among ``gaps`` that violation ``v`` in ``world`` is, or ""."""
    for g in gaps:
        if g.invariant == v.invariant.id and g.matches(world, scheme, v):
            return g.id
    return ""
