"""One kernel rule, one function: expected references, a counted COW copy, MMF_HAS_PINNED (6.12).

Kernel: include/linux/mm.h (folio_expected_ref_count, 6.12 stable series),
mm/memory.c (wp_page_copy, copy_present_page), mm/hugetlb.c (hugetlb_wp,
copy_hugetlb_page_range), mm/gup.c (mm_set_has_pinned_flag).

Each rule is checked twice: by what the model does, and by the source, so
that a second copy of the rule written later (a copy that forgets to count
itself, a refcount compared with a hand-made sum) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from modelkit import Advice, P, Q, Run, base, hugetlb, kernel, ksm, put, run, thp

import anonlib
from anonlib.mem import Mem
from anonlib.mm.internal import folio_expected_ref_count
from anonlib.ops import PageRef

A0, QA0 = P["A", 0], Q["A", 0]
MM = Path(anonlib.__file__).resolve().parent / "mm"


def _expected_and_refcount(r: Run, ref: PageRef) -> tuple[int, int]:
    m = Mem(r.world, r.scheme)
    fid = r.folio(ref).id
    return folio_expected_ref_count(m, fid), m.refcount(fid)


# ------------------------------------------------------------------ folio_expected_ref_count
def test_expected_refs_are_the_mappings():
    r = run(*base("1"), P.fork(Q))
    assert _expected_and_refcount(r, A0) == (2, 2)


def test_a_gup_reference_is_beyond_the_expected_ones():
    r = run(*base("1"), P.get("A", 0, "H"))
    assert _expected_and_refcount(r, A0) == (1, 2)
    r.then(put("H"))
    assert _expected_and_refcount(r, A0) == (1, 1)


def test_the_swap_cache_holds_one_expected_reference_per_page():
    """After swap-out with a FOLL_GET reference the folio stays in the swap cache, unmapped."""
    r = run(*base("1"), P.get("A", 0, "H"), kernel("swapout", A0))
    m = Mem(r.world, r.scheme)
    (fid,) = [h.folio for h in r.world.handles]
    assert m.folio(fid).swapcache is not None
    assert (folio_expected_ref_count(m, fid), m.refcount(fid)) == (1, 2)


T0 = P["T", 0]


@pytest.mark.parametrize(("ops", "why"), [
    pytest.param([*base("1", npages=2), P.get("A", 0, "H"), ksm(A0, P["A", 1])],
                 "write_protect_page refuses", id="ksm"),
    pytest.param([*thp("1"), kernel("split-pmd", T0), P.get("T", 0, "H"),
                  P.madvise("T", None, Advice.COLLAPSE)], "SCAN_PAGE_COUNT", id="madvise"),
    pytest.param([*base("1"), P.get("A", 0, "H"), kernel("device-private", A0)],
                 "migrate_vma_check_page", id="migrate_device"),
    pytest.param([*base("1"), P.get("A", 0, "H"), kernel("swapout", A0),
                  kernel("swapcache-drop", A0)], "__remove_mapping refuses", id="vmscan"),
    pytest.param([*thp("1"), P.get("T", 0, "H"), kernel("split-folio", T0)],
                 "can_split_folio", id="huge_memory"),
    pytest.param([*base("1"), P.get("A", 0, "H"), kernel("migrate", A0)],
                 "unexpected references", id="migrate"),
])
def test_each_caller_refuses_a_reference_beyond_the_expected_ones(ops: list, why: str):
    """The six callers of folio_expected_ref_count back off for a FOLL_GET reference, and
    for that reason only: without the reference they do not."""
    assert why in run(*ops).last.detail
    without = run(*[op for op in ops if getattr(op, "handle", None) != "H"])
    assert why not in without.last.detail


# ------------------------------------------------------------------ a copy is counted
@pytest.mark.parametrize(("ops", "copies", "ref", "original"), [
    pytest.param([*base("1"), P.fork(Q), P.write("A", 0, "2")], 1, A0, QA0,
                 id="wp_page_copy"),
    pytest.param([*base("1"), P.pin("A", 0, "H"), P.fork(Q)], 1, QA0, A0,
                 id="copy_present_page"),
    pytest.param([*hugetlb("1"), P.fork(Q), Q.write("H", 0, "2")], 4, Q["H", 0], P["H", 0],
                 id="hugetlb_wp"),
    pytest.param([*hugetlb("1"), P.pin("H", 0, "X"), P.fork(Q)], 4, Q["H", 0], P["H", 0],
                 id="copy_hugetlb_page_range"),
])
def test_every_copying_path_counts_its_pages(ops: list, copies: int, ref: PageRef,
                                             original: PageRef):
    """mm/memory.c: wp_page_copy, copy_present_page; mm/hugetlb.c: hugetlb_wp,
    copy_hugetlb_page_range (6.12): the copy is a new exclusive folio, and
    World.copies grows by its number of pages."""
    r = run(*ops)
    assert r.world.copies == copies
    assert r.state(ref).exclusive is True
    assert r.folio(ref).id != r.folio(original).id


def _functions(path: Path) -> list[tuple[str, ast.AST]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            out += [(node.name, n) for n in ast.walk(node)]
    return out


def test_only_copy_anon_folio_counts_copies():
    """World.copies is written in one place in anonlib/mm, so a copy cannot go uncounted."""
    writers = set()
    for path in sorted(MM.glob("*.py")):
        for fn, node in _functions(path):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AugAssign) else [])
            if any(isinstance(t, ast.Attribute) and t.attr == "copies" for t in targets):
                writers.add(f"{path.stem}.{fn}")
    assert writers == {"internal.copy_anon_folio"}


def test_the_six_callers_compare_the_refcount_with_folio_expected_ref_count():
    """ksm, madvise, migrate_device, vmscan, huge_memory and migrate: every comparison of
    folio_ref_count is against folio_expected_ref_count, except the reuse test of a PMD
    write fault (refcount == 1: ours is the only reference, mm/huge_memory.c:
    do_huge_pmd_wp_page), which is another rule."""
    found: dict[str, int] = {}
    for stem in ("ksm", "madvise", "migrate_device", "vmscan", "huge_memory", "migrate"):
        for fn, node in _functions(MM / f"{stem}.py"):
            if not isinstance(node, ast.Compare):
                continue
            calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
                     for n in ast.walk(node) if isinstance(n, ast.Call)}
            if "refcount" not in calls or fn == "do_huge_pmd_wp_page":
                continue
            assert "folio_expected_ref_count" in calls, f"{stem}.{fn}: {ast.unparse(node)}"
            found[stem] = found.get(stem, 0) + 1
        source = (MM / f"{stem}.py").read_text(encoding="utf-8")
        assert "for h in m.handles" not in source, f"{stem} scans GUP handles by hand"
    assert set(found) == {"ksm", "madvise", "migrate_device", "vmscan", "huge_memory", "migrate"}


# ------------------------------------------------------------------ MMF_HAS_PINNED
def test_a_pin_sets_mmf_has_pinned_even_when_it_fails():
    """mm/gup.c: mm_set_has_pinned_flag runs before the lookup (6.12)."""
    r = run(*base("1"), P.munmap("A"), P.pin("A", 0, "H"))
    assert r.last.word == "EFAULT"
    assert r.world.proc("P").has_pinned
    assert not run(*base("1"), P.get("A", 0, "H")).world.proc("P").has_pinned


def test_only_mm_set_has_pinned_flag_sets_the_flag():
    setters = set()
    for path in sorted(Path(anonlib.__file__).resolve().parent.rglob("*.py")):
        for fn, node in _functions(path):
            if isinstance(node, ast.Call) and any(k.arg == "has_pinned" for k in node.keywords):
                setters.add(f"{path.stem}.{fn}")
    assert setters == {"gup.mm_set_has_pinned_flag"}
