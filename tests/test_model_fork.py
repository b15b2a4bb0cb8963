"""fork(): what copy_page_range does to PG_anon_exclusive for every kind of entry (6.12)."""

from __future__ import annotations

from modelkit import Advice, FolioKind, P, Q, R, base, hread, hugetlb, kernel, run, thp, unpin

A0, QA0 = P["A", 0], Q["A", 0]


def test_fork_clears_the_flag_and_write_protects_both_sides() -> None:
    """mm/memory.c: copy_present_ptes -> folio_try_dup_anon_rmap_ptes clears the flag, and
    in a COW mapping the parent's writable PTE is write-protected; the child's is read-only."""
    r = run(*base("1"), P.fork(Q))
    for ref in (A0, QA0):
        assert r.words(ref) == ("present", "readonly", "shared", "unpinned")
    assert r.state(A0).page == r.state(QA0).page
    assert not r.page(A0).anon_exclusive
    assert r.world.copies == 0


def test_fork_shares_the_zero_page() -> None:
    """mm/memory.c: copy_present_ptes copies a zero-page PTE as it is (no folio, no flag)."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0), P.fork(Q))
    assert r.is_zero_page(QA0) and r.is_zero_page(A0) and r.world.folios == ()


def test_fork_copies_an_exclusive_pinned_page_for_the_child() -> None:
    """mm/memory.c: folio_try_dup_anon_rmap_ptes fails (-EBUSY) for an exclusive page of a
    maybe-pinned folio in an mm with MMF_HAS_PINNED; copy_present_page gives the child a
    copy and leaves the parent's PTE writable and exclusive (cow.c 'fork() with an iouring
    fixed buffer')."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True, longterm=True), P.fork(Q))
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")
    assert r.words(QA0) == ("present", "writable", "exclusive", "unpinned")
    assert r.state(A0).page != r.state(QA0).page
    assert r.then(Q.read("A", 0)).last.word == "1"
    assert r.world.copies == 1
    r.then(P.write("A", 0, "2"), hread("H"))
    assert r.last.word == "2"


def test_mmf_has_pinned_is_set_by_the_first_pin_and_never_cleared() -> None:
    """mm/gup.c: mm_set_has_pinned_flag before any FOLL_PIN; nothing clears it. FOLL_GET
    does not set it. The child of fork starts without it (not in MMF_INIT_MASK)."""
    r = run(*base("1"), P.get("A", 0, "G"))
    assert not r.world.proc("P").has_pinned
    r.then(P.pin("A", 0, "H"), unpin("H"), P.fork(Q))
    assert r.world.proc("P").has_pinned
    assert not r.world.proc("Q").has_pinned


def test_fork_shares_a_page_once_it_is_no_longer_pinned() -> None:
    """mm/memory.c: folio_try_dup_anon_rmap_ptes asks folio_maybe_dma_pinned(): after the
    unpin the folio is not pinned, so fork shares it although MMF_HAS_PINNED stays set."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), unpin("H"), P.fork(Q))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    assert r.state(A0).page == r.state(QA0).page


def test_fork_shares_unpinned_pages_of_a_pinning_mm() -> None:
    """mm/memory.c: the early copy is per folio: only the maybe-pinned folio is copied;
    the rest of an MMF_HAS_PINNED mm is shared as usual."""
    r = run(*base("1", npages=2), P.pin("A", 0, "H", rw=True), P.fork(Q))
    assert r.state(A0).page != r.state(QA0).page
    assert r.words(P["A", 1]) == ("present", "readonly", "shared", "unpinned")
    assert r.state(P["A", 1]).page == r.state(Q["A", 1]).page


def test_fork_shares_a_page_with_only_a_get_reference() -> None:
    """mm/memory.c: FOLL_GET is not a pin, so the page is shared at fork; the child's
    later write sees refcount 2 (mapping + pipe) and copies (cow.c 'vmsplice() before
    fork(), unmap in parent after fork()')."""
    r = run(*base("1"), P.get("A", 0, "G"), P.fork(Q))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    r.then(P.munmap("A"), Q.write("A", 0, "2"), hread("G"))
    assert r.last.word == "1"


def test_fork_clears_the_swap_exclusive_bit_in_the_parent() -> None:
    """mm/memory.c: copy_nonpresent_pte: swap_duplicate, and a swap PTE with the exclusive
    bit loses it in the parent; the child's copy has none."""
    r = run(*base("1"), kernel("swapout", A0))
    assert r.words(A0) == ("swap", "exclusive", "unpinned")
    r.then(P.fork(Q))
    assert r.words(A0) == ("swap", "shared", "unpinned")
    assert r.words(QA0) == ("swap", "shared", "unpinned")
    r.then(P.read("A", 0), Q.read("A", 0))
    assert r.last.word == "1"


def test_fork_turns_writable_migration_entries_readable() -> None:
    """mm/memory.c: copy_nonpresent_pte: in a COW mapping a writable (or
    readable_exclusive) migration entry becomes readable in the parent and the child."""
    r = run(*base("1"), kernel("migrate-begin", A0))
    assert r.state(A0).kind == "migration" and r.state(A0).writable
    r.then(P.fork(Q))
    for ref in (A0, QA0):
        st = r.state(ref)
        assert (st.kind, st.writable, st.exclusive) == ("migration", False, False)
    r.then(kernel("migrate-end", A0))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    assert r.state(A0).page == r.state(QA0).page


def test_fork_turns_readable_exclusive_migration_entries_readable() -> None:
    """mm/memory.c: copy_nonpresent_pte: !is_readable_migration_entry covers
    readable_exclusive too: it becomes readable."""
    r = run(*base("1"), P.clear_softdirty(), kernel("migrate-begin", A0))
    st = r.state(A0)
    assert (st.kind, st.writable, st.exclusive) == ("migration", False, True)
    r.then(P.fork(Q))
    assert r.state(A0).exclusive is False and r.state(QA0).exclusive is False


def test_fork_of_device_private_entry_clears_the_flag_and_makes_it_readable() -> None:
    """mm/memory.c: copy_nonpresent_pte, device-private: folio_try_dup_anon_rmap_pte cannot
    fail (never pinned), clears the flag; a writable entry becomes readable in the parent."""
    r = run(*base("1"), kernel("device-private", A0))
    assert r.words(A0) == ("device-private", "writable", "exclusive", "unpinned")
    r.then(P.fork(Q))
    for ref in (A0, QA0):
        assert r.words(ref) == ("device-private", "readonly", "shared", "unpinned")


def test_fork_restores_a_device_exclusive_entry_first() -> None:
    """mm/memory.c: copy_nonpresent_pte, device-exclusive: try_restore_exclusive_pte puts
    the present PTE back, then it is copied as a present PTE (shared, write-protected)."""
    r = run(*base("1"), kernel("device-exclusive", A0))
    assert r.state(A0).kind == "device-exclusive"
    r.then(P.fork(Q))
    for ref in (A0, QA0):
        assert r.words(ref) == ("present", "readonly", "shared", "unpinned")


def test_fork_of_device_exclusive_pinned_page_takes_the_early_copy_path() -> None:
    """mm/memory.c: after restoring a device-exclusive entry, copy_present_ptes may still
    find an exclusive maybe-pinned page: the child gets a copy, the parent keeps its page."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), kernel("device-exclusive", A0),
            P.fork(Q))
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")
    assert r.words(QA0) == ("present", "writable", "exclusive", "unpinned")
    assert r.state(A0).page != r.state(QA0).page


def test_fork_copies_hwpoison_entries() -> None:
    """mm/memory.c: copy_nonpresent_pte copies a hwpoison entry as it is; an access in
    either process gets SIGBUS."""
    r = run(*base("1"), kernel("poison", A0), P.fork(Q))
    assert r.state(QA0).kind == "hwpoison"
    assert r.then(Q.read("A", 0)).last.word == "SIGBUS"
    assert r.then(P.write("A", 0, "x")).last.word == "SIGBUS"


def test_dontfork_pages_are_not_copied_and_keep_their_flag() -> None:
    """kernel/fork.c: dup_mmap skips VM_DONTCOPY (MADV_DONTFORK) VMAs: the child has no
    mapping there and the parent's PTE is not write-protected."""
    r = run(*base("1", npages=2), P.madvise("A", 1, Advice.DONTFORK), P.fork(Q))
    assert r.words(P["A", 1]) == ("present", "writable", "exclusive", "unpinned")
    assert r.state(Q["A", 1]).kind == "none"
    assert r.then(Q.read("A", 1)).last.word == "SIGSEGV"
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")


def test_dofork_undoes_dontfork() -> None:
    """mm/madvise.c: MADV_DOFORK clears VM_DONTCOPY: the next fork copies the page again."""
    r = run(*base("1"), P.madvise("A", 0, Advice.DONTFORK), P.madvise("A", 0, Advice.DOFORK),
            P.fork(Q))
    assert r.state(QA0).page == r.state(A0).page


def test_fork_write_protects_a_pmd_and_clears_the_head_flag() -> None:
    """mm/huge_memory.c: copy_huge_pmd -> folio_try_dup_anon_rmap_pmd clears the head flag;
    pmdp_set_wrprotect in the parent; the child gets a read-only PMD."""
    r = run(*thp("1"), P.fork(Q))
    for ref in (P["T", 0], Q["T", 3]):
        assert r.words(ref) == ("present", "pmd", "readonly", "shared", "unpinned")
    assert not any(p.anon_exclusive for p in r.folio(P["T", 0]).pages)


def test_fork_of_pinned_thp_splits_the_pmd_and_copies_each_subpage() -> None:
    """mm/huge_memory.c: copy_huge_pmd: folio_try_dup_anon_rmap_pmd fails for an exclusive
    pinned THP -> __split_huge_pmd and -EAGAIN; copy_pte_range then copies every exclusive
    subpage for the child (copy_present_page), the parent keeps its pinned THP."""
    r = run(*thp("1"), P.pin("T", 0, "H", rw=True), P.fork(Q))
    for i in range(4):
        assert not r.state(P["T", i]).pmd
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "pinned")
        assert r.words(Q["T", i]) == ("present", "writable", "exclusive", "unpinned")
        assert r.kind(Q["T", i]) is FolioKind.SMALL
    assert r.world.copies == 4
    assert r.then(Q.read("T", 0)).last.word == "1"


def test_fork_of_pinned_hugetlb_page_copies_the_whole_page_for_the_child() -> None:
    """mm/hugetlb.c: copy_hugetlb_page_range: hugetlb_try_dup_anon_rmap fails for an
    exclusive maybe-pinned page; the child gets a copy of the whole huge page."""
    r = run(*hugetlb("1"), P.pin("H", 0, "G", rw=True), P.fork(Q))
    assert r.words(P["H", 0]) == ("present", "writable", "exclusive", "pinned")
    assert r.words(Q["H", 0])[2] == "exclusive"
    assert r.state(P["H", 0]).page != r.state(Q["H", 0]).page
    assert r.world.copies == r.world.config.hugetlb_pages


def test_fork_shares_hugetlb_and_write_protects_both() -> None:
    """mm/hugetlb.c: copy_hugetlb_page_range: hugetlb_try_dup_anon_rmap clears the head flag
    and huge_ptep_set_wrprotect makes both entries read-only."""
    r = run(*hugetlb("1"), P.fork(Q))
    for ref in (P["H", 0], Q["H", 0]):
        assert r.words(ref) == ("present", "readonly", "shared", "unpinned")


def test_grandchild_fork_keeps_everything_shared() -> None:
    """mm/memory.c: a second fork from the child shares the already shared page three ways;
    a write by any of them copies, the others still read the old value."""
    r = run(*base("1"), P.fork(Q), Q.fork(R), Q.write("A", 0, "q"))
    assert r.then(P.read("A", 0)).last.word == "1"
    assert r.then(R.read("A", 0)).last.word == "1"
    assert r.words(R["A", 0]) == ("present", "readonly", "shared", "unpinned")
