"""A mutable scratch copy of a World, and the derived quantities the kernel keeps as counters.

Transition functions take a :class:`Mem`, change it, and :func:`anonlib.model.apply`
freezes it into the next World. Because the World they started from is never
touched, an operation that fails half-way leaves nothing behind.

The derived quantities follow the kernel's accounting:

* ``refcount(folio)``: one per PTE / PMD / hugetlb / device entry that maps
  it (the mapping's reference), one per GUP reference (FOLL_GET or FOLL_PIN;
  the kernel adds GUP_PIN_COUNTING_BIAS for a pin on a small folio, the
  model keeps an exact pin count instead), and one per page while the folio
  is in the swap cache, plus one while migration entries point at it (the
  migration code isolated it). Migration and hwpoison entries themselves
  hold no reference.
* ``mapcount``: per page, the PTE-level entries that map it plus the
  "entire" (PMD or hugetlb) mappings of its folio; a device-exclusive entry
  counts only from 6.15 (:meth:`Mem.mapped_kinds`).
* ``swap_count(slot)``: the swap entries that refer to the slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, TypeVar

from .ops import MapKind
from .results import ErrorKind, OpFailed
from .schemes import DeviceExclusive, Scheme
from .state import (
    ZERO_FOLIO,
    ZERO_VALUE,
    Entry,
    EntryKind,
    Folio,
    FolioKind,
    Handle,
    Page,
    Process,
    Slot,
    Vma,
    World,
    replace,
)

#: Large anonymous folios (the head-only scheme keeps one flag per such folio).
LARGE_ANON = frozenset({FolioKind.THP, FolioKind.MTHP})
#: Entry kinds that map a page and hold a reference on its folio.
MAPPING_KINDS = (EntryKind.PRESENT, EntryKind.DEVICE_PRIVATE, EntryKind.DEVICE_EXCLUSIVE)
#: Entry kinds that count in a page's map count where device-exclusive entries hold none
#: (scheme point ``device_exclusive_walk`` = RMAP_WALK, 5.14 to 6.14: see :meth:`Mem.mapped_kinds`).
MAPCOUNT_KINDS_RMAP_WALK = (EntryKind.PRESENT, EntryKind.DEVICE_PRIVATE)
_THP, _MTHP = FolioKind.THP, FolioKind.MTHP  # LARGE_ANON, compared by identity on hot paths
#: Entry kinds that name a physical page (including those that hold no reference).
PAGE_KINDS = MAPPING_KINDS + (EntryKind.MIGRATION, EntryKind.HWPOISON)


class Loc(NamedTuple):
    """Where an entry lives: a PTE (``huge`` False, ``index`` its page) or a huge entry.

    An address, not state: a named tuple, because the model builds one for every
    entry it visits and a tuple is several times cheaper to make than a frozen dataclass.
    """

    proc: str
    vma: str
    huge: bool
    index: int  # type: ignore[assignment]  # for a huge entry: 0 (shadows tuple.index)

    def page_index(self, entry: Entry, i: int = 0) -> int:
        """Which page of the folio this entry maps for virtual page ``i`` of the range."""
        return i if self.huge else entry.page


_K = TypeVar("_K", str, int)
_V = TypeVar("_V")


def _in_key_order(items: dict[_K, _V]) -> tuple[_V, ...]:
    """The values of ``items`` in the order of their keys (a World's canonical order)."""
    if len(items) < 2:
        return tuple(items.values())
    return tuple([items[k] for k in sorted(items)])


class Mem:
    """Mutable working copy of a World under one scheme."""

    def __init__(self, world: World, scheme: Scheme) -> None:
        self.scheme = scheme
        self.config = world.config
        self.procs: dict[str, Process] = {p.name: p for p in world.procs}
        self.folios: dict[int, Folio] = {f.id: f for f in world.folios}
        self.handles: dict[str, Handle] = {h.name: h for h in world.handles}
        self.slots: dict[int, Slot] = {s.id: s for s in world.slots}
        self.next_id = world.next_id
        self.copies = world.copies

    # ----------------------------------------------------------------- freezing
    def freeze(self) -> World:
        """Free what nothing refers to any more and return the new World."""
        self.collect_garbage()
        return World(config=self.config, procs=_in_key_order(self.procs),
                     folios=_in_key_order(self.folios), handles=_in_key_order(self.handles),
                     slots=_in_key_order(self.slots), next_id=self.next_id, copies=self.copies)

    def collect_garbage(self) -> None:
        """Free folios whose refcount dropped to 0 and swap slots nobody refers to.

        Models folio_put() reaching zero (free_pages_prepare clears
        PG_anon_exclusive with the mapping) and swap_free() / put_swap_folio()
        releasing a slot. Folios still named by a migration or hwpoison entry
        are kept: the migration code holds them, and a poisoned page never
        returns to the allocator.
        """
        named: set[int] = set()
        slot_refs: dict[int, int] = {}
        for p in self.procs.values():
            for v in p.vmas:
                for e in (v.huge, *v.ptes) if v.huge is not None else v.ptes:
                    if e is None:
                        continue
                    if e.kind in PAGE_KINDS:
                        named.add(e.folio)
                    elif e.kind is EntryKind.SWAP:
                        slot_refs[e.slot] = slot_refs.get(e.slot, 0) + 1
        for h in self.handles.values():
            named.add(h.folio)
        for fid, f in list(self.folios.items()):
            if fid not in named and f.swapcache is None:
                del self.folios[fid]
        cached = {s for f in self.folios.values() if f.swapcache for s in f.swapcache}
        for sid in list(self.slots):
            if sid not in slot_refs and sid not in cached:
                del self.slots[sid]

    # ------------------------------------------------------------------ lookups
    def proc(self, name: str) -> Process:
        try:
            return self.procs[name]
        except KeyError:
            raise OpFailed(f"no process {name!r} (it exited, or was never created)") from None

    def vma(self, proc: str, name: str) -> Vma:
        v = self.proc(proc).vma(name)
        if v is None:
            raise OpFailed(f"process {proc} has no mapping {name!r}")
        return v

    def folio(self, fid: int) -> Folio:
        return self.folios[fid]

    def handle(self, name: str) -> Handle:
        try:
            return self.handles[name]
        except KeyError:
            raise OpFailed(
                f"no reference {name!r}: its GUP failed, or it was released or dropped at exit"
            ) from None

    def entries(self) -> Iterator[tuple[Loc, Entry]]:
        """Every non-empty entry of every page table, in a stable order."""
        make = tuple.__new__  # Loc(...) without the named tuple's Python-level __new__
        for pname in sorted(self.procs):
            for v in self.procs[pname].vmas:
                vname = v.name
                if v.huge is not None:
                    yield make(Loc, (pname, vname, True, 0)), v.huge
                for i, e in enumerate(v.ptes):
                    if e is not None:
                        yield make(Loc, (pname, vname, False, i)), e

    def get(self, loc: Loc) -> Entry | None:
        v = self.vma(loc.proc, loc.vma)
        return v.huge if loc.huge else v.ptes[loc.index]

    def loc_of(self, proc: str, vma: str, index: int) -> Loc:
        """The location of the entry that maps virtual page ``index``."""
        v = self.vma(proc, vma)
        if v.huge is not None or v.kind is MapKind.HUGETLB:
            return Loc(proc, vma, True, 0)
        return Loc(proc, vma, False, index)

    def page_at(self, proc: str, vma: str, index: int) -> tuple[Loc, Entry | None, int]:
        """(location, entry, page index in the entry's folio) for a virtual page."""
        loc = self.loc_of(proc, vma, index)
        e = self.get(loc)
        return loc, e, (index if loc.huge else (e.page if e is not None else 0))

    # ----------------------------------------------------------------- updates
    def set_vma(self, proc: str, v: Vma) -> None:
        """Replace the mapping of ``v``'s name; entries that appear or vanish are accounted
        as :meth:`set` accounts them (the PTEs that appear first, as a PMD split adds them
        before it removes the PMD)."""
        p = self.proc(proc)
        for old in p.vmas:
            if old.name == v.name:
                self._put_vma(proc, v)
                if old.ptes is not v.ptes or old.huge is not v.huge:
                    pairs = list(zip(old.ptes, v.ptes, strict=True))
                    pairs.append((old.huge, v.huge))
                    gone = []
                    for a, b in pairs:
                        fa = (a.folio if a is not None and a.kind in MAPPING_KINDS
                              else ZERO_FOLIO)
                        fb = (b.folio if b is not None and b.kind in MAPPING_KINDS
                              else ZERO_FOLIO)
                        if fa != fb:
                            if fb != ZERO_FOLIO:
                                self._mm_add(fb, proc)
                            if fa != ZERO_FOLIO:
                                gone.append(fa)
                    for fa in gone:
                        self._mm_sub(fa, proc)
                return

    def split_vma(self, proc: str, head: Vma, tail: Vma) -> None:
        """Replace the mapping of ``head``'s name by ``head`` and add ``tail``, whose entries
        came from it: entries that move within one process (mremap) keep every folio's
        count of mappings in that process, so the per-MM tracking does not change."""
        self._put_vma(proc, head)
        p = self.procs[proc]
        self.procs[proc] = replace(p, vmas=p.vmas + (tail,))

    def _put_vma(self, proc: str, v: Vma) -> None:
        p = self.procs[proc]
        self.procs[proc] = replace(
            p, vmas=tuple(v if old.name == v.name else old for old in p.vmas)
        )

    def set(self, loc: Loc, entry: Entry | None) -> None:
        """Install (or, with None, clear) one entry; the one place entries appear and vanish.

        Besides the page table it keeps the per-MM tracking of large folios
        (``Folio.mm_slots``, ``Folio.maybe_mapped_shared``) as 6.15's
        folio_add_large_mapcount / folio_sub_large_mapcount do (include/linux/rmap.h,
        6af8cb80d3a9): an entry of a mapping kind that appears adds one mapping for
        the process, one that vanishes removes one. One entry at a time gives the
        kernel's batched result: see :meth:`_mm_add` and :meth:`_mm_sub`.
        """
        proc = loc.proc
        p = self.proc(proc)
        name = loc.vma
        v = p.vma(name)
        if v is None:
            raise OpFailed(f"process {proc} has no mapping {name!r}")
        if loc.huge:
            old = v.huge
            v = replace(v, huge=entry)
        else:
            ptes = list(v.ptes)
            old = ptes[loc.index]
            ptes[loc.index] = entry
            v = replace(v, ptes=tuple(ptes))
        self.procs[proc] = replace(p, vmas=tuple([v if x.name == name else x for x in p.vmas]))
        # tuple membership: identity first, cheaper than hashing an Enum for a set
        fa = old.folio if old is not None and old.kind in MAPPING_KINDS else ZERO_FOLIO
        fb = entry.folio if entry is not None and entry.kind in MAPPING_KINDS else ZERO_FOLIO
        if fa != fb:
            if fb != ZERO_FOLIO:
                self._mm_add(fb, proc)
            if fa != ZERO_FOLIO:
                self._mm_sub(fa, proc)

    def _tracked(self, fid: int) -> Folio | None:
        """The folio if it is one whose mappings are tracked per MM (THP or mTHP), else None."""
        f = self.folios.get(fid)
        return f if f is not None and (f.kind is _THP or f.kind is _MTHP) else None

    def _mm_add(self, fid: int, proc: str) -> None:
        """One more mapping of folio ``fid`` in ``proc``: folio_add_large_mapcount (6.15).

        The process's slot grows; a process without one takes a free slot, and
        the bit is set if the folio had other mappings (taking slot 1 always sets
        it: slot 0 holds some). With both slots taken by others only the total
        grows. Without a slot in use, "other mappings" are those of processes
        that never got one, and they exist exactly when the bit is set (it
        cannot clear while they do, see :meth:`_mm_sub`): no scan is needed.
        """
        f = self._tracked(fid)
        if f is None:
            return
        slots = f.mm_slots
        for i, (name, n) in enumerate(slots):
            if name == proc:
                self.folios[fid] = replace(
                    f, mm_slots=slots[:i] + ((name, n + 1),) + slots[i + 1:])
                return
        if len(slots) < 2:
            self.folios[fid] = replace(
                f, mm_slots=tuple(sorted(slots + ((proc, 1),))),
                maybe_mapped_shared=f.maybe_mapped_shared or bool(slots))

    def _mm_sub(self, fid: int, proc: str) -> None:
        """One mapping of folio ``fid`` in ``proc`` fewer: folio_sub_large_mapcount (6.15).

        A slot that keeps a positive count ends it (the bit is not looked at);
        one that reaches zero is freed. Then, or when the process had no slot,
        the bit is cleared if one slot's count is the folio's number of mappings
        (a free slot counts zero, so an unmapped folio qualifies). Called after
        the entry is gone from the page table.
        """
        f = self._tracked(fid)
        if f is None:
            return
        slots = f.mm_slots
        for i, (name, n) in enumerate(slots):
            if name == proc:
                if n > 1:
                    self.folios[fid] = replace(
                        f, mm_slots=slots[:i] + ((name, n - 1),) + slots[i + 1:])
                    return
                slots = slots[:i] + slots[i + 1:]
                f = replace(f, mm_slots=slots)
                self.folios[fid] = f
                break
        if f.maybe_mapped_shared:
            total = self.folio_mapcount(fid)
            if total == 0 or any(n == total for _name, n in slots):
                self.folios[fid] = replace(f, maybe_mapped_shared=False)

    def set_folio(self, f: Folio) -> None:
        self.folios[f.id] = f

    def set_page(self, fid: int, index: int, **changes: object) -> None:
        f = self.folios[fid]
        pages = list(f.pages)
        pages[index] = replace(pages[index], **changes)
        self.folios[fid] = replace(f, pages=tuple(pages))

    def new_folio(self, kind: FolioKind, data: tuple[str, ...]) -> Folio:
        """Allocate a folio; a new allocation never starts exclusive (free_pages_prepare)."""
        f = Folio(self.next_id, kind, tuple(Page(d) for d in data))
        self.next_id += 1
        self.folios[f.id] = f
        return f

    def new_slot(self, data: str) -> int:
        if len(self.slots) >= self.config.swap_slots:
            raise OpFailed("no free swap slot", ErrorKind.FAILED)
        sid = self.next_id
        self.next_id += 1
        self.slots[sid] = Slot(sid, data)
        return sid

    # ------------------------------------------------------------- derived data
    def data(self, fid: int, index: int) -> str:
        return ZERO_VALUE if fid == ZERO_FOLIO else self.folios[fid].pages[index].data

    def mappings_of(self, fid: int, kinds: tuple[EntryKind, ...] = MAPPING_KINDS
                    ) -> list[tuple[Loc, Entry]]:
        """The entries of these kinds that name folio ``fid``, in the order of :meth:`entries`.

        The same walk as ``entries()``, but a location is built only for an
        entry that matches: the model asks this several times per operation
        and most entries name other folios.
        """
        out = []
        for pname in sorted(self.procs):
            for v in self.procs[pname].vmas:
                h = v.huge
                if h is not None and h.folio == fid and h.kind in kinds:
                    out.append((Loc(pname, v.name, True, 0), h))
                for i, e in enumerate(v.ptes):
                    if e is not None and e.folio == fid and e.kind in kinds:
                        out.append((Loc(pname, v.name, False, i), e))
        return out

    def handles_on(self, fid: int) -> list[Handle]:
        """The GUP references held on folio ``fid``, in the table's order."""
        return [h for h in self.handles.values() if h.folio == fid]

    def refcount(self, fid: int) -> int:
        """folio_ref_count(): mappings + GUP references + swap cache (see module doc)."""
        f = self.folios[fid]
        refs = len(self.mappings_of(fid))
        refs += len(self.handles_on(fid))
        if self.mappings_of(fid, (EntryKind.MIGRATION,)):
            refs += 1  # migrate_pages isolated the folio and holds it

        if f.swapcache is not None:
            refs += len(f.pages)
        return refs

    def pincount(self, fid: int) -> int:
        return sum(1 for h in self.handles_on(fid) if h.pin)

    def maybe_pinned(self, fid: int) -> bool:
        """folio_maybe_dma_pinned() (include/linux/mm.h), exact: no refcount-bias false hits."""
        return fid != ZERO_FOLIO and self.pincount(fid) > 0

    def mapped_kinds(self) -> tuple[EntryKind, ...]:
        """The entry kinds that hold a map count (scheme point ``device_exclusive_walk``).

        Every mapping entry holds a reference (:meth:`refcount`). Up to 6.14
        (RMAP_WALK) a device-exclusive entry holds no map count: mm/rmap.c:
        page_make_device_exclusive_one (6.12) calls folio_remove_rmap_pte when it
        converts the PTE, and restore_exclusive_pte (mm/memory.c) adds it back.
        From 6.15 (FOLIO_WALK, f495bd7e0d9b) the entry keeps it.
        """
        if self.scheme.device_exclusive_walk is DeviceExclusive.RMAP_WALK:
            return MAPCOUNT_KINDS_RMAP_WALK
        return MAPPING_KINDS

    def mapcount(self, fid: int, index: int) -> int:
        """page_mapcount(): PTE mappings of this page plus entire mappings of its folio."""
        n = 0
        for loc, e in self.mappings_of(fid, self.mapped_kinds()):
            if loc.huge or e.page == index:
                n += 1
        return n

    def folio_mapcount(self, fid: int) -> int:
        """folio_mapcount(): every PTE mapping of any page, plus each entire mapping."""
        return len(self.mappings_of(fid, self.mapped_kinds()))

    def swap_count(self, slot: int) -> int:
        swap = EntryKind.SWAP
        return sum(1 for p in self.procs.values() for v in p.vmas
                   for e in ((v.huge, *v.ptes) if v.huge is not None else v.ptes)
                   if e is not None and e.kind is swap and e.slot == slot)

    def swapcache_folio(self, slot: int) -> Folio | None:
        for f in self.folios.values():
            if f.swapcache is not None and slot in f.swapcache:
                return f
        return None

    def folio_swapped(self, fid: int) -> bool:
        """folio_swapped(): some swap entry still refers to one of the folio's slots."""
        f = self.folios[fid]
        return f.swapcache is not None and any(self.swap_count(s) for s in f.swapcache)

    # ------------------------------------------------------- PG_anon_exclusive
    def flag_page(self, fid: int, index: int, huge: bool) -> int:
        """Which page carries the flag for this mapping (page-flags.h; scheme `head-only`)."""
        f = self.folios[fid]
        if huge or f.kind is FolioKind.HUGETLB:
            return 0
        if self.scheme.head_only and f.kind in LARGE_ANON:
            return 0
        return index

    def exclusive(self, fid: int, index: int, huge: bool = False) -> bool:
        """PageAnonExclusive() for the page as mapped (head page for PMD and hugetlb)."""
        if fid == ZERO_FOLIO or not self.scheme.anon_exclusive:
            return False
        f = self.folios[fid]
        return f.pages[self.flag_page(fid, index, huge)].anon_exclusive

    def set_exclusive(self, fid: int, indexes: tuple[int, ...] | range, huge: bool = False
                      ) -> None:
        """SetPageAnonExclusive() on the pages (or head) that carry the flag for these pages.

        Under ``head-only`` one head bit stands for every subpage of a THP:
        it is set only when every subpage is being made exclusive at once.
        """
        if fid == ZERO_FOLIO or not self.scheme.anon_exclusive:
            return
        f = self.folios[fid]
        assert f.kind is not FolioKind.KSM, "KSM pages are never exclusive"
        if (self.scheme.head_only and f.kind in LARGE_ANON and not huge
                and set(indexes) != set(range(len(f.pages)))):
            return  # one bit cannot say "only these subpages": stays as it is
        for i in {self.flag_page(fid, i, huge) for i in indexes}:
            self.set_page(fid, i, anon_exclusive=True)

    def clear_exclusive(self, fid: int, index: int, huge: bool = False) -> None:
        """ClearPageAnonExclusive() on the page (or head) that carries the flag."""
        if fid == ZERO_FOLIO or not self.scheme.anon_exclusive:
            return
        self.set_page(fid, self.flag_page(fid, index, huge), anon_exclusive=False)

    # ------------------------------------------------------------ ghost state
    def note_write(self, owner: str, vma: str, index: int, value: str, exact: bool) -> None:
        """Record in the ghost state that ``owner`` legitimately wrote ``value`` at vma[index].

        ``exact``: a CPU store by the process (its view is now exactly the
        value); otherwise a device write through one of its references (the
        process may or may not see it).
        """
        v = self.vma(owner, vma)
        shadow = list(v.shadow)
        shadow[index] = frozenset({value}) if exact else shadow[index] | {value}
        self.set_vma(owner, replace(v, shadow=tuple(shadow)))
        for h in list(self.handles.values()):
            if h.owner == owner and h.mapping == vma and h.index == index and h.tracking:
                self.handles[h.name] = replace(h, allowed=h.allowed | {value})

    def note_device_write_anywhere(self, fid: int, index: int, value: str) -> None:
        """Ghost state: every entry and reference that leads to this page may now see ``value``."""
        f = self.folios[fid]
        slot = f.swapcache[index] if f.swapcache is not None else None
        for loc, e in list(self.entries()):
            if e.kind is EntryKind.SWAP:
                if e.slot != slot:
                    continue
                vi = loc.index
            elif e.kind in PAGE_KINDS and e.folio == fid and (loc.huge or e.page == index):
                vi = index if loc.huge else loc.index
            else:
                continue
            v = self.vma(loc.proc, loc.vma)
            shadow = list(v.shadow)
            shadow[vi] = shadow[vi] | {value}
            self.set_vma(loc.proc, replace(v, shadow=tuple(shadow)))
        for h in list(self.handles.values()):
            if (h.folio, h.page) == (fid, index):
                self.handles[h.name] = replace(h, allowed=h.allowed | {value})

    def forget_address(self, owner: str, vma: str, index: int | None) -> None:
        """The owner unmapped this address: its references there no longer promise coherence."""
        for h in list(self.handles.values()):
            if h.owner == owner and h.mapping == vma and (index is None or h.index == index):
                self.handles[h.name] = replace(h, tracking=False)


class Snapshot(Mem):
    """A Mem that is only read: every derived count from one pass over the page tables.

    A Mem answers ``refcount``, ``mapcount``, ``pincount`` and ``swap_count``
    by scanning every entry (or reference), which is right while an
    operation changes the tables between questions. Drawing a world asks
    for every folio's counts and nothing changes, so a scan per question
    makes a drawing cost folios * entries. A Snapshot indexes the entries
    by folio and slot, and the references by folio, on the first question,
    and answers the rest from the index: a drawing costs one pass. The
    answers are the same, in the same order. Never change a Snapshot (it
    would keep answering for the world it was made from); make a Mem.
    """

    def __init__(self, world: World, scheme: Scheme) -> None:
        super().__init__(world, scheme)
        self._by_folio: dict[int, list[tuple[Loc, Entry]]] | None = None
        self._swap_refs: dict[int, int] = {}
        self._handles_by_folio: dict[int, list[Handle]] = {}

    def _index(self) -> dict[int, list[tuple[Loc, Entry]]]:
        if self._by_folio is None:
            by_folio: dict[int, list[tuple[Loc, Entry]]] = {}
            for loc, e in self.entries():
                if e.kind is EntryKind.SWAP:
                    self._swap_refs[e.slot] = self._swap_refs.get(e.slot, 0) + 1
                by_folio.setdefault(e.folio, []).append((loc, e))
            for h in self.handles.values():
                self._handles_by_folio.setdefault(h.folio, []).append(h)
            self._by_folio = by_folio
        return self._by_folio

    def mappings_of(self, fid: int, kinds: tuple[EntryKind, ...] = MAPPING_KINDS
                    ) -> list[tuple[Loc, Entry]]:
        return [(loc, e) for loc, e in self._index().get(fid, ()) if e.kind in kinds]

    def handles_on(self, fid: int) -> list[Handle]:
        self._index()
        return list(self._handles_by_folio.get(fid, ()))

    def swap_count(self, slot: int) -> int:
        self._index()
        return self._swap_refs.get(slot, 0)
