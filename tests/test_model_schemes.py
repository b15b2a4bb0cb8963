"""Each scheme's decision points, shown by the scenario that tells the eras apart.

Expected verdicts follow the kernel's history (docs/cow-cases.md,
docs/history.md): under an old scheme the historic bug must show
up as an INV-11 (pin coherence) or INV-12 (isolation) violation, and under
mainline it must not.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from modelkit import Advice, P, Q, base, hread, kernel, ksm, run, thp, unpin

from anonlib.ops import Op
from anonlib.scenario.library import is_size_variant
from anonlib.scenario.runner import run_scenario
from anonlib.schemes import (
    DECISION_POINTS,
    SCHEMES,
    ForkPinned,
    Reuse,
    Scheme,
    describe_difference,
)

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


# ---------------------------------------------------------------- every field decides
# The scheme promise (schemes.py): every era difference is a named decision point. Each
# field of each scheme is flipped (a bool to its negation, an enum to each other member),
# and some scenario must run differently: otherwise the field is dead, or a rule hides
# behind another field. A run's observation is its whole text (transcript, failures,
# verdict); the small scenarios end with `show`, so a different state shows as well.

#: Small scenarios that reach each field's decision point, tried before the library.
WITNESSES: dict[str, tuple[str, ...]] = {
    # mm/huge_memory.c: a write fault on the huge zero PMD splits it (6.12) or maps a new
    # THP by the PMD (6.13): the state shows which
    "huge_zero_wp": ("spawn P\nP mmap A thp\nP read A[1]\nP write A[2] x\nshow\n",),
    # mm/vmscan.c -> mm/memory.c: a page kept in the swap cache by a FOLL_GET reference,
    # swapped in by a read fault: only the swap PTE's bit can say it is exclusive
    "swp_exclusive": (
        "spawn P\nP mmap A 1\nP write A[0] x\nP get A[0] ro as H\nkernel swapout P A[0]\n"
        "P read A[0]\nshow\n",
    ),
    # mm/memory.c: the last mapped page of a PTE-mapped THP, write-protected, then written
    "wp_reuse": (
        "spawn P\nP mmap T thp\nP write T[0] x\nkernel split-pmd P T\n"
        "P madvise T[1] dontneed\nP madvise T[2] dontneed\nP madvise T[3] dontneed\n"
        "P mprotect T ro\nP mprotect T rw\nP write T[0] y\nshow\n",
    ),
    # mm/memory.c: one subpage of a swapped-out THP swapped in
    "head_only": (
        "spawn P\nP mmap T thp\nP write T[0] x\nkernel swapout P T[0]\nP read T[0]\nshow\n",
    ),
    # mm/mprotect.c: an exclusive page made read-only, then writable again
    "mprotect_upgrade": (
        "spawn P\nP mmap B 1\nP write B[0] 1\nP mprotect B ro\nP mprotect B rw\nshow\n",
    ),
    # mm/migrate.c: a read-only exclusive page comes back from migration exclusive
    "readable_exclusive_migration": (
        "spawn P\nP mmap A 1\nP write A[0] x\nP mprotect A ro\nkernel migrate P A[0]\nshow\n",
    ),
    # mm/memory.c (<= 5.8): a KSM page mapped once, with no other reference, is written
    "ksm_reuse": (
        "spawn P\nP mmap A 2\nP write A[0] s\nP write A[1] s\nkernel ksm P A[0] P A[1]\n"
        "P madvise A[1] dontneed\nP write A[0] x\nshow\n",
    ),
    # mm/huge_memory.c: a write-protected exclusive PMD with a FOLL_GET reference
    "pmd_reuse": (
        "spawn P\nP mmap T thp\nP write T[0] x\nP get T[0] rw as H\nP clear-softdirty\n"
        "P write T[0] y\nshow\n",
    ),
    # mm/memory.c: do_swap_page on a read fault, and on a write fault with a reference
    "swapin_reuse": (
        "spawn P\nP mmap A 1\nP write A[0] x\nkernel swapout P A[0]\nP read A[0]\nshow\n",
        "spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\nkernel swapout P A[0]\nQ exit\n"
        "P get A[0] ro as H\nP write A[0] y\nshow\n",
    ),
    "swapin_writable_on_read": (
        "spawn P\nP mmap A 1\nP write A[0] x\nkernel swapout P A[0]\nP read A[0]\nshow\n",
    ),
    # fs/proc/task_mmu.c: clear_refs and a pinned writable PTE
    "clear_refs_skips_pinned": (
        "spawn P\nP mmap A 1\nP write A[0] x\nP pin A[0] rw as H\nP clear-softdirty\nshow\n",
    ),
    "device_exclusive": (
        "spawn P\nP mmap A 1\nP write A[0] x\nkernel device-exclusive P A[0]\nshow\n",
    ),
    # mm/rmap.c, mm/mprotect.c, mm/memory.c: 6.12 drops the map count of the converted page
    # and demotes the entry on mprotect, so the restored PTE is read-only; 6.15 does neither
    "device_exclusive_walk": (
        "spawn P\nP mmap A 1\nP write A[0] x\nkernel device-exclusive P A[0]\n"
        "P mprotect A ro\nP mprotect A rw\nshow\nP read A[0]\nshow\n",
    ),
    # mm/memory.c (6.15): a page of an mTHP that only P maps again, after the child exited
    "large_reuse": (
        "spawn P\nP mmap A mthp\nP write A[0] x\nP fork C\nC exit\nP write A[1] y\nshow\n",
        # mm/memory.c (6.1): the last PTE of a THP whose flags fork cleared, written
        "spawn P\nP mmap T thp\nP write T[0] x\nkernel split-pmd P T\nP fork C\nC exit\n"
        "P madvise T[1] dontneed\nP madvise T[2] dontneed\nP madvise T[3] dontneed\n"
        "P write T[0] y\nshow\n",
    ),
    # mm/huge_memory.c: a PMD-mapped exclusive THP made read-only, then writable again
    "mprotect_upgrade_pmd": (
        "spawn P\nP mmap T thp\nP write T[0] x\nP mprotect T ro\nP mprotect T rw\nshow\n",
    ),
    # mm/vmscan.c: a fully mapped PTE-mapped THP reclaimed (6.1 splits it first)
    "reclaim_split": (
        "spawn P\nP mmap T thp\nP write T[0] x\nkernel split-pmd P T\nkernel swapout P T[0]\n"
        "show\n",
    ),
    # mm/huge_memory.c: a THP with never-written subpages split (6.12 maps them to the
    # zero page)
    "split_zero_remap": ("spawn P\nP mmap T thp\nP write T[0] x\nkernel split-folio P T\nshow\n",),
    # mm/migrate.c: a partially mapped THP migrated (6.12 splits it first)
    "migrate_splits_partially_mapped": (
        "spawn P\nP mmap T thp\nP write T[0] x\nkernel split-pmd P T\nP madvise T[1] dontneed\n"
        "kernel migrate P T[0]\nshow\n",
    ),
}

#: Fields read only when another field has a given value: the flip is made on the scheme
#: with that value (on both sides), so the field is tested where it decides something.
NEEDS: dict[str, dict[str, Any]] = {
    # the flag's own properties mean nothing where there is no flag; the swap PTE's bit
    # is read only by the swap-in rule that trusts it
    "swp_exclusive": {"anon_exclusive": True, "swapin_reuse": Reuse.ANON_EXCLUSIVE},
    "readable_exclusive_migration": {"anon_exclusive": True},
    # one head bit cannot be set for one subpage: a swap-in that trusts the swap PTE's
    # bit makes a single subpage exclusive
    "head_only": {"anon_exclusive": True, "swp_exclusive": True,
                  "swapin_reuse": Reuse.ANON_EXCLUSIVE},
    # unsharing asks the flag (without it no unshare fault could ever settle), and has
    # nothing to do where every GUP breaks COW first
    "gup_unshare": {"anon_exclusive": True, "gup_cow_break": False},
    "gup_unshare_zero_page": {"anon_exclusive": True, "gup_unshare": True,
                              "gup_cow_break": False},
    # mprotect upgrades, and fork copies, only pages the flag says are exclusive
    "mprotect_upgrade": {"anon_exclusive": True},
    "mprotect_upgrade_pmd": {"anon_exclusive": True, "mprotect_upgrade": True},
    "fork_pinned": {"anon_exclusive": True},
    # a read fault maps a swapped-in page exclusive (and writable) only by the swap
    # PTE's bit: the swap cache still holds the page
    "swapin_writable_on_read": {"anon_exclusive": True, "swp_exclusive": True,
                                "swapin_reuse": Reuse.ANON_EXCLUSIVE},
    # where do_wp_page reuses by map count, it decides again right after a swap-in and
    # by the same count, so the swap-in decision shows only under another wp_reuse; and
    # without the swap PTE's bit, ANON_EXCLUSIVE and PAGE_COUNT at swap-in agree
    "swapin_reuse": {"anon_exclusive": True, "swp_exclusive": True,
                     "wp_reuse": Reuse.PAGE_COUNT},
    # the batch asks the wrong page's flag: only where there are flags per page and
    # mprotect upgrades by them
    # (and where fork clears the flags of what it shares, 5.19's folio_try_dup_anon_rmap)
    "mprotect_batch": {"anon_exclusive": True, "mprotect_upgrade": True, "head_only": False,
                       "fork_pinned": ForkPinned.COPY_PINNED_EXCLUSIVE},
    # the recorded page's flag is what the unpin's check reads
    "pin_record": {"anon_exclusive": True, "head_only": False,
                   "fork_pinned": ForkPinned.COPY_PINNED_EXCLUSIVE, "gup_unshare": True,
                   "gup_cow_break": False},
    # how device-exclusive entries are made means nothing where they cannot be made
    "device_exclusive_walk": {"device_exclusive": True},
    # read by do_wp_page's PG_anon_exclusive rule only, for a page whose flag is clear
    # (fork clears the flags only where it keeps them: 5.19's fork rule); under
    # head-only a reused subpage could not be marked (one bit for the folio)
    "large_reuse": {"anon_exclusive": True, "wp_reuse": Reuse.ANON_EXCLUSIVE,
                    "fork_pinned": ForkPinned.COPY_PINNED_EXCLUSIVE, "head_only": False},
}

# cow.c's mTHP size variants add no rule the 16 kB files lack, only larger worlds
LIBRARY = tuple(sorted(p for p in Path(__file__).parent.parent.glob("scenarios/*/*.scn")
                       if not is_size_variant(p)))


def observe(text: str, scheme: Scheme, name: str) -> str:
    return str(run_scenario(text, scheme, name=name, keep_steps=False))


def flips(scheme: Scheme, point: str) -> list[tuple[Scheme, Scheme]]:
    """(before, after) pairs: the field flipped to each other value, prerequisites set."""
    base_scheme = replace(scheme, **NEEDS.get(point, {}))
    value = getattr(base_scheme, point)
    others = [not value] if isinstance(value, bool) else [v for v in type(value) if v is not value]
    return [(base_scheme, replace(base_scheme, **{point: v})) for v in others]


def first_difference(before: Scheme, after: Scheme, point: str) -> str | None:
    """The first witness (own scenarios, then the library) whose run differs, or None."""
    texts = [(f"{point} witness {i}", t) for i, t in enumerate(WITNESSES.get(point, ()))]
    texts += [(str(p), p.read_text(encoding="utf-8")) for p in LIBRARY]
    for name, text in texts:
        if observe(text, before, name) != observe(text, after, name):
            return name
    return None


def test_needs_name_real_fields_and_the_flip_tests_every_field() -> None:
    assert set(WITNESSES) <= set(DECISION_POINTS)
    for point, needs in NEEDS.items():
        assert point in DECISION_POINTS and set(needs) <= set(DECISION_POINTS), point
        assert point not in needs
    assert "ksm_reuse" in DECISION_POINTS and "readable_exclusive_migration" in DECISION_POINTS


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("point", DECISION_POINTS)
def test_flipping_a_field_changes_some_verdict(scheme: str, point: str) -> None:
    for before, after in flips(SCHEMES[scheme], point):
        flipped = getattr(after, point)
        assert first_difference(before, after, point), (
            f"field {point!r} of scheme {scheme!r} flipped to {getattr(flipped, 'name', flipped)}"
            f" changes no verdict: a dead field, or its rule is decided elsewhere")


def test_describe_difference_shows_the_new_fields() -> None:
    lines = describe_difference(SCHEMES["mainline"], SCHEMES["legacy-mapcount"])
    assert "ksm_reuse: mainline=False legacy-mapcount=True" in lines
    assert "readable_exclusive_migration: mainline=True legacy-mapcount=False" in lines
    assert not any(line.startswith("hugetlb_reuse") for line in lines)


def test_only_schemes_that_read_the_partially_mapped_mark_set_it() -> None:
    """PG_partially_mapped is 6.12's; lts-6.1's reclaim and migration never read it, so no
    folio carries it there (and the explorer's key and the views see no 6.12 flag)."""
    from anonlib.scenario.runner import run_scenario as run_text

    text = ("spawn P\nP mmap T thp\nP write T[0] x\nkernel split-pmd P T\n"
            "P madvise T[1] dontneed\nshow\n")
    assert not SCHEMES["lts-6.1"].tracks_partially_mapped
    assert all(s.tracks_partially_mapped for n, s in SCHEMES.items() if n != "lts-6.1")
    assert "partially-mapped" in str(run_text(text, "mainline"))
    assert "partially-mapped" not in str(run_text(text, "lts-6.1"))
