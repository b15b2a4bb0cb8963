"""Each scheme's decision points, shown by the scenario that tells the eras apart.

Expected verdicts follow the kernel's history (docs/cow-cases.md,
docs/history.md): under an old scheme the historic bug must show
up as an INV-11 (pin coherence) or INV-12 (isolation) violation, and under
mainline it must not.
"""

from __future__ import annotations

import pytest
from modelkit import Advice, P, Q, base, hread, kernel, ksm, run, thp, unpin

from anonlib.ops import Op

A0 = P["A", 0]


def verdicts(ops: tuple[Op, ...], *schemes: str) -> dict[str, set[str]]:
    """The user-visible invariants (INV-11, INV-12) each scheme violates on ``ops``."""
    return {s: run(*ops, scheme=s, check=False).violated() & {"INV-11", "INV-12"}
            for s in schemes}


# A3 (CVE-2020-29374): P fork Q, Q vmsplice (FOLL_GET), Q munmap, P writes.
VMSPLICE_IN_CHILD = (*base("1"), P.fork(Q), Q.get("A", 0, "G"), Q.munmap("A"),
                     P.write("A", 0, "2"), hread("G"))


def test_vmsplice_in_child_leaks_only_under_legacy_mapcount() -> None:
    """mm/memory.c (<= 5.7): do_wp_page -> reuse_swap_page reuses by map count, blind to
    Q's FOLL_GET; 5.8 broke COW in Q's GUP; 5.9+ reuses by page_count / the flag."""
    got = verdicts(VMSPLICE_IN_CHILD, "mainline", "no-swp-exclusive", "page-count",
                   "gup-cow-break", "legacy-mapcount", "head-only")
    assert got == {"mainline": set(), "no-swp-exclusive": set(), "page-count": set(),
                   "gup-cow-break": set(), "legacy-mapcount": {"INV-12"}, "head-only": set()}
    assert run(*VMSPLICE_IN_CHILD, scheme="legacy-mapcount", check=False).last.word == "2"


def test_vmsplice_in_child_with_a_pmd_thp_leaks_under_page_count() -> None:
    """mm/huge_memory.c (5.9-5.17): do_huge_pmd_wp_page still reused by map count
    (fixed in 5.18, 'COW fixes part 1'): cow.c A3 FAILs for PMD THPs on page-count."""
    ops = (*thp("1"), P.fork(Q), Q.get("T", 0, "G"), Q.munmap("T"), P.write("T", 0, "2"),
           hread("G"))
    assert verdicts(ops, "mainline", "page-count") == {"mainline": set(),
                                                       "page-count": {"INV-12"}}


def test_vmsplice_in_child_with_a_swapped_page_leaks_under_page_count() -> None:
    """mm/memory.c (5.9-5.17): do_swap_page reused by map count + swap count
    (reuse_swap_page) on a write fault, blind to Q's reference (cow.c A3, swapped-out
    base page, FAILs on page-count)."""
    ops = (*base("1"), P.fork(Q), kernel("swapout", A0), Q.get("A", 0, "G"), Q.munmap("A"),
           P.write("A", 0, "2"), hread("G"))
    assert verdicts(ops, "mainline", "page-count") == {"mainline": set(),
                                                       "page-count": {"INV-12"}}


def test_vmsplice_before_fork_leaks_under_map_count_schemes() -> None:
    """cow.c A5: P's FOLL_GET precedes fork, so 5.8's COW break has nothing to break; the
    child's write reuses by map count. page_count (5.9+) and the flag copy."""
    ops = (*base("1"), P.get("A", 0, "G"), P.fork(Q), P.munmap("A"), Q.write("A", 0, "2"),
           hread("G"))
    assert verdicts(ops, "mainline", "page-count", "gup-cow-break", "legacy-mapcount") == {
        "mainline": set(), "page-count": set(), "gup-cow-break": {"INV-12"},
        "legacy-mapcount": {"INV-12"}}


def test_ro_pin_on_shared_page_is_incoherent_without_unsharing() -> None:
    """mm/internal.h: gup_must_unshare (5.19) unshares before a R/O pin; page-count and
    legacy-mapcount pin the shared page and P's write copies away from it (cow.c A9); 5.8's
    COW break in GUP makes it work."""
    ops = (*base("1"), P.fork(Q), P.pin("A", 0, "H", longterm=True), P.write("A", 0, "2"),
           hread("H"))
    assert verdicts(ops, "mainline", "page-count", "gup-cow-break", "legacy-mapcount") == {
        "mainline": set(), "page-count": {"INV-11"}, "gup-cow-break": set(),
        "legacy-mapcount": {"INV-11"}}


def test_ro_pin_on_previously_shared_page_breaks_under_page_count() -> None:
    """cow.c A11: the pin raises page_count, so 5.9-5.18's do_wp_page copies; the map
    count rule (<= 5.8) reuses; the flag (unshare reuses, then write reuses) works."""
    ops = (*base("1"), P.fork(Q), Q.exit(), P.pin("A", 0, "H", longterm=True),
           P.write("A", 0, "2"), hread("H"))
    assert verdicts(ops, "mainline", "page-count", "legacy-mapcount") == {
        "mainline": set(), "page-count": {"INV-11"}, "legacy-mapcount": set()}


def test_write_protect_with_a_get_reference_then_write() -> None:
    """Decision point wp_reuse: after clear_refs write-protects a page with a FOLL_GET
    reference, mainline reuses the exclusive page, page-count (refcount 2) copies, and
    legacy-mapcount (map count 1) reuses."""
    ops = (*base("1"), P.get("A", 0, "G"), P.clear_softdirty(), P.write("A", 0, "2"),
           hread("G"))
    got = {s: run(*ops, scheme=s).last.word for s in ("mainline", "page-count",
                                                      "legacy-mapcount")}
    assert got == {"mainline": "2", "page-count": "1", "legacy-mapcount": "2"}


def test_iouring_ro_breaks_under_page_count() -> None:
    """cow.c A7: a R/W long-term pin, mprotect(R), clear_refs, mprotect(R/W), write. Before
    6.0 mprotect does not upgrade and 5.9-5.18 copy on page_count > 1: the pin goes
    stale. Mainline reuses the exclusive page; map count reuses too."""
    ops = (*base("1"), P.pin("A", 0, "H", rw=True, longterm=True), P.mprotect("A", False),
           P.clear_softdirty(), P.mprotect("A", True), P.write("A", 0, "2"), hread("H"))
    assert verdicts(ops, "mainline", "page-count", "legacy-mapcount") == {
        "mainline": set(), "page-count": {"INV-11"}, "legacy-mapcount": set()}


def test_pin_then_fork_breaks_either_way_under_legacy_mapcount() -> None:
    """cow.c A8: without fork's early COW (5.9+) the pinned page is shared, and P's write
    (map count 2) copies away from its own pin ('COW can break either way')."""
    ops = (*base("1"), P.pin("A", 0, "H", rw=True), P.fork(Q), P.write("A", 0, "2"),
           hread("H"))
    assert verdicts(ops, "mainline", "page-count", "legacy-mapcount") == {
        "mainline": set(), "page-count": set(), "legacy-mapcount": {"INV-11"}}


def test_page_count_fork_copies_every_maybe_pinned_page() -> None:
    """mm/memory.c (5.9-5.18): copy_present_page for any maybe-pinned page of an
    MMF_HAS_PINNED mm, with no exclusivity information; mainline asks
    folio_try_dup_anon_rmap_pte, which copies only exclusive pages."""
    ops = (*base("1"), P.pin("A", 0, "H"), P.fork(Q))
    for scheme in ("mainline", "page-count"):
        r = run(*ops, scheme=scheme)
        assert r.state(A0).page != r.state(Q["A", 0]).page, scheme
    ops = (*base("1"), P.pin("A", 0, "H"), P.fork(Q), unpin("H"), P.pin("A", 0, "H2"))
    assert run(*ops).world.copies == 1


def test_mprotect_upgrade_exists_only_since_6_0() -> None:
    """mm/mprotect.c: can_change_pte_writable's anonymous-exclusive case came with
    64fe24a3e05e (6.0, dirty PTEs only) and d84887739d5c (6.2, clean ones too, the rule
    modelled): page-count keeps the PTE read-only until the write fault."""
    ops = (*base("1"), P.mprotect("A", False), P.mprotect("A", True))
    assert run(*ops).state(A0).writable
    assert not run(*ops, scheme="page-count").state(A0).writable


def test_legacy_mapcount_reuses_a_ksm_page_mapped_once() -> None:
    """mm/memory.c (<= 5.8): do_wp_page -> reuse_ksm_page took back a KSM page with no
    other reference; 09854ba94c6a (5.9) stopped reusing KSM pages (1a0cf26323c8 then
    only removed the unused helper): mainline always copies."""
    ops = (*base("s", npages=2), ksm(A0, P["A", 1]), P.write("A", 0, "x"), P.write("A", 1, "y"))
    assert run(*ops).world.copies == 2
    assert run(*ops, scheme="legacy-mapcount").world.copies == 1


def test_head_only_cannot_describe_a_partially_shared_thp() -> None:
    """The 5.19 review's question (docs/history.md B10, item 4): with one head bit, fork of
    a THP shared only in subpage 0 must either keep 'exclusive' (leak) or clear it while
    subpages 1..3 stay writable in P, breaking INV-1. Per-page flags (mainline) need
    neither."""
    ops = (*thp("1"), *(P.madvise("T", i, Advice.DONTFORK) for i in (1, 2, 3)), P.fork(Q))
    assert run(*ops).violations == []
    r = run(*ops, scheme="head-only", check=False)
    assert "INV-1" in r.violated()


@pytest.mark.parametrize("scheme", ["page-count", "gup-cow-break", "legacy-mapcount"])
def test_old_schemes_have_no_flag(scheme: str) -> None:
    """Before 5.19 there is no PG_anon_exclusive: page states have no exclusive/shared word."""
    r = run(*base("1"), scheme=scheme)
    assert r.words(A0) == ("present", "writable", "unpinned")


def test_clear_refs_leaves_pinned_ptes_writable_since_5_11() -> None:
    """fs/proc/task_mmu.c: clear_soft_dirty -> pte_is_pinned (9348b73c2e1b, 5.11) skips a
    writable PTE of a maybe-pinned folio, so page-count's write (refcount > 1) never faults
    and the pin stays coherent; before it (legacy-mapcount) the PTE is write-protected."""
    ops = (*base("1"), P.pin("A", 0, "H", rw=True), P.clear_softdirty())
    assert run(*ops, scheme="page-count").state(A0).writable
    assert run(*ops).state(A0).writable
    assert not run(*ops, scheme="legacy-mapcount").state(A0).writable
    more = (P.write("A", 0, "2"), hread("H"))
    assert run(*ops, *more, scheme="page-count").last.word == "2"
