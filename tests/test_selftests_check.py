"""The kernel's own cow.c against the model: TAP parsing, the mapping of cases to
scenarios, and the committed record and appendix page (no VM needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anonlib.kernelcheck import selftests
from anonlib.kernelcheck.selftests import classify, compare, mirrors, parse_results

REPO = Path(__file__).resolve().parents[1]

SAMPLE = """\
@hello selftests
@kernel 6.12.118+deb12-amd64
@swap 0
@hugetlb 2048kB 4
@gup_test yes
@begin cow
TAP version 13
1..9
# [RUN] Basic COW after fork() ... with base page
ok 1 No leak from parent into child
# [RUN] Basic COW after fork() ... with PTE-mapped THP (16 kB)
ok 2 No leak from parent into child
# [RUN] Basic COW after fork() ... with PTE-mapped THP (32 kB)
ok 3 No leak from parent into child
# [RUN] Basic COW after fork() ... with THP (2048 kB)
ok 4 No leak from parent into child
# [RUN] vmsplice() + unmap in child ... with hugetlb (2048 kB)
ok 5 # XFAIL Leak from child into parent
# [RUN] Basic COW after fork() when collapsing after fork() (fully shared)
ok 6 # SKIP MADV_COLLAPSE failed: Invalid argument
# [RUN] Basic COW ... with shared zeropage
ok 7 Other mapping not modified
# [RUN] Basic COW ... with memfd
ok 8 Other mapping not modified
# [RUN] Basic COW after fork() ... with partially mremap()'ed THP (2048 kB)
not ok 9 Leak from parent into child
@end cow 1
@done
"""


def test_parse_results() -> None:
    results, facts = parse_results(SAMPLE)
    assert facts["kernel"] == "6.12.118+deb12-amd64" and facts["exit cow"] == "1"
    assert facts["hugetlb 2048kB"] == "4"
    assert [r.verdict for r in results] == ["ok", "ok", "ok", "ok", "xfail", "skip", "ok",
                                           "ok", "not ok"]
    assert results[4].run == "vmsplice() + unmap in child ... with hugetlb (2048 kB)"
    assert results[5].message == "MADV_COLLAPSE failed: Invalid argument"


def test_classify() -> None:
    t = "Basic COW after fork()"
    assert classify("cow", f"{t} ... with THP (2048 kB)") == ((t, "with THP"), "anonymous")
    assert classify("cow", f"{t} ... with PTE-mapped THP (16 kB)") == (
        (t, "with PTE-mapped THP (16 kB)"), "anonymous")
    for kb in (32, 64, 128, 256, 512, 1024):
        v = f"with PTE-mapped THP ({kb} kB)"
        assert classify("cow", f"{t} ... {v}") == ((t, v), "anonymous")
    assert classify("cow", f"{t} ... with PTE-mapped THP (8 kB)") == (None, "mTHP 8 kB")
    for kb in (2048, 1048576):  # the 2 MiB files mirror the 1 GiB runs too
        assert classify("cow", f"{t} ... with hugetlb ({kb} kB)") == ((t, "with hugetlb"),
                                                                      "anonymous")
    assert classify("cow", f"{t} ... with hugetlb (16384 kB)") == (None, "hugetlb 16384 kB")
    x = "R/O GUP reference (vmsplice) on an exclusive page swapped out, then written"
    assert classify("swap_exclusive", f"{x} ... with base page") == (
        (x, "with base page"), "swap PTE exclusive bit")
    assert classify("cow", "Basic COW ... with memfd hugetlb (2048 kB)") == (None,
                                                                         "not anonymous")
    assert classify("gup_longterm", "R/O longterm GUP pin ... with memfd")[0] is None


def test_every_generated_scenario_is_a_mirror() -> None:
    """Each file of scenarios/cow/ names its cow.c case in its first line, and the
    names are unique: the comparison can find every mirror."""
    index = mirrors()
    assert len(index) == len(list(selftests.COW_DIR.glob("*.scn")))


def test_compare_sample() -> None:
    results, _ = parse_results(SAMPLE)
    rows = compare(results)
    outcome = {r.number: r.outcome for r in rows}
    assert outcome == {1: "agree", 2: "agree", 3: "agree", 4: "agree", 5: "agree",
                       6: "skipped", 7: "agree", 8: "not modelled", 9: "disagree"}
    assert rows[4].model.startswith("fail")  # 6.12's hugetlb vmsplice leak (XFAIL)
    assert "disagree" in selftests.text_table(rows)


def test_the_swap_bit_selftest_tells_6_12_from_no_swp_exclusive() -> None:
    """swap_exclusive.c is the case cow.c lacks: on the recorded run both of its cases
    pass on 6.12 and agree with their mirrors, and no-swp-exclusive disagrees with both."""
    if not selftests.LAST_RUN.exists():
        pytest.skip("no recorded selftests run")
    rec = json.loads(selftests.LAST_RUN.read_text())
    rows = [r for r in selftests.rows_of(rec) if r.test == "swap_exclusive"]
    assert [(r.real, r.outcome) for r in rows] == [("ok", "agree")] * 2
    swap_cases = [f"swap_exclusive {r.number}" for r in rows]
    eras = rec["eras"]
    assert "mainline" not in eras  # the real verdicts are mainline's own comparison
    assert [c for c in eras["no-swp-exclusive"]["disagree"] if c in swap_cases] == swap_cases


def test_the_record_agrees_with_the_library() -> None:
    """The committed run's model verdicts are the library's today: a scenario or model
    change that alters a verdict must refresh the record (and the page)."""
    if not selftests.LAST_RUN.exists():
        pytest.skip("no recorded selftests run")
    rec = json.loads(selftests.LAST_RUN.read_text())
    rows = selftests.rows_of(rec)
    assert len([r for r in rows if r.test == "cow"]) == 778  # cow.c's plan on 6.12 here
    assert rows and not [r for r in rows if r.outcome in ("disagree", "no mirror")]
    mirrored = [r for r in rows if r.scenario]
    assert {r.scenario for r in mirrored} == {
        str(p.relative_to(REPO)) for p in selftests.COW_DIR.glob("*.scn")}
    for r in mirrored:
        assert selftests.model_verdict(REPO / r.scenario) == r.model, r.scenario
        assert (r.real == "ok") == (r.model == "pass") or r.outcome == "skipped", r


def test_the_record_is_the_recorded_output_compared_today() -> None:
    """Recomputing the comparison from the committed raw TAP gives the committed record:
    a change of the library (a new mirror, a changed verdict) must refresh it, which
    needs no VM (see the message)."""
    if not selftests.LAST_RESULTS.exists():
        pytest.skip("no recorded selftests output")
    results, facts = parse_results(selftests.LAST_RESULTS.read_text())
    fresh = selftests.record(results, facts, compare(results))
    assert json.loads(selftests.LAST_RUN.read_text()) == fresh, (
        "tools/kernelcheck/selftests-last-run.json is stale: run python -m anonlib "
        "selftests-check --from-results tools/kernelcheck/selftests-last-results.txt "
        "--json tools/kernelcheck/selftests-last-run.json, then python -m "
        "anonlib.kernelcheck.selftests")


def test_the_committed_appendix_matches_the_record(tmp_path: Path) -> None:
    if not selftests.LAST_RUN.exists():
        pytest.skip("no recorded selftests run")
    fresh = selftests.write_appendix(selftests.LAST_RUN, tmp_path / "a.md").read_text()
    assert (REPO / "book" / "appendix-selftests.md").read_text() == fresh, (
        "book/appendix-selftests.md is stale: run python -m anonlib.kernelcheck.selftests")
    assert selftests.main([str(tmp_path / "missing.json")]) == 2


def test_gup_test_instances_differ_only_in_their_debugfs_name() -> None:
    code = '#include <linux/debugfs.h>\ndebugfs_create_file_unsafe("gup_test", 0600, NULL);\n'
    first, third = selftests.gup_test_source(code, 0), selftests.gup_test_source(code, 3)
    # the file itself is untouched in both; a module license is added to both
    assert code in first and code in third
    assert first.count("MODULE_LICENSE") == third.count("MODULE_LICENSE") == 1
    # the first instance keeps the name the selftests open, the others are renamed
    assert "#define" not in first and selftests.gup_test_name(0) == "gup_test"
    assert selftests.gup_test_name(3) == "gup_test3"
    assert third.index("#include <linux/debugfs.h>") < third.index("#define")
    assert 'debugfs_create_file_unsafe("gup_test3", __VA_ARGS__)' in third
