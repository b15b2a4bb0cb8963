"""The scenario library: every file's stated verdict per scheme against the model.

The "litmus verdict changed" check: each ``scenarios/**/*.scn`` names in its
``# expect:`` header the exit status it should have under each scheme; this
runs every file under every scheme named and fails with a table of the
verdicts that differ.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from anonlib.scenario import Scenario, parse
from anonlib.scenario.library import Verdict, check_file, find_scenarios, read_expectations, table
from anonlib.schemes import SCHEMES

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "scenarios"
FILES = find_scenarios([LIBRARY])


def test_the_library_is_there() -> None:
    assert len(FILES) >= 150
    assert {p.parent.name for p in FILES} == {"cow", "device", "history", "mthp", "since-6.12"}


def test_every_verdict_is_as_stated() -> None:
    verdicts: list[Verdict] = []
    broken: list[str] = []
    for path in FILES:
        got = check_file(path)
        if isinstance(got, str):
            broken.append(f"{path.relative_to(ROOT)}: {got}")
        else:
            verdicts.extend(got)
    assert not broken, "\n".join(broken)
    differ = [v for v in verdicts if v.differs]
    assert not differ, (
        f"{len(differ)} of {len(verdicts)} litmus verdicts changed:\n" + table(differ)
    )
    # every scheme is exercised, and each of them fails somewhere and passes somewhere
    for scheme in SCHEMES:
        codes = {v.got for v in verdicts if v.scheme == scheme}
        assert {0, 1} <= codes, f"{scheme}: {codes}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_is_documented_and_valid(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# "), "a library file begins with a comment saying what it shows"
    header = read_expectations(text)
    assert isinstance(header, dict), header
    assert header, "names at least one scheme"
    parsed = parse(text, str(path))
    assert isinstance(parsed, Scenario), str(parsed)
    if any(code for code in header.values()):
        assert "fail" in text.lower(), "say why it fails where it fails"
    assert "expect" in text.replace("# expect:", ""), "a library file states its expectations"


def test_the_cow_files_cover_the_catalogue() -> None:
    names = {p.name for p in FILES if p.parent.name == "cow"}
    variants = [
        "base",
        "swapped-base",
        "thp",
        "swapped-thp",
        "pte-thp",
        "swapped-pte-thp",
        "single-pte-thp",
        "single-pte-swapped-thp",
        "partially-mremapped-thp",
        "partially-shared-thp",
        "hugetlb",
        # the 16 kB mTHP runs (cow.c has no plain run for an mTHP size)
        "pte-mthp",
        "swapped-pte-mthp",
        "single-pte-mthp",
        "single-pte-swapped-mthp",
        "partially-mremapped-mthp",
        "partially-shared-mthp",
    ]
    for n in range(1, 15):
        for v in variants:
            assert any(x.startswith(f"a{n:02d}-") and x.endswith(f"-{v}.scn") for x in names), (
                n,
                v,
            )
    for prefix in ("c1-", "c2-", "c3-", "c4-", "n1-", "n2-", "n3-"):
        assert any(x.startswith(prefix) for x in names), prefix


def test_mthp_files_name_only_the_schemes_of_kernels_with_mthp() -> None:
    """mTHP is 6.8 and later: a file that maps an mTHP names mainline and only schemes of
    kernels that have mTHP (docs/large-folios.md section 11)."""
    with_mthp = {"mainline", "head-only", "lts-6.18", "mprotect-batch-head",
                 "iouring-unpin-head"}
    mthp = [p for p in FILES if re.search(r"^\w+ mmap \w+ (\d+ )?mthp\b", p.read_text(), re.M)]
    assert len(mthp) >= 70 + 9
    for path in mthp:
        header = read_expectations(path.read_text())
        assert isinstance(header, dict) and "mainline" in header, path.name
        assert set(header) <= with_mthp, path.name


def test_hugetlb_vmsplice_is_the_known_mainline_failure() -> None:
    for n in (3, 4, 5, 6):
        (path,) = [p for p in FILES if p.name.startswith(f"a0{n}-") and "hugetlb" in p.name]
        header = read_expectations(path.read_text())
        assert isinstance(header, dict) and header["mainline"] == 1
        assert "XFAIL" in path.read_text()


def test_the_generated_files_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_cow_scenarios.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_changed_verdict_is_caught(tmp_path: Path) -> None:
    cve = (ROOT / "scenarios" / "history" / "b02-cve-2020-29374.scn").read_text()
    lying = tmp_path / "lying.scn"
    lying.write_text(cve.replace("legacy-mapcount=1:INV-12", "legacy-mapcount=0"))
    got = check_file(lying)
    assert isinstance(got, list)
    (v,) = [v for v in got if v.differs]
    assert (v.scheme, v.expected, v.got) == ("legacy-mapcount", 0, 1)
    assert "INV-12" in v.why
    assert "legacy-mapcount  0         1    line" in table([v])


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("", "no '# expect: SCHEME=STATUS ...' line"),
        ("# expect:", "line 1: '# expect:' lists no scheme"),
        ("# expect: mainline", "line 1: expected SCHEME=STATUS, not 'mainline'"),
        ("# expect: mainlin=0", "line 1: unknown scheme 'mainlin'"),
        ("# expect: mainline=3", "line 1: mainline=3: a status is 0, 1 or 2"),
        ("# expect: mainline=0 mainline=1", "line 1: mainline is listed twice"),
        ("# expect: mainline=0:INV-1",
         "line 1: mainline=0:INV-1: only a failing run (status 1) has a reason"),
        ("# expect: mainline=0\n# expect: page-count=0", "line 2: a second '# expect:' line"),
    ],
)
def test_bad_headers(header: str, problem: str) -> None:
    assert read_expectations(header + "\nspawn P\n") == problem


def test_a_right_status_for_a_wrong_reason_is_caught(tmp_path: Path) -> None:
    """A header may name why a run stops (an invariant id, or ``expect``): the CVE breaks
    isolation (INV-12) under legacy-mapcount, so a header claiming pin coherence is wrong
    even though the exit status (1) matches."""
    body = (ROOT / "scenarios" / "history" / "b02-cve-2020-29374.scn").read_text()
    right = tmp_path / "right.scn"
    right.write_text("# expect: legacy-mapcount=1:INV-12 mainline=0\n" + _without_header(body))
    wrong = tmp_path / "wrong.scn"
    wrong.write_text("# expect: legacy-mapcount=1:INV-11 mainline=0\n" + _without_header(body))
    ok = check_file(right)
    bad = check_file(wrong)
    assert isinstance(ok, list) and not any(v.differs for v in ok)
    assert isinstance(bad, list)
    [legacy] = [v for v in bad if v.scheme == "legacy-mapcount"]
    assert legacy.got == 1 and legacy.reason == "INV-12" and legacy.differs
    assert "1:INV-11" in table(bad) and "1:INV-12" in table(bad)


def _without_header(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("# expect:"))
