"""get_user_pages(): FOLL_GET / FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, GUP-fast, unpin and put.

Kernel: mm/gup.c and mm/internal.h (gup_must_unshare), Linux 6.12.
"""

from __future__ import annotations

import pytest
from modelkit import FolioKind, P, Q, base, hread, hwrite, kernel, ksm, put, run, thp, unpin

from anonlib.results import ErrorKind, ModelError

A0, QA0 = P["A", 0], Q["A", 0]


# ------------------------------------------------------------------ slow path
def test_get_ro_on_exclusive_page_changes_no_flag() -> None:
    """mm/gup.c: follow_page_pte with FOLL_GET takes a reference (try_grab_folio) and
    nothing else: PG_anon_exclusive and the PTE are untouched."""
    r = run(*base("1"))
    before = r.state(A0)
    r.then(P.get("A", 0, "G"))
    assert r.state(A0) == before
    assert r.world.handle("G") is not None and not r.world.handle("G").pin


def test_get_ro_on_shared_page_does_not_unshare() -> None:
    """mm/internal.h: gup_must_unshare is false for anything but FOLL_PIN: a R/O FOLL_GET
    on a shared page references the shared page itself (no coherence promise)."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G"))
    assert r.words(QA0) == ("present", "readonly", "shared", "unpinned")
    h = r.world.handle("G")
    assert (h.folio, h.page) == r.state(QA0).page == r.state(A0).page
    assert r.world.copies == 0


def test_ro_pin_on_shared_page_unshares_first() -> None:
    """mm/gup.c: follow_page_pte returns -EMLINK when gup_must_unshare (R/O FOLL_PIN on a
    page that is not exclusive); faultin_page runs FAULT_FLAG_UNSHARE; the pin lands on an
    exclusive page (sanity_check_pinned_pages), so a later write by P reaches it (cow.c
    'R/O GUP pin on R/O-mapped shared page')."""
    r = run(*base("1"), P.fork(Q), P.pin("A", 0, "H", longterm=True))
    h = r.world.handle("H")
    assert (h.folio, h.page) == r.state(A0).page != r.state(QA0).page
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    r.then(P.write("A", 0, "2"), hread("H"))
    assert r.last.word == "2"
    assert r.then(Q.read("A", 0)).last.word == "1"


def test_rw_get_on_shared_page_breaks_cow() -> None:
    """mm/gup.c: FOLL_WRITE needs a writable PTE: faultin_page takes a write fault
    (do_wp_page copies), so the reference is on P's new exclusive page."""
    r = run(*base("1"), P.fork(Q), P.get("A", 0, "G", rw=True))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.world.handle("G").folio == r.state(A0).page[0]
    r.then(hwrite("G", "d"), P.read("A", 0))
    assert r.last.word == "d"
    assert r.then(Q.read("A", 0)).last.word == "1"


def test_rw_pin_on_untouched_memory_faults_in_an_exclusive_page() -> None:
    """mm/gup.c: faultin_page with FAULT_FLAG_WRITE -> do_anonymous_page: fresh exclusive
    page, then pinned."""
    r = run(P.spawn(), P.mmap("A"), P.pin("A", 0, "H", rw=True))
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")


def test_rw_gup_on_the_zero_page_copies_it() -> None:
    """mm/gup.c: FOLL_WRITE on a read-only zero-page PTE -> write fault -> wp_page_copy."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0), P.pin("A", 0, "H", rw=True))
    assert not r.is_zero_page(A0)
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")


def test_ro_get_on_untouched_memory_references_the_zero_page() -> None:
    """mm/gup.c: a read fault maps the zero page and follow_page_pte returns it; a later
    write by P copies away from it, the reference still reads zeros (FOLL_GET promises
    nothing)."""
    r = run(P.spawn(), P.mmap("A"), P.get("A", 0, "G"))
    assert r.world.handle("G").folio == 0 and r.is_zero_page(A0)
    r.then(P.write("A", 0, "x"), hread("G"))
    assert r.last.word == "0"


def test_short_term_ro_pin_may_pin_the_zero_page() -> None:
    """mm/internal.h: gup_must_unshare: for a page that is not anonymous only FOLL_LONGTERM
    unshares; a short-term R/O pin pins the zero page as it is."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0), P.pin("A", 0, "H"))
    assert r.world.handle("H").folio == 0 and r.is_zero_page(A0)


def test_ro_longterm_pin_unshares_the_zero_page() -> None:
    """mm/internal.h: gup_must_unshare: FOLL_LONGTERM R/O pin of a non-anonymous page in a
    COW mapping -> unshare (6.2): do_wp_page copies the zero page into an exclusive page
    mapped read-only; P's write then reuses it and the pin sees it (cow.c 'R/O longterm
    GUP pin' with shared zeropage)."""
    r = run(P.spawn(), P.mmap("A"), P.read("A", 0), P.pin("A", 0, "H", longterm=True))
    assert not r.is_zero_page(A0)
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")
    r.then(P.write("A", 0, "x"), hread("H"))
    assert r.last.word == "x"
    assert r.world.copies == 1


def test_ro_longterm_pin_on_untouched_memory() -> None:
    """mm/gup.c: read fault (zero page), then -EMLINK from gup_must_unshare, then an unshare
    fault: the pin holds a fresh exclusive page, read-only."""
    r = run(P.spawn(), P.mmap("A"), P.pin("A", 0, "H", longterm=True))
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")


def test_ro_pin_on_pmd_mapped_thp_tests_the_head_flag() -> None:
    """mm/internal.h: gup_must_unshare looks at the head page for a PMD-mapped THP: an
    exclusive read-only PMD is pinned as it is, no split."""
    r = run(*thp("1"), P.clear_softdirty(), P.pin("T", 2, "H"))
    assert r.words(P["T", 2]) == ("present", "pmd", "readonly", "exclusive", "pinned")
    h = r.world.handle("H")
    assert (h.folio, h.page) == r.state(P["T", 2]).page
    assert h.page == 2


def test_ro_pin_of_ksm_page_lands_on_a_private_copy() -> None:
    """mm/internal.h: KSM pages are never exclusive, so a R/O pin always unshares them."""
    r = run(*base("s", npages=2), ksm(P["A", 0], P["A", 1]), P.pin("A", 1, "H"))
    assert r.kind(P["A", 1]) is FolioKind.SMALL
    assert r.world.handle("H").folio == r.state(P["A", 1]).page[0]


def test_gup_write_in_read_only_mapping_is_efault() -> None:
    """mm/gup.c: check_vma_flags: FOLL_WRITE without VM_WRITE (and no FOLL_FORCE) is -EFAULT."""
    r = run(*base("1"), P.mprotect("A", False), P.pin("A", 0, "H", rw=True))
    assert r.last.word == "EFAULT"
    assert r.world.handle("H") is None


def test_gup_on_hwpoison_entry_fails() -> None:
    """mm/gup.c: a hwpoison entry gives -EHWPOISON (reported as EFAULT by the model)."""
    r = run(*base("1"), kernel("poison", A0), P.pin("A", 0, "H"))
    assert r.last.word == "EFAULT"
    assert r.world.handle("H") is None


def test_gup_on_swap_entry_swaps_in_and_keeps_exclusivity() -> None:
    """mm/gup.c: a swap PTE makes faultin_page run do_swap_page; the swap PTE's exclusive bit
    maps the page exclusive, so the R/O pin needs no unshare."""
    r = run(*base("1"), kernel("swapout", A0), P.pin("A", 0, "H"))
    assert r.words(A0)[2:] == ("exclusive", "pinned")
    assert r.world.copies == 0


def test_gup_on_migration_entry_waits_for_migration() -> None:
    """mm/gup.c: a migration entry makes the fault wait (migration_entry_wait); the pin then
    lands on the new folio, exclusive, as the writable entry said."""
    r = run(*base("1"), kernel("migrate-begin", A0))
    old = r.state(A0).page
    r.then(P.pin("A", 0, "H"))
    assert r.state(A0).page != old
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")


def test_gup_on_device_private_page_migrates_it_back_first() -> None:
    """mm/gup.c: device-private pages are never pinned: the fault (do_swap_page ->
    migrate_to_ram) brings the page back to system RAM first."""
    r = run(*base("1"), kernel("device-private", A0), P.pin("A", 0, "H", longterm=True))
    assert r.state(A0).kind == "present"
    assert r.kind(A0) is FolioKind.SMALL
    assert r.words(A0)[2:] == ("exclusive", "pinned")


def test_reusing_a_handle_name_is_refused() -> None:
    """Not a kernel rule: the model's handle names must be unique while held."""
    r = run(*base("1"), P.get("A", 0, "G"))
    assert isinstance(r.try_(P.pin("A", 0, "G")), ModelError)


# ------------------------------------------------------------------- GUP-fast
def test_gup_fast_takes_a_writable_exclusive_page_directly() -> None:
    """mm/gup.c: gup_fast_pte_range: present, writable, not special: grab and succeed."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True, fast=True))
    assert r.last.word == "ok" and r.last.detail == "GUP-fast"
    assert r.words(A0) == ("present", "writable", "exclusive", "pinned")


def test_gup_fast_ro_pin_of_read_only_exclusive_page_succeeds() -> None:
    """mm/gup.c: gup_fast_pte_range: read-only PTE, gup_must_unshare(NULL, ...) reads the
    flag (after smp_rmb): exclusive, so the pin is taken without the slow path (cow.c
    'R/O GUP-fast pin on R/O-mapped exclusive page')."""
    r = run(*base("1"), P.clear_softdirty(), P.pin("A", 0, "H", longterm=True, fast=True))
    assert r.last.detail == "GUP-fast"
    assert r.words(A0) == ("present", "readonly", "exclusive", "pinned")


def test_gup_fast_ro_get_of_shared_page_succeeds() -> None:
    """mm/gup.c: gup_fast_pte_range: gup_must_unshare is false for FOLL_GET, so a read-only
    shared PTE is fine for a R/O get."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G", fast=True))
    assert r.last.detail == "GUP-fast"
    assert r.words(QA0) == ("present", "readonly", "shared", "unpinned")


@pytest.mark.parametrize(("setup", "gup", "reason"), [
    pytest.param([P.spawn(), P.mmap("A")], P.get("A", 0, "H", fast=True),
                 "no present entry", id="none-entry"),
    pytest.param([*base("1"), kernel("swapout", A0)], P.get("A", 0, "H", fast=True),
                 "no present entry", id="swap-entry"),
    pytest.param([P.spawn(), P.mmap("A"), P.read("A", 0)], P.get("A", 0, "H", fast=True),
                 "zero page", id="special-zero-page"),
    pytest.param([*base("1"), P.fork(Q)], P.get("A", 0, "H", rw=True, fast=True),
                 "read-only", id="write-to-read-only"),
    pytest.param([*base("1"), P.fork(Q)], P.pin("A", 0, "H", fast=True),
                 "gup_must_unshare", id="ro-pin-not-exclusive"),
])
def test_gup_fast_falls_back_to_the_slow_path(setup: list, gup: object, reason: str) -> None:
    """mm/gup.c: gup_fast_pte_range bails out (and lockless_pages_from_mm's caller falls back
    to __get_user_pages) for a non-present or special PTE, a read-only PTE with FOLL_WRITE,
    and a R/O pin of a page that gup_must_unshare flags. The slow path then succeeds."""
    r = run(*setup, gup)
    assert r.last.word == "ok"
    assert "backed off" in r.last.detail and reason in r.last.detail
    assert r.world.handle("H") is not None


# ---------------------------------------------------------------- unpin / put
def test_unpin_does_not_change_the_flag() -> None:
    """mm/gup.c: unpin_user_page drops the pin; PG_anon_exclusive stays set and the PTE is
    untouched: the page is simply an exclusive page again."""
    r = run(*base("1"), P.pin("A", 0, "H", rw=True))
    r.then(unpin("H"))
    assert r.words(A0) == ("present", "writable", "exclusive", "unpinned")
    assert r.page(A0).anon_exclusive


def test_put_of_last_other_reference_does_not_make_a_page_exclusive() -> None:
    """include/linux/mm.h: put_page never sets the flag: after Q's reference and mapping
    are gone P's page stays shared until a fault proves exclusivity (INV-9)."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G"), Q.exit())
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")
    r = run(*base("1"), P.fork(Q), P.get("A", 0, "G"), Q.exit(), put("G"))
    assert r.words(A0) == ("present", "readonly", "shared", "unpinned")


def test_release_with_the_wrong_verb_is_refused() -> None:
    """mm/gup.c: a FOLL_PIN reference must be released with unpin_user_page, a FOLL_GET one
    with put_page (mixing them corrupts the refcount); the model refuses the statement."""
    r = run(*base("1"), P.pin("A", 0, "H"), P.get("A", 0, "G"))
    for op in (put("H"), unpin("G")):
        res = r.try_(op)
        assert isinstance(res, ModelError) and res.kind is ErrorKind.INVALID


def test_handle_write_through_ro_reference_is_refused() -> None:
    """A R/O reference (no FOLL_WRITE) cannot be written through."""
    r = run(*base("1"), P.pin("A", 0, "H"))
    res = r.try_(hwrite("H", "x"))
    assert isinstance(res, ModelError) and res.kind is ErrorKind.INVALID


# ------------------------------------------------- references and isolation
def test_rw_get_before_fork_lets_device_writes_reach_the_child() -> None:
    """mm/memory.c: fork only copies early for *pinned* folios (folio_try_dup_anon_rmap_ptes
    asks folio_maybe_dma_pinned); a R/W FOLL_GET (old O_DIRECT) is not a pin, so the page is
    shared and a later device write through the reference is visible to the child. This is
    the kernel's behaviour (the reason FOLL_PIN exists); INV-12 reports it, which is a
    question about the invariant, not about the transition (see the stateful test)."""
    r = run(*base("1"), P.get("A", 0, "G", rw=True), P.fork(Q), hwrite("G", "x"),
            Q.read("A", 0), check=False)
    assert r.last.word == "x"
    r = run(*base("1"), P.pin("A", 0, "H", rw=True), P.fork(Q), hwrite("H", "x"),
            Q.read("A", 0))
    assert r.last.word == "1"


def test_a_process_references_to_one_page_see_each_other() -> None:
    """Both references are the same physical page of the same process: after P unmaps the
    address, a device write through the pin is what the other reference reads. Nothing
    crosses a process boundary, so INV-12 must not fire."""
    r = run(*base("1"), P.get("A", 0, "G"), P.pin("A", 0, "H", rw=True), P.munmap("A"),
            hwrite("H", "x"), hread("G"), check=False)
    assert r.last.word == "x"
    assert r.violations == []


def test_gup_fast_pin_of_a_thp_subpage_satisfies_sanity_check_pinned_pages() -> None:
    """mm/gup.c: gup_fast runs sanity_check_pinned_pages right after pinning (6.12, with
    CONFIG_DEBUG_VM), and for a THP it accepts the head page's flag or the pinned subpage's:
    a PMD-mapped THP carries the flag on the head only, and after a PMD split each subpage
    carries its own. Both states pass INV-2 in the model, which asks for the flag the
    current mapping uses."""
    r = run(*thp("1"), P.pin("T", 2, "H", fast=True))
    assert r.last.detail == "GUP-fast"
    f = r.folio(P["T", 2])
    assert f.pages[0].anon_exclusive and not f.pages[2].anon_exclusive
    assert r.words(P["T", 2]) == ("present", "pmd", "writable", "exclusive", "pinned")
    r.then(kernel("split-pmd", P["T", 0]))
    assert r.folio(P["T", 2]).pages[2].anon_exclusive
    assert r.words(P["T", 2]) == ("present", "writable", "exclusive", "pinned")
    assert not r.violations
