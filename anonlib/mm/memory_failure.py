"""Memory failure: hwpoison entries replace the mappings; the flag goes stale.

Models mm/memory-failure.c.
"""

from __future__ import annotations

from ..mem import Mem
from ..ops import PageRef
from ..results import BackOff
from ..state import ZERO_FOLIO, Entry, EntryKind, FolioKind
from .huge_memory import split_folio


def memory_failure(m: Mem, ref: PageRef) -> None:
    """Poison the page at ``ref``: every mapping of it becomes a hwpoison entry.

    mm/memory-failure.c: memory_failure -> hwpoison_user_mappings -> try_to_unmap with
    TTU_HWPOISON (mm/rmap.c: try_to_unmap_one's hwpoison branch, which runs before
    any PG_anon_exclusive handling: even a pinned page is unmapped) (6.12). A THP
    is split first; if it cannot be split (pinned), the model backs off. hugetlb:
    the whole huge mapping becomes a hwpoison entry. No process is killed; later
    accesses get SIGBUS. The page's PG_anon_exclusive is left as it was (stale).
    """
    loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
    if e is None or e.kind not in (EntryKind.PRESENT, EntryKind.DEVICE_EXCLUSIVE):
        raise BackOff(f"no page is mapped at {ref}")
    if e.folio == ZERO_FOLIO:
        raise BackOff("the zero page is a reserved kernel page: memory_failure ignores it")
    f = m.folio(e.folio)
    if f.kind is FolioKind.DEVICE:
        raise BackOff("device-private memory is not handled by memory_failure")
    if f.kind is FolioKind.THP:
        m.set_page(f.id, page, hwpoison=True)  # set before the split: it is never remapped
        reason = split_folio(m, f.id)
        if reason:
            raise BackOff(f"the THP could not be split: {reason}")
        loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
        assert e is not None
        f = m.folio(e.folio)
    m.set_page(f.id, page, hwpoison=True)
    for loc2, e2 in m.mappings_of(f.id):
        if loc2.huge or e2.page == page:
            m.set(loc2, Entry(EntryKind.HWPOISON, f.id, e2.page))
