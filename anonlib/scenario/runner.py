"""Run a parsed scenario on the model: transcript, expectations, invariants, verdict.

Every operation goes through :func:`anonlib.model.apply`; the runner never
decides anything about memory itself. After each operation it checks the
model's invariants (:func:`anonlib.invariants.check`); a violation stops the
run like a failed expectation. The result keeps the whole trace (statement,
outcome, world after it) for steppers and renderers.

Statuses and exit codes follow the contract: ``ok`` (0), ``failed`` (1: an
expectation or invariant failed, or the model refused a statement the state
does not allow), ``invalid`` (2: the scenario is not valid, found by the
parser, by the scheme check before the run, or by the model at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import invariants, model
from ..ops import Op, PageRef
from ..results import ErrorKind, ModelError, Outcome
from ..schemes import Scheme
from ..state import Config, World
from ..views import render
from ..views.markup import esc
from .parser import parse, scheme_named
from .parser import unknown_scheme as unknown_scheme  # its old home (the explorer imports it here)
from .source import SourceError, clip, decode
from .syntax import (
    KIND_WORDS,
    ExpectInvariants,
    ExpectState,
    InputError,
    Scenario,
    ScenarioError,
    Show,
    Statement,
    StateWord,
)

OK, FAILED, INVALID = "ok", "failed", "invalid"
EXIT_CODES = {OK: 0, FAILED: 1, INVALID: 2}
#: Widest statement column in the transcript; longer statements push their outcome right.
MAX_WIDTH = 40
#: Most characters of a statement or value a failure report quotes (the transcript has all).
MAX_SHOWN = 200

# Every step checks every invariant over the whole state, so a step costs time in
# proportion to what is alive, and a run steps * that. These bounds on what may be
# alive at once make every step's cost bounded, and a run's linear in its length;
# docs/limits.md ("Time and memory") gives the reasons and the numbers.
#: Processes alive at once.
MAX_PROCESSES = 1024
#: Pages mapped at once, summed over every mapping of every process.
MAX_PAGES = 16384
#: GUP references held at once.
MAX_REFERENCES = 4096


class TraceStep(NamedTuple):
    """One executed statement: its outcome (None for checks and ``show``) and the world after it."""

    statement: Statement
    outcome: Outcome | None
    world: World


@dataclass(frozen=True)
class Failure:
    """Why a run did not pass: a failed expectation, a broken invariant, a refused or bad statement.

    ``kind`` is ``expectation``, ``invariant``, ``failed`` (the model refused
    the statement in this state) or ``invalid``.
    """

    kind: str
    name: str
    line: int = 0
    column: int = 0
    statement: str = ""
    message: str = ""
    expected: str = ""
    found: str = ""
    invariant: str = ""
    title: str = ""
    explanation: str = ""
    kernel_source: str = ""
    offenders: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: where the run stopped and why (what verdict tables show)."""
        if self.kind == "invariant":
            return f"line {self.line}: {self.invariant} ({self.title}) violated"
        if self.kind == "expectation":
            return (f"line {self.line}: expected {clip(self.expected, MAX_SHOWN)}, "
                    f"found {clip(self.found, MAX_SHOWN)}")
        return f"line {self.line}: {self.message}" if self.line else self.message

    def __str__(self) -> str:
        if self.kind == INVALID:
            return str(ScenarioError(self.name, self.line, self.column, self.message))
        head = f"{self.name}: line {self.line}: "
        statement = clip(self.statement, MAX_SHOWN)
        if self.kind == "expectation":
            return (
                f"{head}expectation failed: {statement}\n"
                f"  expected: {clip(self.expected, MAX_SHOWN)}\n"
                f"  found:    {clip(self.found, MAX_SHOWN)}"
            )
        if self.kind == "invariant":
            lines = [
                f"{head}invariant {self.invariant} violated after: {statement}",
                f"  {self.invariant}: {self.title}" if self.title else f"  {self.invariant}",
            ]
            if self.explanation:
                lines.append(f"  {self.explanation}")
            if self.kernel_source:
                lines.append(f"  kernel: {self.kernel_source}")
            if self.offenders:
                lines.append(f"  offending: {', '.join(self.offenders)}")
            return "\n".join(lines)
        return f"{head}{statement}: failed: {self.message}"


@dataclass
class ScenarioResult:
    """What running a scenario gives: status, transcript, failures, final world and trace.

    ``str(result)`` is deterministic text (the transcript, the failures and
    the verdict), which is what notebooks print and nbval compares;
    ``_repr_html_`` shows the same as a table.
    """

    name: str
    scheme: str
    status: str = OK
    transcript: str = ""
    failures: list[Failure] = field(default_factory=list)
    world: World | None = None
    initial: World | None = None
    trace: list[TraceStep] = field(default_factory=list)
    scenario: Scenario | None = None
    rows: list[tuple[str, str, str, str]] = field(default_factory=list, repr=False)
    #: What the run's own invariant checks found, by position in ``trace`` (steps the run
    #: checked only): the players reuse it instead of checking every world again.
    checked: dict[int, list[Any]] = field(default_factory=dict, repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def ok(self) -> bool:
        return self.status == OK

    def verdict(self) -> str:
        """The last line of the text form: ``ok``, or how and where the run stopped."""
        if self.status == OK:
            return "result: ok"
        first = self.failures[0] if self.failures else None
        where = f" at line {first.line}" if first is not None and first.line else ""
        return f"result: {self.status}{where} (exit {self.exit_code})"

    def report(self) -> str:
        """The failures, one block each (empty when the run passed)."""
        return "\n".join(str(f) for f in self.failures)

    def __str__(self) -> str:
        parts = [self.transcript] if self.transcript else []
        if self.failures:
            parts.append(self.report())
        parts.append(self.verdict())
        return "\n".join(parts)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        status_color = {OK: "#1a7f37", FAILED: "#b42318", INVALID: "#9a6700"}[self.status]
        out = [
            '<div class="anonlib-scenario">',
            f"<p><b>{esc(self.name)}</b> under scheme <code>{esc(self.scheme)}</code>: "
            f'<b style="color:{status_color}">{esc(self.status)}</b></p>',
            '<table class="anonlib-transcript" style="border-collapse:collapse">',
            "<thead><tr><th>line</th><th>statement</th><th>outcome</th></tr></thead><tbody>",
        ]
        for line, text, outcome, extra in self.rows:
            bad = outcome.startswith("FAILED") or outcome.startswith("INVALID")
            style = ' style="background:#fdecea"' if bad else ""
            out.append(
                f"<tr{style}><td style='text-align:right'>{esc(line)}</td>"
                f"<td><code>{esc(text)}</code></td><td><code>{esc(outcome)}</code></td></tr>"
            )
            if extra:
                # a zero-width box that grows to its cell: a long state scrolls in its own
                # box instead of widening the table and pushing the outcome column out
                out.append("<tr><td></td><td colspan='2'><div style='width:0;min-width:100%;"
                           f"overflow-x:auto'><pre>{esc(extra)}</pre></div></td></tr>")
        out.append("</tbody></table>")
        if self.failures:
            out.append(f"<pre style='color:#b42318'>{esc(self.report())}</pre>")
        out.append(f"<p>{esc(self.verdict())}</p></div>")
        return "\n".join(out)


class _Stop(Exception):
    """Internal: the run stops here (a failure has been recorded)."""


class _Run:
    def __init__(self, scenario: Scenario, scheme: Scheme, trace: bool,
                 keep_steps: bool = True) -> None:
        self.sc = scenario
        self.keep_steps = keep_steps
        self.scheme = scheme
        self.show_trace = trace
        self.result = ScenarioResult(name=scenario.name, scheme=scheme.name, scenario=scenario)
        self.lines: list[str] = []
        self.width = min(MAX_WIDTH, max((len(s.text) for s in scenario.statements), default=0))
        self.world: World = model.initial_world(scenario.config)
        self.result.initial = self.world

    # ------------------------------------------------------------ transcript

    def _emit(self, st: Statement, outcome: str, extra: str = "") -> None:
        arrow = f"  -> {outcome}" if outcome else ""
        self.lines.append(f"{st.line:>3}  {st.text:<{self.width}}{arrow}".rstrip())
        if extra:
            self.lines.extend(("       " + x).rstrip() for x in extra.splitlines())
        if self.keep_steps:
            self.result.rows.append((str(st.line), st.text, outcome, extra))

    def _step(self, st: Statement, outcome: Outcome | None, checked: list[Any] | None = None
              ) -> None:
        """Record a step in the trace (and what checking its world found, where it was)."""
        if not self.keep_steps:
            return
        if checked is not None:
            self.result.checked[len(self.result.trace)] = checked
        self.result.trace.append(TraceStep(st, outcome, self.world))

    def _fail(self, failure: Failure) -> None:
        self.result.failures.append(failure)
        self.result.status = INVALID if failure.kind == INVALID else FAILED
        raise _Stop

    def _invalid(self, st: Statement, column: int, message: str) -> None:
        self._fail(Failure(INVALID, self.sc.name, st.line, column, st.text, message))

    def _model_error(self, st: Statement, err: ModelError) -> None:
        if err.kind is ErrorKind.INVALID:
            self._emit(st, "INVALID")
            self._invalid(st, st.column, err.message)
        self._emit(st, "FAILED")
        self._fail(Failure(FAILED, self.sc.name, st.line, st.column, st.text, err.message))

    # ------------------------------------------------------------ the run

    def run(self) -> ScenarioResult:
        header = f"# scheme {self.scheme.name}"
        if self.sc.scheme is not None and self.sc.scheme != self.scheme.name:
            header += f" (instead of {self.sc.scheme}, line {self.sc.scheme_line})"
        self.lines.append(header)
        if self.sc.bom:
            self.lines.append("# note: the text starts with a UTF-8 byte-order mark (ignored)")
        if self.sc.config != Config():
            c = self.sc.config
            mthp = ("" if c.mthp_pages == Config().mthp_pages else
                    " mthp_pages=" + ":".join(str(n) for n in c.mthp_pages))
            self.lines.append(
                f"# config thp_pages={c.thp_pages} hugetlb_pages={c.hugetlb_pages} "
                f"swap_slots={c.swap_slots}{mthp}"
            )
        try:
            self._static_checks()
            for st in self.sc.statements:
                self._statement(st)
        except _Stop:
            pass
        self.result.transcript = "\n".join(self.lines)
        self.result.world = self.world
        return self.result

    def _static_checks(self) -> None:
        """What the scheme makes invalid before anything runs."""
        if self.scheme.anon_exclusive:
            return
        for st in self.sc.statements:
            if isinstance(st.action, ExpectState):
                for w in st.action.words:
                    if w.word in ("exclusive", "shared"):
                        self._invalid(
                            st,
                            w.column,
                            f"'{w.word}' is undefined under scheme {self.scheme.name}, which has "
                            "no PG_anon_exclusive",
                        )

    def _statement(self, st: Statement) -> None:
        action = st.action
        if isinstance(action, Show):
            if action.page is None:
                text = render.world_text(self.world, self.scheme)
            else:
                text = render.page_text(self.world, self.scheme, action.page)
            self._emit(st, "", text)
            self._step(st, None)
        elif isinstance(action, ExpectInvariants):
            violations = invariants.check(self.world, self.scheme)
            if violations:
                self._emit(st, "FAILED")
                self._violations(st, violations)
            self._emit(st, "hold")
            self._step(st, None, violations)
        elif isinstance(action, ExpectState):
            self._expect_state(st, action)
            self._step(st, None)
        else:
            self._op(st, action)

    def _op(self, st: Statement, op: Op) -> None:
        before = self.world
        step = model.apply(before, op, self.scheme)
        if isinstance(step, ModelError):
            self._model_error(st, step)
            return
        if op.new_names():  # a process, mapping or reference more: within the limits?
            over = _over_limit(step.world)
            if over:
                self._emit(st, "INVALID")
                self._invalid(st, st.column, over)
        self.world = step.world
        outcome = step.outcome
        self._step(st, outcome)
        extra = render.world_text(self.world, self.scheme) if self.show_trace else ""
        failed = st.expect is not None and outcome.word != st.expect
        self._emit(st, str(outcome) + (f"   FAILED: expected {st.expect}" if failed else ""), extra)
        if failed:
            self._fail(
                Failure(
                    "expectation",
                    self.sc.name,
                    st.line,
                    st.expect_column,
                    st.text,
                    expected=st.expect or "",
                    found=str(outcome),
                )
            )
        violations = invariants.check(self.world, self.scheme, before=before, op=op)
        if self.keep_steps:
            self.result.checked[len(self.result.trace) - 1] = violations
        if violations:
            self._violations(st, violations)

    def _violations(self, st: Statement, violations: list[Any]) -> None:
        for v in violations:
            inv = v.invariant
            self.lines.append(f"       !! invariant {inv.id} violated: {inv.title}")
            self.result.failures.append(
                Failure(
                    "invariant",
                    self.sc.name,
                    st.line,
                    st.column,
                    st.text,
                    invariant=inv.id,
                    title=inv.title,
                    explanation=inv.statement,
                    kernel_source=inv.kernel_source,
                    offenders=tuple(str(o) for o in v.offenders),
                )
            )
        self.result.status = FAILED
        raise _Stop

    # ------------------------------------------------------------ state words

    def _page_state(self, st: Statement, page: PageRef, column: int) -> Any:
        ps = model.page_state(self.world, self.scheme, page)
        if isinstance(ps, ModelError):
            if ps.kind is ErrorKind.INVALID:
                self._emit(st, "INVALID")
                self._invalid(st, column, ps.message)
            self._emit(st, "FAILED")
            self._fail(Failure(FAILED, self.sc.name, st.line, column, st.text, ps.message))
        return ps

    def _expect_state(self, st: Statement, check: ExpectState) -> None:
        ps = self._page_state(st, check.page, st.column)
        wrong: list[str] = []
        others: dict[PageRef, Any] = {}
        for w in check.words:
            if w.other is not None:
                others[w.other] = self._page_state(st, w.other, w.column)
            holds = self._word(st, w, ps, others.get(w.other) if w.other else None)
            if not holds:
                wrong.append(str(w))
        if not wrong:
            self._emit(st, "holds")
            return
        found = describe(ps)
        for w in check.words:
            if w.other is not None:
                other = others[w.other]
                same = ps.page is not None and ps.page == other.page
                found += f"; {'same page as' if same else 'not the same page as'} {w.other}"
        self._emit(st, f"FAILED: found {found}")
        self._fail(
            Failure(
                "expectation",
                self.sc.name,
                st.line,
                st.column,
                st.text,
                expected=" ".join(str(w) for w in check.words),
                found=found,
            )
        )

    def _word(self, st: Statement, w: StateWord, ps: Any, other: Any) -> bool:
        word = w.word
        if word == "same-page":
            return ps.page is not None and other is not None and ps.page == other.page
        if word == "pmd":
            return bool(ps.pmd)
        if word in KIND_WORDS:
            return bool(ps.kind == word)
        attr = {
            "writable": "writable",
            "readonly": "writable",
            "exclusive": "exclusive",
            "shared": "exclusive",
            "pinned": "pinned",
            "unpinned": "pinned",
        }[word]
        value = getattr(ps, attr)
        if value is None:
            self._emit(st, "INVALID")
            under = f" under scheme {self.scheme.name}" if attr == "exclusive" else ""
            self._invalid(
                st,
                w.column,
                f"'{word}' is undefined for {describe_kind(ps)}{under} (found {describe(ps)})",
            )
        return bool(value) if word in ("writable", "exclusive", "pinned") else not value


def _over_limit(world: World) -> str:
    """What ``world`` has more of than a scenario may have alive at once, or ``""``."""
    where = "; see docs/limits.md"
    if len(world.procs) > MAX_PROCESSES:
        return (f"too many processes: {len(world.procs):,} alive at once, a scenario may "
                f"have {MAX_PROCESSES:,}{where}")
    pages = sum(v.npages for p in world.procs for v in p.vmas)
    if pages > MAX_PAGES:
        return (f"too much memory mapped: {pages:,} pages over all processes at once, a "
                f"scenario may map {MAX_PAGES:,}{where}")
    if len(world.handles) > MAX_REFERENCES:
        return (f"too many references: {len(world.handles):,} held at once, a scenario may "
                f"hold {MAX_REFERENCES:,}{where}")
    return ""


def describe_kind(ps: Any) -> str:
    """``a swap entry``, ``a PMD entry``, ``no entry``..."""
    if ps.kind == "none":
        return "no entry"
    kind = "present PMD" if ps.kind == "present" and ps.pmd else ps.kind
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind} entry"


def describe(ps: Any) -> str:
    """A page state in state words: ``present pmd writable exclusive unpinned``."""
    words = [ps.kind]
    if ps.pmd:
        words.append("pmd")
    for attr, yes, no in (
        ("writable", "writable", "readonly"),
        ("exclusive", "exclusive", "shared"),
        ("pinned", "pinned", "unpinned"),
    ):
        value = getattr(ps, attr)
        if value is not None:
            words.append(yes if value else no)
    return " ".join(words)


def resolve_scheme(scheme: str | Scheme | None, scenario: Scenario) -> Scheme | str:
    """The scheme to run under (the argument wins over the file), or an error message."""
    try:
        return scheme_named(scheme if scheme is not None else scenario.scheme or "mainline")
    except InputError as e:
        return str(e)


def run(
    scenario: Scenario | ScenarioError,
    scheme: str | Scheme | None = None,
    *,
    trace: bool = False,
    keep_steps: bool = True,
) -> ScenarioResult:
    """Run a parsed scenario (a parse error gives an ``invalid`` result).

    ``keep_steps=False`` keeps no per-step record (``trace``, ``rows``,
    ``checked``: what the players and the HTML table need), only the text,
    the failures and the final world: memory that does not grow with the
    number of steps beyond the transcript, for callers that print the text.
    """
    if isinstance(scenario, ScenarioError):
        name = scheme.name if isinstance(scheme, Scheme) else scheme or "mainline"
        if not isinstance(name, str):
            name = "?"
        result = ScenarioResult(name=scenario.name, scheme=name, status=INVALID)
        result.failures.append(
            Failure(INVALID, scenario.name, scenario.line, scenario.column, "", scenario.message)
        )
        return result
    chosen = resolve_scheme(scheme, scenario)
    if isinstance(chosen, str):
        label = clip(scheme) if isinstance(scheme, str) else "?"
        result = ScenarioResult(name=scenario.name, scheme=label, status=INVALID)
        result.failures.append(Failure(INVALID, scenario.name, message=chosen))
        return result
    return _Run(scenario, chosen, trace, keep_steps).run()


def run_scenario(
    text: str | bytes,
    scheme: str | Scheme | None = None,
    *,
    name: str = "<scenario>",
    trace: bool = False,
    keep_steps: bool = True,
) -> ScenarioResult:
    """Parse and run scenario ``text``; ``scheme`` overrides its ``scheme`` line.

    ``text`` is a string, or UTF-8 bytes (as a file holds them; see
    :func:`anonlib.scenario.source.decode`). Returns a :class:`ScenarioResult`
    whatever the scenario says: a syntax error, an unknown name, text that is
    not a string or not UTF-8, or an operation the scheme lacks gives status
    ``invalid`` (exit code 2), a failed expectation or invariant ``failed``
    (1). It raises only if the model itself has a bug.
    """
    if not isinstance(name, str):
        name = "<scenario>"
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = decode(bytes(text), name).scenario_text
        except SourceError as e:
            return run(ScenarioError(name, e.line, e.column, e.message), scheme)
    if not isinstance(text, str):
        message = f"a scenario is text (str or UTF-8 bytes), not {type(text).__name__}"
        return run(ScenarioError(name, 0, 0, message), scheme)
    return run(parse(text, name), scheme, trace=trace, keep_steps=keep_steps)
