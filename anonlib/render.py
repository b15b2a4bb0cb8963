"""Canonical text form of a World: what ``show`` prints and nbval compares.

Sorted and stable: processes by name, mappings in mmap order, folios by id.
Folio ids are the model's physical page numbers; they are allocated in a
deterministic order, so the same scenario always prints the same text.
"""

from __future__ import annotations

from .mem import Mem
from .ops import PageRef
from .schemes import Scheme
from .state import ZERO_FOLIO, Entry, EntryKind, World


def entry_text(m: Mem, e: Entry | None, index: int, huge: bool) -> str:
    """One entry, e.g. ``present rw -> 3.0 excl`` or ``swap slot 7 excl``."""
    if e is None:
        return "none"
    flag = m.scheme.anon_exclusive
    if e.kind is EntryKind.SWAP:
        bit = (" excl" if e.exclusive else " shared") if flag else ""
        return f"swap slot {e.slot}{bit}"
    page = index if huge else e.page
    target = "zero page" if e.folio == ZERO_FOLIO else f"{e.folio}.{page}"
    if e.kind is EntryKind.HWPOISON:
        return f"hwpoison -> {target}"
    if e.kind is EntryKind.MIGRATION:
        kind = ("writable" if e.writable else "readable_exclusive" if e.exclusive
                else "readable")
        return f"migration {kind} -> {target}"
    rw = "rw" if (e.writable or e.kind is EntryKind.DEVICE_EXCLUSIVE) else "ro"
    excl = ""
    if flag and e.folio != ZERO_FOLIO:
        excl = " excl" if m.exclusive(e.folio, page, huge) else " shared"
    sd = " sd" if e.soft_dirty else ""
    return f"{e.kind.value} {rw} -> {target}{excl}{sd}"


def world_text(world: World, scheme: Scheme) -> str:
    """The whole state: page tables per process, then folios, references and swap."""
    m = Mem(world, scheme)
    lines: list[str] = []
    for p in world.procs:
        pinned = " (MMF_HAS_PINNED)" if p.has_pinned else ""
        lines.append(f"process {p.name}{pinned}")
        if not p.vmas:
            lines.append("  (no mappings)")
        for v in p.vmas:
            prot = "rw" if v.writable else "ro"
            extra = "".join([
                f" dontfork={sorted(v.dontfork)}" if v.dontfork else "",
                f" holes={sorted(v.holes)}" if v.holes else "",
                " softdirty-tracking" if v.softdirty_tracking else "",
            ])
            lines.append(f"  {v.name}: {v.kind.value} {v.npages} pages {prot}{extra}")
            if v.huge is not None:
                level = "hugetlb" if v.kind.value == "hugetlb" else "pmd"
                lines.append(f"    [*] {level} {entry_text(m, v.huge, 0, True)}")
            else:
                for i, e in enumerate(v.ptes):
                    if i in v.holes:
                        continue
                    lines.append(f"    [{i}] {entry_text(m, e, i, False)}")
    for f in world.folios:
        refs, pins = m.refcount(f.id), m.pincount(f.id)
        sc = f" swapcache={list(f.swapcache)}" if f.swapcache is not None else ""
        lines.append(f"folio {f.id} {f.kind.value} refcount={refs} pins={pins}{sc}")
        for i, pg in enumerate(f.pages):
            flags = []
            if scheme.anon_exclusive:
                flags.append("anon_exclusive" if pg.anon_exclusive else "-")
            if pg.hwpoison:
                flags.append("hwpoison")
            lines.append(f"  page {f.id}.{i} data={pg.data!r} mapcount={m.mapcount(f.id, i)} "
                         + " ".join(flags))
    for h in world.handles:
        kind = "pin" if h.pin else "get"
        mode = "rw" if h.write else "ro"
        lt = " longterm" if h.longterm else ""
        target = "zero page" if h.folio == ZERO_FOLIO else f"{h.folio}.{h.page}"
        lines.append(f"ref {h.name}: {kind} {mode}{lt} by {h.owner} at "
                     f"{h.mapping}[{h.index}] -> {target}")
    for s in world.slots:
        lines.append(f"swap slot {s.id} data={s.data!r} count={m.swap_count(s.id)}")
    return "\n".join(lines)


def page_text(world: World, scheme: Scheme, ref: PageRef) -> str:
    """One virtual page: its entry and the page behind it."""
    m = Mem(world, scheme)
    p = world.proc(ref.proc)
    v = p.vma(ref.mapping) if p is not None else None
    if p is None:
        return f"{ref}: no such process"
    if v is None or ref.index in v.holes:
        return f"{ref}: not mapped"
    huge = v.huge is not None
    e = v.entry(ref.index)
    text = f"{ref}: {entry_text(m, e, ref.index, huge)}"
    if e is not None and e.kind is not EntryKind.SWAP and e.folio != ZERO_FOLIO:
        f = m.folio(e.folio)
        page = ref.index if huge else e.page
        text += (f"; folio {f.id} {f.kind.value} refcount={m.refcount(f.id)} "
                 f"pins={m.pincount(f.id)} mapcount={m.mapcount(f.id, page)} "
                 f"data={f.pages[page].data!r}")
    return text
