"""``P mremap A[i] B`` (mm/mremap.c: move_vma, 6.12): the tail of a mapping moves, with its
pages and every bit of their entries; a THP's PMD is split first."""

from __future__ import annotations

import pytest

from anonlib import run_scenario
from anonlib.kernelcheck.plan import _Compiler
from anonlib.ops import Mremap
from anonlib.scenario import Scenario, ScenarioError, parse


def _ok(text: str) -> str:
    r = run_scenario(text)
    assert r.exit_code == 0, r.transcript
    return r.transcript


def test_a_partial_mremap_splits_the_pmd_and_moves_flags_and_pins() -> None:
    t = _ok("""spawn P
P mmap A thp
P write A[0] 1
P write A[3] 3
P pin A[3] rw longterm as H
P mremap A[2] B
expect P A[0] present writable exclusive
expect P A[1] present writable exclusive
expect P B[0] present writable exclusive
expect P B[1] present writable exclusive pinned
H write d
P read B[1] expect d
expect invariants
""")
    assert "B: base 2 pages" not in t  # no show: the transcript only


def test_moved_entries_keep_their_bits_and_become_soft_dirty() -> None:
    r = run_scenario("""spawn P
P mmap A 3
P write A[2] x
kernel swapout P A[2]
P clear-softdirty
P mremap A[1] B
expect P B[1] swap exclusive
""")
    assert r.exit_code == 0, r.transcript
    b = r.world.procs[0].vma("B")
    assert b is not None and b.ptes[1] is not None and b.ptes[1].soft_dirty
    assert r.world.procs[0].vma("A").npages == 1


def test_a_shared_page_stays_shared_and_the_child_keeps_its_own_layout() -> None:
    _ok("""spawn P
P mmap A 4
P write A[3] x
P fork C
P mremap A[2] B
expect P B[1] present readonly shared
expect C A[3] present readonly shared same-page P B[1]
P write B[1] y
C read A[3] expect x
expect invariants
""")


@pytest.mark.parametrize(("setup", "outcome"), [
    ("P mmap A 4\nP madvise A[3] dontfork\n", "EFAULT"),
    ("P mmap A hugetlb\n", "EINVAL"),
])
def test_a_range_that_is_not_one_vma_or_not_whole_huge_pages_is_refused(setup: str,
                                                                         outcome: str) -> None:
    r = run_scenario("spawn P\n" + setup + "P mremap A[2] B expect " + outcome + "\n")
    assert r.exit_code == 0, r.transcript


@pytest.mark.parametrize(("text", "column", "message"), [
    ("P mremap A[0] B", 10, "mremap moves the tail of a mapping"),
    ("P mremap A[4] B", 12, "page 4 is out of range"),
    ("P mremap A[1] A", 15, "mapping 'A' already exists"),
    ("P mremap A[1]", 15, "missing the first page to move and the new mapping's name"),
    ("P mremap A B", 10, "expected a page such as A[0]"),
])
def test_bad_mremaps_are_refused_where_they_are(text: str, column: int, message: str) -> None:
    e = parse("spawn P\nP mmap A 4\n" + text + "\n")
    assert isinstance(e, ScenarioError)
    assert e.line == 3 and e.column == column and message in e.message, e


def test_the_statement_prints_back_and_the_real_kernel_check_moves_the_real_pages() -> None:
    sc = parse("spawn P\nP mmap A thp\nP mremap A[2] B\nP read B[1]\n")
    assert isinstance(sc, Scenario)
    op = sc.statements[2].action
    assert isinstance(op, Mremap) and op.text() == "P mremap A[2] B"
    comp = _Compiler(sc)
    for st in sc.statements[:2]:
        assert st.op is not None
        comp.compile(st.op)
    a = comp.layout[("P", "A")]
    command, why = comp.compile(op)
    assert why is None and command is not None
    # the second half of the 2 MiB THP (the model's pages 2-3, 128 real pages each) moves
    # to a fresh slot; P's A keeps the first half, P's B is the moved half
    half = 2 * a.block * 4096
    b = comp.layout[("P", "B")]
    assert command == f"mremap P {a.page_addr(2):x} {half:x} {b.addr:x}"
    assert comp.layout[("P", "A")].length == half and b.length == half
