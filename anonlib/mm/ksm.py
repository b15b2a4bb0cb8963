"""KSM: merging identical anonymous pages into one read-only, never-exclusive page (mm/ksm.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..ops import PageRef
from ..results import BackOff
from ..state import ZERO_FOLIO, Entry, EntryKind, FolioKind, replace
from .anon_rmap import back_off_from_device_exclusive, folio_try_share_anon_rmap
from .huge_memory import split_folio
from .internal import folio_expected_ref_count


def _candidate(m: Mem, ref: PageRef) -> tuple[int, int]:
    """The present anonymous page at ``ref`` KSM may consider (its folio, and its index in
    the folio), or BackOff why not."""
    _loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
    if e is None or e.kind is not EntryKind.PRESENT:
        raise BackOff(f"{ref} is not a present page")
    if e.folio == ZERO_FOLIO:
        raise BackOff(f"{ref} maps the zero page, not an anonymous page")
    f = m.folio(e.folio)
    if f.kind is FolioKind.HUGETLB:
        raise BackOff("KSM does not merge hugetlb pages")
    back_off_from_device_exclusive(m, f.id, "KSM")
    return f.id, page


def _split_candidate(m: Mem, ref: PageRef) -> tuple[Loc, Entry]:
    """Split the large folio a merge candidate sits in (try_to_merge_one_page does so
    before it write-protects the page); the page's location and entry afterwards (the
    other candidate's split may have split it already)."""
    loc, e, _page = m.page_at(ref.proc, ref.mapping, ref.index)
    assert e is not None and e.kind is EntryKind.PRESENT
    if e.folio != ZERO_FOLIO and m.folio(e.folio).large:
        reason = split_folio(m, e.folio)
        if reason:
            raise BackOff(f"{ref}: the large folio cannot be split: {reason}")
        loc, e, _page = m.page_at(ref.proc, ref.mapping, ref.index)
        assert e is not None
    if e.folio == ZERO_FOLIO:
        raise BackOff(f"{ref} held only zeros: the split mapped it to the zero page")
    return loc, e


def write_protect_page(m: Mem, loc: Loc) -> None:
    """Make one mapping of a page read-only and shared before merging; refuse if GUP holds it.

    mm/ksm.c: write_protect_page (6.12): with the PTE cleared, the refcount must be
    mapcount + swap cache (no FOLL_GET, no O_DIRECT), and an exclusive page is
    shared with folio_try_share_anon_rmap_pte (refused if maybe pinned).
    """
    e = m.get(loc)
    assert e is not None
    fid = e.folio
    exclusive = m.exclusive(fid, e.page)
    if not (e.writable or exclusive):
        return
    if m.refcount(fid) != folio_expected_ref_count(m, fid):
        raise BackOff(f"{loc.proc} {loc.vma}: the page has references beyond its mappings "
                      "(GUP): write_protect_page refuses")
    if exclusive and not folio_try_share_anon_rmap(m, fid, e.page):
        raise BackOff("the folio may be pinned: folio_try_share_anon_rmap refused")
    m.set(loc, replace(e, writable=False))


def replace_page(m: Mem, loc: Loc, kfid: int) -> None:
    """Map the KSM page read-only where the duplicate was (RMAP_NONE); the duplicate is dropped.

    mm/ksm.c: replace_page (6.12).
    """
    e = m.get(loc)
    assert e is not None
    m.set(loc, Entry(EntryKind.PRESENT, kfid, 0, writable=False, soft_dirty=e.soft_dirty))


def try_to_merge_pages(m: Mem, first: PageRef, second: PageRef) -> None:
    """Merge two pages with equal contents (both areas treated as MADV_MERGEABLE).

    mm/ksm.c: cmp_and_merge_page -> try_to_merge_with_ksm_page / try_to_merge_two_pages
    -> try_to_merge_one_page (6.12). Pages whose contents differ are never paired (the
    tree searches compare contents first), so a large folio is split only for a page
    that will be merged. The first page becomes the KSM page unless the second already
    is one.
    """
    page1 = _candidate(m, first)
    page2 = _candidate(m, second)
    if page1 == page2:
        raise BackOff("both already map the same page")
    # cmp_and_merge_page finds a merge partner by content (memcmp_pages in the stable and
    # unstable tree searches); only then does try_to_merge_one_page split a large folio
    if m.data(*page1) != m.data(*page2):
        raise BackOff("the contents differ")
    loc1, e1 = _split_candidate(m, first)
    loc2, e2 = _split_candidate(m, second)
    if m.folio(e2.folio).kind is FolioKind.KSM and m.folio(e1.folio).kind is not FolioKind.KSM:
        loc1, e1, loc2, e2 = loc2, e2, loc1, e1
    kf = m.folio(e1.folio)
    if kf.kind is not FolioKind.KSM:
        for loc, _e in m.mappings_of(kf.id):
            write_protect_page(m, loc)
        m.set_folio(replace(m.folio(kf.id), kind=FolioKind.KSM))
    write_protect_page(m, loc2)
    replace_page(m, loc2, kf.id)
