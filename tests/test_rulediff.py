"""``python -m anonlib diff`` / :func:`rule_diff`: what a rule change changes."""

from __future__ import annotations

import dataclasses

import pytest

from anonlib import cli
from anonlib.explorer.rulediff import rule_diff
from anonlib.schemes import MAINLINE

LIB = ["scenarios/history"]


def test_a_scheme_against_itself_differs_nowhere() -> None:
    r = rule_diff("mainline", "mainline", library=LIB, worlds=[("base:1", 2)])
    assert r.same and r.decision_points == [] and r.scenarios_run > 10
    assert "none: the same rules" in str(r)


def test_the_swap_bit_flips_the_o_direct_cases_and_copies_a_page_more() -> None:
    r = rule_diff("mainline", "no-swp-exclusive", library=LIB, worlds=[("base:1", 3)])
    assert not r.same
    assert r.decision_points == ["swp_exclusive: mainline=True no-swp-exclusive=False"]
    flipped = {f.path.rsplit("/", 1)[1] for f in r.scenarios}
    assert flipped == {"b04-o-direct-swap.scn", "b04-o-direct-swap-read-first.scn"}
    assert all(f.a[0] == 0 and f.b[0] == 1 for f in r.scenarios)
    assert [(c.workload, c.a, c.b) for c in r.copies] == [("swap-foll-get", 0, 1)]
    (world,) = r.worlds
    assert world.copies is not None and len(world.copies.ops) == 3


def test_a_scheme_built_in_a_cell_is_judged_like_a_named_one() -> None:
    mine = dataclasses.replace(MAINLINE, name="my-rule", swp_exclusive=False)
    named = rule_diff("mainline", "no-swp-exclusive", library=LIB, worlds=[])
    built = rule_diff(MAINLINE, mine, library=LIB, worlds=[])
    assert built.schemes == ("mainline", "my-rule")
    assert [f.path for f in built.scenarios] == [f.path for f in named.scenarios]
    assert [(c.workload, c.a, c.b) for c in built.copies] == [
        (c.workload, c.a, c.b) for c in named.copies]
    assert "<table>" in built._repr_html_() and "my-rule" in built._repr_html_()


def test_head_only_copies_more_on_an_mthp_world() -> None:
    """Migration restores an mTHP's pages one at a time; one head bit cannot say they are
    exclusive, so head-only unshares where mainline needs nothing."""
    r = rule_diff("mainline", "head-only", library=[], worlds=[("mthp:4", 3)])
    d = r.worlds[0].copies
    assert d is not None and d.copies == (0, 1)
    assert [op.text() for op in d.ops] == ["P write A[0] P1", "kernel migrate P A[0]",
                                           "P pin A[0] ro as H"]


@pytest.mark.parametrize(("argv", "message"), [
    (["diff", "mainline", "nope"], "unknown scheme 'nope'"),
    (["diff", "mainline", "mainline", "--worlds", "base:1"], "bad item"),
    (["diff", "mainline", "mainline", "--worlds", "blob:3:2"], "bad item"),
    (["diff", "mainline", "mainline", "--library", "no/such/dir"], "no such file"),
])
def test_bad_arguments_exit_2_and_say_which(argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_command_exits_1_when_something_differs(capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    assert cli.main(["diff", "mainline", "no-swp-exclusive", "--library",
                     "scenarios/history", "--worlds", "none"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("rule diff: mainline vs no-swp-exclusive")
    assert cli.main(["diff", "mainline", "mainline", "--library", "scenarios/history",
                     "--worlds", "none"]) == 0
