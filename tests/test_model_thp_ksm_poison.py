"""KSM merging, THP PMD and folio splits, and memory failure (6.12).

Kernel: mm/ksm.c, mm/huge_memory.c, mm/memory-failure.c, mm/rmap.c.
"""

from __future__ import annotations

from modelkit import Advice, FolioKind, P, Q, base, hread, hugetlb, kernel, ksm, run, thp

from anonlib.model import Step
from anonlib.pagemap import pagemap_entry
from anonlib.schemes import MAINLINE

A0, QA0 = P["A", 0], Q["A", 0]


# ------------------------------------------------------------------------ KSM
def test_ksm_merge_maps_one_read_only_page_that_is_never_exclusive() -> None:
    """mm/ksm.c: write_protect_page shares each exclusive page (folio_try_share_anon_rmap_pte)
    and installs a read-only PTE; replace_page maps the KSM page with RMAP_NONE."""
    r = run(*base("s"), Q.spawn(), Q.mmap("A"), Q.write("A", 0, "s"), ksm(A0, QA0))
    assert r.state(A0).page == r.state(QA0).page
    assert r.kind(A0) is FolioKind.KSM
    for ref in (A0, QA0):
        assert r.words(ref) == ("present", "readonly", "shared", "unpinned")
    assert not any(p.anon_exclusive for p in r.folio(A0).pages)
    assert len(r.world.folios) == 1


def test_ksm_skips_pages_with_different_contents() -> None:
    """mm/ksm.c: cmp_and_merge_page merges only identical pages."""
    r = run(*base("s"), P.mmap("B"), P.write("B", 0, "t"))
    step = r.try_(ksm(A0, P["B", 0]))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_ksm_skips_a_page_with_a_get_reference() -> None:
    """mm/ksm.c: write_protect_page: folio_ref_count() != mapcount + 1 + swapcache (an
    O_DIRECT or vmsplice FOLL_GET reference): restore the PTE and skip."""
    r = run(*base("s", npages=2), P.get("A", 1, "G"))
    step = r.try_(ksm(A0, P["A", 1]))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_ksm_skips_a_pinned_page() -> None:
    """mm/ksm.c: write_protect_page: a pin raises the refcount too, and
    folio_try_share_anon_rmap_pte refuses a maybe-pinned exclusive page: skip."""
    r = run(*base("s", npages=2), P.pin("A", 0, "H", rw=True))
    for pair in ((A0, P["A", 1]), (P["A", 1], A0)):
        step = r.try_(ksm(*pair))
        assert step.outcome.word == "skipped" and step.world is r.world


def test_ksm_splits_a_thp_first() -> None:
    """mm/ksm.c: try_to_merge_one_page splits a large folio (split_huge_page) before merging;
    the other subpages keep their exclusivity as small folios."""
    r = run(*thp("s", pages=4), P.mmap("A"), P.write("A", 0, "s"),
            ksm(P["T", 1], A0))
    assert r.kind(P["T", 1]) is FolioKind.KSM and r.state(P["T", 1]).page == r.state(A0).page
    for i in (0, 2, 3):
        assert r.kind(P["T", i]) is FolioKind.SMALL
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")


def test_ksm_with_a_pinned_thp_is_skipped() -> None:
    """mm/huge_memory.c: can_split_folio fails for a pinned THP, so KSM cannot merge it."""
    r = run(*thp("0"), P.pin("T", 2, "H"), P.mmap("A"), P.write("A", 0, "0"))
    step = r.try_(ksm(P["T", 1], A0))
    assert step.outcome.word == "skipped" and step.world is r.world


# ------------------------------------------------------------------ PMD split
def test_pmd_split_propagates_the_head_flag_to_every_subpage() -> None:
    """mm/huge_memory.c: __split_huge_pmd_locked (non-freezing): each PTE maps its subpage
    with RMAP_EXCLUSIVE iff the head was exclusive, and inherits write and soft-dirty."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]))
    for i in range(4):
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")
        assert r.page(P["T", i]).anon_exclusive
    assert r.kind(P["T", 0]) is FolioKind.THP


def test_pmd_split_of_a_shared_thp_leaves_every_subpage_shared() -> None:
    """mm/huge_memory.c: __split_huge_pmd_locked: head not exclusive -> RMAP_NONE for every
    subpage, read-only PTEs."""
    r = run(*thp("1"), P.fork(Q), kernel("split-pmd", P["T", 0]))
    for i in range(4):
        assert r.words(P["T", i]) == ("present", "readonly", "shared", "unpinned")
    assert r.state(Q["T", 0]).pmd


def test_pmd_split_of_the_huge_zero_page_gives_small_zero_pages() -> None:
    """mm/huge_memory.c: __split_huge_zero_page_pmd maps every subpage to the zero page."""
    r = run(P.spawn(), P.thp("T"), P.read("T", 0), kernel("split-pmd", P["T", 0]))
    assert all(r.is_zero_page(P["T", i]) and not r.state(P["T", i]).pmd for i in range(4))


def test_pmd_split_without_a_pmd_is_skipped() -> None:
    """Nothing to split once the THP is PTE-mapped."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]))
    step = r.try_(kernel("split-pmd", P["T", 0]))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_subpages_evolve_independently_after_the_split() -> None:
    """mm/memory.c: once PTE-mapped, each subpage has its own flag (INV-10): partial
    sharing at fork (MADV_DONTFORK on subpages 1..3) leaves subpage 0 shared and the others
    exclusive and writable (cow.c 'partially shared THP')."""
    r = run(*thp("1"), *(P.madvise("T", i, Advice.DONTFORK) for i in (1, 2, 3)), P.fork(Q),
            Q.exit())
    assert r.words(P["T", 0]) == ("present", "readonly", "shared", "unpinned")
    for i in (1, 2, 3):
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")


# ---------------------------------------------------------------- folio split
def test_folio_split_of_a_pinned_thp_is_skipped() -> None:
    """mm/huge_memory.c: can_split_folio: references beyond the mappings (a pin) -> -EAGAIN."""
    r = run(*thp("1"), P.pin("T", 0, "H"))
    step = r.try_(kernel("split-folio", P["T", 0]))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_folio_split_with_a_get_reference_is_skipped() -> None:
    """mm/huge_memory.c: can_split_folio counts every extra reference, FOLL_GET included."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]), P.get("T", 3, "G"))
    step = r.try_(kernel("split-folio", P["T", 0]))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_folio_split_preserves_exclusivity_per_subpage() -> None:
    """mm/huge_memory.c: __folio_split: unmap_folio installs migration entries that carry
    each subpage's exclusivity, remap_page maps the new small folios back from them: the
    shared subpage stays shared, the exclusive ones stay exclusive and writable."""
    r = run(*thp("1", pages=4), *(P.madvise("T", i, Advice.DONTFORK) for i in (1, 2, 3)),
            P.fork(Q), kernel("split-folio", P["T", 0]))
    assert r.words(P["T", 0]) == ("present", "readonly", "shared", "unpinned")
    assert r.state(P["T", 0]).page == r.state(Q["T", 0]).page
    for i in range(4):
        assert r.kind(P["T", i]) is FolioKind.SMALL
    for i in (1, 2, 3):
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")


def test_folio_split_of_a_pmd_mapped_thp() -> None:
    """mm/huge_memory.c: the PMD is split while freezing (migration entries that keep the
    head's exclusivity per subpage); the result is four exclusive small folios."""
    r = run(*thp("1", pages=4), kernel("split-folio", P["T", 0]))
    for i in range(4):
        assert r.kind(P["T", i]) is FolioKind.SMALL
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")
    assert r.then(P.read("T", 3)).last.word == "1"


def test_folio_split_maps_zero_filled_subpages_to_the_zero_page() -> None:
    """mm/huge_memory.c (6.12): __split_huge_page -> remap_page(RMP_USE_SHARED_ZEROPAGE);
    mm/migrate.c: remove_migration_pte -> try_to_map_unused_to_zeropage maps a mapped
    subpage that holds only zeros to the shared zero page (b1f202060afe), read-only, and
    the subpage is freed; subpages with data become small exclusive folios."""
    r = run(*thp("1", pages=2), kernel("split-folio", P["T", 0]))
    for i in (0, 1):
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")
    for i in (2, 3):
        assert r.is_zero_page(P["T", i]) and not r.state(P["T", i]).writable
    assert len(r.world.folios) == 2
    r.then(P.write("T", 2, "x"))
    assert r.words(P["T", 2]) == ("present", "writable", "exclusive", "unpinned")


def test_folio_split_zero_page_remap_keeps_the_soft_dirty_bit() -> None:
    """mm/migrate.c: try_to_map_unused_to_zeropage copies soft-dirty (and uffd-wp) from the
    migration entry into the zero-page PTE (9658d698a8a8, in the 6.12 stable series; v6.12
    as released dropped them). After clear_refs the mapping's VM_SOFTDIRTY is clear, so
    pagemap bit 55 of the remapped subpage is the bit the remap carried over: set when the
    THP was written since, clear when it was not."""
    r = run(*thp("1", pages=2), P.clear_softdirty(), P.write("T", 0, "2"),
            kernel("split-folio", P["T", 0]))
    assert r.is_zero_page(P["T", 2]) and r.world.proc("P").vma("T").ptes[2].soft_dirty
    assert pagemap_entry(r.world, MAINLINE, P["T", 2]).soft_dirty
    r = run(*thp("1", pages=2), P.clear_softdirty(), kernel("split-folio", P["T", 0]))
    assert r.is_zero_page(P["T", 2]) and not r.world.proc("P").vma("T").ptes[2].soft_dirty
    assert not pagemap_entry(r.world, MAINLINE, P["T", 2]).soft_dirty


# ------------------------------------------------------------- memory failure
def test_memory_failure_installs_hwpoison_and_leaves_the_flag_stale() -> None:
    """mm/rmap.c: try_to_unmap_one's TTU_HWPOISON branch runs before any PG_anon_exclusive
    handling: the PTE becomes a hwpoison entry and the page keeps its (now meaningless) flag.
    Access gives SIGBUS."""
    r = run(*base("1"), kernel("poison", A0))
    assert r.state(A0).kind == "hwpoison"
    assert r.page(A0).anon_exclusive and r.page(A0).hwpoison
    assert r.then(P.read("A", 0)).last.word == "SIGBUS"


def test_memory_failure_unmaps_a_pinned_small_page_too() -> None:
    """mm/rmap.c: the hwpoison branch does not ask whether the folio may be pinned; the pin
    holder reading the page gets SIGBUS in the model (the memory is gone)."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), kernel("poison", A0))
    assert r.state(A0).kind == "hwpoison"
    assert r.page(A0).anon_exclusive
    assert r.then(hread("H")).last.word == "SIGBUS"


def _in_swap_cache_and_mapped(*more):  # noqa: ANN202 - a tuple of operations
    """P's page goes to swap while a FOLL_GET keeps it in the swap cache, then is read back:
    mapped again (exclusive, the swap PTE said so) and still in the swap cache."""
    return (*base("1"), P.get("A", 0, "G"), kernel("swapout", A0), P.read("A", 0), *more)


def test_memory_failure_on_a_swap_cache_folio_installs_swap_entries() -> None:
    """mm/memory-failure.c: unmap_poisoned_folio drops TTU_HWPOISON for a folio in the swap
    cache (6.12), so mm/rmap.c: try_to_unmap_one takes the anonymous branch: the flag is
    read, folio_try_share_anon_rmap_pte clears it, and the PTE becomes a swap PTE whose
    exclusive bit carries it. The folio is clean (its slot holds the same data):
    me_swapcache_clean deletes it from the swap cache, and the next access reads the
    good copy from swap, not the poisoned page."""
    r = run(*_in_swap_cache_and_mapped())
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.folio(A0).swapcache is not None
    fid = r.state(A0).page[0]  # type: ignore[index]
    r.then(kernel("poison", A0))
    assert r.words(A0) == ("swap", "exclusive", "unpinned")
    poisoned = r.world.folio(fid)
    assert poisoned is not None  # G still holds it
    assert poisoned.pages[0].hwpoison and not poisoned.pages[0].anon_exclusive
    assert poisoned.swapcache is None
    r.then(P.read("A", 0))
    assert r.last.word == "1" and r.state(A0).page[0] != fid  # type: ignore[index]
    assert r.then(hread("G")).last.word == "SIGBUS"


def test_memory_failure_keeps_a_dirty_swap_cache_folio_for_sigbus() -> None:
    """mm/memory-failure.c: me_swapcache_dirty leaves a dirty poisoned folio in the swap cache;
    mm/memory.c: do_swap_page finds the PageHWPoison page there and fails the fault
    (VM_FAULT_HWPOISON): the process gets SIGBUS, GUP fails, reclaim keeps the folio."""
    r = run(*_in_swap_cache_and_mapped(P.write("A", 0, "2"), kernel("poison", A0)))
    assert r.words(A0) == ("swap", "exclusive", "unpinned")
    assert r.then(P.read("A", 0)).last.word == "SIGBUS"
    assert r.then(P.pin("A", 0, "H")).last.word == "EFAULT"
    step = r.try_(kernel("swapcache-drop", A0))
    assert isinstance(step, Step) and step.outcome.word == "skipped"


def test_memory_failure_on_a_shared_swap_cache_folio_unmaps_every_mapping() -> None:
    """mm/rmap.c: try_to_unmap_one's anonymous branch for a page P and Q share: the flag is
    clear, so there is nothing to share, and both PTEs become swap PTEs without the
    exclusive bit."""
    r = run(*_in_swap_cache_and_mapped(P.fork(Q), Q.read("A", 0), kernel("poison", A0)))
    for ref in (A0, QA0):
        assert r.words(ref) == ("swap", "shared", "unpinned")
    assert r.then(Q.read("A", 0)).last.word == "1"


def test_memory_failure_on_a_pinned_swap_cache_folio_is_refused_by_the_pin_check() -> None:
    """mm/rmap.c: without TTU_HWPOISON the pin check of folio_try_share_anon_rmap_pte applies:
    an exclusive page that may be pinned is not unmapped, the unmap fails (the kernel then
    kills the processes that map it); the model backs off and changes nothing."""
    r = run(*_in_swap_cache_and_mapped(P.pin("A", 0, "H")))
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")
    assert r.folio(A0).swapcache is not None
    step = r.try_(kernel("poison", A0))
    assert isinstance(step, Step)
    assert step.outcome.word == "skipped" and step.world is r.world
    assert "pinned" in step.outcome.detail


def test_memory_failure_on_a_thp_splits_and_poisons_one_subpage() -> None:
    """mm/memory-failure.c: memory_failure splits a THP first (try_to_split_thp_page); only
    the poisoned subpage's PTE becomes a hwpoison entry, the others stay exclusive."""
    r = run(*thp("1", pages=4), kernel("poison", P["T", 2]))
    assert r.state(P["T", 2]).kind == "hwpoison"
    for i in (0, 1, 3):
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")


def test_memory_failure_on_a_zero_filled_thp_subpage() -> None:
    """mm/memory-failure.c: memory_failure sets PageHWPoison before try_to_split_thp_page, and
    mm/migrate.c: try_to_map_unused_to_zeropage refuses a PageHWPoison page in the 6.12
    stable series the model follows ("mm: prevent poison consumption when splitting THP",
    6.18-rc3, backported; v6.12 as released reads the poisoned page instead): the poisoned
    subpage stays and becomes a hwpoison entry; the other zero-filled subpages map the
    zero page."""
    r = run(*thp("1"), kernel("poison", P["T", 2]))
    assert r.state(P["T", 2]).kind == "hwpoison"
    assert r.is_zero_page(P["T", 3])
    assert r.words(P["T", 0]) == ("present", "writable", "exclusive", "unpinned")


def test_ksm_of_a_zero_filled_thp_subpage_does_not_merge_it() -> None:
    """mm/ksm.c: try_to_merge_one_page -> split_huge_page; the zero-filled subpage is remapped
    to the shared zero page (remap_page, RMP_USE_SHARED_ZEROPAGE), so there is no anonymous
    page left to merge: no KSM page, and apply must return, not raise."""
    r = run(*thp("1"), P.mmap("A"), P.write("A", 0, "0"))
    step = r.try_(ksm(P["T", 1], A0))
    assert isinstance(step, Step)
    after = run(*thp("1"), P.mmap("A"), P.write("A", 0, "0"), ksm(P["T", 1], A0))
    assert not any(f.kind is FolioKind.KSM for f in after.world.folios)


def test_memory_failure_on_a_pinned_thp_is_skipped_by_the_model() -> None:
    """mm/memory-failure.c: a pinned THP cannot be split (MF_MSG_UNSPLIT_THP); the model
    leaves everything as it was (a documented simplification of the partial handling)."""
    r = run(*thp("1"), P.pin("T", 0, "H"))
    step = r.try_(kernel("poison", P["T", 2]))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_memory_failure_on_hugetlb_poisons_the_whole_entry() -> None:
    """mm/rmap.c: for hugetlb the whole huge mapping becomes a hwpoison entry."""
    r = run(*hugetlb("1"), kernel("poison", P["H", 1]))
    for i in range(4):
        assert r.state(P["H", i]).kind == "hwpoison"


def test_zapping_a_hwpoison_entry_and_touching_again_gives_a_fresh_page() -> None:
    """mm/memory.c: zap_nonpresent_ptes clears a hwpoison entry; the next write faults in a
    new exclusive page (the poisoned one never returns to the allocator)."""
    r = run(*base("1"), kernel("poison", A0), P.madvise("A", 0, Advice.DONTNEED),
            P.write("A", 0, "2"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert not r.page(A0).hwpoison
