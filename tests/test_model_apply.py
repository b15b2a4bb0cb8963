"""The front door: refused operations, back-offs and determinism of ``apply``."""

from __future__ import annotations

import pytest
from modelkit import P, Q, base, hread, hwrite, kernel, ksm, put, run, thp, unpin

from anonlib.model import Step, apply, initial_world
from anonlib.ops import Op
from anonlib.results import ErrorKind, ModelError
from anonlib.schemes import SCHEMES
from anonlib.views.render import world_text

A0 = P["A", 0]
SETUP = (*base("1", npages=2), P.pin("A", 0, "H", rw=True), P.get("A", 1, "G"), P.thp("T"))


@pytest.mark.parametrize(("op", "kind"), [
    pytest.param(Q.read("A", 0), ErrorKind.FAILED, id="unknown-process"),
    pytest.param(ksm(A0, Q["A", 0]), ErrorKind.FAILED, id="ksm-unknown-process"),
    pytest.param(P.read("A", 2), ErrorKind.INVALID, id="index-out-of-range"),
    pytest.param(P.get("A", 5, "X"), ErrorKind.INVALID, id="gup-out-of-range"),
    pytest.param(P.spawn(), ErrorKind.INVALID, id="spawn-existing"),
    pytest.param(P.mmap("A"), ErrorKind.INVALID, id="mmap-existing-name"),
    pytest.param(P.mmap("Z", 0), ErrorKind.INVALID, id="mmap-zero-pages"),
    pytest.param(P.fork(P), ErrorKind.INVALID, id="fork-into-existing"),
    pytest.param(P.get("A", 1, "H"), ErrorKind.INVALID, id="handle-name-in-use"),
    pytest.param(unpin("nope"), ErrorKind.FAILED, id="unknown-handle"),
    pytest.param(put("H"), ErrorKind.INVALID, id="put-a-pin"),
    pytest.param(hwrite("G", "x"), ErrorKind.INVALID, id="write-through-ro-ref"),
    pytest.param(hread("nope"), ErrorKind.FAILED, id="read-unknown-handle"),
])
def test_refused_operation_returns_model_error_and_leaves_the_world(op: Op,
                                                                    kind: ErrorKind) -> None:
    """A ModelError is returned (never raised), and the world it was given is unchanged:
    equal to an independent copy, with the same canonical text."""
    r = run(*SETUP)
    copy = run(*SETUP).world
    text = world_text(r.world, r.scheme)
    result = apply(r.world, op, r.scheme)
    assert isinstance(result, ModelError), result
    assert result.kind is kind and str(result)
    assert r.world == copy
    assert world_text(r.world, r.scheme) == text


def test_operation_the_scheme_lacks_is_invalid() -> None:
    """make_device_exclusive arrived in 5.14: the legacy-mapcount scheme refuses it."""
    r = run(*base("1"), scheme="legacy-mapcount")
    result = r.try_(kernel("device-exclusive", A0))
    assert isinstance(result, ModelError) and result.kind is ErrorKind.INVALID


@pytest.mark.parametrize("op", [
    pytest.param(kernel("swapout", A0), id="swapout-pinned"),
    pytest.param(kernel("migrate", A0), id="migrate-pinned"),
    pytest.param(kernel("split-folio", A0), id="split-folio-small"),
    pytest.param(kernel("split-pmd", P["T", 0]), id="split-pmd-nothing-mapped"),
    pytest.param(kernel("swapout", P["T", 0]), id="swapout-empty"),
    pytest.param(ksm(A0, P["A", 1]), id="ksm-pinned"),
    pytest.param(kernel("device-private-end", A0), id="not-device-private"),
    pytest.param(kernel("migrate-end", A0), id="not-migrating"),
])
def test_skipped_returns_the_very_same_world(op: Op) -> None:
    """Where the kernel backs off it restores what it began to change: ``apply`` returns the
    world it was given (the same object) with the outcome ``skipped`` and a reason."""
    r = run(*SETUP)
    step = r.try_(op)
    assert isinstance(step, Step)
    assert step.outcome.word == "skipped" and step.outcome.detail
    assert step.world is r.world


MIXED = (
    *base("1", npages=2), *thp("t")[1:], P.fork(Q), Q.get("A", 0, "G"), P.pin("T", 1, "H"),
    kernel("swapout", P["A", 1]), Q.write("A", 1, "q"), kernel("migrate", P["T", 0]),
    P.write("A", 0, "2"), Q.read("A", 0), kernel("device-private", Q["A", 1]), Q.exit(),
    P.read("A", 1),
)


def test_same_operations_give_identical_worlds_and_text() -> None:
    """The model is a function: replaying the same operations gives equal (and equally
    hashed) worlds and the same canonical text after every step."""
    a, b = run(*MIXED), run(*MIXED)
    assert a.worlds == b.worlds
    assert [hash(w) for w in a.worlds] == [hash(w) for w in b.worlds]
    assert a.outcomes == b.outcomes
    for wa, wb in zip(a.worlds, b.worlds, strict=True):
        assert world_text(wa, a.scheme) == world_text(wb, b.scheme)


def test_apply_never_modifies_its_input() -> None:
    """Each step's input world still equals an independently built copy after the step."""
    r = run(*MIXED)
    replay = [initial_world()]
    for op in MIXED:
        step = apply(replay[-1], op)
        assert isinstance(step, Step)
        replay.append(step.world)
    assert replay == r.worlds


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_runs_the_mixed_scenario_deterministically(scheme: str) -> None:
    """Every scheme accepts the same statements (none is refused) and is deterministic."""
    ops = [op for op in MIXED if "device" not in str(op)]
    a = run(*ops, scheme=scheme, check=False)
    b = run(*ops, scheme=scheme, check=False)
    assert a.worlds == b.worlds


def test_state_replace_is_dataclasses_replace() -> None:
    """anonlib.state.replace, which the model uses for every change, gives what
    dataclasses.replace gives for every state class, runs __post_init__ (a swap entry
    needs a slot), and names an unknown field."""
    import dataclasses

    from anonlib.state import Entry, EntryKind, replace

    r = run(*SETUP, P.fork(Q), kernel("swapout", P["A", 1]))
    w = r.world
    objects: list[object] = [w, w.config, *w.procs, *w.folios, *w.handles, *w.slots]
    for p in w.procs:
        for v in p.vmas:
            objects += [v, *(e for e in (v.huge, *v.ptes) if e is not None)]
    for f in w.folios:
        objects += f.pages
    assert {type(o).__name__ for o in objects} >= {
        "World", "Config", "Process", "Vma", "Entry", "Folio", "Page", "Handle", "Slot"}
    for obj in objects:
        assert replace(obj) == dataclasses.replace(obj)  # type: ignore[type-var]
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            new = replace(obj, **{f.name: value})
            assert new == obj and new is not obj and type(new) is type(obj)
    e = Entry(EntryKind.PRESENT, 3, 1, writable=True)
    assert replace(e, writable=False) == dataclasses.replace(e, writable=False)
    assert replace(e, writable=False).folio == 3
    with pytest.raises(ValueError, match="slot"):
        replace(e, kind=EntryKind.SWAP)
    with pytest.raises(TypeError, match="no field colour"):
        replace(e, colour="red")
