"""The scenario runner on the real model: transcripts, expectations, invariants, verdicts."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anonlib
from anonlib.scenario import ScenarioResult, TraceStep, run_scenario
from anonlib.state import World

CVE = """\
spawn P
P mmap A 1
P write A[0] 1
P fork Q
Q get A[0] ro as H
Q munmap A
P write A[0] secret
H read expect 1
"""


def test_run_scenario_is_exported_from_anonlib() -> None:
    assert anonlib.run_scenario is run_scenario


def test_a_passing_scenario() -> None:
    r = run_scenario(CVE, name="cve.scn")
    assert (r.status, r.exit_code, r.ok, r.failures) == ("ok", 0, True, [])
    assert r.scheme == "mainline"
    lines = r.transcript.splitlines()
    assert lines[0] == "# scheme mainline"
    assert lines[1] == "  1  spawn P              -> ok"
    assert lines[-1] == "  8  H read expect 1      -> 1"
    assert str(r) == r.transcript + "\nresult: ok"


def test_the_transcript_is_deterministic() -> None:
    assert str(run_scenario(CVE)) == str(run_scenario(CVE))
    assert run_scenario(CVE)._repr_html_() == run_scenario(CVE)._repr_html_()


def test_a_read_prints_its_value() -> None:
    r = run_scenario("spawn P\nP mmap A 1\nP read A[0]\nP write A[0] v\nP read A[0]\n")
    assert r.transcript.splitlines()[3].endswith("-> 0")
    assert r.transcript.splitlines()[5].endswith("-> v")


def test_an_invariant_violation_stops_the_run() -> None:
    r = run_scenario(CVE + "P read A[0]\n", "legacy-mapcount", name="cve.scn")
    assert (r.status, r.exit_code) == ("failed", 1)
    (f,) = r.failures
    assert (f.kind, f.line, f.invariant) == ("invariant", 7, "INV-12")
    assert f.title and f.explanation and f.kernel_source and f.offenders
    assert "line 8" not in r.transcript and "H read" not in r.transcript
    text = str(f)
    assert text.startswith("cve.scn: line 7: invariant INV-12 violated after: P write A[0] secret")
    assert f.explanation in text and "offending: " in text
    assert str(r).endswith("result: failed at line 7 (exit 1)")


def test_a_failed_expectation_names_line_expected_and_found() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nP read A[0] expect 2\nP read A[0]\n"
    r = run_scenario(text, name="t.scn")
    assert r.exit_code == 1
    (f,) = r.failures
    assert (f.kind, f.line, f.expected, f.found) == ("expectation", 4, "2", "1")
    assert str(f) == (
        "t.scn: line 4: expectation failed: P read A[0] expect 2\n  expected: 2\n  found:    1"
    )
    assert r.transcript.splitlines()[-1] == "  4  P read A[0] expect 2  -> 1   FAILED: expected 2"


def test_an_outcome_expectation_on_a_signal() -> None:
    ok = "spawn P\nP mmap A 1\nP mprotect A ro\nP write A[0] x expect SIGSEGV\n"
    assert run_scenario(ok).exit_code == 0
    assert run_scenario(ok.replace("SIGSEGV", "ok")).exit_code == 1


def test_a_statement_the_state_refuses_fails_with_exit_1() -> None:
    text = (
        "spawn P\nP mmap A 1\nP mprotect A ro\nP pin A[0] rw as H expect EFAULT\n"
        "H read\nP read A[0]\n"
    )
    r = run_scenario(text, name="t.scn")
    assert r.exit_code == 1
    (f,) = r.failures
    assert (f.kind, f.line) == ("failed", 5)
    assert str(f).startswith("t.scn: line 5: H read: failed: ")
    assert r.transcript.splitlines()[-1].endswith("-> FAILED")


def test_an_operation_the_scheme_lacks_is_invalid() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nkernel device-exclusive P A[0]\n"
    assert run_scenario(text).exit_code == 0
    r = run_scenario(text, "legacy-mapcount", name="t.scn")
    assert (r.status, r.exit_code) == ("invalid", 2)
    assert str(r.failures[0]).startswith("t.scn: line 4, column 1: ")


def test_a_syntax_error_is_invalid_and_nothing_runs() -> None:
    r = run_scenario("spawn P\nP mmap A 1\nP read B[0]\n", name="t.scn")
    assert (r.status, r.exit_code, r.transcript, r.trace) == ("invalid", 2, "", [])
    assert str(r) == (
        "t.scn: line 3, column 8: unknown mapping 'B'; mappings of P: A\n"
        "result: invalid at line 3 (exit 2)"
    )


def test_an_unknown_scheme_is_invalid() -> None:
    r = run_scenario(CVE, "mainlin")
    assert r.exit_code == 2
    assert "unknown scheme 'mainlin'" in str(r)


def test_the_scheme_argument_overrides_the_file() -> None:
    r = run_scenario("scheme mainline\n" + CVE, "legacy-mapcount")
    assert r.scheme == "legacy-mapcount" and r.exit_code == 1
    assert r.transcript.splitlines()[0] == "# scheme legacy-mapcount (instead of mainline, line 1)"
    assert run_scenario("scheme legacy-mapcount\n" + CVE).exit_code == 1


def test_config_reaches_the_model() -> None:
    r = run_scenario("config thp_pages=8\nspawn P\nP mmap A thp\nP write A[7] x\nshow P A[7]\n")
    assert r.exit_code == 0
    assert r.transcript.splitlines()[1] == "# config thp_pages=8 hugetlb_pages=4 swap_slots=16"


STATE = "spawn P\nP mmap A 1\nP write A[0] 1\nP fork Q\n"


def test_state_expectations_hold_and_fail() -> None:
    ok = STATE + "expect P A[0] present readonly shared unpinned same-page Q A[0]\n"
    r = run_scenario(ok)
    assert r.exit_code == 0 and r.transcript.endswith("-> holds")
    bad = STATE + "expect P A[0] present writable\n"
    r = run_scenario(bad, name="t.scn")
    (f,) = r.failures
    assert (f.kind, f.line, f.expected) == ("expectation", 5, "present writable")
    assert f.found == "present readonly shared unpinned"


def test_same_page_fails_after_cow() -> None:
    r = run_scenario(STATE + "P write A[0] 2\nexpect P A[0] same-page Q A[0]\n")
    assert r.exit_code == 1
    assert r.failures[0].found.endswith("not the same page as Q A[0]")


def test_pmd_word() -> None:
    thp = "spawn P\nP mmap A thp\nP write A[0] 1\n"
    assert run_scenario(thp + "expect P A[2] present pmd writable exclusive\n").exit_code == 0
    assert run_scenario(thp + "kernel split-pmd P A\nexpect P A[2] pmd\n").exit_code == 1


def test_exclusive_is_invalid_before_the_run_under_schemes_without_the_flag() -> None:
    r = run_scenario(STATE + "expect P A[0] shared\n", "page-count", name="t.scn")
    assert r.exit_code == 2
    assert str(r.failures[0]) == (
        "t.scn: line 5, column 15: 'shared' is undefined under scheme page-count, "
        "which has no PG_anon_exclusive"
    )
    assert r.trace == []


def test_a_word_undefined_for_the_entry_found_is_invalid() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nkernel swapout P A[0]\nexpect P A[0] writable\n"
    r = run_scenario(text, name="t.scn")
    assert r.exit_code == 2
    assert str(r.failures[0]).startswith(
        "t.scn: line 5, column 15: 'writable' is undefined for a swap entry"
    )


def test_expect_invariants() -> None:
    r = run_scenario(STATE + "expect invariants\n")
    assert r.exit_code == 0 and r.transcript.endswith("expect invariants  -> hold")


def test_show_prints_the_canonical_text() -> None:
    from anonlib.ops import PageRef
    from anonlib.schemes import MAINLINE
    from anonlib.views import render

    r = run_scenario(STATE + "show\nshow Q A[0]\n")
    assert r.exit_code == 0
    world = r.world
    assert world is not None
    indented = "\n".join("       " + x for x in render.world_text(world, MAINLINE).splitlines())
    assert indented in r.transcript
    assert render.page_text(world, MAINLINE, PageRef("Q", "A", 0)) in r.transcript


def test_trace_mode_prints_the_state_after_each_operation() -> None:
    plain, traced = run_scenario(STATE), run_scenario(STATE, trace=True)
    assert "process P" not in plain.transcript
    assert traced.transcript.count("process P") == 4  # after spawn, mmap, write, fork
    assert str(traced).count("process Q") == 1


def test_the_trace_keeps_every_step() -> None:
    r = run_scenario(STATE + "expect P A[0] readonly\nP read A[0]\n")
    assert len(r.trace) == 6
    assert all(isinstance(s, TraceStep) for s in r.trace)
    stmt, outcome, world = r.trace[-1]
    assert stmt.text == "P read A[0]" and outcome is not None and outcome.word == "1"
    assert r.trace[4].outcome is None  # a check has no outcome
    assert isinstance(world, World) and world == r.world
    assert r.initial is not None and r.initial.procs == ()
    assert r.trace[0].world.proc("P") is not None


def test_html_escapes_everything() -> None:
    r = run_scenario(
        'spawn P\nP mmap A 1\nP write A[0] "<script>&"\nP read A[0] expect "<x>"\n',
        name="<x.scn>",
    )
    page = r._repr_html_()
    assert "<script>" not in page and "<x" not in page
    assert "&lt;script&gt;&amp;" in page and "&lt;x&gt;" in page and "&lt;x.scn&gt;" in page
    assert "failed" in page


def test_pretty_repr_is_the_text() -> None:
    class P:
        def __init__(self) -> None:
            self.out = ""

        def text(self, s: str) -> None:
            self.out += s

    p = P()
    r = run_scenario(CVE)
    r._repr_pretty_(p, False)
    assert p.out == str(r)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "é\u00a0", max_size=200))
def test_run_scenario_never_raises_on_garbage(text: str) -> None:
    r = run_scenario(text)
    assert isinstance(r, ScenarioResult) and r.exit_code in (0, 1, 2)


STATEMENTS = st.sampled_from(
    [
        "P write A[0] x",
        "P write A[1] y",
        "P read A[1]",
        "Q read A[0]",
        "Q write A[0] z",
        "P pin A[0] ro longterm as H",
        "P pin A[1] rw as H",
        "P get A[0] ro fast as H",
        "H read",
        "kernel swapout P A[0]",
        "kernel migrate P A[1]",
        "kernel ksm P A[0] Q A[0]",
        "kernel split-pmd P A",
        "P mprotect A ro",
        "P mprotect A rw",
        "P madvise A[1] dontneed",
        "P clear-softdirty",
        "Q exit",
        "show",
        "expect invariants",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["1", "thp", "hugetlb"]),
    st.lists(STATEMENTS, max_size=12),
    st.sampled_from(["mainline", "page-count", "legacy-mapcount", "head-only"]),
)
def test_random_programs_run_to_a_verdict(size: str, body: list[str], scheme: str) -> None:
    size = "2" if size == "1" else size
    text = f"spawn P\nP mmap A {size}\nP write A[0] 1\nP fork Q\n" + "\n".join(body)
    r = run_scenario(text, scheme)  # a statement using H before 'as H' is invalid: fine
    assert r.exit_code in (0, 1, 2)
    assert r.status != "ok" or not r.failures


# ---------------------------------------------------------------- the %%scenario magic


@pytest.fixture(scope="module")
def ip():  # type: ignore[no-untyped-def]
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "anonlib")
    return shell


def test_magic_runs_the_cell(ip) -> None:  # type: ignore[no-untyped-def]
    r = ip.run_cell_magic("scenario", "", CVE)
    assert isinstance(r, ScenarioResult) and r.exit_code == 0 and r.name == "this cell"
    r = ip.run_cell_magic("scenario", "--scheme legacy-mapcount --name b2", CVE)
    assert (r.scheme, r.exit_code, r.name) == ("legacy-mapcount", 1, "b2")
    r = ip.run_cell_magic("scenario", "--scheme=page-count --trace", CVE)
    assert r.scheme == "page-count" and "process P" in r.transcript


def test_magic_displays_text_and_html(ip) -> None:  # type: ignore[no-untyped-def]
    r = ip.run_cell_magic("scenario", "", CVE)
    data, _ = ip.display_formatter.format(r)
    assert data["text/plain"] == str(r)
    assert data["text/html"] == r._repr_html_()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--scheme nope", "unknown scheme 'nope'"),
        ("--scheme", "--scheme needs a value"),
        ("--verbose", "unknown option '--verbose'"),
        ('--name "x', "No closing quotation"),
    ],
)
def test_magic_usage_errors(ip, line: str, message: str) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=message):
        ip.run_cell_magic("scenario", line, CVE)
