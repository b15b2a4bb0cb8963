"""The scenario library's verdicts: every ``.scn`` file states its exit status per scheme.

Like the litmus tests of the kernel's memory model, each library file carries
its expected verdicts in a header comment::

    # expect: mainline=0 page-count=1:INV-11 legacy-mapcount=1:expect

(``0`` every expectation and invariant held, ``1`` one failed, ``2`` the
scenario is not valid under that scheme). A status may name why the run
stops: an invariant id (``1:INV-12``) or ``expect`` (an expectation failed),
so that a right status reached for a wrong reason is caught too. :func:`check` runs every file under
every scheme its header names and reports each verdict; a verdict that
differs from the header means the model changed what it says about that
scenario.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..schemes import SCHEMES
from .parser import split_lines
from .runner import ScenarioResult, run_scenario
from .source import read_source

EXPECT_RE = re.compile(r"#\s*expect:(.*)")
ITEM_RE = re.compile(r"([a-z0-9.-]+)=([0-9]{1,9})(?::(INV-[0-9]+|expect))?")


@dataclass(frozen=True)
class Verdict:
    """One file under one scheme: what its header expects and what the run gave."""

    path: str
    scheme: str
    expected: int
    got: int
    why: str = ""
    expected_reason: str = ""  # the header's reason, if it names one
    reason: str = ""  # why the run stopped: an invariant id or "expect"

    @property
    def differs(self) -> bool:
        if self.expected != self.got:
            return True
        return bool(self.expected_reason) and self.expected_reason != self.reason


def read_expectations(text: str) -> dict[str, int] | str:
    """The ``# expect:`` header as {scheme: exit status}, or what is wrong with it."""
    found: dict[str, int] = {}
    for lineno, line in enumerate(split_lines(text), start=1):
        m = EXPECT_RE.fullmatch(line.strip())
        if m is None:
            continue
        if found:
            return f"line {lineno}: a second '# expect:' line"
        for item in m.group(1).split():
            im = ITEM_RE.fullmatch(item)
            if im is None:
                return f"line {lineno}: expected SCHEME=STATUS, not {item!r}"
            scheme, status = im.group(1), int(im.group(2))
            if scheme not in SCHEMES:
                return f"line {lineno}: unknown scheme {scheme!r}"
            if status not in (0, 1, 2):
                return f"line {lineno}: {scheme}={status}: a status is 0, 1 or 2"
            if im.group(3) and status != 1:
                return f"line {lineno}: {item}: only a failing run (status 1) has a reason"
            if scheme in found:
                return f"line {lineno}: {scheme} is listed twice"
            found[scheme] = status
        if not found:
            return f"line {lineno}: '# expect:' lists no scheme"
    return found or "no '# expect: SCHEME=STATUS ...' line"


def read_reasons(text: str) -> dict[str, str]:
    """The reasons the ``# expect:`` header names, {scheme: "INV-n" or "expect"}."""
    for line in split_lines(text):
        m = EXPECT_RE.fullmatch(line.strip())
        if m is not None:
            return {im.group(1): im.group(3) for item in m.group(1).split()
                    if (im := ITEM_RE.fullmatch(item)) is not None and im.group(3)}
    return {}


def _reason(r: ScenarioResult) -> str:
    if not r.failures:
        return ""
    f = r.failures[0]
    return f.invariant if f.kind == "invariant" else ("expect" if f.kind == "expectation"
                                                      else f.kind)


#: cow.c's runs on the mTHP sizes above 16 kB (``scenarios/cow/*-mthp-32kb.scn`` to
#: ``-1024kb``, tools/gen_cow_scenarios.py): 504 files on folios of up to 256 pages, the same
#: steps as the 16 kB files. The real cow.c checks them (selftests-check); the kernel check's
#: ``--all`` and the tests that walk the library step by step leave them out.
SIZE_VARIANTS = "*-mthp-*kb.scn"


def is_size_variant(path: Path) -> bool:
    """Whether ``path`` is one of cow.c's mTHP size variants above 16 kB."""
    return path.match(SIZE_VARIANTS)


def find_scenarios(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.scn`` files named, or found under the directories named, in a stable order."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.rglob("*.scn")) if p.is_dir() else [p])
    return out


def _why(r: ScenarioResult) -> str:
    return r.failures[0].summary() if r.failures else ""


def check_file(path: Path) -> list[Verdict] | str:
    """Run one file under each scheme of its header (or say why its header is unusable).

    Raises :class:`~anonlib.scenario.source.SourceError` if the file cannot be read.
    """
    source = read_source(path)
    text = source.text
    expected = read_expectations(text)
    if isinstance(expected, str):
        return expected
    reasons = read_reasons(text)
    verdicts = []
    for scheme, status in expected.items():
        r = run_scenario(source.scenario_text, scheme, name=str(path))
        verdicts.append(Verdict(str(path), scheme, status, r.exit_code, _why(r),
                                reasons.get(scheme, ""), _reason(r)))
    return verdicts


def table(verdicts: Iterable[Verdict]) -> str:
    """A plain-text table: file, scheme, expected, got, and why the run stopped."""
    rows = [("file", "scheme", "expected", "got", "why")]
    rows += [(v.path, v.scheme,
              f"{v.expected}:{v.expected_reason}" if v.expected_reason else str(v.expected),
              f"{v.got}:{v.reason}" if v.expected_reason and v.reason else str(v.got), v.why)
             for v in verdicts]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ).rstrip()
