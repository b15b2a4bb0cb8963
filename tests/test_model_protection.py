"""mprotect, clear_refs soft-dirty, madvise, munmap and exit (6.12).

Kernel: mm/mprotect.c, fs/proc/task_mmu.c, mm/madvise.c, mm/khugepaged.c,
mm/memory.c (zap), mm/mmap.c, kernel/exit.c.
"""

from __future__ import annotations

from modelkit import Advice, FolioKind, P, Q, base, hread, hugetlb, kernel, run, thp

from anonlib import invariants
from anonlib.mem import Mem
from anonlib.mm import mprotect

A0, QA0 = P["A", 0], Q["A", 0]


# ------------------------------------------------------------------- mprotect
def test_mprotect_ro_write_protects_and_keeps_the_flag() -> None:
    """mm/mprotect.c: change_pte_range removes write; PG_anon_exclusive is untouched, and a
    read-only exclusive PTE is legal (INV-14)."""
    r = run(*base("1"), P.mprotect("A", False))
    assert r.words(A0) == ("present", "readonly", "exclusive", "unpinned")
    assert r.then(P.write("A", 0, "x")).last.word == "SIGSEGV"


def test_mprotect_rw_upgrades_exclusive_pages_directly() -> None:
    """mm/mprotect.c: can_change_pte_writable: an exclusive anonymous page in a private
    mapping is made writable at once (64fe24a3e05e, 6.0, dirty PTEs; d84887739d5c, 6.2,
    clean ones too): no write fault needed."""
    r = run(*base("1"), P.mprotect("A", False), P.mprotect("A", True))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")


def test_mprotect_rw_does_not_upgrade_shared_pages() -> None:
    """mm/mprotect.c: can_change_pte_writable refuses a page that is not exclusive (cow.c
    'Basic COW after fork() with mprotect() optimization')."""
    r = run(*base("1"), P.fork(Q), P.mprotect("A", False), P.mprotect("A", True))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    r.then(P.write("A", 0, "2"), Q.read("A", 0))
    assert r.last.word == "1"


def test_mprotect_rw_does_not_upgrade_a_page_mapped_once_but_not_exclusive() -> None:
    """mm/mprotect.c: the rule is the flag, not the map count: after Q's munmap P's page is
    mapped once but still shared, and Q's FOLL_GET must not see P's write (cow.c
    'vmsplice() + unmap in child with mprotect() optimization')."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G"), Q.munmap("A"),
            P.mprotect("A", False), P.mprotect("A", True))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    r.then(P.write("A", 0, "2"), hread("G"))
    assert r.last.word == "1"


def test_mprotect_rw_does_not_upgrade_the_zero_page() -> None:
    """mm/mprotect.c: can_change_pte_writable: the zero page is not anonymous."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0), P.mprotect("A", False),
            P.mprotect("A", True))
    assert r.is_zero_page(A0) and not r.state(A0).writable


def test_mprotect_rw_does_not_upgrade_when_soft_dirty_needs_a_fault() -> None:
    """mm/mprotect.c: can_change_pte_writable: vma_soft_dirty_enabled() and the PTE is not
    soft-dirty -> keep it read-only; the later write fault (do_wp_page) reuses the
    exclusive page and marks it soft-dirty (cow.c 'R/O-mapping a page registered as iouring
    fixed buffer')."""
    r = run(*base("1"), P.mprotect("A", False), P.clear_softdirty(), P.mprotect("A", True))
    assert r.words(A0) == ("present", "readonly", "exclusive", "unpinned")
    page = r.state(A0).page
    r.then(P.write("A", 0, "2"))
    assert r.state(A0).page == page and r.world.copies == 0
    assert r.world.proc("P").vma("A").ptes[0].soft_dirty


def test_mprotect_rw_upgrades_an_exclusive_pmd() -> None:
    """mm/huge_memory.c: change_huge_pmd -> can_change_pmd_writable, which tests the head."""
    r = run(*thp("1"), P.mprotect("T", False), P.mprotect("T", True))
    assert r.words(P["T", 1]) == ("present", "pmd", "writable", "exclusive", "unpinned")


def test_mprotect_never_upgrades_hugetlb() -> None:
    """mm/hugetlb.c: hugetlb_change_protection applies the VMA's page protection, which is
    read-only in a private mapping: no direct upgrade; the write fault reuses."""
    r = run(*hugetlb("1"), P.mprotect("H", False), P.mprotect("H", True))
    assert r.words(P["H", 0]) == ("present", "readonly", "exclusive", "unpinned")
    r.then(P.write("H", 0, "2"))
    assert r.words(P["H", 0])[1] == "writable" and r.world.copies == 0


def test_mprotect_ro_demotes_a_writable_migration_entry_to_readable_exclusive() -> None:
    """mm/mprotect.c: change_pte_range: a writable migration entry of an anonymous folio
    becomes readable_exclusive; migration then maps the page read-only and exclusive."""
    r = run(*base("1"), kernel("migrate-begin", A0), P.mprotect("A", False))
    st = r.state(A0)
    assert (st.kind, st.writable, st.exclusive) == ("migration", False, True)
    r.then(kernel("migrate-end", A0))
    assert r.words(A0) == ("present", "readonly", "exclusive", "unpinned")


def test_mprotect_ro_makes_device_private_entries_readable() -> None:
    """mm/mprotect.c: change_pte_range: a writable device-private entry becomes readable;
    the device page keeps its flag."""
    r = run(*base("1"), kernel("device-private", A0), P.mprotect("A", False))
    assert r.words(A0) == ("device-private", "readonly", "exclusive", "unpinned")


def test_change_pte_range_demotes_writable_non_present_entries_when_write_stays() -> None:
    """mm/mprotect.c: change_pte_range (6.12) demotes a writable migration entry to
    readable_exclusive and a writable device-private entry to readable on every
    protection change, also one that keeps write (PROT_EXEC added, say, which the
    scenario language cannot express: hence the direct call); present PTEs keep write."""
    r = run(P.spawn(), P.mmap("A", 3), P.write("A", 0, "1"), P.write("A", 1, "2"),
            P.write("A", 2, "3"), kernel("migrate-begin", A0),
            kernel("device-private", P["A", 1]))
    assert r.state(A0).writable and r.state(P["A", 1]).writable
    m = Mem(r.world, r.scheme)
    mprotect.change_pte_range(m, "P", "A", True)
    after = run(scheme=r.scheme)
    after.worlds = [m.freeze()]
    st = after.state(A0)
    assert (st.kind, st.writable, st.exclusive) == ("migration", False, True)
    assert after.words(P["A", 1]) == ("device-private", "readonly", "exclusive", "unpinned")
    assert after.words(P["A", 2]) == ("present", "writable", "exclusive", "unpinned")
    assert invariants.check(after.world, r.scheme) == []
    after.then(kernel("migrate-end", A0))
    assert after.words(A0) == ("present", "readonly", "exclusive", "unpinned")


def test_mprotect_that_changes_nothing_does_not_walk_the_page_table() -> None:
    """mm/mprotect.c: mprotect_fixup returns at once when the VMA's flags stay the same:
    a read-only exclusive PTE (P's copy after an R/O long-term pin unshared the page it
    shared with Q) is not upgraded by an mprotect to the protection it already has, while
    a real ro -> rw change upgrades it (can_change_pte_writable)."""
    ops = (*base("1"), P.fork(Q), P.pin("A", 0, "H", longterm=True))
    r = run(*ops)
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    r.then(P.mprotect("A", True))
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    r.then(P.mprotect("A", False), P.mprotect("A", True))
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")


# ----------------------------------------------------------- clear_refs (4)
def test_clear_softdirty_write_protects_and_keeps_the_flag() -> None:
    """fs/proc/task_mmu.c: clear_soft_dirty write-protects the PTE and clears its soft-dirty
    bit; the flag is untouched, so the next write fault reuses the page."""
    r = run(*base("1"), P.clear_softdirty())
    assert r.words(A0) == ("present", "readonly", "exclusive", "unpinned")
    assert not r.world.proc("P").vma("A").ptes[0].soft_dirty
    page = r.state(A0).page
    r.then(P.write("A", 0, "2"))
    assert r.state(A0).page == page and r.world.copies == 0


def test_clear_softdirty_clears_the_bit_on_swap_entries() -> None:
    """fs/proc/task_mmu.c: clear_soft_dirty: for a swap PTE only pte_swp_clear_soft_dirty."""
    r = run(*base("1"), kernel("swapout", A0), P.clear_softdirty())
    e = r.world.proc("P").vma("A").ptes[0]
    assert e is not None and not e.soft_dirty and e.exclusive


def test_clear_softdirty_leaves_a_pinned_writable_pte_alone() -> None:
    """fs/proc/task_mmu.c: clear_soft_dirty -> pte_is_pinned: in a COW mapping of an mm with
    MMF_HAS_PINNED, a writable PTE of a maybe-pinned folio is neither write-protected nor
    cleared ('Turning a pinned page read-only breaks the pinning after COW', 9348b73c2e1b)."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), P.clear_softdirty())
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")
    assert r.world.proc("P").vma("A").ptes[0].soft_dirty


# -------------------------------------------------------------------- madvise
def test_dontneed_zaps_and_leaves_a_pinned_page_with_its_stale_flag() -> None:
    """mm/memory.c: zap_present_ptes drops the mapping and the reference but does not clear
    PG_anon_exclusive; the pinned page outlives the mapping, and the next touch faults in a
    new page (the pin is disconnected: the caller's problem, no INV-11 promise)."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), P.madvise("A", 0, Advice.DONTNEED))
    assert r.state(A0).kind == "none"
    h = r.world.handle("H")
    assert r.world.folio(h.folio).pages[h.page].anon_exclusive
    r.then(P.read("A", 0))
    assert r.last.word == "0" and r.is_zero_page(A0)
    assert r.then(hread("H")).last.word == "1"


def test_dontneed_on_part_of_a_pmd_splits_it() -> None:
    """mm/memory.c: zap_pmd_range splits a PMD that the range covers only in part
    (__split_huge_pmd); the other subpages stay mapped, exclusive, writable."""
    r = run(*thp("1"), P.madvise("T", 1, Advice.DONTNEED))
    assert r.state(P["T", 1]).kind == "none"
    for i in (0, 2, 3):
        assert r.words(P["T", i]) == ("present", "writable", "exclusive", "unpinned")


def test_dontneed_of_a_swap_entry_frees_the_slot() -> None:
    """mm/memory.c: zap_nonpresent_ptes -> free_swap_and_cache: the last swap entry is gone,
    so the slot is freed."""
    r = run(*base("1"), kernel("swapout", A0), P.madvise("A", 0, Advice.DONTNEED))
    assert r.world.slots == () and r.world.folios == ()


def test_collapse_copies_into_a_new_exclusive_thp() -> None:
    """mm/khugepaged.c: madvise_collapse -> collapse_huge_page copies the PTE-mapped pages
    into a fresh THP mapped by a PMD with the head exclusive; the other process keeps the
    old pages (cow.c 'collapsing after fork() (lower shared)')."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]), P.madvise("T", 1, Advice.DONTFORK),
            P.madvise("T", 2, Advice.DONTFORK), P.madvise("T", 3, Advice.DONTFORK),
            P.fork(Q))
    old = r.state(P["T", 0]).page
    for i in (1, 2, 3):
        r.then(P.madvise("T", i, Advice.DOFORK))
    r.then(P.madvise("T", None, Advice.COLLAPSE))
    assert r.last.word == "ok"
    assert r.words(P["T", 0]) == ("present", "pmd", "writable", "exclusive", "unpinned")
    assert r.state(P["T", 0]).page[0] != old[0]
    assert r.state(Q["T", 0]).page == old
    r.then(P.write("T", 0, "2"), Q.read("T", 0))
    assert r.last.word == "1"


def test_collapse_of_a_fully_shared_range_is_einval() -> None:
    """mm/khugepaged.c: hpage_collapse_scan_pmd: no writable PTE -> SCAN_PAGE_RO, reported
    by MADV_COLLAPSE as EINVAL (cow.c 'collapsing after fork() (fully shared)' SKIPs)."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]), P.fork(Q),
            P.madvise("T", None, Advice.COLLAPSE))
    assert r.last.word == "EINVAL"


def test_collapse_with_a_gup_reference_is_refused() -> None:
    """mm/khugepaged.c: is_refcount_suitable: a reference beyond the mappings (GUP) ->
    SCAN_PAGE_COUNT, EAGAIN."""
    r = run(*thp("1"), kernel("split-pmd", P["T", 0]), P.get("T", 2, "G"),
            P.madvise("T", None, Advice.COLLAPSE))
    assert r.last.word == "EAGAIN"
    assert not r.state(P["T", 0]).pmd


# ------------------------------------------------------------ munmap and exit
def test_munmap_removes_the_mapping() -> None:
    """mm/mmap.c: do_vmi_munmap: afterwards an access is SIGSEGV and GUP is EFAULT."""
    r = run(*base("1"), P.munmap("A"), P.read("A", 0))
    assert r.last.word == "SIGSEGV"
    assert r.then(P.get("A", 0, "G")).last.word == "EFAULT"
    assert r.world.folios == ()


def test_exit_leaves_the_survivor_shared() -> None:
    """kernel/exit.c: exit_mmap zaps everything; the surviving process's page stays
    non-exclusive and read-only (no spontaneous regain, INV-9)."""
    r = run(*base("1"), P.fork(Q), Q.exit())
    assert r.world.proc("Q") is None
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")


def test_exit_drops_the_process_references() -> None:
    """The model closes an exiting process's pipes and DMA buffers: its GUP references go."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G"), Q.exit())
    assert r.world.handle("G") is None
    assert r.kind(A0) is FolioKind.SMALL
