"""Hostile input gets exit 0, 1 or 2 with where and why: one regression test per reproducer.

Each test is a case of issue 22 (malformed scenarios, odd encodings, huge
files, absurd arguments, misuse of the API and widgets). The contract is in
``docs/limits.md``: 2 for anything invalid, naming the line and column (or
the option and value), never the internal-error status 70, never a
traceback, and a refused input changes nothing.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

import anonlib
from anonlib import cli, run_scenario
from anonlib.kernelcheck.known import KnownDifferencesError, parse_known
from anonlib.scenario import InputError, ScenarioError, parse
from anonlib.scenario.parser import MAX_STATEMENTS, MAX_WORDS, split_statements
from anonlib.scenario.source import MAX_QUOTE, MAX_SOURCE_BYTES, decode
from anonlib.scenario.syntax import STATE_WORDS
from anonlib.views.compare import compare
from anonlib.views.magic import MagicUsageError, parse_magic_line
from anonlib.views.magic import scenario as magic_scenario

ROOT = Path(__file__).resolve().parent.parent
GOOD = "spawn P\nP mmap A 1\nP write A[0] 1\nP read A[0] expect 1\n"
LIBRARY_FILE = ROOT / "scenarios" / "history" / "b02-cve-2020-29374.scn"


def main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (status, stdout, stderr); argparse's SystemExit is a status."""
    try:
        status = cli.main(list(argv))
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return status, out, err


def err_of(text: str) -> ScenarioError:
    sc = parse(text)
    assert isinstance(sc, ScenarioError), sc
    return sc


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("spawn P\nP mmap A ²\n", 2, 10),
        ("spawn P\nP mmap A ٣\n", 2, 10),  # an Arabic-Indic digit
        ("config thp_pages=²\n", 1, 18),
        ("config hugetlb_pages=" + "9" * 5000 + "\n", 1, 22),
        ("spawn P\nP mmap A " + "1" * 5000 + "\n", 2, 10),
        ("spawn P\nP mmap A 1\nP write A[" + "9" * 5000 + "] x\n", 3, 11),
        ("spawn P\nP mmap A 1\nP read A[²]\n", 3, 8),
    ],
)
def test_unicode_digits_and_huge_numbers_are_invalid_not_crashes(
    text: str, line: int, column: int
) -> None:
    e = err_of(text)
    assert (e.line, e.column) == (line, column), e
    assert len(e.message) < 400  # the 5,000 digits are not all quoted back
    r = run_scenario(text)
    assert r.exit_code == 2 and r.failures[0].line == line


def test_a_huge_number_stops_one_file_not_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok, bad = tmp_path / "ok.scn", tmp_path / "bad.scn"
    ok.write_text(GOOD)
    bad.write_text("spawn P\nP mmap A ²\n")
    status, out, err = main(capsys, "run", str(ok), str(bad), str(ok))
    assert status == 2
    assert out.count("result: ok") == 2 and "line 2, column 10" in err


def test_a_bad_file_does_not_stop_verdicts(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.scn").write_text("# expect: mainline=2\nspawn P\nP mmap A ²\n")
    (tmp_path / "b.scn").write_text("# expect: mainline=0\nspawn P\n")
    (tmp_path / "c.scn").write_bytes(b"# expect: mainline=0\nspawn P\n\xff")
    status, out, err = main(capsys, "verdicts", str(tmp_path))
    assert status == 2
    assert "3 files, 2 runs, 0 verdicts differ" in out
    assert "c.scn: line 3, column 1: not UTF-8" in err


def test_verdicts_header_with_a_huge_status(tmp_path: Path, capsys) -> None:
    f = tmp_path / "h.scn"
    f.write_text("# expect: mainline=" + "1" * 5000 + "\nspawn P\n")
    status, _out, err = main(capsys, "verdicts", str(f))
    assert status == 2 and "expected SCHEME=STATUS" in err


# ---------------------------------------------------------------- files


def test_dev_zero_is_refused_at_the_size_limit(capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = main(capsys, "run", "/dev/zero")
    assert status == 2
    assert f"larger than {MAX_SOURCE_BYTES:,} bytes" in err


def test_a_file_over_the_limit_is_refused_and_one_at_it_is_read(tmp_path: Path, capsys) -> None:
    at = tmp_path / "at.scn"
    at.write_bytes(b"spawn P\n" + b"#" * (MAX_SOURCE_BYTES - 9) + b"\n")
    over = tmp_path / "over.scn"
    over.write_bytes(at.read_bytes() + b"\n")
    assert main(capsys, "run", str(at))[0] == 0
    status, _out, err = main(capsys, "run", str(over))
    assert status == 2 and "4 MiB" in err


def test_invalid_utf8_names_the_byte(tmp_path: Path, capsys) -> None:
    f = tmp_path / "latin1.scn"
    f.write_bytes(b"spawn P\nP mmap A 1\nP write A[0] caf\xe9\n")
    status, _out, err = main(capsys, "run", str(f))
    assert status == 2
    assert "line 3, column 17: not UTF-8: byte 0xe9" in err


def test_a_directory_and_a_missing_file(tmp_path: Path, capsys) -> None:
    status, _out, err = main(capsys, "run", str(tmp_path), str(tmp_path / "nope.scn"))
    assert status == 2
    assert "it is a directory" in err and "No such file or directory" in err


def test_run_scenario_of_bytes() -> None:
    assert run_scenario(GOOD.encode()).exit_code == 0
    bad = run_scenario(b"spawn P\n\xff\n")
    assert bad.exit_code == 2 and (bad.failures[0].line, bad.failures[0].column) == (2, 1)
    assert run_scenario(12).exit_code == 2  # type: ignore[arg-type]
    assert "not int" in str(run_scenario(12))  # type: ignore[arg-type]


def test_write_error_on_standard_output_is_exit_2(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("ANONLIB_DEBUG", None)
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "anonlib", "run", str(LIBRARY_FILE)],
                           stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == "anonlib: cannot write standard output: No space left on device"


# ---------------------------------------------------------------- lines and characters


def test_form_feed_and_friends_do_not_end_a_line() -> None:
    # a commented-out statement stays commented out
    r = run_scenario("spawn P\n# old: \fP exit\nP mmap A 1\n")
    assert r.exit_code == 0 and "P exit" not in r.transcript
    for ch in ("\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"):
        e = err_of(f"spawn P\nP exit{ch}spawn Q\n")
        assert (e.line, e.column) == (2, 7), (repr(ch), e)
        assert f"U+{ord(ch):04X}" in e.message


def test_crlf_ends_a_line_and_line_numbers_hold() -> None:
    text = "spawn P\r\nP mmap A 1\r\n\r\nP read B[0]\r\n"
    e = err_of(text)
    assert (e.line, e.column) == (4, 8)


def test_byte_order_mark_is_read_and_reported(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bom.scn"
    f.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    status, out, _err = main(capsys, "run", str(f))
    assert status == 0
    assert "byte-order mark" in out and "did you mean" not in out
    r = run_scenario("\ufeff" + GOOD)
    assert r.ok and "byte-order mark" in r.transcript
    assert decode(b"\xef\xbb\xbfspawn P").bom


def test_messages_quote_a_bounded_part_of_a_token() -> None:
    long = "x" * 1_000_000
    for text in (f"{long}\n", f"spawn P\nP {long}\n",
                 f'spawn P\nP mmap A 1\nP write A[0] "{long}\n',
                 f"config {long}=1\n", f"spawn {long}\n"):
        e = err_of(text)
        assert len(e.message) < 40 * MAX_QUOTE, e.message[:200]


def test_a_failure_report_quotes_a_long_value_cut_short() -> None:
    value = "v" * 100_000
    r = run_scenario(f"spawn P\nP mmap A 1\nP write A[0] {value}\nP read A[0] expect x\n")
    assert r.exit_code == 1
    assert len(r.report()) < 1000 and "(100,000 characters)" in r.report()
    assert value in r.transcript  # the transcript, an output, keeps it whole


def test_a_line_of_a_million_words_stops_at_the_limit() -> None:
    words = "x " * 1_000_000
    e = err_of(f"spawn P\nP mmap A 1\nP write A[0] {words}\n")
    assert (e.line, e.column) == (3, 1 + len("P write A[0] ") + 2 * (MAX_WORDS - 3))
    assert f"more than {MAX_WORDS} words" in e.message
    longest = "expect P A[0] " + " ".join(
        w for w in STATE_WORDS if w not in ("same-page",))
    assert len(longest.split()) < MAX_WORDS


def test_a_file_of_for_lines_stops_at_the_statement_limit() -> None:
    """Each 'for' repeats at most 512 times, and all of them together stop at the limit:
    a 4 MiB file of them would otherwise ask for a hundred million statements."""
    line = "for i in 0..511: show P A[{i}]\n"
    e = err_of("spawn P\nP mmap A 512\n" + line * 10_000)
    assert e.line == 3 + MAX_STATEMENTS // 512 and e.column == 1
    assert f"longer than {MAX_STATEMENTS:,} statements" in e.message
    e = err_of("spawn P\n" + "show\n" * MAX_STATEMENTS + "show\n")
    assert e.line == MAX_STATEMENTS + 1 and "more than 100,000 statements" in e.message


@pytest.mark.parametrize(
    "line, column, problem",
    [
        ("for i in 0..512: P read A[{i}]", 10, "at most 512 numbers"),
        ("for i in 3..1: P read A[{i}]", 10, "must go up"),
        ("for i in 0..3 P read A[{i}]", 10, "a range and a colon"),
        ("for I in 0..3: P read A[{i}]", 5, "one lower-case letter"),
        ("for i on 0..3: P read A[{i}]", 7, "expected 'in'"),
        ("for i in 0..3:", 16, "the statement is missing"),
        ("for i in 0..3: P read A[0]", 16, "does not use {i}"),
        ("for i in 0..3: for j in 0..3: show", 16, "not another 'for'"),
        ("for i in 0..3: config thp_pages=4", 16, "cannot be repeated"),
        ("for i in 0..9: P read A[{i}]", 25, "with i=8: page 8 is out of range"),
        ("for i in 0..99999999999: P read A[{i}]", 10, "a range and a colon"),
    ],
)
def test_bad_for_lines(line: str, column: int, problem: str) -> None:
    e = err_of(f"spawn P\nP mmap A 8\n{line}\n")
    assert (e.line, e.column) == (3, column), e.message
    assert problem in e.message


def test_a_for_line_is_its_statements_in_order() -> None:
    text = ("spawn P\nP mmap A 8\nfor i in 2..5: P pin A[{i}] ro as H{i}\n"
            "for i in 2..5: H{i} read expect 0\n")
    looped = parse(text)
    plain = parse("spawn P\nP mmap A 8\n" + "".join(
        f"P pin A[{i}] ro as H{i}\n" for i in range(2, 6)) + "".join(
        f"H{i} read expect 0\n" for i in range(2, 6)))
    assert not isinstance(looped, ScenarioError) and not isinstance(plain, ScenarioError)
    assert [s.text for s in looped.statements] == [s.text for s in plain.statements]
    assert [s.action for s in looped.statements] == [s.action for s in plain.statements]
    assert [s.line for s in looped.statements] == [1, 2] + [3] * 4 + [4] * 4
    result = run_scenario(text)
    assert result.exit_code == 0 and "  3  P pin A[5] ro as H5  -> ok" in result.transcript


def test_spawn_after_exit_says_the_name_is_not_reused() -> None:
    e = err_of("spawn P\nP exit\nspawn P\n")
    assert (e.line, e.column) == (3, 7)
    assert "exited at line 2" in e.message


# ---------------------------------------------------------------- explore


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pages", "base:1000000"], "1 to 512 pages"),
        (["--pages", "thp:1024"], "1 to 512 pages"),
        (["--pages", "hugetlb:1024"], "1 to 512 pages"),
        (["--pages", "base:²"], "digits 0-9"),
        (["--pages", "base:" + "1" * 5000], "bad item"),
        (["--invariants", ","], "selects nothing"),
        (["--invariants", ""], "selects nothing"),
        (["--ops", ""], "selects nothing"),
        (["--ops", ",,,"], "selects nothing"),
        (["--ops=-all"], "removes every operation family"),
        (["--jobs", "-3"], "--jobs must be"),
        (["--jobs", "1000"], "--jobs must be"),
        (["--scheme", "mainlin"], "did you mean 'mainline'"),
        (["--compare", "pagecount"], "did you mean 'page-count'"),
        (["--invariants", "INV-1x"], "unknown invariant"),
        (["--after", "P bogus"], "statement 1 (P bogus), column 3"),
    ],
)
def test_explore_refuses_bad_options_before_searching(argv, message, capsys) -> None:
    status, out, err = main(capsys, "explore", *argv)
    assert status == 2, (out, err)
    assert message in err and out == ""


def test_explore_counterexamples_checked_before_the_search(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "file"
    existing.write_text("x")
    status, out, err = main(capsys, "explore", "--counterexamples", str(existing))
    assert status == 2 and "not a directory" in err and out == ""
    status, out, err = main(capsys, "explore", "--counterexamples", str(existing / "sub"))
    assert status == 2 and "cannot create it" in err and out == ""


def test_after_splits_on_semicolons_outside_quotes_only(capsys) -> None:
    assert split_statements('P write A[0] "a;b"; P read A[0]') == [
        'P write A[0] "a;b"', "P read A[0]"]
    status, _out, err = main(capsys, "explore", "--depth", "0", "--ops", "read",
                             "--after", 'P write A[0] "a;b"')
    assert status == 0, err


# ---------------------------------------------------------------- race


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--table", "-m", "bogus"], "unknown memory model 'bogus'"),
        (["--list", "-m", "tos"], "did you mean 'tso'"),
        (["swapout-check-firs"], "did you mean 'swapout-check-first'"),
        (["swapout-check-first", "--schedule", ""], "names no event"),
        (["swapout-check-first", "--schedule", ",A1"], "empty event"),
        (["swapout-check-first", "--schedule", "ZZ"], "event 1 (ZZ) cannot happen here"),
    ],
)
def test_race_errors_exit_2_on_stderr(argv, message, capsys) -> None:
    status, out, err = main(capsys, "race", *argv)
    assert status == 2
    assert message in err and message not in out


# ---------------------------------------------------------------- kernel-check: before QEMU


@pytest.fixture()
def no_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the VM fails the test: validation must come first."""
    from anonlib.kernelcheck import check

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("kernel_check was called: the VM path was reached")

    monkeypatch.setattr(check, "kernel_check", boom)


def kernel_check_args(tmp_path: Path) -> dict[str, str]:
    paths = {
        "bad": tmp_path / "bad.scn",
        "binary": tmp_path / "binary.toml",
        "wrongtype": tmp_path / "wrongtype.toml",
        "entry": tmp_path / "entry.toml",
    }
    paths["bad"].write_text("spawn P\nP bogus\n")
    paths["binary"].write_bytes(b"\x00\xff\xfe")
    paths["wrongtype"].write_text("difference = 3\n")
    paths["entry"].write_text('difference = ["x"]\n')
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize(
    "make_argv, message",
    [
        (lambda p: [str(p["dir"] / "missing.scn")], "No such file or directory"),
        (lambda p: [p["bad"]], "line 2, column 3: unknown operation 'bogus'"),
        (lambda p: ["/dev/zero"], "larger than"),
        (lambda p: ["--known", str(p["dir"]), str(LIBRARY_FILE)], "it is a directory"),
        (lambda p: ["--known", p["binary"], str(LIBRARY_FILE)], "not UTF-8"),
        (lambda p: ["--known", p["wrongtype"], str(LIBRARY_FILE)], "array of tables"),
        (lambda p: ["--known", p["entry"], str(LIBRARY_FILE)], "must be a table"),
        (lambda p: ["--known", str(p["dir"] / "none.toml"), str(LIBRARY_FILE)],
         "No such file or directory"),
        (lambda p: ["--timeout", "nan", str(LIBRARY_FILE)], "--timeout"),
        (lambda p: ["--timeout", "inf", str(LIBRARY_FILE)], "--timeout"),
        (lambda p: ["--timeout", "1e300", str(LIBRARY_FILE)], "--timeout"),
        (lambda p: ["--timeout", "0", str(LIBRARY_FILE)], "--timeout"),
        (lambda p: ["--json", str(p["dir"] / "no" / "x.json"), str(LIBRARY_FILE)], "--json"),
    ],
)
def test_kernel_check_validates_before_booting(make_argv, message, tmp_path, capsys, no_vm):
    paths: dict = kernel_check_args(tmp_path)
    paths["dir"] = tmp_path
    status, _out, err = main(capsys, "kernel-check", "--no-install", *make_argv(paths))
    assert status == 2, err
    assert message in err and "no VM was booted" in err


def test_known_differences_entries_of_the_wrong_type() -> None:
    with pytest.raises(KnownDifferencesError, match="positive integer"):
        parse_known('[[difference]]\nscenario="a"\nwhy="w"\nmatters="m"\nline=true\n')
    with pytest.raises(KnownDifferencesError, match="array of tables"):
        parse_known("difference = 'x'\n")


# ---------------------------------------------------------------- verdicts, schemes, jobs


def test_verdicts_on_an_empty_directory(tmp_path: Path, capsys) -> None:
    status, _out, err = main(capsys, "verdicts", str(tmp_path))
    assert status == 2 and "no .scn file" in err


def test_an_empty_file_name_is_refused_not_read_as_the_current_directory(capsys) -> None:
    """Path("") is ".": 'verdicts ""' once ran every scenario under the working directory
    (the whole library, minutes), and 'run ""' called the name a directory."""
    for command in ("run", "verdicts"):
        status, out, err = main(capsys, command, "")
        assert status == 2 and "'': cannot read: an empty file name names no file" in err
        assert "runs" not in out


def test_unknown_scheme_on_the_command_line_gets_did_you_mean(capsys) -> None:
    status, _out, err = main(capsys, "run", "--scheme", "page_count", str(LIBRARY_FILE))
    assert status == 2 and "did you mean 'page-count'" in err
    status, _out, err = main(capsys, "schemes", "mainlin")
    assert status == 2 and "did you mean 'mainline'" in err


# ---------------------------------------------------------------- API, widgets, magic


def test_compare_arguments() -> None:
    assert callable(anonlib.compare)
    c = anonlib.compare(GOOD, ["mainline", "page-count"])
    assert c.verdicts() == {"mainline": 0, "page-count": 0}
    assert list(compare(GOOD, "mainline").verdicts()) == ["mainline"]
    for bad, message in (([], "at least one scheme"), (["mainlin"], "did you mean"),
                         (["mainline", "mainline"], "named twice"), (3, "not int")):
        with pytest.raises(InputError, match=message):
            compare(GOOD, bad)  # type: ignore[arg-type]


def test_playground_do_takes_exactly_one_statement() -> None:
    from anonlib.views.widgets import Playground

    pg = Playground()
    pg.do("spawn P  # the first process")
    script = pg.script()
    for bad, message in (("", "blank"), ("   ", "blank"), ("# only a comment", "blank"),
                         ("P mmap A 1\nP write A[0] x", "one statement"),
                         ('P write "x', "unterminated"), ("P bogus", "not a statement")):
        with pytest.raises(InputError, match=message):
            pg.do(bad)
        assert pg.script() == script and len(pg.history) == 1  # nothing changed
    with pytest.raises(InputError, match="did you mean 'page-count'"):
        Playground(scheme="pagecount")
    with pytest.raises(InputError, match="unknown scheme 'bogus'"):
        Playground(GOOD, scheme="bogus")


def test_stepper_and_predict_check_the_scheme_name_and_show_an_invalid_scenario() -> None:
    from anonlib.views.widgets import Predict, Stepper

    with pytest.raises(InputError, match="did you mean 'legacy-mapcount'"):
        Stepper(GOOD, scheme="legacy_mapcount")
    with pytest.raises(InputError, match="unknown scheme"):
        Predict(GOOD, scheme="bogus")
    assert Stepper("spawn P\nP mmap A ²\n").result.exit_code == 2
    assert Predict("spawn P\nP mmap A ²\n").result.exit_code == 2


def test_input_error_has_no_traceback_in_ipython() -> None:
    e = InputError("unknown scheme 'x'")
    assert e._render_traceback_() == ["InputError: unknown scheme 'x'"]


def test_scenario_magic() -> None:
    with pytest.raises(MagicUsageError, match="did you mean 'mainline'"):
        parse_magic_line("--scheme mainlin")
    assert magic_scenario("", "spawn P\nP mmap A ²\n").exit_code == 2
    assert magic_scenario("--scheme page-count", GOOD).exit_code == 0


def test_stdin_is_read_with_the_limit(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("x" * (MAX_SOURCE_BYTES + 1)))
    status, _out, err = main(capsys, "run", "-")
    assert status == 2 and "larger than" in err


def test_ipython_shows_messages_without_tracebacks(capsys) -> None:
    """In IPython, %%scenario misuse, an InputError and an invalid cell show one message each."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()  # the shell the other magic tests use, not a second one
    ip.run_line_magic("load_ext", "anonlib")
    cells = [
        "%%scenario --scheme mainlin\nspawn P\n",
        "%%scenario\nspawn P\nP mmap A ²\n",
        "import anonlib\nanonlib.compare('spawn P', [])",
        "anonlib.Playground().do('')",
        "anonlib.Playground(scheme='bogus')",
    ]
    for cell in cells:
        ip.run_cell(cell)
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text and "----> " not in text, text
    for message in ("did you mean 'mainline'", "line 2, column 10", "at least one scheme",
                    "nothing to do", "unknown scheme 'bogus'"):
        assert message in text, (message, text)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scheme": "mainlin"}, "did you mean 'mainline'"),
        ({"pages": "base:1000000"}, "1 to 512 pages"),
        ({"pages": "base:²"}, "digits 0-9"),
        ({"ops": "-all"}, "removes every operation family"),
        ({"ops": ["gup"]}, "is a group"),
        ({"ops": 3}, "not int"),
        ({"invariants": []}, "selects nothing"),
        ({"invariants": ["INV-99"]}, "unknown invariant"),
        ({"depth": -1}, "depth must be at least 0"),
        ({"depth": "3"}, "whole number"),
        ({"jobs": 1000}, "jobs must be from 0"),
    ],
)
def test_explore_api_refuses_bad_arguments(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        anonlib.explore(**kwargs)


def test_a_quoted_value_at_the_size_limit_parses_in_bounded_memory() -> None:
    """The quoted-value pattern costs no backtracking state per character (it cost about
    570 MB for a 4 MB value when each character was an alternative of its own)."""
    import tracemalloc

    value = "v" * (MAX_SOURCE_BYTES - 100)
    text = f'spawn P\nP mmap A 1\nP write A[0] "{value}"\n'
    tracemalloc.start()
    try:
        sc = parse(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not isinstance(sc, ScenarioError)
    assert peak < 10 * MAX_SOURCE_BYTES, f"parsing a 4 MB value took {peak:,} bytes at peak"
