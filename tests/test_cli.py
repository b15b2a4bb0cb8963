"""``python -m anonlib``: exit statuses, stdin, --trace, messages, and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anonlib import cli

ROOT = Path(__file__).resolve().parent.parent

OK = "spawn P\nP mmap A 1\nP write A[0] 1\nP fork Q\nQ read A[0] expect 1\n"
CVE = (
    "spawn P\nP mmap A 1\nP write A[0] 1\nP fork Q\nQ get A[0] ro as H\nQ munmap A\n"
    "P write A[0] secret\nH read expect 1\n"
)
BAD = "spawn P\nP mmap A 1\nP read B[0]\n"


def anonlib(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ANONLIB_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "anonlib", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in {"ok.scn": OK, "cve.scn": CVE, "bad.scn": BAD}.items():
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def test_exit_0_when_everything_holds(files: dict[str, Path]) -> None:
    p = anonlib("run", str(files["ok.scn"]))
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert p.stdout.splitlines()[0] == "# scheme mainline"
    assert "  5  Q read A[0] expect 1  -> 1" in p.stdout
    assert p.stdout.rstrip().endswith("result: ok")


def test_exit_1_names_the_line_and_the_invariant(files: dict[str, Path]) -> None:
    p = anonlib("run", "--scheme", "legacy-mapcount", str(files["cve.scn"]))
    assert p.returncode == 1
    assert p.stderr.startswith(f"{files['cve.scn']}: line 7: invariant INV-12 violated after: ")
    assert "isolation" in p.stderr and "offending: " in p.stderr
    assert p.stdout.rstrip().endswith("result: failed at line 7 (exit 1)")


def test_exit_1_for_a_failed_expectation(tmp_path: Path) -> None:
    f = tmp_path / "e.scn"
    f.write_text("spawn P\nP mmap A 1\nP read A[0] expect 7\n")
    p = anonlib("run", str(f))
    assert p.returncode == 1
    assert p.stderr == (
        f"{f}: line 3: expectation failed: P read A[0] expect 7\n  expected: 7\n  found:    0\n"
    )


def test_exit_2_names_file_line_and_column(files: dict[str, Path]) -> None:
    p = anonlib("run", str(files["bad.scn"]))
    assert p.returncode == 2
    message = "line 3, column 8: unknown mapping 'B'; mappings of P: A"
    assert p.stderr == f"{files['bad.scn']}: {message}\n"


def test_stdin(files: dict[str, Path]) -> None:
    p = anonlib("run", "-", stdin=BAD)
    assert p.returncode == 2
    assert p.stderr.startswith("<stdin>: line 3, column 8: ")
    p = anonlib("run", "-", stdin=OK)
    assert p.returncode == 0 and "result: ok" in p.stdout


def test_trace_prints_the_state(files: dict[str, Path]) -> None:
    plain = anonlib("run", str(files["ok.scn"])).stdout
    traced = anonlib("run", "--trace", str(files["ok.scn"])).stdout
    assert "process Q" not in plain
    assert "process Q" in traced and traced.count("process P") == 5


def test_scheme_overrides_the_file(tmp_path: Path) -> None:
    f = tmp_path / "s.scn"
    f.write_text("scheme legacy-mapcount\n" + CVE)
    assert anonlib("run", str(f)).returncode == 1
    assert anonlib("run", "--scheme", "mainline", str(f)).returncode == 0


def test_unknown_scheme_option_is_a_usage_error(files: dict[str, Path]) -> None:
    p = anonlib("run", "--scheme", "nope", str(files["ok.scn"]))
    assert p.returncode == 2
    assert "unknown scheme 'nope'" in p.stderr


def test_several_files_give_the_worst_status(files: dict[str, Path]) -> None:
    p = anonlib("run", str(files["ok.scn"]), "--scheme", "legacy-mapcount", str(files["cve.scn"]))
    assert p.returncode == 1
    assert f"==> {files['ok.scn']} <==" in p.stdout and f"==> {files['cve.scn']} <==" in p.stdout
    p = anonlib("run", str(files["cve.scn"]), str(files["bad.scn"]), str(files["ok.scn"]))
    assert p.returncode == 2


def test_a_missing_file(tmp_path: Path) -> None:
    p = anonlib("run", str(tmp_path / "nope.scn"))
    assert p.returncode == 2
    assert p.stderr == f"{tmp_path / 'nope.scn'}: cannot read: No such file or directory\n"


def test_help_teaches() -> None:
    p = anonlib("--help")
    assert p.returncode == 0
    for word in ("run", "verdicts", "schemes", "examples:"):
        assert word in p.stdout
    p = anonlib("run", "--help")
    assert p.returncode == 0
    for word in ("examples:", "exit status:", "H read expect 1", "legacy-mapcount", "'-'"):
        assert word in p.stdout


def test_every_file_named_in_the_help_exists() -> None:
    import re

    text = anonlib("--help").stdout + anonlib("run", "--help").stdout
    text += anonlib("verdicts", "--help").stdout
    paths = set(re.findall(r"scenarios/[\w./-]+", text))
    assert paths
    for p in paths:
        assert (ROOT / p).exists(), p


def test_no_command_prints_usage_and_exits_2() -> None:
    p = anonlib()
    assert p.returncode == 2 and "usage:" in p.stderr


def test_unknown_options_are_usage_errors(files: dict[str, Path]) -> None:
    for args in (["run", str(files["ok.scn"]), "--frobnicate"], ["schemes", "--frob"]):
        p = anonlib(*args)
        assert p.returncode == 2 and "unrecognized arguments" in p.stderr


def test_schemes_command() -> None:
    p = anonlib("schemes")
    assert p.returncode == 0
    for name in ("mainline", "no-swp-exclusive", "page-count", "gup-cow-break", "head-only"):
        assert f"\n{name}: " in "\n" + p.stdout
    assert "differs from mainline: swp_exclusive" in p.stdout
    assert anonlib("schemes", "page-count").stdout.startswith("page-count: 5.9 to 5.17")
    p = anonlib("schemes", "nope")
    assert p.returncode == 2 and "unknown scheme 'nope'" in p.stderr


def test_verdicts_command(tmp_path: Path) -> None:
    good = tmp_path / "lib" / "good.scn"
    good.parent.mkdir()
    good.write_text("# expect: mainline=0 legacy-mapcount=1\n" + CVE)
    p = anonlib("verdicts", str(tmp_path / "lib"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "1 files, 2 runs, 0 verdicts differ\n"
    wrong = tmp_path / "lib" / "wrong.scn"
    wrong.write_text("# expect: mainline=1 page-count=0\n" + CVE)
    p = anonlib("verdicts", str(tmp_path / "lib"))
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["file", "scheme", "expected", "got", "why"]
    assert lines[1].split() == [str(wrong), "mainline", "1", "0"]
    assert lines[-1] == "2 files, 4 runs, 1 verdicts differ"
    (tmp_path / "lib" / "nohdr.scn").write_text(OK)
    p = anonlib("verdicts", str(tmp_path / "lib"))
    assert p.returncode == 2
    assert "nohdr.scn: no '# expect: SCHEME=STATUS ...' line" in p.stderr


def test_an_internal_error_is_one_line_and_exit_70(capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: object) -> int:
        raise RuntimeError("kaboom")

    cmd = cli.register(cli.Command("boom-for-test", "raises", lambda p: None, boom))
    try:
        os.environ.pop("ANONLIB_DEBUG", None)
        assert cli.main(["boom-for-test"]) == cli.EXIT_INTERNAL
        err = capsys.readouterr().err
        assert err.startswith("anonlib: internal error: RuntimeError: kaboom\n")
        assert "Traceback" not in err
    finally:
        del cli.COMMANDS[cmd.name]


def test_a_command_name_registers_once() -> None:
    cmd = cli.Command("twice-for-test", "x", lambda p: None, lambda a: 0)
    cli.register(cmd)
    try:
        with pytest.raises(ValueError, match="already registered"):
            cli.register(cli.Command("twice-for-test", "y", lambda p: None, lambda a: 0))
    finally:
        del cli.COMMANDS[cmd.name]


def test_main_returns_the_status_in_process(files: dict[str, Path]) -> None:
    assert cli.main(["run", str(files["ok.scn"])]) == 0
    assert cli.main(["run", str(files["bad.scn"])]) == 2
