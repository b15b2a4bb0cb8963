"""Run one scenario under several kernel eras and put the verdicts side by side.

The "what if" of every chapter: the same statements, a different scheme. The
text form is deterministic (nbval compares it); the HTML form is a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..scenario.parser import scheme_named, unknown_scheme
from ..scenario.runner import ScenarioResult, run_scenario
from ..scenario.syntax import InputError
from ..schemes import SCHEMES
from .markup import esc


@dataclass(frozen=True)
class Comparison:
    """Results of one scenario under several schemes, in the order asked for."""

    results: tuple[ScenarioResult, ...]

    def __getitem__(self, scheme: str) -> ScenarioResult:
        for r in self.results:
            if r.scheme == scheme:
                return r
        raise KeyError(scheme)

    def verdicts(self) -> dict[str, int]:
        """Scheme name -> exit status (0 ok, 1 failed, 2 invalid)."""
        return {r.scheme: r.exit_code for r in self.results}

    def _why(self, r: ScenarioResult) -> str:
        if r.ok:
            return "every expectation and invariant held"
        return r.failures[0].summary()

    def __str__(self) -> str:
        width = max(len(r.scheme) for r in self.results)
        return "\n".join(f"{r.scheme:<{width}}  exit {r.exit_code}  {self._why(r)}"
                         for r in self.results)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # p: IPython's PrettyPrinter
        p.text(str(self))

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr><td><code>{}</code></td><td style='text-align:center;{}'>{}</td>"
            "<td>{}</td></tr>".format(
                esc(r.scheme),
                "background:#d9f0d3" if r.ok else "background:#f6d5c8",
                "ok" if r.ok else f"exit {r.exit_code}",
                esc(self._why(r)))
            for r in self.results)
        return ("<table class='anonlib-compare'><thead><tr><th>scheme</th><th>verdict</th>"
                f"<th>why</th></tr></thead><tbody>{rows}</tbody></table>")


def compare(text: str | bytes, schemes: str | tuple[str, ...] | list[str] | None = None,
            name: str = "<scenario>") -> Comparison:
    """Run ``text`` under each scheme (default: all of them), overriding its ``scheme`` line.

    ``schemes`` is a list of names, or one name. Raises
    :class:`~anonlib.scenario.InputError` for an empty list, a name that is not
    a scheme (with the nearest one), or a scheme named twice; the scenario
    itself is never an error (an invalid one gives exit 2 in every row).
    """
    if schemes is None:
        names: tuple[str, ...] = tuple(SCHEMES)
    elif isinstance(schemes, str):
        names = (schemes,)
    elif isinstance(schemes, (list, tuple)):
        names = tuple(schemes)
    else:
        raise InputError("schemes is a list of scheme names (or one name), not "
                         f"{type(schemes).__name__}")
    if not names:
        raise InputError(f"compare needs at least one scheme; schemes: {', '.join(SCHEMES)}")
    for s in names:
        if not isinstance(s, str):  # a name: the rows are named by it
            raise InputError(unknown_scheme(s))
        scheme_named(s)
    twice = sorted({s for s in names if names.count(s) > 1})
    if twice:
        raise InputError(f"scheme {twice[0]!r} is named twice")
    return Comparison(tuple(run_scenario(text, scheme=s, name=name) for s in names))
