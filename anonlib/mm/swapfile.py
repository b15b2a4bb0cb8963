"""Swap slots and the swap cache as the fault and unmap paths see them (mm/swapfile.c).

The swap cache copy of a folio is dropped when no swap entry refers to it
(:func:`folio_free_swap`, :func:`free_swap_and_cache`), and the old COW rule
counted swap references (:func:`reuse_swap_page`). These read and change only
the folio and the swap counts, so every layer of :mod:`anonlib.mm` may call them.
"""

from __future__ import annotations

from ..mem import Mem
from ..state import replace


def folio_free_swap(m: Mem, fid: int) -> bool:
    """Remove a folio from the swap cache if no swap entry refers to its slots any more.

    mm/swapfile.c: folio_free_swap (6.12).
    """
    f = m.folio(fid)
    if f.swapcache is None or m.folio_swapped(fid):
        return False
    m.set_folio(replace(f, swapcache=None))
    return True


def free_swap_and_cache(m: Mem, slot: int) -> None:
    """The last swap entry for a slot is gone: drop an unmapped folio from the swap cache.

    mm/swapfile.c: free_swap_and_cache_nr -> __try_to_reclaim_swap (TTRS_UNMAPPED) (6.12).
    """
    if m.swap_count(slot):
        return
    f = m.swapcache_folio(slot)
    if f is not None and m.folio_mapcount(f.id) == 0:
        folio_free_swap(m, f.id)


def reuse_swap_page(m: Mem, fid: int, index: int, own_swap_pte: bool = False) -> bool:
    """The old rule: reuse if map count plus swap count is 1; then leave the swap cache.

    mm/swapfile.c: reuse_swap_page (every write fault up to 5.8; PMD write faults and
    swap-in write faults through 5.17, until 3bff7e3f1f16 and c145e0b47c77 in 5.18).
    GUP references are invisible to it, which is CVE-2020-29374. ``own_swap_pte``:
    the caller is do_swap_page, whose swap PTE 5.17 still counted (it asked before
    swap_free) but the model has already removed; it counts as one.
    """
    f = m.folio(fid)
    count = m.mapcount(fid, index) + int(own_swap_pte)
    if f.swapcache is not None:
        count += m.swap_count(f.swapcache[index])
    if count > 1:
        return False
    if f.swapcache is not None and not m.folio_swapped(fid):
        folio_free_swap(m, fid)
    return True
