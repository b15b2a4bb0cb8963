"""Adding a statement touches its op, its transition and its alphabet rule, nothing else.

``docs/architecture.md`` ("Adding a statement") gives the recipe. This test
follows it for a statement the language does not have, defined here and
nowhere else: ``P populate A[i]``, a read fault that returns nothing (what
``madvise(MADV_POPULATE_READ)`` does for one page, through
``mm/madvise.c:madvise_populate`` in Linux 6.12). Without editing the parser,
the model's dispatch, the explorer, the invariants, the widgets or the kernel
check's plan, the new statement parses (with the parser's errors), prints
back, runs with its invariants checked, is explored as a family of its own,
is labelled in the coverage table, gets a question in the widgets and is
reported as not expressible on the real kernel. The fixture takes it out of
every registry again afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from anonlib import explore, model, run_scenario
from anonlib.explorer import alphabet
from anonlib.mem import Mem
from anonlib.mm import memory
from anonlib.ops import (
    FAULT,
    STATEMENTS,
    Effect,
    Operation,
    PageRef,
    Reader,
    Scope,
    Subject,
    Word,
)
from anonlib.results import Outcome
from anonlib.scenario import ScenarioError, parse
from anonlib.state import Vma


@pytest.fixture
def populate() -> Iterator[type[Operation]]:
    """Register ``P populate A[i]`` (op, transition, alphabet rule); unregister it after."""

    # 1. the op: its syntax, family, scope and flag effect, on its own class
    @dataclass(frozen=True)
    class Populate(Operation):
        """``P populate A[i]``: fault the page in for reading, return nothing."""

        subject = Subject.PROCESS
        verbs = ("populate",)
        families = ("populate",)

        page: PageRef

        @classmethod
        def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Populate:
            (page,) = r.args(tokens, 1, "the page: 'P populate A[0]'", start=2)
            return cls(r.page(page, subject))

        def text(self) -> str:
            return f"{self.page.proc} populate {self.page.mapping}[{self.page.index}]"

        def scope(self) -> Scope:
            return Scope(pages=(self.page,))

        def effect(self) -> Effect:
            return FAULT

    # 2. its transition, calling the kernel function's model
    @model.transition(Populate)
    def _populate(m: Mem, op: Populate) -> Outcome:
        ref = op.page
        if m.proc(ref.proc).vma(ref.mapping) is None:
            return Outcome(memory.SIGSEGV)
        sig = memory.handle_mm_fault(m, ref.proc, ref.mapping, ref.index, False)
        return Outcome(sig) if sig else model.OK

    # 3. its alphabet rule
    @alphabet.page_rule
    def _rule(here: alphabet.Here, v: Vma, ref: PageRef) -> alphabet.Candidates:
        return [("populate", Populate(ref), here.names)] if "populate" in here.fam else []

    try:
        yield Populate
    finally:
        STATEMENTS.remove(Populate)
        del model.TRANSITIONS[Populate]
        alphabet.RULES.page.remove(_rule)


def test_the_new_statement_parses_prints_back_and_runs(populate: type[Operation]) -> None:
    text = ("spawn P\nP mmap A 2\nP populate A[1]\nexpect P A[1] present readonly\n"
            "expect invariants\n")
    sc = parse(text)
    assert not isinstance(sc, ScenarioError), sc
    op = sc.statements[2].action
    assert type(op) is populate and op.text() == "P populate A[1]"
    result = run_scenario(text)
    assert result.status == "ok", result.transcript
    assert "P populate A[1]" in result.transcript


def test_the_parser_reports_its_errors_where_they_are(populate: type[Operation]) -> None:
    e = parse("spawn P\nP mmap A 2\nP populate A[2]\n")
    assert isinstance(e, ScenarioError)
    assert (e.line, e.column) == (3, 14) and "out of range" in e.message
    e = parse("spawn P\nP mmap A 2\nP populate\n")
    assert isinstance(e, ScenarioError)
    assert e.message == "missing the page: 'P populate A[0]'"
    e = parse("spawn P\nP populte A[0]\n")
    assert isinstance(e, ScenarioError)
    assert "did you mean 'populate'?" in e.message and "populate" in e.message
    e = parse("spawn populate\n")
    assert isinstance(e, ScenarioError) and "is a keyword" in e.message


def test_the_explorer_tries_it_and_labels_it(populate: type[Operation]) -> None:
    assert "populate" in alphabet.groups()["process"]
    res = explore(pages="base:1", depth=3, ops="populate,write,fork", processes=2)
    assert res.ok and res.depth_reached == 3
    rows = {row for row, _column, _skipped in res.coverage}
    assert "populate" in rows
    only = explore(pages="base:1", depth=2, ops="populate")
    # the empty mapping, and the zero page mapped by the read fault (a second one changes nothing)
    assert only.states == 2


def test_the_widgets_and_the_kernel_check_read_it_too(populate: type[Operation]) -> None:
    from anonlib.kernelcheck.plan import NOT_EXPRESSIBLE, _Compiler
    from anonlib.views.widgets import question_page

    sc = parse("spawn P\nP mmap A 2\nP populate A[1]\n")
    assert not isinstance(sc, ScenarioError)
    op = sc.statements[2].action
    world = model.initial_world()
    assert question_page(op, world) == PageRef("P", "A", 1)
    assert _Compiler(sc).compile(op) == (None, NOT_EXPRESSIBLE["statement"])


def test_the_registry_is_as_it_was_afterwards() -> None:
    assert "populate" not in alphabet.groups()["process"]
    e = parse("spawn P\nP mmap A 1\nP populate A[0]\n")
    assert isinstance(e, ScenarioError) and "unknown operation 'populate'" in e.message
