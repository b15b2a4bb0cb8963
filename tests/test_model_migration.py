"""Migration, device-private memory and device-exclusive entries (6.12).

Kernel: mm/rmap.c (try_to_migrate_one, make_device_exclusive_range),
mm/migrate.c (remove_migration_pte, folio_migrate_mapping),
mm/migrate_device.c, mm/memory.c (remove_device_exclusive_entry).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from modelkit import FolioKind, P, Q, Run, base, hread, kernel, run, thp

from anonlib.ops import PageRef
from anonlib.schemes import MAINLINE, DeviceExclusive

#: 6.15's device-exclusive rules on 6.12 (lts-6.18 will have them)
DEVX_615 = replace(MAINLINE, name="devx-6.15", device_exclusive_walk=DeviceExclusive.FOLIO_WALK)

A0, QA0 = P["A", 0], Q["A", 0]


def _migration(r: Run, ref: PageRef) -> tuple[str, bool | None, bool | None]:
    st = r.state(ref)
    return st.kind, st.writable, st.exclusive


# ------------------------------------------------------------------ migration
@pytest.mark.parametrize(("setup", "entry"), [
    pytest.param([*base("1")], (True, True), id="writable"),
    pytest.param([*base("1"), P.clear_softdirty()], (False, True), id="readable_exclusive"),
    pytest.param([*base("1"), P.fork(Q)], (False, False), id="readable"),
])
def test_migration_entry_type_carries_exclusivity(setup: list, entry: tuple) -> None:
    """mm/rmap.c: try_to_migrate_one: writable if the PTE was writable, else
    readable_exclusive if the page was exclusive (after folio_try_share_anon_rmap_pte
    cleared the flag), else readable. The page's own flag is clear meanwhile (INV-6)."""
    r = run(*setup, kernel("migrate-begin", A0))
    assert _migration(r, A0) == ("migration", *entry)
    assert not r.page(A0).anon_exclusive


@pytest.mark.parametrize(("setup", "words"), [
    pytest.param([*base("1")], ("present", "writable", "exclusive", "unpinned"),
                 id="writable"),
    pytest.param([*base("1"), P.clear_softdirty()],
                 ("present", "readonly", "exclusive", "unpinned"), id="readable_exclusive"),
    pytest.param([*base("1"), P.fork(Q)], ("present", "readonly", "shared", "unpinned"),
                 id="readable"),
])
def test_migration_end_maps_the_new_page_from_the_entry(setup: list, words: tuple) -> None:
    """mm/migrate.c: remove_migration_pte: writable iff the entry was writable; RMAP_EXCLUSIVE
    iff it was writable or readable_exclusive. The data moves to a new folio."""
    r = run(*setup)
    old = r.state(A0).page
    r.then(kernel("migrate", A0))
    assert r.words(A0) == words
    assert r.state(A0).page != old
    assert r.then(P.read("A", 0)).last.word == "1"


def test_migration_of_a_pinned_page_backs_off() -> None:
    """mm/rmap.c: try_to_migrate_one: folio_try_share_anon_rmap_pte fails for an exclusive
    maybe-pinned page; the PTE is restored and migration of the folio fails."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True))
    for action in ("migrate", "migrate-begin"):
        step = r.try_(kernel(action, A0))
        assert step.outcome.word == "skipped" and step.world is r.world


def test_migration_with_a_get_reference_fails_and_restores_the_mapping() -> None:
    """mm/migrate.c: folio_migrate_mapping finds an unexpected reference (FOLL_GET) and fails
    with -EAGAIN; remove_migration_ptes maps the old folio back from the entries, which
    restores write permission and PG_anon_exclusive: the world is as before."""
    r = run(*base("1"), P.get("A", 0, "G"))
    r.then(kernel("migrate", A0))
    assert r.last.word == "skipped"
    assert r.world == r.worlds[-2]


def test_access_to_a_migration_entry_waits_for_the_migration() -> None:
    """mm/migrate.c: migration_entry_wait: the fault waits, then finds the new page."""
    r = run(*base("1"), kernel("migrate-begin", A0), P.write("A", 0, "2"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.copies == 0


def test_pmd_migration_keeps_the_thp_pmd_mapped_and_exclusive() -> None:
    """mm/huge_memory.c: set_pmd_migration_entry / remove_migration_pmd: a PMD migration
    entry carries the head's exclusivity, the new THP is mapped by a PMD with the head set."""
    r = run(*thp("1"), kernel("migrate-begin", P["T", 0]))
    st = r.state(P["T", 2])
    assert (st.kind, st.pmd, st.writable, st.exclusive) == ("migration", True, True, True)
    r.then(kernel("migrate-end", P["T", 0]))
    assert r.words(P["T", 2]) == ("present", "pmd", "writable", "exclusive", "unpinned")
    assert r.kind(P["T", 0]) is FolioKind.THP


def test_split_of_a_pmd_migration_entry_gives_pte_entries_of_the_same_type() -> None:
    """mm/huge_memory.c: __split_huge_pmd_locked on a PMD migration entry installs PTE
    migration entries of the same kind (here readable_exclusive)."""
    r = run(*thp("1"), P.clear_softdirty(), kernel("migrate-begin", P["T", 0]),
            kernel("split-pmd", P["T", 0]))
    for i in range(4):
        st = r.state(P["T", i])
        assert (st.kind, st.pmd, st.writable, st.exclusive) == (
            "migration", False, False, True)
    r.then(kernel("migrate-end", P["T", 0]))
    for i in range(4):
        assert r.words(P["T", i]) == ("present", "readonly", "exclusive", "unpinned")


# ------------------------------------------------------------- device-private
def test_device_private_there_and_back_keeps_exclusivity() -> None:
    """mm/migrate_device.c: migrate_vma_collect_pmd shares the page into a migration entry,
    migrate_vma_finalize maps the device page by a device-private entry (writable iff the
    entry was, RMAP_EXCLUSIVE iff it was exclusive); a CPU fault (migrate_to_ram) brings it
    back the same way."""
    r = run(*base("1"), kernel("device-private", A0))
    assert r.words(A0) == ("device-private", "writable", "exclusive", "unpinned")
    assert r.kind(A0) is FolioKind.DEVICE
    r.then(P.read("A", 0))
    assert r.last.word == "1"
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.kind(A0) is FolioKind.SMALL


def test_device_private_of_a_shared_page_stays_shared_in_both() -> None:
    """mm/migrate_device.c: a readable migration entry gives readable device-private entries
    in every process, not exclusive; migrate_to_ram restores both read-only and shared."""
    r = run(*base("1"), P.fork(Q), kernel("device-private", A0))
    for ref in (A0, QA0):
        assert r.words(ref) == ("device-private", "readonly", "shared", "unpinned")
    r.then(kernel("device-private-end", A0))
    for ref in (A0, QA0):
        assert r.words(ref) == ("present", "readonly", "shared", "unpinned")
    assert r.state(A0).page == r.state(QA0).page


def test_device_private_of_a_pinned_page_is_skipped() -> None:
    """mm/migrate_device.c: migrate_vma_collect_pmd: folio_try_share_anon_rmap_pte fails for
    a maybe-pinned exclusive page, the PTE is restored and the page skipped."""
    r = run(*base("1"), P.pin("A", 0, "H"))
    step = r.try_(kernel("device-private", A0))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_device_private_of_an_empty_pte_inserts_a_new_exclusive_page() -> None:
    """mm/migrate_device.c: migrate_vma_insert_page: an empty PTE gets a brand-new device
    page, mapped with RMAP_EXCLUSIVE."""
    r = run(P.spawn(), P.mmap("A"), kernel("device-private", A0))
    assert r.words(A0) == ("device-private", "writable", "exclusive", "unpinned")
    assert r.then(P.read("A", 0)).last.word == "0"


# ----------------------------------------------------------- device-exclusive
def test_device_exclusive_keeps_the_page_exclusive() -> None:
    """mm/rmap.c: make_device_exclusive_range: GUP with FOLL_WRITE (so the page is exclusive),
    then the PTE becomes a device-exclusive entry; PG_anon_exclusive stays set."""
    r = run(*base("1"), kernel("device-exclusive", A0))
    st = r.state(A0)
    assert (st.kind, st.exclusive) == ("device-exclusive", True)
    assert r.page(A0).anon_exclusive


def test_cpu_access_restores_a_device_exclusive_entry() -> None:
    """mm/memory.c: remove_device_exclusive_entry -> restore_exclusive_pte: the present PTE
    comes back writable (the entry was writable, VM_WRITE) and exclusive, same page."""
    r = run(*base("1"), kernel("device-exclusive", A0))
    page = r.state(A0).page
    r.then(P.read("A", 0))
    assert r.last.word == "1"
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.state(A0).page == page


def test_device_exclusive_of_a_shared_page_breaks_cow_first() -> None:
    """mm/rmap.c: make_device_exclusive_range's FOLL_WRITE lookup takes a write fault on a
    shared page: P gets its own exclusive copy, Q keeps the old page."""
    r = run(*base("1"), P.fork(Q), kernel("device-exclusive", A0))
    assert r.state(A0).kind == "device-exclusive"
    assert r.state(A0).page != r.state(QA0).page
    assert r.then(Q.read("A", 0)).last.word == "1"


def test_device_exclusive_needs_a_writable_mapping() -> None:
    """mm/rmap.c: the FOLL_WRITE lookup fails in a read-only mapping: nothing happens."""
    r = run(*base("1"), P.mprotect("A", False))
    step = r.try_(kernel("device-exclusive", A0))
    assert step.outcome.word == "skipped" and step.world is r.world


def test_device_exclusive_page_keeps_a_pin_coherent() -> None:
    """mm/memory.c: the restored PTE maps the same page, so a pin taken before stays
    coherent with the process's writes."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), kernel("device-exclusive", A0),
            P.write("A", 0, "2"), hread("H"))
    assert r.last.word == "2"


def test_device_exclusive_on_an_untouched_thp_range_is_pte_level() -> None:
    """mm/rmap.c (6.12): make_device_exclusive_range -> get_user_pages_remote(FOLL_GET |
    FOLL_WRITE | FOLL_SPLIT_PMD); mm/gup.c: follow_pmd_mask splits a trans-huge PMD for
    FOLL_SPLIT_PMD before follow_page_pte, so the device-exclusive entry is a PTE; the
    split propagated the head flag to every subpage. T[0] is the head page, so 6.12's rmap
    walk (folio_make_device_exclusive) converts the other subpages' PTEs too, writable
    entries as the PTEs were; 6.15 converts T[0] alone. Device-exclusive entries exist only
    at PTE level, so fork must not see a PMD one."""
    for scheme, other in ((MAINLINE, "device-exclusive"), (DEVX_615, "present")):
        r = run(P.spawn(), P.thp("T"), kernel("device-exclusive", P["T", 0]), scheme=scheme,
                check=False)
        st = r.state(P["T", 0])
        assert (st.kind, st.pmd) == ("device-exclusive", False)
        assert r.words(P["T", 1]) == (other, "writable", "exclusive", "unpinned")
        r.then(P.fork(Q))
        assert r.violations == [], scheme.name


def test_failed_migration_end_maps_the_old_folio_back() -> None:
    """mm/migrate.c: migrate_folio_move fails in folio_migrate_mapping (a FOLL_GET reference);
    remove_migration_ptes maps the *old* folio back from the entries, so the writable entry
    gives a writable exclusive PTE on the same page. The outcome word is ``restored``, not
    ``skipped``: the entries change (migration to present)."""
    r = run(*base("1"), P.get("A", 0, "G"))
    page = r.state(A0).page
    r.then(kernel("migrate-begin", A0), kernel("migrate-end", A0))
    assert r.last.word == "restored" and "mapped back" in r.last.detail
    assert r.state(A0).page == page
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.world == r.worlds[-3]


def test_device_exclusive_on_a_read_only_pmd_splits_before_the_write_fault() -> None:
    """mm/gup.c (6.12): follow_pmd_mask: ``if (pmd_trans_huge(pmdval) && (flags &
    FOLL_SPLIT_PMD))`` splits the present PMD *before* follow_page_pte; the FOLL_WRITE
    fault then hits a read-only PTE of a large folio that is not exclusive, which
    mm/memory.c: wp_can_reuse_anon_folio never reuses in 6.12: T[0] is copied into a small
    folio, and the other subpages stay read-only and shared (the split propagated a clear
    head flag)."""
    r = run(*thp("1"), P.fork(Q), P.exit(), kernel("device-exclusive", Q["T", 0]),
            check=False)
    st = r.state(Q["T", 0])
    assert st.kind == "device-exclusive" and not st.pmd
    assert r.kind(Q["T", 0]) is FolioKind.SMALL
    assert r.words(Q["T", 1]) == ("present", "readonly", "shared", "unpinned")
    assert r.violations == []
