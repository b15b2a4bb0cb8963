"""Grammar-aware fuzzing: every scenario and every command line gets 0, 1 or 2, never a crash.

Two generators, both run in-process under a fixed example budget (about
20 s together on a slow machine; ``ANONLIB_FUZZ_EXAMPLES`` scales it up for
a longer hunt):

* scenarios: valid statements of the language (spawn, mmap, write, fork,
  GUP, kernel actions, checks), then mutated: a character inserted (control
  characters, line separators, Unicode digits, quotes, the byte-order mark),
  a number replaced by odd digits or thousands of them, a word replaced by a
  long one, lines joined or split with ``\\r\\n``. The run must end in exit
  0, 1 or 2; a refusal (2) must name a line that exists and a column on it
  (at most one past the end plus the space a missing word would follow).
* command lines: each subcommand with options drawn from valid and invalid
  values (empty selections, huge and non-ASCII numbers, unknown names,
  missing and odd files), run through :func:`anonlib.cli.main`. The status
  must be 0, 1 or 2 (``kernel-check``'s VM is a stub here: reaching it is
  allowed, booting is not), with no traceback and no internal error.
"""

from __future__ import annotations

import io
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonlib import cli, run_scenario
from anonlib.scenario.parser import split_lines

EXAMPLES = int(os.environ.get("ANONLIB_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 100,
    deadline=None,
    derandomize=EXAMPLES is None,  # the same examples on every run of 'make test'
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
    database=None,
)

# ---------------------------------------------------------------- the grammar

PROCS = ("P", "Q", "R")
MAPS = ("A", "B")
HANDLES = ("H", "G")
SIZES = ("1", "2", "4", "thp", "hugetlb")
VALUES = ("1", "x", "secret", '"a b"', "0")
KERNEL_PAGE = ("swapout", "swapcache-drop", "migrate", "migrate-begin", "migrate-end",
               "device-private", "device-private-end", "device-exclusive", "poison")
ADVICE = ("dontneed", "collapse", "free", "pageout")
WORDS = ("present", "swap", "none", "pmd", "writable", "readonly", "exclusive", "shared",
         "pinned", "unpinned", "migration")

proc = st.sampled_from(PROCS)
mapping = st.sampled_from(MAPS)
page = st.builds(lambda m, i: f"{m}[{i}]", mapping, st.sampled_from(("0", "1", "3")))
handle = st.sampled_from(HANDLES)
value = st.sampled_from(VALUES)


def _statement() -> st.SearchStrategy[str]:
    s = st.builds
    return st.one_of(
        s(lambda p: f"spawn {p}", proc),
        s(lambda p, m, n: f"{p} mmap {m} {n}", proc, mapping, st.sampled_from(SIZES)),
        s(lambda p, a, v: f"{p} write {a} {v}", proc, page, value),
        s(lambda p, a: f"{p} read {a}", proc, page),
        s(lambda p, q: f"{p} fork {q}", proc, proc),
        s(lambda p, v, a, m, f, h: f"{p} {v} {a} {m} {f}as {h}", proc,
          st.sampled_from(("pin", "get")), page, st.sampled_from(("ro", "rw")),
          st.sampled_from(("", "longterm ", "fast ")), handle),
        s(lambda h, v: f"{h} write {v}", handle, value),
        s(lambda h: f"{h} read", handle),
        s(lambda r, h: f"{r} {h}", st.sampled_from(("unpin", "put")), handle),
        s(lambda p, m, r: f"{p} mprotect {m} {r}", proc, mapping, st.sampled_from(("ro", "rw"))),
        s(lambda p, a, v: f"{p} madvise {a} {v}", proc, st.one_of(page, mapping),
          st.sampled_from(ADVICE)),
        s(lambda p, m: f"{p} munmap {m}", proc, mapping),
        s(lambda p: f"{p} exit", proc),
        s(lambda p: f"{p} clear-softdirty", proc),
        s(lambda k, p, a: f"kernel {k} {p} {a}", st.sampled_from(KERNEL_PAGE), proc, page),
        s(lambda k, p, m: f"kernel {k} {p} {m}", st.sampled_from(("split-pmd", "split-folio")),
          proc, mapping),
        s(lambda p, a, q, b: f"kernel ksm {p} {a} {q} {b}", proc, page, proc, page),
        s(lambda p, a, ws: f"expect {p} {a} {' '.join(ws)}", proc, page,
          st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True)),
        st.just("expect invariants"),
        st.just("show"),
        s(lambda p, a: f"show {p} {a}", proc, page),
    )


def _suffix() -> st.SearchStrategy[str]:
    return st.sampled_from(("", "", "", " expect ok", " expect 1", "  # a comment"))


@st.composite
def scenario(draw: st.DrawFn) -> str:
    """A mostly valid scenario: header, a process with a mapping, then random statements."""
    lines = []
    if draw(st.booleans()):
        lines.append("scheme " + draw(st.sampled_from(
            ("mainline", "page-count", "legacy-mapcount", "head-only", "no-swp-exclusive"))))
    if draw(st.booleans()):
        lines.append("config " + draw(st.sampled_from(
            ("thp_pages=8", "hugetlb_pages=2", "swap_slots=4", "thp_pages=2 swap_slots=1"))))
    lines += ["spawn P", "P mmap A " + draw(st.sampled_from(SIZES))]
    body = draw(st.lists(st.tuples(_statement(), _suffix()), max_size=12))
    lines += [a + b for a, b in body]
    return "\n".join(lines) + "\n"


ODD = ("\f", "\v", "\x00", "\x1c", "\x1e", "\x85", "\u2028", "\u2029", "\r", "\t", " ",
       "\ufeff", "\u200b", "\u00a0", '"', "\\", "#", ";", "[", "]", "=", "²", "٣", "９",
       "é", "\U0001f600", "\ud800")
DIGITS = ("²", "٣", "９", "0" * 20, "9" * 5000, "-1", "1e3", "0x10", "")


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A scenario with one to four hostile edits."""
    text = draw(scenario())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("insert", "digits", "long", "join", "crlf", "bom", "cut")))
        if kind == "insert":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(ODD)) * draw(st.integers(1, 3)) + text[i:]
        elif kind == "digits":
            spots = [i for i, c in enumerate(text) if c.isdigit()]
            if spots:
                i = draw(st.sampled_from(spots))
                text = text[:i] + draw(st.sampled_from(DIGITS)) + text[i + 1:]
        elif kind == "long":
            words = text.split(" ")
            i = draw(st.integers(0, len(words) - 1))
            words[i] = draw(st.sampled_from(("x", "P", "A[", '"', "Z9_"))) * draw(
                st.sampled_from((70, 1000, 100_000)))
            text = " ".join(words)
        elif kind == "join":
            text = text.replace("\n", draw(st.sampled_from(("; ", " ", "\f", "\u2028"))), 1)
        elif kind == "crlf":
            text = text.replace("\n", "\r\n")
        elif kind == "bom":
            text = "\ufeff" + text
        else:
            text = text[: draw(st.integers(0, len(text)))]
    return text


def check_result(text: str) -> None:
    r = run_scenario(text)
    assert r.exit_code in (0, 1, 2)
    assert str(r) == str(run_scenario(text)), "the same text must give the same output"
    if r.exit_code == 2 and r.failures and r.failures[0].line:
        f = r.failures[0]
        lines = split_lines(text.removeprefix("\ufeff"))
        assert 1 <= f.line <= max(1, len(lines)), (f, len(lines))
        line = lines[f.line - 1] if lines else ""
        assert 1 <= f.column <= len(line) + 2, (f, line[:200])
        assert len(f.message) < 2000, f.message[:200]


@FUZZ
@given(scenario())
def test_generated_scenarios_run_to_a_verdict(text: str) -> None:
    check_result(text)


@FUZZ
@given(mutated())
def test_mutated_scenarios_are_refused_with_a_place(text: str) -> None:
    check_result(text)


def test_mutated_bytes_are_refused_with_a_place() -> None:
    """Bytes that are not UTF-8, at several places, through the bytes path of run_scenario."""
    base = b"spawn P\nP mmap A 1\nP write A[0] x\n"
    for i in range(len(base) + 1):
        r = run_scenario(base[:i] + b"\xc3" + base[i:])
        if r.exit_code == 2:
            f = r.failures[0]
            lines = base[:i].split(b"\n")
            assert f.line == len(lines) and f.column == len(lines[-1].decode()) + 1


# ---------------------------------------------------------------- command lines


class _VMReached(Exception):
    pass


@pytest.fixture()
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("fuzz")
    ok = d / "ok.scn"
    ok.write_text("# expect: mainline=0\nspawn P\nP mmap A 1\nP write A[0] 1\n")
    bad = d / "bad.scn"
    bad.write_text("spawn P\nP mmap A ²\n")
    latin = d / "latin1.scn"
    latin.write_bytes(b"spawn P\n\xe9\n")
    known = d / "known.toml"
    known.write_text("difference = 1\n")
    empty = d / "empty"
    empty.mkdir()
    return {"ok": str(ok), "bad": str(bad), "latin": str(latin), "known": str(known),
            "empty": str(empty), "missing": str(d / "missing.scn"), "dir": str(d),
            "file": str(ok)}


FILES = ("ok", "bad", "latin", "empty", "missing", "dir", "/dev/null", "-", "")
NUMBERS = ("-3", "0", "1", "x", "²", "1" * 5000, "", "nan", "1e300")
SCHEME_NAMES = ("mainline", "mainlin", "page-count", "", "bogus", "x" * 200)


def _option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.builds(lambda v: [name, v], values),
                     st.builds(lambda v: [f"{name}={v}"], values))


def _file(files: dict[str, str]) -> st.SearchStrategy[str]:
    return st.sampled_from(FILES).map(lambda k: files.get(k, k))


def argv(files: dict[str, str]) -> st.SearchStrategy[list[str]]:
    f = _file(files)
    opts = {
        "run": [_option("--scheme", st.sampled_from(SCHEME_NAMES)), st.just(["--trace"])],
        "verdicts": [st.just(["--all"])],
        "explore": [
            _option("--scheme", st.sampled_from(SCHEME_NAMES)),
            _option("--compare", st.sampled_from(SCHEME_NAMES)),
            _option("--pages", st.sampled_from(("base:1", "thp", "base:1000000", "thp:1024",
                                                "base:²", "", ",", "hugetlb:3", "base:0"))),
            _option("--depth", st.sampled_from(("-1", "0", "1", "x", "²"))),
            _option("--ops", st.sampled_from(("", ",,,", "-all", "write,fork", "bogus", "all"))),
            _option("--invariants", st.sampled_from((",", "", "INV-1", "INV-99", "INV-1,,"))),
            _option("--jobs", st.sampled_from(("-3", "1000", "1", "x"))),
            _option("--processes", st.sampled_from(("0", "1", "2", "1" * 5000))),
            _option("--handles", st.sampled_from(("-1", "0", "1"))),
            _option("--values", st.sampled_from(("0", "1", "2"))),
            _option("--after", st.sampled_from(("P write A[0] x", 'P write A[0] "a;b"; P bogus',
                                                ";", "P mmap A 1", "\f", "P read A[9]"))),
            _option("--counterexamples", st.sampled_from(("ok", "missing", "/proc/no/such")).map(
                lambda k: files.get(k, k))),
            st.just(["--raw"]), st.just(["--no-known-gaps"]),
        ],
        "race": [
            st.sampled_from((["--list"], ["--table"], ["swapout-check-first"],
                             ["fork-no-seqcount"], ["bogus"], ["swapout-check-firs"])),
            _option("-m", st.sampled_from(("sc", "tso", "weak", "bogus", ""))),
            _option("--schedule", st.sampled_from(("", ",", "A1", "ZZ,A1", "A2,G0"))),
            st.just(["--brief"]),
        ],
        "kernel-check": [
            _option("--known", st.sampled_from(("known", "missing", "dir", "latin")).map(
                lambda k: files.get(k, k))),
            _option("--timeout", st.sampled_from(NUMBERS)),
            _option("--json", st.sampled_from(("/no/such/x.json", "dir")).map(
                lambda k: files.get(k, k))),
            st.just(["--shallow"]), st.just(["--skip-unavailable"]),
        ],
        "schemes": [st.sampled_from((["mainline"], ["mainlin"], [""]))],
    }

    @st.composite
    def build(draw: st.DrawFn) -> list[str]:
        command = draw(st.sampled_from(sorted(opts)))
        parts: list[list[str]] = [[command]]
        for _ in range(draw(st.integers(0, 4))):
            parts.append(draw(st.one_of(*opts[command])))
        if command in ("run", "verdicts", "kernel-check"):
            parts.append(draw(st.lists(f, min_size=0, max_size=3)))
        if command == "explore":
            # first, so that a generated --depth (all small or invalid) still wins
            parts.insert(1, ["--progress", "never", "--depth", "1"])
        if draw(st.integers(0, 9)) == 0:
            parts.append([draw(st.sampled_from(("--bogus", "-", "--", "\x00", "é")))])
        return [a for p in parts for a in p]

    return build()


@pytest.fixture()
def no_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    from anonlib.kernelcheck import check, vm

    def stub(*_a, **_k):  # type: ignore[no-untyped-def]
        raise vm.Unavailable("the fuzz test never boots a VM")

    monkeypatch.setattr(check, "kernel_check", stub)
    monkeypatch.delenv("ANONLIB_DEBUG", raising=False)
    monkeypatch.delenv("CI", raising=False)


@settings(FUZZ, max_examples=EXAMPLES or 100)
@given(data=st.data())
def test_command_lines_exit_0_1_or_2(data: st.DataObject, files, no_vm, monkeypatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = data.draw(argv(files))
    monkeypatch.setattr(sys, "stdin", io.StringIO("spawn P\nP mmap A ²\n"))
    try:
        status = cli.main(args)
    except SystemExit as e:  # argparse: --help, --version, usage errors
        status = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, (args, err[-2000:])
    if args[0] == "kernel-check" and "never boots a VM" in err:
        return  # every input was valid: the run reached the (stubbed) VM
    assert status in (0, 1, 2), (args, status, err[-2000:])
    if status == 2:
        assert err.strip(), (args, "a refusal says why")
