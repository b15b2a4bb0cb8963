"""What the book's scenario lab runs in the reader's browser (Pyodide), in plain Python.

The lab page (``book/lab.md``, its script in ``book/_assets/lab/``) starts a
Web Worker that loads Pyodide and this package, then calls these functions
with the editor's text and the chosen schemes, and shows what they return.
They are ordinary Python, tested under CPython (``tests/test_lab.py``), and
need neither matplotlib nor a kernel:

* :func:`run`: for each scheme, exactly what ``python -m anonlib run FILE
  [--scheme NAME]`` prints (standard output and standard error in the order
  a terminal shows them) and its exit status, next to the chapters' player
  of the same run, its states drawn as SVG;
* :func:`explore`: ``python -m anonlib explore ...``'s output, a progress
  line through a callback, and the counterexample as scenario text;
* :func:`library`, :func:`schemes`, :func:`families`: the lab's menus (the
  book's example scenarios, the kernel eras, what ``--ops`` takes);
* :func:`cli`: any command line, its output and status.

The scenario is run from a file, as the command line runs it: a library
example left unchanged from its own path (``scenarios/...``, so messages
name it as the command line does from the repository's top level), an
edited text from ``lab.scn``.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..scenario.library import find_scenarios, read_expectations
from ..scenario.runner import run_scenario
from ..scenario.syntax import InputError
from ..schemes import SCHEMES
from .compare import compare
from .player import static_player

#: Where an edited scenario is written before it is run.
EDITED = "lab.scn"


class _Progress(io.StringIO):
    """Standard error that hands the explorer's progress line (``\\r...``) to a callback."""

    def __init__(self, out: io.StringIO, report: Callable[[str], Any] | None) -> None:
        super().__init__()
        self.out = out
        self.report = report

    def write(self, s: str) -> int:
        if s.startswith("\r"):
            if self.report is not None:
                self.report(s.strip("\r ").rstrip())
            return len(s)
        return self.out.write(s)

    def isatty(self) -> bool:
        return False


def cli(argv: list[str], progress: Callable[[str], Any] | None = None) -> tuple[str, int]:
    """``python -m anonlib ARGV``: everything it prints (stdout and stderr, in order), status."""
    from ..cli import main

    out = io.StringIO()
    err = _Progress(out, progress)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse's errors and --help
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return out.getvalue(), status


def scenario_path(text: str, name: str = "") -> str:
    """The file to run: ``name`` when it holds ``text`` already (a library example), else
    :data:`EDITED`, written with ``text``."""
    if name and name != EDITED:
        p = Path(name)
        try:
            if p.is_file() and p.read_text("utf-8") == text:
                return name
        except (OSError, UnicodeDecodeError):
            pass
    Path(EDITED).write_text(text, "utf-8")
    return EDITED


def run(text: str, schemes: list[str] | tuple[str, ...] = (), name: str = "",
        player: bool = True) -> dict[str, Any]:
    """Run ``text`` as ``python -m anonlib run`` does, once per scheme (none: the file's).

    Returns ``{"file", "runs": [{"scheme", "argv", "output", "status", "player"}],
    "compare"}``: ``output`` is the command line's text, ``player`` the
    chapters' step-by-step player (HTML, SVG states; empty for a scenario
    that is not valid, whose error the output shows), ``compare`` the
    verdicts side by side (``anonlib.compare``; with two schemes or more).
    """
    path = scenario_path(text, name)
    runs = []
    for scheme in list(schemes) or [""]:
        argv = ["run", path] + (["--scheme", scheme] if scheme else [])
        output, status = cli(argv)
        html = ""
        if player and status != 2:
            result = run_scenario(text, scheme or None, name=path)
            html = static_player(result, source=text, view="both", drawing="svg")
        runs.append({"scheme": scheme or "", "argv": argv, "output": output,
                     "status": status, "player": html})
    table = ""
    if len(schemes) > 1:
        try:
            table = str(compare(text, list(schemes), name=path))
        except InputError:  # a scheme that is not one: each run's output says so
            table = ""
    return {"file": path, "runs": runs, "compare": table}


def explore(scheme: str = "mainline", pages: str = "base:1", depth: int = 4,
            ops: str = "all", processes: int = 2,
            progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """``python -m anonlib explore`` with these options; its output, status and counterexample.

    ``counterexample`` is the shortest failing scenario as a runnable text
    (empty when every invariant held), the part of the output before the
    ``#`` summary lines.
    """
    argv = ["explore", "--scheme", scheme, "--pages", pages, "--depth", str(depth),
            "--ops", ops, "--processes", str(processes), "--progress", "always"]
    output, status = cli(argv, progress)
    counterexample = ""
    if status == 1:
        lines = output.splitlines(keepends=True)
        body: list[str] = []
        for line in lines:
            if line.startswith("# ") and body and not body[-1].strip():
                break
            body.append(line)
        counterexample = "".join(body).rstrip("\n") + "\n"
    return {"argv": argv, "output": output, "status": status,
            "counterexample": counterexample}


def library(root: str = "scenarios") -> list[dict[str, str]]:
    """The example scenarios: ``{"path", "group", "text", "expect"}`` in the library's order."""
    out = []
    for p in find_scenarios([root]):
        text = p.read_text("utf-8")
        exp = read_expectations(text)
        expect = " ".join(f"{k}={v}" for k, v in exp.items()) if isinstance(exp, dict) else ""
        out.append({"path": p.as_posix(), "group": p.parent.as_posix(), "text": text,
                    "expect": expect})
    return out


def schemes() -> list[dict[str, str]]:
    """The schemes, in the order ``python -m anonlib schemes`` lists them: name and summary."""
    return [{"name": name, "summary": f"{s.versions}: {s.description.split(chr(10))[0]}"}
            for name, s in SCHEMES.items()]


def families() -> str:
    """What ``--ops`` takes: the operation families and the groups of them, as one line."""
    from ..explorer.alphabet import groups
    from ..ops import STATEMENTS

    return (f"families: {', '.join(STATEMENTS.families())}; groups: {', '.join(groups())}; "
            "-NAME leaves one out (all,-poison)")


def python_version() -> str:
    """The interpreter's version (the lab shows which Python runs it)."""
    return sys.version.split()[0]
