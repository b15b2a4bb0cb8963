"""Reclaim to swap, swap-in and the swap cache: where exclusivity lives in between (6.12).

Kernel: mm/vmscan.c (shrink_folio_list), mm/rmap.c (try_to_unmap_one),
mm/memory.c (do_swap_page, should_try_to_free_swap), mm/swapfile.c.
"""

from __future__ import annotations

from modelkit import P, Q, base, hread, kernel, put, run, thp

A0, QA0 = P["A", 0], Q["A", 0]


def test_swapout_of_exclusive_page_sets_the_swap_pte_bit() -> None:
    """mm/rmap.c: try_to_unmap_one reads PG_anon_exclusive, shares the page
    (folio_try_share_anon_rmap_pte) and installs a swap PTE with the exclusive bit; with no
    other reference __remove_mapping frees the folio after writeback."""
    r = run(*base("1"), kernel("swapout", A0))
    assert r.words(A0) == ("swap", "exclusive", "unpinned")
    assert r.world.folios == ()
    assert [s.data for s in r.world.slots] == ["1"]


def test_swapout_of_shared_page_gives_non_exclusive_swap_ptes() -> None:
    """mm/rmap.c: try_to_unmap_one: a page that is not exclusive gets swap PTEs without the
    bit, one per mapping, sharing one slot."""
    r = run(*base("1"), P.fork(Q), kernel("swapout", A0))
    assert r.words(A0) == ("swap", "shared", "unpinned")
    assert r.words(QA0) == ("swap", "shared", "unpinned")
    assert len(r.world.slots) == 1


def test_swapout_skips_a_maybe_pinned_folio() -> None:
    """mm/vmscan.c: shrink_folio_list does not add a folio_maybe_dma_pinned() folio to the
    swap cache (feb889fb40fa): nothing changes."""
    r = run(*base("1"), P.pin("A", 0, "H"))
    step = r.try_(kernel("swapout", A0))
    assert step.outcome.word == "skipped"
    assert step.world is r.world


def test_swapout_with_a_get_reference_keeps_the_folio_in_the_swap_cache() -> None:
    """mm/vmscan.c: __remove_mapping fails while a FOLL_GET reference is held: the folio
    stays in the swap cache, with PG_anon_exclusive clear (INV-5) and the swap PTE's bit
    set; the reference still reads the page."""
    r = run(*base("1"), P.get("A", 0, "G"), kernel("swapout", A0))
    assert r.words(A0) == ("swap", "exclusive", "unpinned")
    (f,) = r.world.folios
    assert f.swapcache is not None and not f.pages[0].anon_exclusive
    assert r.then(hread("G")).last.word == "1"


def test_swapin_of_exclusive_entry_maps_the_swap_cache_folio_exclusive() -> None:
    """mm/memory.c: do_swap_page: pte_swp_exclusive() -> RMAP_EXCLUSIVE, even though a
    FOLL_GET reference raises the refcount; a write then reuses the same page and the
    reference sees it."""
    r = run(*base("1"), P.get("A", 0, "G"), kernel("swapout", A0), P.write("A", 0, "2"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    h = r.world.handle("G")
    assert (h.folio, h.page) == r.state(A0).page
    assert r.then(hread("G")).last.word == "2"
    assert r.world.copies == 0


def test_swapin_read_of_exclusive_entry_is_exclusive() -> None:
    """mm/memory.c: do_swap_page: the exclusive bit alone makes the page exclusive on a read
    fault; the data comes back from the slot."""
    r = run(*base("1"), kernel("swapout", A0), P.read("A", 0))
    assert r.last.word == "1"
    assert r.words(A0)[0] == "present" and r.words(A0)[2] == "exclusive"


def test_swapin_read_of_shared_entry_maps_read_only_shared() -> None:
    """mm/memory.c: do_swap_page: no exclusive bit, and on a read fault the swap cache keeps
    its reference (should_try_to_free_swap is for write faults), so refcount != 1:
    read-only, not exclusive."""
    r = run(*base("1"), P.fork(Q), kernel("swapout", A0), Q.exit(), P.read("A", 0))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")


def test_swapin_write_of_shared_entry_proves_exclusivity_by_refcount() -> None:
    """mm/memory.c: do_swap_page on a write fault: should_try_to_free_swap (refcount is ours
    plus the swap cache's), folio_free_swap, then folio_ref_count() == 1 -> exclusive,
    writable, no copy."""
    r = run(*base("1"), P.fork(Q), kernel("swapout", A0), Q.exit(), P.write("A", 0, "2"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.folio(A0).swapcache is None
    assert r.world.copies == 0


def test_swapin_write_with_another_swap_user_copies() -> None:
    """mm/memory.c: do_swap_page: Q's swap PTE still uses the slot, so the swap cache copy
    stays and the page is mapped shared; the write continues in do_wp_page and copies."""
    r = run(*base("1"), P.fork(Q), kernel("swapout", A0), P.write("A", 0, "2"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.copies == 1
    assert r.then(Q.read("A", 0)).last.word == "1"


def test_swapout_of_a_pmd_thp_splits_and_keeps_each_subpage_exclusive() -> None:
    """mm/rmap.c: try_to_unmap with TTU_SPLIT_HUGE_PMD splits the PMD (every subpage
    inherits the head flag), then each PTE becomes an exclusive swap PTE."""
    r = run(*thp("1"), kernel("swapout", P["T", 0]))
    for i in range(4):
        assert r.words(P["T", i]) == ("swap", "exclusive", "unpinned")


def test_swapcache_drop_refused_while_a_reference_is_held() -> None:
    """mm/vmscan.c: __remove_mapping freezes the refcount at the swap cache's own references;
    a FOLL_GET reference makes it fail."""
    r = run(*base("1"), P.get("A", 0, "G"), kernel("swapout", A0))
    step = r.try_(kernel("swapcache-drop", A0))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_swapcache_drop_frees_the_folio_and_swapin_reads_the_slot() -> None:
    """mm/vmscan.c: once the reference is put, __remove_mapping frees the folio; a later
    swap-in reads the slot into a new folio, exclusive by the swap PTE's bit."""
    r = run(*base("1"), P.get("A", 0, "G"), kernel("swapout", A0), put("G"),
            kernel("swapcache-drop", A0))
    assert r.world.folios == ()
    r.then(P.read("A", 0))
    assert r.last.word == "1" and r.words(A0)[2] == "exclusive"


def test_swapcache_drop_of_a_present_page_is_skipped() -> None:
    """Only a swap entry has a swap cache folio behind it."""
    r = run(*base("1"))
    step = r.try_(kernel("swapcache-drop", A0))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_no_swp_exclusive_loses_exclusivity_across_swap() -> None:
    """mm/memory.c: do_swap_page on an arch without __HAVE_ARCH_PTE_SWP_EXCLUSIVE (5.19-6.2):
    every swap PTE reads as not exclusive, so with a FOLL_GET reference the page comes back
    shared and the write copies: the reference no longer sees P's writes."""
    ops = (*base("1"), P.get("A", 0, "G"), kernel("swapout", A0), P.write("A", 0, "2"),
           hread("G"))
    assert run(*ops).last.word == "2"
    r = run(*ops, scheme="no-swp-exclusive")
    assert r.last.word == "1"
    assert r.world.copies == 1
