"""Invariants as named objects, checked after every statement and in every explored state.

Numbering follows ``docs/invariants.md`` (INV-1 .. INV-14).
INV-1 .. INV-10 and INV-13 are the kernel's own rules about PG_anon_exclusive
and apply only under schemes that have the flag. INV-11 (pin coherence) and
INV-12 (isolation) are the user-visible promises and apply under every
scheme: a historic bug shows up as a violation of one of them under its era.

Some invariants are *state* properties (``check(world)``); some are
*transition* properties that compare the world before and after one
operation (INV-2's second half, INV-7, INV-8, INV-9, INV-13). INV-14 is a
permission, not a prohibition: it is listed so a reader sees it, and has no
check.

Each invariant is registered where its check is written: the decorator
above a check function carries the invariant's id, title, statement and
kernel source, and :data:`INVARIANTS` lists them in the order of this file
(which is the order of their ids). A check returns :class:`Offender`
records (which process, mapping, page or reference, what was expected and
what was seen); :func:`describe` alone turns one into prose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from .mem import MAPPING_KINDS, Loc, Mem
from .ops import Clears, Effect, Mprotect, Op, Sets
from .schemes import Scheme
from .state import ZERO_FOLIO, ZERO_VALUE, EntryKind, FolioKind, World


class CheckedMem(Mem):
    """A world's :class:`~anonlib.mem.Mem` as the invariants read it.

    ``memo`` holds the maps several checks derive from the same Mem (every
    page's flag; the pages an entry carried exclusivity for; the flags one
    operation changed), each computed once: INV-2, 7, 8 and 9 all ask for them.
    """

    memo: dict[str, Any]

    def __init__(self, world: World, scheme: Scheme) -> None:
        super().__init__(world, scheme)
        self.memo = {}


Page = tuple[int, int]  # (folio id, page index in the folio)
StateCheck = Callable[[CheckedMem], list["Offender"]]
StepCheck = Callable[[CheckedMem, CheckedMem, Op | None], list["Offender"]]


@dataclass(frozen=True)
class Invariant:
    """A named rule: its id, a one-line title, the statement, and the kernel code relying on it."""

    id: str
    title: str
    statement: str
    kernel_source: str
    needs_flag: bool  # applies only to schemes with PG_anon_exclusive
    state_check: StateCheck | None = None
    step_check: StepCheck | None = None

    def applies(self, scheme: Scheme) -> bool:
        return (scheme.anon_exclusive or not self.needs_flag) and (
            self.state_check is not None or self.step_check is not None)


# ------------------------------------------------------------------ offenders
@dataclass(frozen=True)
class Offender:
    """One entry, page or reference that breaks an invariant, as data.

    ``problem`` names what is wrong (a key of :data:`PROSE`); the other fields
    say where and what: the mapping (``proc``, ``mapping``, ``index``; index
    None for a huge mapping as a whole), the physical ``page`` (folio id,
    page index), the GUP ``handle`` (``proc`` is then the process that took
    it, when no mapping is named), the operation's type ``op`` (transition
    checks), the entry's or folio's ``kind``, a swap ``slot``, the pages that
    map one page (``mapped_by``), and what was ``expected`` and ``seen``: a
    value read (str) and the values allowed (tuple of str), an entry count,
    or the page a pinned address now leads to (None: no page).
    """

    problem: str
    proc: str | None = None
    mapping: str | None = None
    index: int | None = None
    page: Page | None = None
    handle: str | None = None
    op: str | None = None
    kind: str | None = None
    slot: int | None = None
    mapped_by: tuple[tuple[str, str, int], ...] = ()
    expected: tuple[str, ...] | int | Page | None = None
    seen: str | int | Page | None = None

    def __str__(self) -> str:
        return describe(self)


#: The prose of each problem; the fields are filled in by :func:`describe`.
PROSE: dict[str, str] = {
    "writable-migration-shared": "{at}: writable migration entry that is not exclusive",
    "writable-shared": "{at}: writable {kind} entry maps {page}, which is not exclusive",
    "pinned-shared": "{handle} pins {page}, mapped by {at}, which is not exclusive",
    "pin-recorded-by-shared-head": "{handle} pinned the page at {at} but is recorded by the "
                                   "folio's head {page}, which is not exclusive",
    "cleared-while-pinned": "{page} lost PG_anon_exclusive while its folio was pinned",
    "exclusive-mapped-twice": "{page} is exclusive but mapped by {mapped_by}",
    "ksm-exclusive": "KSM {page} has PG_anon_exclusive set",
    "exclusive-swap-shared": "{at}: exclusive swap entry, but {seen} entries share slot {slot}",
    "swapcache-exclusive": ("{at}: swap entry for {page} in the swap cache, which is still "
                            "marked exclusive"),
    "migration-flag-set": "{at}: migration entry for {page}, whose flag is set",
    "cleared-by-poison": ("{page} lost PG_anon_exclusive in memory failure, which leaves it "
                          "stale unless the folio is in the swap cache"),
    "cleared": "{page} lost PG_anon_exclusive in {op}, which never clears it",
    "set-unproven": ("{page} gained PG_anon_exclusive in {op} without a fault on it or an "
                     "entry that carried exclusivity"),
    "regained": "{page} regained PG_anon_exclusive in {op}",
    "tail-flag": "{page}: tail page of a {kind} folio mapped as a whole carries the flag",
    "pin-incoherent": "{handle} pins {page}, but {at} now leads to {seen}",
    "mapping-reads-foreign": ("{at} reads {seen}, which neither it wrote nor inherited "
                              "(expected one of {expected})"),
    "handle-reads-foreign": ("{handle} (taken by {proc}) reads {seen}, written by someone "
                             "else (expected one of {expected})"),
    "mprotect-upgrade": "{at}: mprotect made a non-exclusive page writable",
}


def page_name(fid: int, index: int) -> str:
    return f"page {fid}.{index}"


def _shown(x: object) -> str:
    """``seen`` or ``expected`` as the prose shows it."""
    if x is None:
        return "no page"
    if isinstance(x, tuple) and all(isinstance(i, int) for i in x):
        return page_name(*x)
    if isinstance(x, tuple):
        return repr(list(x))
    return repr(x) if isinstance(x, str) else str(x)


def describe(o: Offender) -> str:
    """One offender as a line of prose: the only place offenders become text."""
    at = (f"{o.proc} {o.mapping}[{'*' if o.index is None else o.index}]"
          if o.mapping is not None else "")
    return PROSE[o.problem].format(
        at=at, kind=o.kind, slot=o.slot, op=o.op, handle=o.handle, proc=o.proc,
        page=page_name(*o.page) if o.page is not None else "",
        mapped_by=", ".join(f"{p} {v}[{i}]" for p, v, i in o.mapped_by),
        seen=_shown(o.seen), expected=_shown(o.expected))


@dataclass(frozen=True)
class Violation:
    """An invariant that does not hold, and the entries, pages or references that break it."""

    invariant: Invariant
    offenders: tuple[Offender, ...]

    def __str__(self) -> str:
        inv = self.invariant
        lines = [f"{inv.id} ({inv.title}) violated: {inv.statement}"]
        lines += [f"  - {o}" for o in self.offenders]
        return "\n".join(lines)


# ------------------------------------------------------------------ the registry
_REGISTRY: dict[str, Invariant] = {}


def _register(inv: Invariant) -> Invariant:
    if inv.id in _REGISTRY:
        raise ValueError(f"invariant {inv.id} registered twice")
    _REGISTRY[inv.id] = inv
    return inv


def state_invariant(id: str, title: str, statement: str, kernel_source: str, *,
                    needs_flag: bool = True) -> Callable[[StateCheck], StateCheck]:
    """Register the decorated function as the state check of a new invariant."""
    def register(fn: StateCheck) -> StateCheck:
        _register(Invariant(id, title, statement, kernel_source, needs_flag, state_check=fn))
        return fn
    return register


def step_invariant(id: str, title: str, statement: str, kernel_source: str, *,
                   needs_flag: bool = True) -> Callable[[StepCheck], StepCheck]:
    """Register the decorated function as the transition check of a new invariant."""
    def register(fn: StepCheck) -> StepCheck:
        _register(Invariant(id, title, statement, kernel_source, needs_flag, step_check=fn))
        return fn
    return register


def transition_half(id: str) -> Callable[[StepCheck], StepCheck]:
    """Register the decorated function as the transition half of invariant ``id``, whose
    state half is registered just above it."""
    def register(fn: StepCheck) -> StepCheck:
        _REGISTRY[id] = replace(_REGISTRY[id], step_check=fn)
        return fn
    return register


# ------------------------------------------------------------------ helpers
def _at(loc: Loc) -> dict[str, Any]:
    """The mapping fields of an offender at ``loc`` (index None: a huge mapping as a whole)."""
    return {"proc": loc.proc, "mapping": loc.vma, "index": None if loc.huge else loc.index}


def _resolve(m: Mem, proc: str, vma: str, index: int) -> Page | None | str:
    """The physical page a virtual page leads to: (folio, page), None (no page) or 'poison'."""
    v = m.vma(proc, vma)
    e = v.entry(index)
    if e is None:
        return None
    if e.kind is EntryKind.SWAP:
        f = m.swapcache_folio(e.slot)
        return (f.id, f.swapcache.index(e.slot)) if f and f.swapcache else None
    page = index if (v.huge is not None) else e.page
    if e.kind is EntryKind.HWPOISON:
        return "poison"
    return (e.folio, page)


def _value_at(m: Mem, proc: str, vma: str, index: int) -> str | None:
    v = m.vma(proc, vma)
    e = v.entry(index)
    if e is None:
        return ZERO_VALUE
    if e.kind is EntryKind.SWAP:
        f = m.swapcache_folio(e.slot)
        if f is not None and f.swapcache is not None:
            return f.pages[f.swapcache.index(e.slot)].data
        return m.slots[e.slot].data
    if e.kind is EntryKind.HWPOISON:
        return None
    page = index if v.huge is not None else e.page
    return m.data(e.folio, page)


T = TypeVar("T")


def _memo(m: CheckedMem, key: str, compute: Callable[[CheckedMem], T]) -> T:
    """Compute a derived map once per CheckedMem."""
    if key not in m.memo:
        m.memo[key] = compute(m)
    return cast(T, m.memo[key])  # the memo holds what ``compute`` returned for this key


def _raw_flags(m: CheckedMem) -> dict[Page, bool]:
    return _memo(m, "raw_flags", lambda m: {
        (f.id, i): p.anon_exclusive for f in m.folios.values() for i, p in enumerate(f.pages)})


def _changed(before: CheckedMem, after: CheckedMem) -> list[tuple[Page, bool]]:
    """Pages of folios that exist before and after whose flag changed: (page, flag after),
    in page order. The transition checks INV-2, 7, 8 and 9 look only at these."""
    hit = after.memo.get("changed")
    if hit is not None and hit[0] is before:
        return cast(list[tuple[Page, bool]], hit[1])  # stored below, for this ``before``
    out = []
    for fid, f in after.folios.items():
        was = before.folios.get(fid)
        if was is f or was is None:
            continue  # untouched (the same object), or new
        # pages present before and after (a split may leave fewer under this id)
        for i, (p, q) in enumerate(zip(was.pages, f.pages, strict=False)):
            if p.anon_exclusive != q.anon_exclusive:
                out.append(((fid, i), q.anon_exclusive))
    out.sort()
    after.memo["changed"] = (before, out)
    return out


def _carried(before: CheckedMem) -> set[Page]:
    """Pages whose exclusivity an entry in ``before`` carried: an exclusive swap PTE or
    migration entry, or the head flag of a PMD that a split propagates to every subpage."""
    return _memo(before, "carried", _compute_carried)


def _compute_carried(before: CheckedMem) -> set[Page]:
    carried: set[Page] = set()
    for loc, e in before.entries():
        if e.kind is EntryKind.MIGRATION and e.exclusive:
            n = len(before.folio(e.folio).pages) if loc.huge else 1
            carried |= {(e.folio, e.page + i) for i in range(n)}
        if e.kind is EntryKind.SWAP and e.exclusive:
            f = before.swapcache_folio(e.slot)
            if f is not None and f.swapcache is not None:
                carried.add((f.id, f.swapcache.index(e.slot)))
        if (loc.huge and e.kind is EntryKind.PRESENT and e.folio != ZERO_FOLIO
                and before.folio(e.folio).pages[0].anon_exclusive):
                carried |= {(e.folio, i) for i in range(len(before.folio(e.folio).pages))}
    return carried


def _effect(op: Op | None) -> Effect | None:
    """What the operation may do to the flag (its class says: :meth:`Operation.effect`)."""
    return op.effect() if op is not None else None


# ------------------------------------------------------------------ the invariants
@state_invariant(
    "INV-1", "writable implies exclusive",
    "A writable present, PMD, hugetlb, migration, device-private or device-exclusive "
    "entry of an anonymous page maps a page marked exclusive.",
    "mm/gup.c: gup_fast_pte_range and can_follow_write_pte; "
    "mm/memory.c: do_swap_page's VM_BUG_ON")
def _inv1(m: CheckedMem) -> list[Offender]:
    out = []
    for loc, e in m.entries():
        if e.kind is EntryKind.MIGRATION:
            if e.writable and not e.exclusive:
                out.append(Offender("writable-migration-shared", **_at(loc)))
            continue
        if e.kind not in MAPPING_KINDS or e.folio == ZERO_FOLIO:
            continue
        # a device-exclusive entry is writable as its bit says: always from 6.15, and
        # in 6.12 unless it is a readable one (device_exclusive_walk, anonlib.mm.rmap)
        if e.writable and not m.exclusive(e.folio, e.page, loc.huge):
            out.append(Offender("writable-shared", **_at(loc), page=(e.folio, e.page),
                                kind=e.kind.value))
    return out


@state_invariant(
    "INV-2", "pinned implies exclusive",
    "A page pinned with FOLL_PIN and still mapped by the pinning process is "
    "exclusive, and nothing clears the flag while the folio may be pinned.",
    "mm/gup.c: sanity_check_pinned_pages (CONFIG_DEBUG_VM; after GUP-fast pins "
    "and when pins are dropped; for a THP the head or the pinned subpage); "
    "include/linux/rmap.h: folio_try_dup_anon_rmap_*, folio_try_share_anon_rmap_*")
def _inv2(m: CheckedMem) -> list[Offender]:
    out = []
    for h in m.handles.values():
        if not h.pin or h.folio == ZERO_FOLIO or h.owner not in m.procs:
            continue
        v = m.procs[h.owner].vma(h.mapping)
        if v is None or h.index in v.holes:
            continue
        e = v.entry(h.index)
        if e is None or e.kind is not EntryKind.PRESENT:
            continue
        huge = v.huge is not None
        page = h.index if huge else e.page
        if (e.folio, page) == (h.folio, h.page) and not m.exclusive(h.folio, h.page, huge):
            out.append(Offender("pinned-shared", proc=h.owner, mapping=h.mapping,
                                index=h.index, page=(h.folio, h.page), handle=h.name))
        elif h.release_head and not huge and not m.exclusive(h.folio, 0):
            # the page the pin is recorded by: for a PTE-mapped large folio the unpin's check
            # accepts that page or the head exclusive, and here both are the head
            out.append(Offender("pin-recorded-by-shared-head", proc=h.owner,
                                mapping=h.mapping, index=h.index, page=(h.folio, 0),
                                handle=h.name))
    return out


@transition_half("INV-2")
def _inv2_step(before: CheckedMem, after: CheckedMem, op: Op | None) -> list[Offender]:
    return [Offender("cleared-while-pinned", page=key)
            for key, now in _changed(before, after) if not now and before.maybe_pinned(key[0])]


@state_invariant(
    "INV-3", "exclusive means mapped once",
    "A page marked exclusive is mapped by at most one entry.",
    "mm/rmap.c: __folio_add_anon_rmap's debug check")
def _inv3(m: CheckedMem) -> list[Offender]:
    seen: dict[Page, list[tuple[Loc, bool]]] = {}
    for loc, e in m.entries():
        if e.kind not in MAPPING_KINDS or e.folio == ZERO_FOLIO:
            continue
        pages = range(len(m.folio(e.folio).pages)) if loc.huge else (e.page,)
        for i in pages:
            seen.setdefault((e.folio, i), []).append((loc, m.exclusive(e.folio, i, loc.huge)))
    out = []
    for (fid, i), maps in sorted(seen.items()):
        if len(maps) > 1 and any(x for _l, x in maps):
            out.append(Offender("exclusive-mapped-twice", page=(fid, i), mapped_by=tuple(
                (loc.proc, loc.vma, i if loc.huge else loc.index) for loc, _x in maps)))
    return out


@state_invariant(
    "INV-4", "KSM pages are never exclusive",
    "KSM pages (and the zero page) never carry PG_anon_exclusive.",
    "include/linux/page-flags.h: SetPageAnonExclusive; mm/ksm.c: replace_page")
def _inv4(m: CheckedMem) -> list[Offender]:
    return [Offender("ksm-exclusive", page=(f.id, i))
            for f in m.folios.values() if f.kind is FolioKind.KSM
            for i, p in enumerate(f.pages) if p.anon_exclusive]


@state_invariant(
    "INV-5", "swap entries carry exclusivity",
    "A page in the swap cache behind a swap PTE has its flag clear; an exclusive "
    "swap PTE is the only user of its slot.",
    "mm/memory.c: do_swap_page's BUG_ON; mm/memory.c: copy_nonpresent_pte")
def _inv5(m: CheckedMem) -> list[Offender]:
    out = []
    for loc, e in m.entries():
        if e.kind is not EntryKind.SWAP:
            continue
        if e.exclusive and m.swap_count(e.slot) != 1:
            out.append(Offender("exclusive-swap-shared", **_at(loc), slot=e.slot, expected=1,
                                seen=m.swap_count(e.slot)))
        f = m.swapcache_folio(e.slot)
        if f is not None and f.swapcache is not None:
            i = f.swapcache.index(e.slot)
            if m.exclusive(f.id, i):
                out.append(Offender("swapcache-exclusive", **_at(loc), page=(f.id, i)))
    return out


@state_invariant(
    "INV-6", "migration entries carry exclusivity",
    "While migration entries point to a page its flag is clear; the entry type "
    "(writable, readable_exclusive, readable) says whether it was exclusive.",
    "mm/rmap.c: try_to_migrate_one; mm/migrate.c: remove_migration_pte")
def _inv6(m: CheckedMem) -> list[Offender]:
    return [Offender("migration-flag-set", **_at(loc), page=(e.folio, e.page))
            for loc, e in m.entries()
            if e.kind is EntryKind.MIGRATION and m.exclusive(e.folio, e.page, loc.huge)]


@step_invariant(
    "INV-7", "clearing protocol",
    "Only fork and the unmap side of the kernel (swap-out, migration, KSM, "
    "device-private migration, folio split) clear the flag; memory failure leaves "
    "it stale, except on a folio in the swap cache, which it unmaps as swap-out "
    "does.",
    "include/linux/rmap.h: folio_try_share_anon_rmap_* (barriers for GUP-fast); "
    "mm/memory-failure.c: unmap_poisoned_folio")
def _inv7(before: CheckedMem, after: CheckedMem, op: Op | None) -> list[Offender]:
    effect = _effect(op)
    # fork, the unmap side of the kernel, and faults (an access may complete a pending
    # migration or run an implicit split: those clear too)
    if effect is not None and effect.clears is Clears.MAY:
        return []
    if effect is not None and effect.clears is Clears.SWAPCACHE:
        # a folio in the swap cache is unmapped through the anonymous branch, which shares
        return [Offender("cleared-by-poison", page=key)
                for key, now in _changed(before, after)
                if not now and before.folios[key[0]].swapcache is None]
    return [Offender("cleared", page=key, op=type(op).__name__)
            for key, now in _changed(before, after) if not now]


@step_invariant(
    "INV-8", "setting protocol",
    "The flag is set only on a fresh folio, by a fault that proves exclusivity on "
    "the faulting page, or from an entry that carried exclusivity (swap bit, "
    "migration type, PMD split).",
    "mm/rmap.c: folio_add_new_anon_rmap; mm/memory.c: do_wp_page, do_swap_page; "
    "mm/migrate.c: remove_migration_pte")
def _inv8(before: CheckedMem, after: CheckedMem, op: Op | None) -> list[Offender]:
    gained = [key for key, now in _changed(before, after) if now]
    if not gained:
        return []
    carried = _carried(before)
    accessed: set[Page] = set()
    ref = getattr(op, "page", None)
    effect = _effect(op)
    faulting = effect is not None and effect.sets is Sets.FAULT
    if (faulting and ref is not None and ref.proc in after.procs
            and after.procs[ref.proc].vma(ref.mapping)):
            target = _resolve(after, ref.proc, ref.mapping, ref.index)
            if isinstance(target, tuple):
                accessed.add(target)
                accessed.add((target[0], 0))
    return [Offender("set-unproven", page=key, op=type(op).__name__)
            for key in gained if key not in carried and key not in accessed]


@step_invariant(
    "INV-9", "no spontaneous regain",
    "Operations that are not faults (exit, munmap, unpin, mprotect, ...) never make a "
    "page exclusive, even when the other sharer is gone.",
    "mm/memory.c: do_wp_page (exclusivity is regained lazily)")
def _inv9(before: CheckedMem, after: CheckedMem, op: Op | None) -> list[Offender]:
    effect = _effect(op)
    if effect is None or effect.sets is not Sets.NEVER:
        return []
    gained = [key for key, now in _changed(before, after) if now]
    if not gained:
        return []
    carried = _carried(before)
    return [Offender("regained", page=key, op=type(op).__name__)
            for key in gained if key not in carried]


@state_invariant(
    "INV-10", "granularity",
    "A THP mapped by a PMD and a hugetlb page carry the flag on the head page only.",
    "include/linux/page-flags.h: PG_anon_exclusive (PF_ANY), PageAnonExclusive")
def _inv10(m: CheckedMem) -> list[Offender]:
    out = []
    pmd_mapped = {e.folio for loc, e in m.entries() if loc.huge and e.kind in MAPPING_KINDS}
    for f in m.folios.values():
        if f.kind is FolioKind.HUGETLB or (f.kind is FolioKind.THP and f.id in pmd_mapped):
            out += [Offender("tail-flag", page=(f.id, i), kind=f.kind.value)
                    for i, p in enumerate(f.pages) if i and p.anon_exclusive]
    return out


@state_invariant(
    "INV-11", "pin coherence",
    "While a FOLL_PIN reference is held and its process still maps the address, the "
    "process and the pin see the same page.",
    "tools/testing/selftests/mm/cow.c: the R/O pin and io_uring tests", needs_flag=False)
def _inv11(m: CheckedMem) -> list[Offender]:
    out = []
    for h in m.handles.values():
        if not h.pin or not h.tracking or h.owner not in m.procs:
            continue
        if h.folio == ZERO_FOLIO and not h.longterm:
            continue  # a short-term R/O pin of the zero page promises nothing
        v = m.procs[h.owner].vma(h.mapping)
        if v is None or h.index in v.holes:
            continue
        target = _resolve(m, h.owner, h.mapping, h.index)
        if target == "poison":
            continue
        if target != (h.folio, h.page):
            out.append(Offender("pin-incoherent", proc=h.owner, mapping=h.mapping,
                                index=h.index, page=(h.folio, h.page), handle=h.name,
                                expected=(h.folio, h.page),
                                seen=target if isinstance(target, tuple) else None))
    return out


@state_invariant(
    "INV-12", "isolation",
    "After fork, no write by one process (by its CPU, or by a device through a "
    "FOLL_PIN reference it took) becomes visible to another process, through its "
    "mappings or through a GUP reference it took. Device writes through FOLL_GET "
    "references are promised nothing and are not counted.",
    "tools/testing/selftests/mm/cow.c: the basic COW and vmsplice tests", needs_flag=False)
def _inv12(m: CheckedMem) -> list[Offender]:
    out = []
    for pname in sorted(m.procs):
        for v in m.procs[pname].vmas:
            for i in range(v.npages):
                if i in v.holes:
                    continue
                value = _value_at(m, pname, v.name, i)
                if value is not None and value not in v.shadow[i]:
                    out.append(Offender("mapping-reads-foreign", proc=pname, mapping=v.name,
                                        index=i, expected=tuple(sorted(v.shadow[i])),
                                        seen=value))
    for h in sorted(m.handles.values(), key=lambda h: h.name):
        if h.folio != ZERO_FOLIO and m.folio(h.folio).pages[h.page].hwpoison:
            continue
        value = m.data(h.folio, h.page)
        if value not in h.allowed:
            out.append(Offender("handle-reads-foreign", proc=h.owner, handle=h.name,
                                page=(h.folio, h.page), expected=tuple(sorted(h.allowed)),
                                seen=value))
    return out


@step_invariant(
    "INV-13", "mprotect upgrade",
    "mprotect makes a private PTE writable only if it maps an exclusive anonymous "
    "page and no soft-dirty tracking needs a write fault.",
    "mm/mprotect.c: can_change_pte_writable")
def _inv13(before: CheckedMem, after: CheckedMem, op: Op | None) -> list[Offender]:
    if not isinstance(op, Mprotect):
        return []
    was = dict(before.entries())
    out = []
    for loc, e in after.entries():
        old = was.get(loc)
        upgraded = (e.kind is EntryKind.PRESENT and e.writable and old is not None
                    and old.kind is EntryKind.PRESENT and not old.writable)
        if upgraded and (e.folio == ZERO_FOLIO or not after.exclusive(e.folio, e.page, loc.huge)):
                out.append(Offender("mprotect-upgrade", **_at(loc), page=(e.folio, e.page)))
    return out


_register(Invariant(
    "INV-14", "read-only exclusive is legal",
    "A read-only entry of an exclusive page is allowed (mprotect, clear_refs, swap-in "
    "without write, readable_exclusive migration entries, split of a read-only PMD). "
    "A permission, not a prohibition: nothing to check.",
    "mm/mprotect.c, fs/proc/task_mmu.c, mm/memory.c: do_swap_page", True))

INVARIANTS: tuple[Invariant, ...] = tuple(_REGISTRY.values())
BY_ID: dict[str, Invariant] = dict(_REGISTRY)


# ------------------------------------------------------------------ checking
@dataclass(frozen=True)
class Checker:
    """The invariants to check under one scheme, in the order their violations are listed.

    Built once for many checks (the explorer builds one per search);
    :func:`check` builds one per call.
    """

    scheme: Scheme
    invariants: tuple[Invariant, ...]
    #: those of ``invariants`` with a transition check
    steps: tuple[Invariant, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(
            i for i in self.invariants if i.step_check is not None))

    @classmethod
    def select(cls, scheme: Scheme, only: tuple[str, ...] | None = None) -> Checker:
        """Every invariant that applies under ``scheme`` (those of ``only``), in registry order."""
        return cls(scheme, tuple(i for i in INVARIANTS if i.applies(scheme)
                                 and (only is None or i.id in only)))

    def prepare(self, world: World) -> CheckedMem:
        """The before-state of many transitions from ``world``, to pass as ``prior``."""
        return CheckedMem(world, self.scheme)

    def check(self, world: World, before: World | None = None, op: Op | None = None, *,
              prior: CheckedMem | None = None, transition_only: bool = False
              ) -> list[Violation]:
        """The invariants that do not hold after ``before`` -- ``op`` --> ``world``.

        State checks look at ``world``; transition checks also need the state
        before the operation: ``prior`` (built by :meth:`prepare` once for
        every operation tried from one state) or else ``before`` (neither:
        no transition checks). ``transition_only``: the transition checks
        alone, for a target whose state checks gave their verdict before.
        """
        if prior is None and before is not None:
            prior = CheckedMem(before, self.scheme)
        if transition_only:
            if prior is None:
                raise ValueError("transition_only needs the state before the operation")
            if not self.steps:  # a scheme without the flag has no transition checks
                return []
        after = CheckedMem(world, self.scheme)
        out = []
        for inv in self.steps if transition_only else self.invariants:
            offenders: list[Offender] = []
            if inv.state_check is not None and not transition_only:
                offenders += inv.state_check(after)
            if inv.step_check is not None and prior is not None:
                offenders += inv.step_check(prior, after, op)
            if offenders:
                out.append(Violation(inv, tuple(offenders)))
        return out


def check(world: World, scheme: Scheme, before: World | None = None, op: Op | None = None,
          only: tuple[str, ...] | None = None, *, prior: CheckedMem | None = None,
          transition_only: bool = False) -> list[Violation]:
    """Every invariant that applies under ``scheme`` (those of ``only``) and does not hold.

    State checks look at ``world``; transition checks also need the world
    ``before`` the operation ``op`` (or its prebuilt ``prior``; skipped when
    both are None). ``transition_only``: the transition checks alone
    (:meth:`Checker.check`).
    """
    return Checker.select(scheme, only).check(world, before, op, prior=prior,
                                              transition_only=transition_only)
