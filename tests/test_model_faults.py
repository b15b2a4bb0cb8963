"""Page faults: first touch, COW reuse or copy, unshare, PMD and hugetlb write faults.

Each test names the kernel function whose behaviour it checks (Linux 6.12
unless said otherwise). Expected values come from the kernel source, not
from the model's output.
"""

from __future__ import annotations

from modelkit import P, Q, base, hread, hugetlb, kernel, ksm, run, thp

from anonlib.state import FolioKind

A0 = P["A", 0]


# ---------------------------------------------------------------- first touch
def test_read_fault_maps_the_shared_zero_page() -> None:
    """mm/memory.c: do_anonymous_page maps the zero page read-only on a read fault
    (a special PTE: nothing is allocated, nothing is anonymous)."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0))
    assert r.last.word == "0"
    assert r.is_zero_page(A0)
    assert not r.state(A0).writable
    assert r.world.folios == ()


def test_write_fault_allocates_a_fresh_exclusive_folio() -> None:
    """mm/memory.c: do_anonymous_page allocates a zeroed folio and maps it with
    folio_add_new_anon_rmap(RMAP_EXCLUSIVE), writable because the VMA has VM_WRITE."""
    r = run(*base("7"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    f = r.folio(A0)
    assert f.kind is FolioKind.SMALL and f.pages[0].anon_exclusive and f.pages[0].data == "7"
    assert r.world.copies == 0


def test_write_after_read_copies_the_zero_page() -> None:
    """mm/memory.c: do_wp_page on the zero page (not anonymous) goes to wp_page_copy,
    which maps a new exclusive page writable."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0), P.write("A", 0, "x"))
    assert not r.is_zero_page(A0)
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.copies == 1


def test_read_fault_on_thp_range_maps_the_huge_zero_page() -> None:
    """mm/huge_memory.c: do_huge_pmd_anonymous_page maps the huge zero page read-only
    by a PMD on a read fault in a THP-enabled range."""
    r = run(P.spawn(), P.thp("T"), P.read("T", 2))
    st = r.state(P["T", 2])
    assert st.pmd and not st.writable and r.is_zero_page(P["T", 2])
    assert r.world.folios == ()


def test_write_fault_on_thp_range_maps_an_exclusive_thp_by_pmd() -> None:
    """mm/huge_memory.c: __do_huge_pmd_anonymous_page maps a fresh THP by a writable PMD;
    folio_add_new_anon_rmap sets PG_anon_exclusive on the head page only (PMD-mappable)."""
    r = run(*thp("5"))
    assert r.words(P["T", 3]) == ("present", "pmd", "writable", "exclusive", "unpinned")
    f = r.folio(P["T", 0])
    assert f.kind is FolioKind.THP
    assert [p.anon_exclusive for p in f.pages] == [True, False, False, False]
    assert [p.data for p in f.pages] == ["5", "0", "0", "0"]


def test_write_fault_on_huge_zero_page_falls_back_to_ptes_in_6_12() -> None:
    """mm/huge_memory.c (6.12): do_huge_pmd_wp_page: ``if (is_huge_zero_pmd(orig_pmd))
    goto fallback`` -> __split_huge_pmd maps every subpage to the small zero page and
    the retried PTE fault copies only the faulting page (wp_page_copy). Allocating a THP
    there (do_huge_zero_wp_pmd, 1ced09e0331f) came in 6.13."""
    r = run(P.spawn(), P.thp("T"), P.read("T", 0), P.write("T", 1, "x"))
    st = r.state(P["T", 1])
    assert not st.pmd
    assert r.kind(P["T", 1]) is FolioKind.SMALL
    assert st.words() == ("present", "writable", "exclusive", "unpinned")
    assert all(r.is_zero_page(P["T", i]) for i in (0, 2, 3))
    assert r.world.copies == 1


def test_ro_longterm_pin_on_huge_zero_page_unshares_one_small_page_in_6_12() -> None:
    """mm/huge_memory.c (6.12): do_huge_pmd_wp_page, unshare on the huge zero page ->
    fallback: split to small zero pages; mm/memory.c: do_wp_page then copies the one page
    (wp_page_copy, read-only for FAULT_FLAG_UNSHARE)."""
    r = run(P.spawn(), P.thp("T"), P.read("T", 0), P.pin("T", 0, "H", longterm=True))
    st = r.state(P["T", 0])
    assert not st.pmd and r.kind(P["T", 0]) is FolioKind.SMALL
    assert st.words() == ("present", "readonly", "exclusive", "pinned")


# ------------------------------------------------------------------ do_wp_page
def test_exclusive_page_is_reused_without_looking_at_the_refcount() -> None:
    """mm/memory.c: do_wp_page reuses a page marked PG_anon_exclusive without any refcount
    check: a FOLL_GET reference (vmsplice) does not force a copy, and sees the write."""
    r = run(*base("1"), P.get("A", 0, "G"), P.clear_softdirty())
    assert r.words(A0) == ("present", "readonly", "exclusive", "unpinned")
    page_before = r.state(A0).page
    r.then(P.write("A", 0, "2"), hread("G"))
    assert r.state(A0).page == page_before
    assert r.last.word == "2"
    assert r.world.copies == 0


def test_write_to_shared_page_copies_and_the_old_page_keeps_its_flag() -> None:
    """mm/memory.c: wp_page_copy maps a new exclusive page for the writer; the old page
    loses one mapping and its (clear) flag is unchanged, so the other process stays
    read-only and shared (exclusivity is regained lazily, INV-9)."""
    r = run(*base("1"), P.fork(Q), P.write("A", 0, "2"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.words(Q["A", 0]) == ("present", "readonly", "shared", "unpinned")
    assert r.state(A0).page != r.state(Q["A", 0]).page
    assert r.then(Q.read("A", 0)).last.word == "1"
    assert r.world.copies == 1


def test_sole_mapper_reuses_a_non_exclusive_small_page_when_refcount_is_one() -> None:
    """mm/memory.c: wp_can_reuse_anon_folio: a small, non-KSM folio whose only reference is
    our mapping is reused: the flag is set on the page and the PTE made writable."""
    r = run(*base("1"), P.fork(Q), P.write("A", 0, "2"))
    q0 = r.state(Q["A", 0]).page
    r.then(Q.write("A", 0, "3"))
    assert r.state(Q["A", 0]).page == q0
    assert r.words(Q["A", 0]) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.copies == 1


def test_sole_mapper_copies_when_a_get_reference_is_held() -> None:
    """mm/memory.c: wp_can_reuse_anon_folio requires folio_ref_count() == 1; a FOLL_GET
    reference (Q's pipe) makes P copy, so the reference keeps the old data (cow.c
    'vmsplice() + unmap in child')."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G"), Q.munmap("A"), P.write("A", 0, "2"),
            hread("G"))
    assert r.last.word == "1"
    assert r.world.copies == 1


def test_reuse_after_dropping_the_swap_cache_copy() -> None:
    """mm/memory.c: wp_can_reuse_anon_folio frees the swap cache copy (folio_free_swap)
    when no swap entry still needs it, and then finds refcount == 1: reuse, no copy."""
    r = run(*base("1"), P.fork(Q), kernel("swapout", A0), Q.exit(), P.read("A", 0))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    assert r.folio(A0).swapcache is not None
    page = r.state(A0).page
    r.then(P.write("A", 0, "2"))
    assert r.state(A0).page == page
    assert r.folio(A0).swapcache is None
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.copies == 0


def test_copy_when_the_swap_cache_copy_is_still_needed() -> None:
    """mm/memory.c: wp_can_reuse_anon_folio: folio_free_swap fails while another swap PTE
    (Q's) still refers to the slot, so refcount stays 2 (mapping + swap cache): copy."""
    r = run(*base("1"), P.fork(Q), kernel("swapout", A0), P.read("A", 0), P.write("A", 0, "2"))
    assert r.world.copies == 1
    assert r.words(Q["A", 0])[0] == "swap"
    assert r.then(Q.read("A", 0)).last.word == "1"


def test_no_swap_cache_drop_when_reuse_is_hopeless() -> None:
    """mm/memory.c: wp_can_reuse_anon_folio: ``if (folio_ref_count(folio) > 1 +
    folio_test_swapcache(folio)) return false;`` comes before the trylock and
    folio_free_swap: with a FOLL_GET reference (refcount 3) the fault copies and the old
    folio stays in the swap cache."""
    r = run(*base("1"), P.get("A", 0, "G"), P.fork(Q), kernel("swapout", A0), Q.exit(),
            P.read("A", 0))
    old = r.folio(A0)
    assert old.swapcache is not None
    r.then(P.write("A", 0, "2"))
    assert r.world.copies == 1
    assert r.world.folio(old.id).swapcache == old.swapcache


def test_large_folio_is_always_copied_in_6_12() -> None:
    """mm/memory.c (6.12): wp_can_reuse_anon_folio returns false for any large folio:
    a PTE-mapped THP page that is not exclusive is copied into a small folio even when
    this process is its only user (6.15's CONFIG_MM_ID reuse is later)."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]), P.fork(Q), Q.exit())
    assert r.words(P["T", 1]) == ("present", "readonly", "shared", "unpinned")
    r.then(P.write("T", 1, "x"))
    assert r.kind(P["T", 1]) is FolioKind.SMALL
    assert r.words(P["T", 1]) == ("present", "writable", "exclusive", "unpinned")
    assert r.kind(P["T", 0]) is FolioKind.THP
    assert r.world.copies == 1


def test_ksm_page_is_always_copied() -> None:
    """mm/memory.c: do_wp_page never reuses a KSM page (not exclusive, and
    wp_can_reuse_anon_folio refuses KSM; the rule since 09854ba94c6a, 5.9): a write
    copies, even when the KSM page is then mapped only once."""
    r = run(*base("s", npages=2), ksm(P["A", 0], P["A", 1]))
    assert r.kind(A0) is FolioKind.KSM and r.state(A0).page == r.state(P["A", 1]).page
    r.then(P.write("A", 0, "x"))
    assert r.kind(A0) is FolioKind.SMALL and r.world.copies == 1
    r.then(P.write("A", 1, "y"))
    assert r.kind(P["A", 1]) is FolioKind.SMALL and r.world.copies == 2


# -------------------------------------------------------------- unshare faults
def test_unshare_of_shared_page_copies_and_stays_read_only() -> None:
    """mm/memory.c: do_wp_page with FAULT_FLAG_UNSHARE (raised by a R/O pin through
    gup_must_unshare) copies a shared page and maps the copy read-only and exclusive."""
    r = run(*base("1"), P.fork(Q), P.pin("A", 0, "H"))
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    assert r.state(A0).page != r.state(Q["A", 0]).page
    assert r.world.copies == 1


def test_unshare_reuses_a_previously_shared_page() -> None:
    """mm/memory.c: do_wp_page, unshare: wp_can_reuse_anon_folio proves refcount == 1, so
    the flag is set and nothing else changes; the PTE stays read-only (cow.c 'R/O GUP pin
    on R/O-mapped previously-shared page')."""
    r = run(*base("1"), P.fork(Q), Q.exit())
    page = r.state(A0).page
    r.then(P.pin("A", 0, "H"))
    assert r.state(A0).page == page
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    assert r.world.copies == 0
    r.then(P.write("A", 0, "2"), hread("H"))
    assert r.last.word == "2" and r.world.copies == 0


def test_unshare_of_an_exclusive_page_does_nothing() -> None:
    """mm/memory.c: do_wp_page, unshare on a page already marked exclusive: return
    without touching the PTE (and gup_must_unshare does not even ask for it)."""
    r = run(*base("1"), P.clear_softdirty())
    before = r.state(A0)
    r.then(P.pin("A", 0, "H"))
    assert r.state(A0).page == before.page
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")


def test_unshare_of_ksm_page_copies() -> None:
    """mm/internal.h: gup_must_unshare is true for KSM pages (never exclusive), and
    do_wp_page copies them: a R/O pin never lands on a KSM page."""
    r = run(*base("s", npages=2), ksm(P["A", 0], P["A", 1]), P.pin("A", 0, "H"))
    assert r.kind(A0) is FolioKind.SMALL
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    assert r.kind(P["A", 1]) is FolioKind.KSM


# -------------------------------------------------------- do_huge_pmd_wp_page
def test_pmd_write_fault_reuses_an_exclusive_thp() -> None:
    """mm/huge_memory.c: do_huge_pmd_wp_page: head PG_anon_exclusive set -> reuse: the PMD
    becomes writable, the THP stays PMD-mapped."""
    r = run(*thp("1"), P.clear_softdirty())
    assert r.words(P["T", 2]) == ("present", "pmd", "readonly", "exclusive", "unpinned")
    r.then(P.write("T", 2, "x"))
    assert r.words(P["T", 2]) == ("present", "pmd", "writable", "exclusive", "unpinned")
    assert r.world.copies == 0


def test_pmd_write_fault_reuses_when_refcount_is_one() -> None:
    """mm/huge_memory.c: do_huge_pmd_wp_page: not exclusive, but folio_ref_count() == 1
    (after fork the child exited): folio_move_anon_rmap, set the head flag, reuse."""
    r = run(*thp("1"), P.fork(Q), Q.exit(), P.write("T", 1, "x"))
    assert r.words(P["T", 1]) == ("present", "pmd", "writable", "exclusive", "unpinned")
    assert r.folio(P["T", 0]).pages[0].anon_exclusive
    assert r.world.copies == 0


def test_pmd_write_fault_on_shared_thp_splits_and_copies_one_subpage() -> None:
    """mm/huge_memory.c: do_huge_pmd_wp_page: shared THP -> __split_huge_pmd and
    VM_FAULT_FALLBACK; the PTE-level do_wp_page then copies only the faulting subpage.
    The other process keeps its PMD."""
    r = run(*thp("1"), P.fork(Q), P.write("T", 1, "x"))
    assert not r.state(P["T", 1]).pmd
    assert r.kind(P["T", 1]) is FolioKind.SMALL
    assert r.words(P["T", 1]) == ("present", "writable", "exclusive", "unpinned")
    for i in (0, 2, 3):
        assert r.words(P["T", i]) == ("present", "readonly", "shared", "unpinned")
        assert r.kind(P["T", i]) is FolioKind.THP
    assert r.state(Q["T", 0]).pmd
    assert r.world.copies == 1


def test_pmd_write_fault_with_a_get_reference_falls_back() -> None:
    """mm/huge_memory.c: do_huge_pmd_wp_page: refcount > 1 (a FOLL_GET reference) ->
    split and fall back; the faulting subpage is copied, the reference keeps old data."""
    r = run(*thp("1"), P.fork(Q), Q.exit(), P.get("T", 0, "G"), P.write("T", 0, "x"),
            hread("G"))
    assert r.last.word == "1"
    assert not r.state(P["T", 0]).pmd and r.kind(P["T", 0]) is FolioKind.SMALL


def test_pmd_unshare_of_shared_thp_splits_and_copies_one_subpage() -> None:
    """mm/huge_memory.c: do_huge_pmd_wp_page, FAULT_FLAG_UNSHARE on a shared THP: split
    and fall back; mm/memory.c: do_wp_page copies the subpage, read-only."""
    r = run(*thp("1"), P.fork(Q), P.pin("T", 2, "H"))
    assert r.words(P["T", 2]) == ("present", "readonly", "exclusive", "pinned")
    assert r.kind(P["T", 2]) is FolioKind.SMALL
    assert r.state(Q["T", 0]).pmd


def test_pmd_unshare_reuses_previously_shared_thp() -> None:
    """mm/huge_memory.c: do_huge_pmd_wp_page, unshare with refcount == 1: set the head flag,
    keep the PMD read-only (cow.c 'previously-shared' on a PMD THP)."""
    r = run(*thp("1"), P.fork(Q), Q.exit(), P.pin("T", 2, "H"))
    assert r.words(P["T", 2]) == ("present", "pmd", "readonly", "exclusive", "pinned")
    assert r.world.copies == 0


# ------------------------------------------------------------------ hugetlb_wp
def test_hugetlb_read_fault_allocates_an_exclusive_page_read_only() -> None:
    """mm/hugetlb.c: hugetlb_no_page: no zero page for hugetlb; the new page is mapped with
    hugetlb_add_new_anon_rmap (exclusive) and, in a private mapping, read-only."""
    r = run(P.spawn(), P.hugetlb("H"), P.read("H", 1))
    assert r.last.word == "0"
    assert r.kind(P["H", 1]) is FolioKind.HUGETLB
    assert r.words(P["H", 1]) == ("present", "readonly", "exclusive", "unpinned")
    r.then(P.write("H", 1, "x"))
    assert r.words(P["H", 1]) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.copies == 0


def test_hugetlb_write_to_shared_page_copies_the_whole_huge_page() -> None:
    """mm/hugetlb.c: hugetlb_wp: not exclusive and folio_mapcount() > 1 -> copy the whole
    huge page to a new exclusive one."""
    r = run(*hugetlb("1"), P.fork(Q), P.write("H", 2, "x"))
    assert r.words(P["H", 2]) == ("present", "writable", "exclusive", "unpinned")
    assert r.state(P["H", 0]).page != r.state(Q["H", 0]).page
    assert r.world.copies == r.world.config.hugetlb_pages
    assert r.then(Q.read("H", 2)).last.word == "0"
    assert r.then(P.read("H", 0)).last.word == "1"


def test_hugetlb_reuses_by_mapcount_which_leaks_through_a_get_reference() -> None:
    """mm/hugetlb.c: hugetlb_wp reuses when folio_mapcount() == 1, a map count, so Q's
    FOLL_GET reference (vmsplice) is invisible and sees P's later write. This is the known
    hole: cow.c reports the hugetlb vmsplice cases as XFAIL (6.10+). The model must show
    it, as an INV-12 violation, and nothing else."""
    r = run(*hugetlb("1"), P.fork(Q), Q.get("H", 0, "G"), Q.munmap("H"),
            P.write("H", 0, "2"), hread("G"), check=False)
    assert r.last.word == "2"
    assert r.violated() == {"INV-12"}
    assert r.world.copies == 0
