"""Reclaim of anonymous folios to swap (mm/vmscan.c, mm/rmap.c: try_to_unmap_one)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..results import BackOff, ErrorKind, OpFailed
from ..schemes import ReclaimSplit
from ..state import ZERO_FOLIO, Entry, EntryKind, FolioKind, replace
from .anon_rmap import back_off_from_device_exclusive, folio_try_share_anon_rmap
from .huge_memory import can_split_folio, split_folio, split_huge_pmd
from .internal import folio_expected_ref_count


def shrink_folio_list(m: Mem, fid: int) -> None:
    """Reclaim one folio: add it to the swap cache, unmap it everywhere, write it out.

    mm/vmscan.c: shrink_folio_list -> add_to_swap, try_to_unmap, pageout, __remove_mapping
    (6.12). A maybe-pinned folio is not added to the swap cache (feb889fb40fa,
    scheme point ``reclaim_skips_pinned``). A large folio (THP or mTHP) is kept
    out of swap too when anything else references it (can_split_folio: a
    FOLL_GET), is split first when it is partially mapped (scheme point
    ``reclaim_split``: up to 6.9 whenever no PMD maps it), and is split when the
    swap device has no run of free slots for it; the small folios of a split are
    reclaimed in the same pass (:func:`_reclaim_split`). Otherwise a large folio
    goes to swap whole (6.10), one slot per page. If something still references
    a folio after unmapping (a FOLL_GET on a small folio), it stays in the swap
    cache, where a later swap-in finds it.
    """
    f = m.folio(fid)
    if f.kind is FolioKind.HUGETLB:
        raise BackOff("hugetlb pages are not swapped")
    if f.kind is FolioKind.KSM:
        raise BackOff("the model does not swap out KSM pages")
    if f.kind is FolioKind.DEVICE:
        raise BackOff("device-private pages are not reclaimed to swap")
    back_off_from_device_exclusive(m, fid, "reclaim")
    if f.swapcache is None:
        if m.scheme.reclaim_skips_pinned and m.maybe_pinned(fid):
            raise BackOff("folio_maybe_dma_pinned: reclaim keeps pinned folios out of swap")
        if f.large:
            if not can_split_folio(m, fid):
                raise BackOff("can_split_folio: the large folio has references beyond its "
                              "mappings, so reclaim keeps it")
            if m.scheme.reclaim_split is ReclaimSplit.NOT_PMD_MAPPED:
                if not any(loc.huge for loc, _e in m.mappings_of(fid)):
                    _reclaim_split(m, fid, "no PMD maps the folio: split first (up to 6.9)")
                    return
            elif f.partially_mapped:
                _reclaim_split(m, fid, "the folio is partially mapped: split first")
                return
            if m.config.swap_slots - len(m.slots) < len(f.pages):
                _reclaim_split(m, fid, "no run of free swap slots for the large folio")
                return
        try:
            slots = tuple(m.new_slot(p.data) for p in f.pages)
        except OpFailed as err:
            if err.kind is ErrorKind.FAILED:
                raise BackOff("add_to_swap: no free swap slots") from None
            raise
        m.set_folio(replace(f, swapcache=slots))
    for loc, e in m.mappings_of(fid):
        if e.kind is not EntryKind.PRESENT:
            raise BackOff(f"the folio is mapped by a {e.kind.value} entry")
        if loc.huge:
            split_huge_pmd(m, loc.proc, loc.vma)  # TTU_SPLIT_HUGE_PMD
    for loc, e in m.mappings_of(fid):
        try_to_unmap_one(m, loc, e)
    f = m.folio(fid)
    assert f.swapcache is not None
    for slot, page in zip(f.swapcache, f.pages, strict=True):
        m.slots[slot] = replace(m.slots[slot], data=page.data)  # pageout(): write back
    if m.refcount(fid) == folio_expected_ref_count(m, fid):  # __remove_mapping: no GUP ref
        m.set_folio(replace(f, swapcache=None))


def _reclaim_split(m: Mem, fid: int, why: str) -> None:
    """Split a large folio and reclaim its small folios that are still mapped, in page order.

    mm/vmscan.c: shrink_folio_list, split_folio_to_list (6.12): the split folios join
    the list being reclaimed; unmapped pages are freed without I/O. The model
    backs off only if the split fails; a small folio that cannot be swapped
    out stays, as in the kernel, and the split stays even if none could.
    """
    mapped = sorted(m.mappings_of(fid), key=lambda le: le[1].page)
    reason = split_folio(m, fid)
    if reason:
        raise BackOff(f"{why}, but {reason}")
    done: set[int] = set()
    for loc, _e in mapped:
        e = m.get(loc)
        if e is None or e.kind is not EntryKind.PRESENT or e.folio in done:
            continue
        if e.folio == ZERO_FOLIO:
            continue
        done.add(e.folio)
        try:
            # a split folio has no reference beyond its mappings (can_split_folio held), so
            # the only refusal left is a full swap device, before anything changed
            shrink_folio_list(m, e.folio)
        except BackOff:
            continue  # stays mapped; the split stays, even if nothing was swapped out


def try_to_unmap_one(m: Mem, loc: Loc, e: Entry) -> None:
    """Replace one PTE of a folio being reclaimed by a swap PTE carrying the exclusive bit.

    mm/rmap.c: try_to_unmap_one (6.12): read the flag, clear the PTE, then
    folio_try_share_anon_rmap_pte (which refuses a maybe-pinned folio: restore
    and give up), then install a swap PTE whose exclusive bit is the old flag
    (on architectures that have the bit: scheme point ``swp_exclusive``).
    """
    exclusive = m.exclusive(e.folio, e.page)
    if exclusive and not folio_try_share_anon_rmap(m, e.folio, e.page):
        raise BackOff("the folio may be pinned: folio_try_share_anon_rmap refused")
    f = m.folio(e.folio)
    assert f.swapcache is not None
    m.set(loc, Entry(EntryKind.SWAP, slot=f.swapcache[e.page],
                     exclusive=exclusive and m.scheme.swp_exclusive, soft_dirty=e.soft_dirty))


def remove_from_swapcache(m: Mem, fid: int) -> None:
    """Drop a clean folio that nobody maps from the swap cache, freeing it.

    mm/vmscan.c: shrink_folio_list -> __remove_mapping (6.12): only when the
    swap cache holds the last references (a GUP reference keeps it). A folio
    with a poisoned page is skipped (shrink_folio_list hands it to
    unmap_poisoned_folio and keeps it; in the 6.12 stable series the model
    follows, from "mm/vmscan: don't try to reclaim hwpoison folio"): memory
    failure left it there so that a swap-in gets SIGBUS.
    """
    f = m.folio(fid)
    if f.swapcache is None:
        raise BackOff("the folio is not in the swap cache")
    if any(p.hwpoison for p in f.pages):
        raise BackOff("the folio is poisoned: reclaim keeps it in the swap cache")
    if m.folio_mapcount(fid):
        raise BackOff("the folio is still mapped")
    if m.refcount(fid) != folio_expected_ref_count(m, fid):
        raise BackOff("the folio has other references (GUP): __remove_mapping refuses")
    for slot, page in zip(f.swapcache, f.pages, strict=True):
        m.slots[slot] = replace(m.slots[slot], data=page.data)
    m.set_folio(replace(f, swapcache=None))
