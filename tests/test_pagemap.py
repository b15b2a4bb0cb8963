"""pagemap bit 56 comes from the map count, not PG_anon_exclusive (fs/proc/task_mmu.c, 6.12)."""

from __future__ import annotations

from anonlib import run_scenario
from anonlib.model import page_state
from anonlib.ops import PageRef
from anonlib.pagemap import PM_MMAP_EXCLUSIVE, PM_PRESENT, PM_SWAP, pagemap_entry
from anonlib.schemes import MAINLINE

A0 = PageRef("P", "A", 0)


def _world(text: str):
    r = run_scenario(text)
    assert r.ok, str(r)
    return r.world


def test_a_fresh_page_is_present_exclusive_and_soft_dirty():
    e = pagemap_entry(_world("spawn P\nP mmap A 1\nP write A[0] x\n"), MAINLINE, A0)
    assert (e.present, e.swap, e.exclusive, e.soft_dirty) == (True, False, True, True)
    assert e.value == (1 << PM_PRESENT) | (1 << PM_MMAP_EXCLUSIVE) | (1 << 55)


def test_bit_56_set_while_the_flag_is_clear():
    w = _world("spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\nQ exit\n")
    assert pagemap_entry(w, MAINLINE, A0).exclusive
    st = page_state(w, MAINLINE, A0)
    assert st.exclusive is False


def test_bit_56_clear_while_the_swap_entry_is_exclusive():
    w = _world("spawn P\nP mmap A 1\nP write A[0] x\nkernel swapout P A[0]\n")
    e = pagemap_entry(w, MAINLINE, A0)
    assert (e.present, e.swap, e.exclusive) == (False, True, False)
    assert e.value & (1 << PM_SWAP)
    assert page_state(w, MAINLINE, A0).exclusive is True


def test_shared_after_fork_is_not_exclusively_mapped():
    w = _world("spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\n")
    assert not pagemap_entry(w, MAINLINE, A0).exclusive
    assert not pagemap_entry(w, MAINLINE, PageRef("Q", "A", 0)).exclusive


def test_zero_page_none_holes_and_soft_dirty_tracking():
    w = _world("spawn P\nP mmap A 3\nP read A[0]\nP write A[2] y\nP madvise A[2] dontfork\n"
               "P fork Q\nP clear-softdirty\n")
    zero = pagemap_entry(w, MAINLINE, A0)
    assert zero.present and not zero.exclusive
    none = pagemap_entry(w, MAINLINE, PageRef("P", "A", 1))
    assert not none.present and not none.soft_dirty  # VM_SOFTDIRTY cleared by clear_refs
    child_none = pagemap_entry(w, MAINLINE, PageRef("Q", "A", 1))
    assert child_none.soft_dirty  # the child's VMA still has VM_SOFTDIRTY
    assert pagemap_entry(w, MAINLINE, PageRef("Q", "A", 2)).value == 0  # the hole


def test_thp_and_hugetlb():
    w = _world("spawn P\nP mmap T thp\nP write T[0] t\nP mmap U hugetlb\nP write U[1] u\n")
    assert pagemap_entry(w, MAINLINE, PageRef("P", "T", 3)).exclusive
    assert pagemap_entry(w, MAINLINE, PageRef("P", "U", 0)).exclusive
    w2 = _world("spawn P\nP mmap U hugetlb\nP write U[1] u\nP fork Q\n")
    assert not pagemap_entry(w2, MAINLINE, PageRef("P", "U", 0)).exclusive


def test_text():
    e = pagemap_entry(_world("spawn P\nP mmap A 1\n"), MAINLINE, A0)
    assert e.text() == "present=0 swap=0 exclusively-mapped(56)=0 soft-dirty(55)=1"


def test_flag_and_pagemap_side_by_side():
    w = _world("spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\nQ exit\n")
    from anonlib.pagemap import flag_and_pagemap

    assert flag_and_pagemap(w, MAINLINE, [A0]) == (
        "P A[0]: present readonly shared unpinned\n"
        "    pagemap: present=1 swap=0 exclusively-mapped(56)=1 soft-dirty(55)=1")
