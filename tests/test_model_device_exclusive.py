"""Device-exclusive entries under 6.12 (RMAP_WALK, mainline) and 6.15 (FOLIO_WALK).

The scheme point ``device_exclusive_walk`` (docs/after-6.12.md, section 2.4):
mm/rmap.c: make_device_exclusive_range, folio_make_device_exclusive and
page_make_device_exclusive_one; mm/memory.c: restore_exclusive_pte,
copy_nonpresent_pte and zap_nonpresent_ptes; mm/mprotect.c: change_pte_range
(all read in 6.12.118), against 6.15's make_device_exclusive.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from modelkit import Advice, P, Q, base, kernel, ksm, run, thp

from anonlib.mem import Mem
from anonlib.ops import Op
from anonlib.schemes import MAINLINE, SCHEMES, DeviceExclusive, Scheme, describe_difference

A0 = P["A", 0]
DEVX_615 = replace(MAINLINE, name="devx-6.15", device_exclusive_walk=DeviceExclusive.FOLIO_WALK)


def test_every_scheme_of_a_kernel_before_6_15_walks_the_rmap() -> None:
    after = {"lts-6.18", "mprotect-batch-head"}  # the schemes of 6.15 and later kernels
    assert {s.device_exclusive_walk for n, s in SCHEMES.items() if n not in after} == {
        DeviceExclusive.RMAP_WALK}
    assert {SCHEMES[n].device_exclusive_walk for n in after} == {DeviceExclusive.FOLIO_WALK}
    assert describe_difference(MAINLINE, DEVX_615) == [
        "device_exclusive_walk: mainline=RMAP_WALK devx-6.15=FOLIO_WALK"]


def shared_thp() -> list[Op]:
    """P's THP, T[0] kept out of the fork (DONTFORK), T[1..3] shared with Q."""
    return [*thp("x"), P.madvise("T", 0, Advice.DONTFORK), P.fork(Q)]


def test_head_page_converts_every_pte_of_the_folio_in_every_process() -> None:
    r = run(*shared_thp(), kernel("device-exclusive", P["T", 0]))
    assert r.last.word == "ok"
    assert r.words(P["T", 0]) == ("device-exclusive", "writable", "exclusive", "unpinned")
    for proc in (P, Q):
        for i in (1, 2, 3):
            assert r.words(proc["T", i]) == ("device-exclusive", "readonly", "shared",
                                             "unpinned")
    m = Mem(r.world, MAINLINE)
    fid = r.state(P["T", 0]).page[0]  # type: ignore[index]
    assert m.folio_mapcount(fid) == 0 and m.refcount(fid) == 7
    assert m.folio(fid).partially_mapped  # folio_remove_rmap_pte one PTE at a time


def test_folio_walk_converts_the_requested_pte_only() -> None:
    r = run(*shared_thp(), kernel("device-exclusive", P["T", 0]), scheme=DEVX_615)
    assert r.words(P["T", 0]) == ("device-exclusive", "writable", "exclusive", "unpinned")
    assert r.words(Q["T", 1])[:2] == ("present", "readonly")
    assert r.words(P["T", 1])[:2] == ("present", "readonly")
    m = Mem(r.world, DEVX_615)
    assert m.mapcount(r.state(P["T", 0]).page[0], 0) == 1  # type: ignore[index]


def test_tail_page_is_skipped_but_the_fault_stays() -> None:
    r = run(P.spawn(), P.thp("T"), kernel("device-exclusive", P["T", 1]))
    assert r.last.word == "EBUSY"
    assert all(r.words(P["T", i])[:2] == ("present", "writable") for i in range(4))
    r15 = run(P.spawn(), P.thp("T"), kernel("device-exclusive", P["T", 1]), scheme=DEVX_615)
    assert r15.last.word == "ok" and r15.state(P["T", 1]).kind == "device-exclusive"


def test_a_shared_tail_page_is_copied_by_the_lookup_and_converted() -> None:
    """docs/after-6.12.md's second scenario: the FOLL_WRITE lookup copies a shared page into
    a small folio, so no tail page is left to skip and both eras convert it."""
    for scheme in (MAINLINE, DEVX_615):
        r = run(*shared_thp(), kernel("device-exclusive", P["T", 1]), scheme=scheme)
        assert r.last.word == "ok"
        assert r.words(P["T", 1])[:3] == ("device-exclusive", "writable", "exclusive")
        assert r.words(Q["T", 1])[0] == "present"


def test_walk_stopped_by_an_existing_entry_fails_and_keeps_what_it_made() -> None:
    """page_make_device_exclusive_one returns false at a device-exclusive entry of the
    folio, ending the walk; folio_make_device_exclusive then fails since the folio is
    still mapped, and the converted entries stay."""
    r = run(*thp("x"), kernel("device-exclusive", P["T", 0]), P.read("T", 0),
            P.read("T", 2), kernel("device-exclusive", P["T", 0]))
    assert r.last.word == "EBUSY"
    assert r.state(P["T", 0]).kind == "device-exclusive"
    assert r.state(P["T", 1]).kind == "device-exclusive"
    assert r.state(P["T", 2]).kind == "present"


def test_restore_follows_the_entry_and_vm_write() -> None:
    """restore_exclusive_pte (6.12): maybe_mkwrite only for a writable entry."""
    ops = [*base("1"), kernel("device-exclusive", A0), P.mprotect("A", False),
           P.mprotect("A", True)]
    r = run(*ops)
    assert r.words(A0)[:2] == ("device-exclusive", "readonly")
    r.then(P.read("A", 0))
    assert r.words(A0) == ("present", "readonly", "exclusive", "unpinned")
    r.then(P.write("A", 0, "2"))
    assert r.words(A0)[:2] == ("present", "writable") and r.world.copies == 0
    r15 = run(*ops, P.read("A", 0), scheme=DEVX_615)
    assert r15.words(A0) == ("present", "writable", "exclusive", "unpinned")


def test_fork_restores_first_with_the_same_rule() -> None:
    """copy_nonpresent_pte -> try_restore_exclusive_pte, then the PTE is copied as present."""
    r = run(*base("1"), kernel("device-exclusive", A0), P.mprotect("A", False),
            P.mprotect("A", True), P.fork(Q))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    assert r.words(Q["A", 0]) == ("present", "readonly", "shared", "unpinned")


def test_folio_walk_restore_asks_can_change_pte_writable() -> None:
    """6.15 (9a914592140e): soft-dirty tracking with a clean entry keeps the PTE read-only;
    6.12 makes a writable entry writable whatever the tracking."""
    ops = [*base("1"), kernel("device-exclusive", A0), P.clear_softdirty(), P.read("A", 0)]
    assert run(*ops).words(A0)[:2] == ("present", "writable")
    assert run(*ops, scheme=DEVX_615).words(A0)[:2] == ("present", "readonly")


def test_zap_drops_the_map_count_only_under_the_folio_walk() -> None:
    """zap_nonpresent_ptes (6.12) drops only the reference of a device-exclusive entry; with
    6.15's map count, unmapping page 0 of a still-mapped large folio marks it partially
    mapped, as for a present PTE."""
    ops = [*thp("x"), kernel("device-exclusive", P["T", 1]), P.madvise("T", 1, Advice.DONTNEED)]
    r15 = run(*ops, scheme=DEVX_615)
    assert r15.folio(P["T", 0]).partially_mapped


def test_reclaim_migration_and_ksm_back_off() -> None:
    ops = [*shared_thp(), kernel("device-exclusive", P["T", 0]), Q.read("T", 1)]
    r = run(*ops)
    for op in (kernel("swapout", Q["T", 1]), kernel("migrate", Q["T", 1])):
        r.then(op)
        assert r.last.word == "skipped" and "device-exclusive" in r.last.detail, op


def test_ksm_backs_off_on_a_folio_with_a_device_exclusive_entry() -> None:
    ops = [*thp("s"), P.write("T", 1, "s"), kernel("device-exclusive", P["T", 0]),
           P.read("T", 1), P.mmap("B", 1), P.write("B", 0, "s")]
    r = run(*ops)
    r.then(ksm(P["T", 1], P["B", 0]))
    assert r.last.word == "skipped" and "device-exclusive" in r.last.detail


@pytest.mark.parametrize("scheme", [MAINLINE, DEVX_615], ids=lambda s: s.name)
def test_inv1_reads_the_entry_bit(scheme: Scheme) -> None:
    """A readable device-exclusive entry of a shared page breaks no rule (INV-1)."""
    r = run(*shared_thp(), kernel("device-exclusive", P["T", 0]), scheme=scheme)
    assert r.violations == []
