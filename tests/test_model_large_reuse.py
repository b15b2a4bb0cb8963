"""COW reuse of PTE-mapped large folios (6.15): the scheme point ``large_reuse``.

docs/after-6.12.md, section 1: 6af8cb80d3a9 keeps, per large non-hugetlb folio,
two (mm, count) slots and a "maybe mapped shared" bit; 1da190f4d0a6 reuses a
page of such a folio when it is mapped more than once, the bit is clear, no swap
cache copy is in the way and every reference is a mapping. Each row of the
table of section 1.4 is a test here, under a scheme that is mainline with 6.15's
rule (the ``lts-6.18`` scheme sets more fields).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from anonlib.explorer.canon import canonical_key, canonical_mm_key, key_for, names_mm_key
from anonlib.explorer.copies import WORKLOADS, copy_counts
from anonlib.explorer.engine import reachable
from anonlib.mem import LARGE_ANON, MAPPING_KINDS, Loc, Mem
from anonlib.mm.internal import wp_can_reuse_anon_folio
from anonlib.scenario.runner import OK, run_scenario
from anonlib.schemes import MAINLINE, LargeReuse, Scheme
from anonlib.state import Entry, EntryKind, Folio, FolioKind, World

MM_SLOTS = replace(MAINLINE, name="mm-slots", large_reuse=LargeReuse.MM_SLOTS)

#: P writes page 0 of a 4-page mTHP (the first fault maps the whole folio exclusive),
#: forks C (every flag cleared, every PTE read-only), and C exits: P alone maps it.
ALONE = "P write A[0] x\nP fork C\nC exit\n"


def world_after(body: str, scheme: Scheme = MM_SLOTS) -> World:
    r = run_scenario(f"spawn P\nP mmap A mthp\n{body}", scheme, name="t")
    assert r.status == OK and r.world is not None, r
    return r.world


def _run(text: str, scheme: Scheme) -> World:
    r = run_scenario(text, scheme, name="t")
    assert r.status == OK and r.world is not None, r
    return r.world


def large(world: World) -> Folio:
    (f,) = [f for f in world.folios if f.kind is FolioKind.MTHP]
    return f


def copies(body: str) -> tuple[int, int]:
    """Page copies under 6.12 (mainline) and under 6.15's rule."""
    return world_after(body, MAINLINE).copies, world_after(body, MM_SLOTS).copies


def test_the_field_is_6_12s_in_every_scheme_of_a_kernel_from_6_9_to_6_14() -> None:
    from anonlib.schemes import SCHEMES
    after = {"lts-6.18", "mprotect-batch-head"}  # the schemes of 6.15 and later kernels
    before = {"lts-6.1"}  # the schemes of kernels before 6.9 that name one
    assert all(s.large_reuse is LargeReuse.NEVER for n, s in SCHEMES.items()
               if n not in after | before)
    assert all(SCHEMES[n].large_reuse is LargeReuse.MM_SLOTS for n in after)
    assert all(SCHEMES[n].large_reuse is LargeReuse.REFCOUNT for n in before)


# ------------------------------------------------------------------ table 1.4
def test_mapped_alone_after_the_child_exits_reuse() -> None:
    assert copies(ALONE + "P write A[1] y\n") == (1, 0)
    w = world_after(ALONE + "P write A[1] y\n")
    f = large(w)
    # the flag on the faulting page only; its PTE alone made writable
    assert [p.anon_exclusive for p in f.pages] == [False, True, False, False]
    ptes = w.procs[0].vmas[0].ptes
    assert [e is not None and e.writable for e in ptes] == [False, True, False, False]
    assert f.mm_slots == (("P", 4),) and not f.maybe_mapped_shared


def test_every_page_written_after_the_child_exits_no_copy() -> None:
    body = ALONE + "".join(f"P write A[{i}] y\n" for i in (1, 2, 3, 0))
    assert copies(body) == (4, 0)
    f = large(world_after(body))
    assert all(p.anon_exclusive and p.data == "y" for p in f.pages)


def test_child_still_maps_it_copy() -> None:
    body = "P write A[0] x\nP fork C\nP write A[1] y\n"
    assert copies(body) == (1, 1)
    f = large(world_after(body))
    assert f.mm_slots == (("C", 4), ("P", 3)) and f.maybe_mapped_shared


def test_mapped_once_copy_so_that_the_folio_can_go() -> None:
    body = ALONE + "".join(f"P madvise A[{i}] dontneed\n" for i in (1, 2, 3)) + "P write A[0] y\n"
    assert copies(body) == (1, 1)
    assert not [f for f in world_after(body).folios if f.large]  # freed


def test_a_get_reference_on_another_page_copy() -> None:
    body = ALONE + "P get A[2] ro as H\nP write A[1] y\n"
    assert copies(body) == (1, 1)


def test_two_children_gone_slot_owner_alone_reuse() -> None:
    body = "P write A[0] x\nP fork C\nP fork D\n"
    f = large(world_after(body))
    assert f.mm_slots == (("C", 4), ("P", 4)) and f.maybe_mapped_shared  # D got no slot
    body += "C exit\nD exit\n"
    f = large(world_after(body))
    assert f.mm_slots == (("P", 4),) and not f.maybe_mapped_shared
    assert copies(body + "P write A[1] y\n") == (1, 0)


def test_three_processes_the_bit_stays_set_for_the_one_without_a_slot() -> None:
    """The kernel's imprecision: D never had a slot, so when the two slot owners
    unmap, no slot holds all of the mappings and the bit stays set."""
    body = "P write A[0] x\nP fork C\nC fork D\nP exit\nC exit\n"
    f = large(world_after(body))
    assert f.mm_slots == () and f.maybe_mapped_shared
    assert copies(body + "D write A[1] y\n") == (1, 1)


# ------------------------------------------------------------------ other paths
def test_unshare_for_a_ro_pin_takes_the_page_in_place() -> None:
    body = ALONE + "P pin A[1] ro as H\n"
    assert copies(body) == (1, 0)
    w = world_after(body)
    f = large(w)
    assert [p.anon_exclusive for p in f.pages] == [False, True, False, False]
    assert not w.procs[0].vmas[0].ptes[1].writable  # unshare: still read-only
    assert w.handles[0].folio == f.id


def test_a_split_pmd_thp_is_reused_too() -> None:
    body = ("spawn P\nP mmap T thp\nP write T[0] x\nP fork C\nC exit\nkernel split-pmd P T\n"
            "P write T[1] y\n")
    ws = [_run(body, s) for s in (MAINLINE, MM_SLOTS)]
    assert [w.copies for w in ws] == [1, 0]
    (thp,) = [f for f in ws[1].folios if f.kind is FolioKind.THP]
    assert thp.mm_slots == (("P", thp_pages := len(thp.pages)),) and thp_pages > 1
    assert not thp.maybe_mapped_shared


def test_the_pmd_counts_one_mapping() -> None:
    w = _run("spawn P\nP mmap T thp\nP write T[0] x\nP fork C\n", MM_SLOTS)
    (thp,) = [f for f in w.folios if f.kind is FolioKind.THP]
    assert thp.mm_slots == (("C", 1), ("P", 1)) and thp.maybe_mapped_shared


def _alone_mem() -> tuple[Mem, int]:
    w = _run(f"spawn P\nP mmap A mthp\nP mmap B 1\n{ALONE}", MM_SLOTS)
    m = Mem(w, MM_SLOTS)
    f = large(w)
    slots = tuple(m.new_slot(p.data) for p in f.pages)
    m.set_folio(replace(f, swapcache=slots))
    return m, f.id


def test_a_swap_cache_copy_nothing_refers_to_is_dropped_then_reused() -> None:
    m, fid = _alone_mem()
    assert wp_can_reuse_anon_folio(m, fid)
    assert m.folio(fid).swapcache is None


def test_a_swap_cache_copy_a_swap_pte_still_refers_to_stops_reuse() -> None:
    m, fid = _alone_mem()
    cache = m.folio(fid).swapcache
    assert cache is not None
    m.set(Loc("P", "B", False, 0), Entry(EntryKind.SWAP, slot=cache[3]))
    assert not wp_can_reuse_anon_folio(m, fid)
    assert m.folio(fid).swapcache == cache


def test_under_never_the_tracking_is_kept_but_not_read() -> None:
    f = large(world_after(ALONE, MAINLINE))
    assert f.mm_slots == (("P", 4),)
    m = Mem(world_after(ALONE, MAINLINE), MAINLINE)
    assert not wp_can_reuse_anon_folio(m, f.id)


def test_the_slots_show_only_where_the_scheme_reads_them() -> None:
    text = "spawn P\nP mmap A mthp\nP write A[0] x\nP fork C\nshow\n"
    assert "mm=[C:4 P:4] maybe-mapped-shared" in str(run_scenario(text, MM_SLOTS, name="t"))
    assert "mm=" not in str(run_scenario(text, MAINLINE, name="t"))


# ------------------------------------------------------------------ bookkeeping
def _check_tracking(w: World) -> None:
    """What the slots must say about the page tables. A slot never counts more than
    its process maps. A clear bit means at most one process maps the folio, counted
    exactly in its slot (what reuse relies on). Where every mapping is counted in a
    slot (no process mapped it without one), the bit says exactly whether two do."""
    for f in w.folios:
        if f.kind not in LARGE_ANON:
            assert f.mm_slots == () and not f.maybe_mapped_shared
            continue
        per: dict[str, int] = {}
        for p in w.procs:
            for v in p.vmas:
                for e in (v.huge, *v.ptes):
                    if e is not None and e.folio == f.id and e.kind in MAPPING_KINDS:
                        per[p.name] = per.get(p.name, 0) + 1
        assert len(f.mm_slots) <= 2
        for name, n in f.mm_slots:
            assert 0 < n <= per.get(name, 0), (f, per)
        if not f.maybe_mapped_shared:
            assert len(per) <= 1 and dict(f.mm_slots) == per, (f, per)
        if sum(n for _p, n in f.mm_slots) == sum(per.values()):
            assert f.maybe_mapped_shared == (len(per) == 2), (f, per)


@pytest.mark.parametrize(("world", "depth"), [("mthp:4", 3), ("thp:4", 2)])
def test_the_tracking_follows_the_page_tables_everywhere(world: str, depth: int) -> None:
    """Every state of a small search (a 3-process search of mthp:4 to depth 4, 109,528
    states, was run by hand once)."""
    for w in reachable(MM_SLOTS, world, depth).values():
        _check_tracking(w)


def test_copy_counts_of_the_fork_exit_workload() -> None:
    (w,) = [w for w in WORKLOADS if w.name == "mthp-fork-exit"]
    table = copy_counts([w], schemes=["mainline", MM_SLOTS])
    assert (table.copies(w.name, "mainline"), table.copies(w.name, "mm-slots")) == (4, 0)


def test_tail_symmetry_is_sound_under_mm_slots() -> None:
    """As tests/test_explore.py checks for every scheme of SCHEMES: searching one state
    per class of tail orders reaches every class the names-only search reaches, with the
    slots in the key (mthp:4, depth 2)."""
    assert key_for("canonical", MM_SLOTS) is canonical_mm_key
    assert key_for("names", MM_SLOTS) is names_mm_key
    full = reachable(MM_SLOTS, "mthp:4", 2, key="names")
    reduced = reachable(MM_SLOTS, "mthp:4", 2, key="canonical")
    assert {canonical_mm_key(w) for w in full.values()} == set(reduced)
    assert len(reduced) < len(full) / 2


def test_the_key_keeps_the_slots_only_where_they_are_read() -> None:
    """Two worlds with the same page tables, one process mapping the folio alone: in
    one the bit is clear (it always had a slot), in the other set (it never had one).
    The key tells them apart under mm-slots, not where nothing reads the bit."""
    clear = world_after(ALONE)
    stuck = world_after("P write A[0] x\nP fork C\nC fork D\nP exit\nC exit\n")
    assert not large(clear).maybe_mapped_shared and large(stuck).maybe_mapped_shared
    assert canonical_key(clear) == canonical_key(stuck)
    assert key_for("canonical", MAINLINE)(clear) == key_for("canonical", MAINLINE)(stuck)
    assert canonical_mm_key(clear) != canonical_mm_key(stuck)


def test_which_processes_hold_the_slots_is_renamed_like_the_processes() -> None:
    a = world_after("P write A[0] x\nP fork C\nP fork D\n")  # slots: P, C
    b = world_after("P write A[0] x\nP fork D\nP fork C\n")  # slots: P, D
    assert large(a).mm_slots != large(b).mm_slots
    assert canonical_mm_key(a) == canonical_mm_key(b)  # C and D swap roles: a renaming
