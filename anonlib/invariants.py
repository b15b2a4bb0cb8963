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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .mem import MAPPING_KINDS, Loc, Mem
from .ops import (
    ClearSoftDirty,
    Exit,
    Fork,
    Gup,
    HandleRead,
    HandleWrite,
    Kernel,
    KernelAction,
    Ksm,
    Madvise,
    Mmap,
    Mprotect,
    Munmap,
    Op,
    Read,
    Release,
    Spawn,
    Write,
)
from .schemes import Scheme
from .state import ZERO_FOLIO, ZERO_VALUE, EntryKind, FolioKind, World

StateCheck = Callable[[Mem], list[str]]
StepCheck = Callable[[Mem, Mem, Op | None], list[str]]


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


@dataclass(frozen=True)
class Violation:
    """An invariant that does not hold, and the entries or pages that break it."""

    invariant: Invariant
    offenders: tuple[str, ...]

    def __str__(self) -> str:
        inv = self.invariant
        lines = [f"{inv.id} ({inv.title}) violated: {inv.statement}"]
        lines += [f"  - {o}" for o in self.offenders]
        return "\n".join(lines)


# ------------------------------------------------------------------ helpers
def where(loc: Loc, index: int | None = None) -> str:
    if loc.huge:
        return f"{loc.proc} {loc.vma}[*]" if index is None else f"{loc.proc} {loc.vma}[{index}]"
    return f"{loc.proc} {loc.vma}[{loc.index}]"


def page_name(fid: int, index: int) -> str:
    return f"page {fid}.{index}"


def _resolve(m: Mem, proc: str, vma: str, index: int) -> tuple[int, int] | None | str:
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


def _memo(m: Mem, key: str, compute: Callable[[Mem], object]) -> Any:
    """Compute a derived map once per Mem: check() builds each Mem for one world and several
    invariants ask for the same map (INV-2, 7, 8 and 9 all read every page's flag)."""
    memo = m.__dict__.setdefault("_invariant_memo", {})
    if key not in memo:
        memo[key] = compute(m)
    return memo[key]


def _raw_flags(m: Mem) -> dict[tuple[int, int], bool]:
    return _memo(m, "raw_flags", lambda m: {
        (f.id, i): p.anon_exclusive for f in m.folios.values() for i, p in enumerate(f.pages)})


# ------------------------------------------------------------- state checks
def _inv1(m: Mem) -> list[str]:
    out = []
    for loc, e in m.entries():
        if e.kind is EntryKind.MIGRATION:
            if e.writable and not e.exclusive:
                out.append(f"{where(loc)}: writable migration entry that is not exclusive")
            continue
        if e.kind not in MAPPING_KINDS or e.folio == ZERO_FOLIO:
            continue
        writable = e.writable or e.kind is EntryKind.DEVICE_EXCLUSIVE
        if writable and not m.exclusive(e.folio, e.page, loc.huge):
            out.append(f"{where(loc)}: writable {e.kind.value} entry maps "
                       f"{page_name(e.folio, e.page)}, which is not exclusive")
    return out


def _inv2(m: Mem) -> list[str]:
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
            out.append(f"{h.name} pins {page_name(h.folio, h.page)}, mapped by "
                       f"{h.owner} {h.mapping}[{h.index}], which is not exclusive")
    return out


def _inv3(m: Mem) -> list[str]:
    seen: dict[tuple[int, int], list[tuple[Loc, bool]]] = {}
    for loc, e in m.entries():
        if e.kind not in MAPPING_KINDS or e.folio == ZERO_FOLIO:
            continue
        pages = range(len(m.folio(e.folio).pages)) if loc.huge else (e.page,)
        for i in pages:
            seen.setdefault((e.folio, i), []).append((loc, m.exclusive(e.folio, i, loc.huge)))
    out = []
    for (fid, i), maps in sorted(seen.items()):
        if len(maps) > 1 and any(x for _l, x in maps):
            out.append(f"{page_name(fid, i)} is exclusive but mapped by "
                       + ", ".join(where(loc, i) for loc, _x in maps))
    return out


def _inv4(m: Mem) -> list[str]:
    return [f"KSM {page_name(f.id, i)} has PG_anon_exclusive set"
            for f in m.folios.values() if f.kind is FolioKind.KSM
            for i, p in enumerate(f.pages) if p.anon_exclusive]


def _inv5(m: Mem) -> list[str]:
    out = []
    for loc, e in m.entries():
        if e.kind is not EntryKind.SWAP:
            continue
        if e.exclusive and m.swap_count(e.slot) != 1:
            out.append(f"{where(loc)}: exclusive swap entry, but {m.swap_count(e.slot)} entries "
                       f"share slot {e.slot}")
        f = m.swapcache_folio(e.slot)
        if f is not None and f.swapcache is not None:
            i = f.swapcache.index(e.slot)
            if m.exclusive(f.id, i):
                out.append(f"{where(loc)}: swap entry for {page_name(f.id, i)} in the swap "
                           "cache, which is still marked exclusive")
    return out


def _inv6(m: Mem) -> list[str]:
    return [f"{where(loc)}: migration entry for {page_name(e.folio, e.page)}, whose flag is set"
            for loc, e in m.entries()
            if e.kind is EntryKind.MIGRATION and m.exclusive(e.folio, e.page, loc.huge)]


def _inv10(m: Mem) -> list[str]:
    out = []
    pmd_mapped = {e.folio for loc, e in m.entries() if loc.huge and e.kind in MAPPING_KINDS}
    for f in m.folios.values():
        if f.kind is FolioKind.HUGETLB or (f.kind is FolioKind.THP and f.id in pmd_mapped):
            out += [f"{page_name(f.id, i)}: tail page of a {f.kind.value} folio mapped as a "
                    "whole carries the flag" for i, p in enumerate(f.pages)
                    if i and p.anon_exclusive]
    return out


def _inv11(m: Mem) -> list[str]:
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
            now = "no page" if target is None else page_name(*target)  # type: ignore[misc]
            out.append(f"{h.name} pins {page_name(h.folio, h.page)}, but {h.owner} "
                       f"{h.mapping}[{h.index}] now leads to {now}")
    return out


def _inv12(m: Mem) -> list[str]:
    out = []
    for pname in sorted(m.procs):
        for v in m.procs[pname].vmas:
            for i in range(v.npages):
                if i in v.holes:
                    continue
                value = _value_at(m, pname, v.name, i)
                if value is not None and value not in v.shadow[i]:
                    out.append(f"{pname} {v.name}[{i}] reads {value!r}, which neither it wrote "
                               f"nor inherited (expected one of {sorted(v.shadow[i])})")
    for h in sorted(m.handles.values(), key=lambda h: h.name):
        if h.folio != ZERO_FOLIO and m.folio(h.folio).pages[h.page].hwpoison:
            continue
        value = m.data(h.folio, h.page)
        if value not in h.allowed:
            out.append(f"{h.name} (taken by {h.owner}) reads {value!r}, written by someone "
                       f"else (expected one of {sorted(h.allowed)})")
    return out


# ------------------------------------------------------- transition checks
_ACCESS = (Write, Read, Gup)
#: operations that may clear the flag: fork, and the unmap side of the kernel (INV-7).
_MAY_CLEAR = (KernelAction.SWAPOUT, KernelAction.MIGRATE, KernelAction.MIGRATE_BEGIN,
              KernelAction.DEVICE_PRIVATE, KernelAction.SPLIT_FOLIO)
#: operations that never set the flag on an existing page (INV-9).
_NEVER_SET = (Spawn, Mmap, Exit, Munmap, Release, Madvise, Mprotect, ClearSoftDirty,
              HandleRead, HandleWrite, Fork, Ksm)


def _changed(before: Mem, after: Mem) -> list[tuple[tuple[int, int], bool]]:
    """Pages of folios that exist before and after whose flag changed: (page, flag after),
    in page order. The transition checks INV-2, 7, 8 and 9 look only at these."""
    memo = after.__dict__.setdefault("_invariant_memo", {})
    hit = memo.get("changed")
    if hit is not None and hit[0] is before:
        return hit[1]
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
    memo["changed"] = (before, out)
    return out


def _inv2_step(before: Mem, after: Mem, op: Op | None) -> list[str]:
    return [f"{page_name(*key)} lost PG_anon_exclusive while its folio was pinned"
            for key, now in _changed(before, after) if not now and before.maybe_pinned(key[0])]


def _inv7(before: Mem, after: Mem, op: Op | None) -> list[str]:
    if isinstance(op, Fork | Ksm) or (isinstance(op, Kernel) and op.action in _MAY_CLEAR):
        return []
    # an access may complete a pending migration or run an implicit split: those clear too
    if isinstance(op, _ACCESS):
        return []
    if isinstance(op, Kernel) and op.action is KernelAction.POISON:
        # a folio in the swap cache is unmapped through the anonymous branch, which shares
        return [f"{page_name(*key)} lost PG_anon_exclusive in memory failure, which leaves "
                "it stale unless the folio is in the swap cache"
                for key, now in _changed(before, after)
                if not now and before.folios[key[0]].swapcache is None]
    return [f"{page_name(*key)} lost PG_anon_exclusive in {type(op).__name__}, which never "
            "clears it" for key, now in _changed(before, after) if not now]


def _carried(before: Mem) -> set[tuple[int, int]]:
    """Pages whose exclusivity an entry in ``before`` carried: an exclusive swap PTE or
    migration entry, or the head flag of a PMD that a split propagates to every subpage."""
    return _memo(before, "carried", _compute_carried)


def _compute_carried(before: Mem) -> set[tuple[int, int]]:
    carried: set[tuple[int, int]] = set()
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


def _inv8(before: Mem, after: Mem, op: Op | None) -> list[str]:
    gained = [key for key, now in _changed(before, after) if now]
    if not gained:
        return []
    carried = _carried(before)
    accessed: set[tuple[int, int]] = set()
    ref = getattr(op, "page", None)
    faulting = isinstance(op, _ACCESS) or (isinstance(op, Kernel) and op.action in (
        KernelAction.DEVICE_EXCLUSIVE, KernelAction.MIGRATE, KernelAction.MIGRATE_END))
    if (faulting and ref is not None and ref.proc in after.procs
            and after.procs[ref.proc].vma(ref.mapping)):
            target = _resolve(after, ref.proc, ref.mapping, ref.index)
            if isinstance(target, tuple):
                accessed.add(target)
                accessed.add((target[0], 0))
    return [f"{page_name(*key)} gained PG_anon_exclusive in {type(op).__name__} "
            "without a fault on it or an entry that carried exclusivity"
            for key in gained if key not in carried and key not in accessed]


def _inv9(before: Mem, after: Mem, op: Op | None) -> list[str]:
    if not isinstance(op, _NEVER_SET):
        return []
    gained = [key for key, now in _changed(before, after) if now]
    if not gained:
        return []
    carried = _carried(before)
    return [f"{page_name(*key)} regained PG_anon_exclusive in {type(op).__name__}"
            for key in gained if key not in carried]


def _inv13(before: Mem, after: Mem, op: Op | None) -> list[str]:
    if not isinstance(op, Mprotect):
        return []
    was = dict(before.entries())
    out = []
    for loc, e in after.entries():
        old = was.get(loc)
        upgraded = (e.kind is EntryKind.PRESENT and e.writable and old is not None
                    and old.kind is EntryKind.PRESENT and not old.writable)
        if upgraded and (e.folio == ZERO_FOLIO or not after.exclusive(e.folio, e.page, loc.huge)):
                out.append(f"{where(loc)}: mprotect made a non-exclusive page writable")
    return out


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("INV-1", "writable implies exclusive",
              "A writable present, PMD, hugetlb, migration, device-private or device-exclusive "
              "entry of an anonymous page maps a page marked exclusive.",
              "mm/gup.c: gup_fast_pte_range and can_follow_write_pte; "
              "mm/memory.c: do_swap_page's VM_BUG_ON", True, state_check=_inv1),
    Invariant("INV-2", "pinned implies exclusive",
              "A page pinned with FOLL_PIN and still mapped by the pinning process is "
              "exclusive, and nothing clears the flag while the folio may be pinned.",
              "mm/gup.c: sanity_check_pinned_pages (CONFIG_DEBUG_VM; after GUP-fast pins "
              "and when pins are dropped; for a THP the head or the pinned subpage); "
              "include/linux/rmap.h: folio_try_dup_anon_rmap_*, folio_try_share_anon_rmap_*",
              True,
              state_check=_inv2, step_check=_inv2_step),
    Invariant("INV-3", "exclusive means mapped once",
              "A page marked exclusive is mapped by at most one entry.",
              "mm/rmap.c: __folio_add_anon_rmap's debug check", True, state_check=_inv3),
    Invariant("INV-4", "KSM pages are never exclusive",
              "KSM pages (and the zero page) never carry PG_anon_exclusive.",
              "include/linux/page-flags.h: SetPageAnonExclusive; mm/ksm.c: replace_page", True,
              state_check=_inv4),
    Invariant("INV-5", "swap entries carry exclusivity",
              "A page in the swap cache behind a swap PTE has its flag clear; an exclusive "
              "swap PTE is the only user of its slot.",
              "mm/memory.c: do_swap_page's BUG_ON; mm/memory.c: copy_nonpresent_pte", True,
              state_check=_inv5),
    Invariant("INV-6", "migration entries carry exclusivity",
              "While migration entries point to a page its flag is clear; the entry type "
              "(writable, readable_exclusive, readable) says whether it was exclusive.",
              "mm/rmap.c: try_to_migrate_one; mm/migrate.c: remove_migration_pte", True,
              state_check=_inv6),
    Invariant("INV-7", "clearing protocol",
              "Only fork and the unmap side of the kernel (swap-out, migration, KSM, "
              "device-private migration, folio split) clear the flag; memory failure leaves "
              "it stale, except on a folio in the swap cache, which it unmaps as swap-out "
              "does.",
              "include/linux/rmap.h: folio_try_share_anon_rmap_* (barriers for GUP-fast); "
              "mm/memory-failure.c: unmap_poisoned_folio", True,
              step_check=_inv7),
    Invariant("INV-8", "setting protocol",
              "The flag is set only on a fresh folio, by a fault that proves exclusivity on "
              "the faulting page, or from an entry that carried exclusivity (swap bit, "
              "migration type, PMD split).",
              "mm/rmap.c: folio_add_new_anon_rmap; mm/memory.c: do_wp_page, do_swap_page; "
              "mm/migrate.c: remove_migration_pte", True, step_check=_inv8),
    Invariant("INV-9", "no spontaneous regain",
              "Operations that are not faults (exit, munmap, unpin, mprotect, ...) never make a "
              "page exclusive, even when the other sharer is gone.",
              "mm/memory.c: do_wp_page (exclusivity is regained lazily)", True, step_check=_inv9),
    Invariant("INV-10", "granularity",
              "A THP mapped by a PMD and a hugetlb page carry the flag on the head page only.",
              "include/linux/page-flags.h: PG_anon_exclusive (PF_ANY), PageAnonExclusive", True,
              state_check=_inv10),
    Invariant("INV-11", "pin coherence",
              "While a FOLL_PIN reference is held and its process still maps the address, the "
              "process and the pin see the same page.",
              "tools/testing/selftests/mm/cow.c: the R/O pin and io_uring tests", False,
              state_check=_inv11),
    Invariant("INV-12", "isolation",
              "After fork, no write by one process (by its CPU, or by a device through a "
              "FOLL_PIN reference it took) becomes visible to another process, through its "
              "mappings or through a GUP reference it took. Device writes through FOLL_GET "
              "references are promised nothing and are not counted.",
              "tools/testing/selftests/mm/cow.c: the basic COW and vmsplice tests", False,
              state_check=_inv12),
    Invariant("INV-13", "mprotect upgrade",
              "mprotect makes a private PTE writable only if it maps an exclusive anonymous "
              "page and no soft-dirty tracking needs a write fault.",
              "mm/mprotect.c: can_change_pte_writable", True, step_check=_inv13),
    Invariant("INV-14", "read-only exclusive is legal",
              "A read-only entry of an exclusive page is allowed (mprotect, clear_refs, swap-in "
              "without write, readable_exclusive migration entries, split of a read-only PMD). "
              "A permission, not a prohibition: nothing to check.",
              "mm/mprotect.c, fs/proc/task_mmu.c, mm/memory.c: do_swap_page", True),
)

BY_ID: dict[str, Invariant] = {inv.id: inv for inv in INVARIANTS}


def check(world: World, scheme: Scheme, before: World | None = None, op: Op | None = None,
          only: tuple[str, ...] | None = None) -> list[Violation]:
    """Every invariant that applies under ``scheme`` and does not hold.

    State checks look at ``world``; transition checks also need the world
    ``before`` the operation ``op`` (skipped when ``before`` is None).
    """
    after = Mem(world, scheme)
    prior = Mem(before, scheme) if before is not None else None
    out = []
    for inv in INVARIANTS:
        if not inv.applies(scheme) or (only is not None and inv.id not in only):
            continue
        offenders: list[str] = []
        if inv.state_check is not None:
            offenders += inv.state_check(after)
        if inv.step_check is not None and prior is not None:
            offenders += inv.step_check(prior, after, op)
        if offenders:
            out.append(Violation(inv, tuple(offenders)))
    return out
