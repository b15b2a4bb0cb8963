"""The invariant registry and its offender records (anonlib/invariants.py).

Each invariant is registered where its check is written, offenders are data
that the explorer's known-gap matcher and the tests read field by field, and
:class:`~anonlib.invariants.Checker` gives the explorer its transition-only mode.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
from modelkit import P, Q, base, hread, hugetlb, run

from anonlib import invariants
from anonlib.explorer.world import KNOWN_GAPS, gap_of
from anonlib.invariants import (
    BY_ID,
    INVARIANTS,
    PROSE,
    CheckedMem,
    Checker,
    Invariant,
    Offender,
    Violation,
    check,
    describe,
)
from anonlib.ops import Op
from anonlib.schemes import SCHEMES
from anonlib.state import World

MAINLINE = SCHEMES["mainline"]


def test_registry_lists_inv1_to_inv14_in_order_each_once() -> None:
    assert [i.id for i in INVARIANTS] == [f"INV-{n}" for n in range(1, 15)]
    assert list(BY_ID) == [i.id for i in INVARIANTS]
    for inv in INVARIANTS:
        assert inv.title and inv.statement and inv.kernel_source, inv.id


def test_each_invariant_is_declared_on_its_own_check_function() -> None:
    """The id, title, statement and kernel source sit in the decorator of the check itself
    (a check's source, as inspect gives it, starts with its decorator)."""
    for inv in INVARIANTS:
        for fn in (inv.state_check, inv.step_check):
            if fn is None:
                continue
            source = inspect.getsource(fn)
            assert f'"{inv.id}"' in source.split("def ", 1)[0], (inv.id, fn.__name__)
            if fn is inv.state_check or inv.state_check is None:
                assert inv.title in source and inv.kernel_source.split(";")[0] in source, inv.id


def test_registering_an_id_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="INV-1 registered twice"):
        invariants.state_invariant("INV-1", "t", "s", "k")(lambda m: [])
    assert [i.id for i in INVARIANTS] == list(BY_ID) and len(invariants._REGISTRY) == 14


def _every_field_filled() -> Offender:
    return Offender("x", proc="P", mapping="A", index=0, page=(3, 1), handle="H", op="Fork",
                    kind="pte", slot=2, mapped_by=(("P", "A", 0), ("Q", "A", 1)),
                    expected=("P1", "Q1"), seen="Q2")


def test_every_problem_has_prose_with_no_field_left_over() -> None:
    o = _every_field_filled()
    for problem, template in PROSE.items():
        text = describe(dataclasses.replace(o, problem=problem))
        assert "{" not in text and "}" not in text and "None" not in text, (problem, text)
        assert text == str(dataclasses.replace(o, problem=problem))
        assert set(re.findall(r"{(\w+)}", template)) <= {
            "at", "kind", "slot", "op", "handle", "proc", "page", "mapped_by", "seen",
            "expected"}, problem


def test_offender_prose_shows_each_field_as_the_report_always_did() -> None:
    o = _every_field_filled()
    assert str(dataclasses.replace(o, problem="pin-incoherent", seen=None)) == \
        "H pins page 3.1, but P A[0] now leads to no page"
    assert str(dataclasses.replace(o, problem="pin-incoherent", seen=(4, 0))) == \
        "H pins page 3.1, but P A[0] now leads to page 4.0"
    assert str(dataclasses.replace(o, problem="mapping-reads-foreign", index=None)) == \
        "P A[*] reads 'Q2', which neither it wrote nor inherited (expected one of ['P1', 'Q1'])"
    assert str(dataclasses.replace(o, problem="exclusive-mapped-twice")) == \
        "page 3.1 is exclusive but mapped by P A[0], Q A[1]"
    assert str(dataclasses.replace(o, problem="exclusive-swap-shared", seen=2)) == \
        "P A[0]: exclusive swap entry, but 2 entries share slot 2"


def test_an_isolation_breach_names_its_reference_and_values_as_fields() -> None:
    """CVE-2020-29374 under its era: the vmsplice reference reads the parent's write."""
    r = run(*base("1"), P.fork(Q), Q.get("A", 0, "G"), Q.munmap("A"), P.write("A", 0, "2"),
            hread("G"), scheme="legacy-mapcount", check=False)
    (v,) = [v for _i, _op, found in r.violations for v in found][:1]
    assert v.invariant.id == "INV-12"
    (o,) = v.offenders
    assert (o.problem, o.handle, o.proc, o.seen, o.expected) == \
        ("handle-reads-foreign", "G", "Q", "2", ("1",))
    assert o.mapping is None and o.page is not None
    assert str(v).endswith("  - G (taken by Q) reads '2', written by someone else "
                           "(expected one of ['1'])")


def _hugetlb_gap() -> tuple[World, Violation]:
    r = run(*hugetlb("1"), P.fork(Q), Q.get("H", 0, "G"), Q.munmap("H"),
            P.write("H", 0, "2"), hread("G"), check=False)
    i, _op, found = r.violations[0]
    (v,) = found
    return r.worlds[i + 1], v


def test_the_known_gap_matcher_reads_the_handle_from_the_record() -> None:
    world, v = _hugetlb_gap()
    assert v.invariant.id == "INV-12" and [o.handle for o in v.offenders] == ["G"]
    assert gap_of(world, MAINLINE, v, KNOWN_GAPS) == "hugetlb-vmsplice"
    # a mapping offender whose process happens to share the reference's name is not a
    # reference: the prose reads "G H[0] reads ...", the record says mapping, no handle
    (o,) = v.offenders
    mapping = Offender("mapping-reads-foreign", proc="G", mapping="H", index=0,
                       expected=o.expected, seen=o.seen)
    assert str(mapping).startswith("G H[0] reads")
    assert gap_of(world, MAINLINE, Violation(v.invariant, (mapping,)), KNOWN_GAPS) == ""
    assert gap_of(world, MAINLINE, Violation(v.invariant, (o, mapping)), KNOWN_GAPS) == ""


def test_the_memo_is_a_field_of_the_checked_mem() -> None:
    r = run(*base("1"), P.fork(Q))
    before, after = CheckedMem(r.worlds[-2], MAINLINE), CheckedMem(r.worlds[-1], MAINLINE)
    assert before.memo == {} and after.memo == {}
    assert invariants._changed(before, after) == [((1, 0), False)]  # fork shares the page
    assert after.memo["changed"][0] is before
    assert "_invariant_memo" not in vars(after)


def _pinned_page_cleared() -> tuple[World, World, Op]:
    """A read that (impossibly) clears the flag of a pinned page: INV-1 and INV-2 break."""
    before = run(*base("1"), P.pin("A", 0, "H")).worlds[-1]
    (folio,) = [f for f in before.folios if f.id != 0]
    cleared = dataclasses.replace(folio, pages=(dataclasses.replace(
        folio.pages[0], anon_exclusive=False),))
    after = dataclasses.replace(before, folios=tuple(
        cleared if f is folio else f for f in before.folios))
    return before, after, P.read("A", 0)


def test_transition_only_runs_the_transition_halves_alone() -> None:
    """INV-2 in a seen target: the state half is not charged again, the step half is."""
    before, after, op = _pinned_page_cleared()
    full = check(after, MAINLINE, before, op)
    assert [(v.invariant.id, [o.problem for o in v.offenders]) for v in full] == [
        ("INV-1", ["writable-shared"]), ("INV-2", ["pinned-shared", "cleared-while-pinned"])]
    checker = Checker.select(MAINLINE)
    prior = checker.prepare(before)
    steps = checker.check(after, op=op, prior=prior, transition_only=True)
    assert [(v.invariant.id, [o.problem for o in v.offenders]) for v in steps] == \
        [("INV-2", ["cleared-while-pinned"])]
    assert steps == check(after, MAINLINE, before, op, transition_only=True)
    with pytest.raises(ValueError, match="transition_only needs"):
        checker.check(after, op=op, transition_only=True)
    # a scheme without the flag has no transition checks at all
    legacy = SCHEMES["legacy-mapcount"]
    assert Checker.select(legacy).steps == ()
    assert check(after, legacy, before, op, transition_only=True) == []


def test_a_checker_lists_violations_in_its_own_order() -> None:
    world, v = _hugetlb_gap()
    broken = Checker(MAINLINE, (BY_ID["INV-12"], BY_ID["INV-1"]))
    assert broken.steps == ()
    found = broken.check(world)
    assert [x.invariant.id for x in found] == ["INV-12"] and found[0] == v
    before, after, op = _pinned_page_cleared()
    mine = Checker(MAINLINE, (BY_ID["INV-9"], BY_ID["INV-2"], BY_ID["INV-1"]))
    assert [i.id for i in mine.steps] == ["INV-9", "INV-2"]
    assert [x.invariant.id for x in mine.check(after, before, op)] == ["INV-2", "INV-1"]
    assert isinstance(BY_ID["INV-14"], Invariant) and not BY_ID["INV-14"].applies(MAINLINE)
