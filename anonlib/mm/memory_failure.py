"""Memory failure: hwpoison entries (or, for a swap-cache folio, swap entries) replace
the mappings; with hwpoison entries the flag goes stale.

Models mm/memory-failure.c.
"""

from __future__ import annotations

from ..mem import Mem
from ..ops import PageRef
from ..results import BackOff
from ..state import ZERO_FOLIO, Entry, EntryKind, FolioKind, replace
from .huge_memory import split_folio
from .vmscan import try_to_unmap_one


def memory_failure(m: Mem, ref: PageRef) -> None:
    """Poison the page at ``ref`` and take it away from every mapping.

    mm/memory-failure.c: memory_failure -> hwpoison_user_mappings -> try_to_unmap
    (6.12; the 6.12 stable series moved the unmap step into unmap_poisoned_folio,
    with the same flags). A large folio (THP or mTHP, folio_test_large) is split
    first (try_to_split_thp_page); if it cannot be split (pinned), the model backs
    off. hugetlb: the whole huge mapping becomes a hwpoison entry. No process
    is killed; later accesses get SIGBUS.

    Two ways through try_to_unmap_one (mm/rmap.c), chosen by whether the folio
    is in the swap cache:

    * Not in the swap cache: ``TTU_HWPOISON`` is set, and try_to_unmap_one's
      hwpoison branch, which comes before any PG_anon_exclusive handling,
      writes a hwpoison entry: even a pinned page is unmapped, and its flag is
      left as it was (stale).
    * In the swap cache: ``TTU_HWPOISON`` is dropped, so each
      PTE goes through the anonymous branch as in reclaim
      (:func:`~anonlib.mm.vmscan.try_to_unmap_one`): the flag is read,
      folio_try_share_anon_rmap_pte shares the page or refuses a maybe-pinned
      one, and a swap PTE for the folio's slot replaces the mapping. A refusal
      fails the unmap; the kernel then kills the processes that map the page
      and leaves the mapping, the model backs off instead (listed in
      :mod:`anonlib.model`). Then :func:`me_swapcache` decides what happens to
      the folio.
    """
    loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
    if e is None or e.kind not in (EntryKind.PRESENT, EntryKind.DEVICE_EXCLUSIVE):
        raise BackOff(f"no page is mapped at {ref}")
    if e.folio == ZERO_FOLIO:
        raise BackOff("the zero page is a reserved kernel page: memory_failure ignores it")
    f = m.folio(e.folio)
    if f.kind is FolioKind.DEVICE:
        raise BackOff("device-private memory is not handled by memory_failure")
    if f.large and f.kind is not FolioKind.HUGETLB:
        m.set_page(f.id, page, hwpoison=True)  # set before the split
        reason = split_folio(m, f.id)
        if reason:
            raise BackOff(f"the large folio could not be split: {reason}")
        loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
        assert e is not None
        f = m.folio(e.folio)
    m.set_page(f.id, page, hwpoison=True)
    if f.swapcache is not None:
        for _loc2, e2 in m.mappings_of(f.id):
            if e2.kind is not EntryKind.PRESENT:
                raise BackOff(f"the swap-cache folio is mapped by a {e2.kind.value} entry, "
                              "which the model does not unmap to a swap entry")
        for loc2, e2 in m.mappings_of(f.id):
            try_to_unmap_one(m, loc2, e2)
        me_swapcache(m, f.id)
        return
    for loc2, e2 in m.mappings_of(f.id):
        if loc2.huge or e2.page == page:
            m.set(loc2, Entry(EntryKind.HWPOISON, f.id, e2.page))


def me_swapcache(m: Mem, fid: int) -> None:
    """What memory_failure does with a poisoned small folio in the swap cache once unmapped.

    mm/memory-failure.c: me_swapcache_clean / me_swapcache_dirty (6.12). A
    clean folio (its swap slot holds the same data) is deleted from the swap
    cache: the next swap-in reads the good copy from the slot. A dirty one
    stays in the swap cache, still poisoned, so that whoever swaps it in gets
    SIGBUS (do_swap_page's PageHWPoison check, mm/memory.c). The model has no
    dirty bit: a folio whose data differs from its slot's counts as dirty.
    """
    f = m.folio(fid)
    assert f.swapcache is not None and not f.large
    if f.pages[0].data == m.slots[f.swapcache[0]].data:
        m.set_folio(replace(f, swapcache=None))
