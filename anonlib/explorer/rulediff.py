"""What a rule change changes: two schemes compared on everything the project can run.

:func:`rule_diff` is the report a reviewer of a patch to the kernel's rules
wants in one call (``python -m anonlib diff A B`` on the command line). For
two schemes, named or built in a notebook cell (a ``dataclasses.replace`` of
one, with a decision point changed), it gathers:

* the decision points where they differ (:func:`anonlib.schemes.describe_difference`);
* every scenario of the library whose verdict or reason differs: each file is
  run under both schemes, whatever schemes its header names, and the exit
  status and the reason it stopped are compared;
* the page copies each makes on the copy-count workloads
  (:data:`anonlib.explorer.copies.WORKLOADS`), where they differ;
* in each standard world, the shortest operation sequence after which an
  outcome, or the number of pages copied, differs
  (:func:`anonlib.explorer.compare.compare_schemes`).

The result prints as text and shows as HTML in a notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..scenario.library import find_scenarios
from ..scenario.parser import scheme_named
from ..scenario.runner import run_scenario
from ..scenario.source import read_source
from ..schemes import Scheme, describe_difference
from ..views.markup import esc
from .compare import compare_schemes
from .copies import WORKLOADS, Workload, run_workload
from .results import SchemeComparison

#: (world, depth) for the comparison searches: each a few seconds on one core.
DIFF_WORLDS: tuple[tuple[str, int], ...] = (
    ("base:1", 4), ("thp:4", 3), ("mthp:4", 3), ("hugetlb:2", 4))


@dataclass(frozen=True)
class ScenarioFlip:
    """A library scenario whose run differs: (exit status, why it stopped) under each."""

    path: str
    a: tuple[int, str]
    b: tuple[int, str]


@dataclass(frozen=True)
class CopyFlip:
    """A workload on which the schemes copy a different number of pages."""

    workload: str
    question: str
    a: int | None
    b: int | None


@dataclass
class RuleDiff:
    """Everything :func:`rule_diff` found; ``str()`` is the terminal report."""

    schemes: tuple[str, str]
    decision_points: list[str]
    scenarios_run: int = 0
    scenarios: list[ScenarioFlip] = field(default_factory=list)
    workloads_run: int = 0
    copies: list[CopyFlip] = field(default_factory=list)
    worlds: list[SchemeComparison] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """No scenario, workload or explored sequence tells the two apart."""
        return (not self.scenarios and not self.copies
                and all(c.outcome is None and c.copies is None for c in self.worlds))

    def __str__(self) -> str:
        a, b = self.schemes
        out = [f"rule diff: {a} vs {b}", "", "decision points:"]
        out += [f"  {d}" for d in self.decision_points] or ["  none: the same rules"]
        out += ["", f"library: {len(self.scenarios)} of {self.scenarios_run} scenarios differ"]
        for f in self.scenarios:
            out.append(f"  {f.path}: {a} {_status(f.a)}; {b} {_status(f.b)}")
        out += ["", f"page copies: {len(self.copies)} of {self.workloads_run} workloads differ"]
        for c in self.copies:
            out.append(f"  {c.workload} ({c.question}): {a} {_copies(c.a)}, {b} {_copies(c.b)}")
        for cmp in self.worlds:
            out += ["", str(cmp)]
        return "\n".join(out)

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(str(self))  # type: ignore[attr-defined]  # IPython's pretty printer

    def _repr_html_(self) -> str:
        a, b = (esc(s) for s in self.schemes)
        parts = [f"<div class='anonlib-rulediff'><h4>rule diff: {a} vs {b}</h4>",
                 "<p><b>decision points</b></p><ul>"]
        parts += [f"<li><code>{esc(d)}</code></li>" for d in self.decision_points] or [
            "<li>none: the same rules</li>"]
        parts.append(f"</ul><p><b>library</b>: {len(self.scenarios)} of "
                     f"{self.scenarios_run} scenarios differ</p>")
        if self.scenarios:
            parts.append(f"<table><tr><th>scenario</th><th>{a}</th><th>{b}</th></tr>")
            parts += [f"<tr><td><code>{esc(f.path)}</code></td><td>{esc(_status(f.a))}</td>"
                      f"<td>{esc(_status(f.b))}</td></tr>" for f in self.scenarios]
            parts.append("</table>")
        parts.append(f"<p><b>page copies</b>: {len(self.copies)} of {self.workloads_run} "
                     "workloads differ</p>")
        if self.copies:
            parts.append(f"<table><tr><th>workload</th><th>{a}</th><th>{b}</th></tr>")
            parts += [f"<tr><td>{esc(c.workload)}</td><td>{esc(_copies(c.a))}</td>"
                      f"<td>{esc(_copies(c.b))}</td></tr>" for c in self.copies]
            parts.append("</table>")
        for cmp in self.worlds:
            parts.append(f"<pre>{esc(str(cmp))}</pre>")
        return "".join(parts) + "</div>"


def _status(s: tuple[int, str]) -> str:
    return "exit 0" if s[0] == 0 else f"exit {s[0]} ({s[1]})"


def _copies(n: int | None) -> str:
    return "refused" if n is None else str(n)


def rule_diff(a: str | Scheme, b: str | Scheme,
              library: Sequence[str | Path] = ("scenarios",),
              workloads: Sequence[Workload] = WORKLOADS,
              worlds: Sequence[tuple[str, int]] = DIFF_WORLDS) -> RuleDiff:
    """Compare schemes ``a`` and ``b`` on the library, the workloads and the standard worlds.

    ``library``: scenario files or folders (default ``scenarios``, relative to
    the current directory; an empty list skips the library). ``worlds``:
    (world, depth) pairs for :func:`compare_schemes` (empty: no search).
    Raises :class:`~anonlib.scenario.InputError` for an unknown scheme name.
    """
    sa, sb = scheme_named(a), scheme_named(b)
    res = RuleDiff((sa.name, sb.name), describe_difference(sa, sb))
    for path in find_scenarios(library):
        text = read_source(path).scenario_text
        ra, rb = (run_scenario(text, s, name=str(path), keep_steps=False) for s in (sa, sb))
        res.scenarios_run += 1
        why_a = ra.failures[0].summary() if ra.failures else ""
        why_b = rb.failures[0].summary() if rb.failures else ""
        if (ra.exit_code, why_a) != (rb.exit_code, why_b):
            res.scenarios.append(ScenarioFlip(str(path), (ra.exit_code, why_a),
                                              (rb.exit_code, why_b)))
    for w in workloads:
        ca, cb = run_workload(w.text, sa).copies, run_workload(w.text, sb).copies
        res.workloads_run += 1
        if ca != cb:
            res.copies.append(CopyFlip(w.name, w.question, ca, cb))
    for world, depth in worlds:
        res.worlds.append(compare_schemes(sa, sb, pages=world, depth=depth))
    return res
