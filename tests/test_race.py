"""anonlib.race: the GUP-fast race, its memory models, variants, replay and CLI."""

from __future__ import annotations

import ast
import dataclasses
import doctest
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import anonlib.race
from anonlib.cli import main
from anonlib.race import MEMORY_MODELS, MODELS, VARIANTS, explore, memory_model, replay
from anonlib.race.machine import (
    LOCK,
    MB,
    RMB,
    TSO,
    UNLOCK,
    WEAK,
    WMB,
    Load,
    Machine,
    Program,
    State,
    Step,
    Store,
)

ROOT = Path(__file__).resolve().parents[1]

# The length of the shortest schedule that loses the pin, per variant and memory
# model (absent: no such schedule). A change here is a change of the model's
# semantics: explain it in the commit.
SHORTEST = {
    "swapout-no-share-mb": {"tso": 12, "weak": 14},
    "swapout-no-grab-mb": {"weak": 14},
    "ksm-aba-no-share-wmb": {"weak": 16},
    "ksm-aba-no-unshare-rmb": {"weak": 17},
    "ksm-aba-no-b5": {"sc": 11, "tso": 13, "weak": 15},
    "swapout-check-first": {"sc": 10, "tso": 12, "weak": 14},
    "fork-no-seqcount": {"sc": 10, "tso": 11, "weak": 14},
    "fork-no-seq-wmb": {"weak": 20},
    "fork-wmb-only": {"tso": 14, "weak": 16},
}
KERNEL = ["swapout", "migrate", "ksm", "ksm-aba", "fork"]
CASES = [(v, m) for v in VARIANTS for m in MEMORY_MODELS]


# ---------------------------------------------------------------------------- variants


def test_the_kernel_orderings_are_the_safe_variants():
    assert sorted(v.name for v in VARIANTS.values() if v.kernel) == sorted(KERNEL)
    assert set(SHORTEST) == set(VARIANTS) - set(KERNEL)


@pytest.mark.parametrize("name", KERNEL)
@pytest.mark.parametrize("model", MEMORY_MODELS)
def test_kernel_ordering_loses_no_pin(name, model):
    r = explore(name, model)
    assert r.verdict == "safe", r.text()
    assert r.schedule == () and r.bad_schedules == 0 and r.exit_status == 0
    assert r.schedules > 0 and r.states > 1


@pytest.mark.parametrize(("name", "model"), CASES)
def test_verdict_and_shortest_length(name, model):
    r = explore(name, model)
    assert r.verdict == VARIANTS[name].expect(model), r.text()
    expected_len = SHORTEST.get(name, {}).get(model)
    if expected_len is None:
        assert r.safe
    else:
        assert not r.safe and r.exit_status == 1
        assert len(r.schedule) == expected_len
        assert 0 < r.bad_schedules < r.schedules
        assert r.violations


@pytest.mark.parametrize(("name", "model"), [c for c in CASES if not explore(*c).safe])
def test_replaying_the_shortest_schedule_reproduces_the_violation(name, model):
    r = explore(name, model)
    rp = replay(name, ",".join(r.schedule), model)
    assert rp.finished and not rp.error
    assert rp.violations == r.violations
    assert rp.exit_status == 1
    assert [f.state for f in rp.frames] == [f.state for f in r.frames]


@pytest.mark.parametrize(("name", "model"), [c for c in CASES if not explore(*c).safe])
def test_events_belong_to_the_memory_model(name, model):
    events = explore(name, model).schedule
    assert any(e.endswith("@mem") for e in events) == (model != "sc")
    if model != "weak":
        assert not any(e.endswith("@early") for e in events)


def test_check_first_is_the_reference_trace():
    # step codes of anonlib/race/variants.py: A2 (no pin yet), B1, B3, B4, pin kept,
    # then A1, A3, A4;
    # here with GUP-fast's sequence reads (G0, G6) and the permission check (B2). B5 does
    # not run: the PTE is writable.
    r = explore("swapout-check-first", "sc")
    assert r.schedule == ("A2", "G0", "B1", "B2", "B3", "B4", "G6", "A1", "A3", "A4")
    assert any(v.startswith("INV-2") for v in r.violations)
    assert any(v.startswith("pin coherence") for v in r.violations)


def test_fork_without_seqcount_pins_between_check_and_write_protect():
    r = explore("fork-no-seqcount", "sc")
    s = r.schedule
    assert s.index("F4") < s.index("B3") < s.index("F5") < s.index("F6")
    assert r.violations and r.violations[0].startswith("INV-2")


def test_missing_rmb_needs_an_early_load():
    """Without smp_rmb, B5 reads the flag before B4 re-reads the PTE (ARM-like model only)."""
    s = explore("ksm-aba-no-unshare-rmb", "weak").schedule
    assert "B5@early" in s
    assert s.index("B5@early") < s.index("A3@mem") < s.index("A4@mem") < s.index("B4")


def test_missing_share_wmb_lets_the_pte_overtake_the_flag():
    s = explore("ksm-aba-no-share-wmb", "weak").schedule
    assert s.index("A4@mem") < s.index("B4") < s.index("B5") < s.index("A3@mem")


def test_aba_without_b5_reinstalls_the_same_pte():
    r = explore("ksm-aba-no-b5", "sc")
    assert "B5" not in r.schedule
    assert r.frames[-1].state.startswith("memory: pte present read-only")


def test_every_step_names_a_kernel_function_and_file():
    for v in VARIANTS.values():
        for prog in v.programs():
            for step in prog.steps.values():
                assert step.func and step.code
                assert step.file.startswith(("mm/", "include/linux/")), step


def test_results_are_deterministic_text():
    a = explore("fork-wmb-only", "tso").text()
    b = anonlib.race.explorer._explore.__wrapped__("fork-wmb-only", TSO).text()
    assert a == b
    assert "copy_page_range" in a and "__folio_try_dup_anon_rmap" in a
    assert "0x" not in a


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown race variant"):
        explore("nope")
    with pytest.raises(ValueError, match="unknown memory model"):
        explore("swapout", "power")


def test_replay_rejects_an_impossible_event_and_reports_unfinished():
    rp = replay("swapout", "A1,A1", "tso")
    assert rp.error.startswith("event 2 (A1) cannot happen") and rp.exit_status == 2
    rp = replay("swapout", ["G0"], "sc")
    assert not rp.finished and not rp.error and rp.exit_status == 0
    assert "B1" in rp.enabled and "A1" in rp.enabled


def test_doctest():
    failures, _ = doctest.testmod(anonlib.race)
    assert failures == 0


# ---------------------------------------------------------------------------- memory models
# Classic litmus tests built from Steps: the machine must give the textbook answers.


def _finals(programs, model, memory):
    m = Machine(programs, model)
    seen: set[State] = set()
    finals = set()
    stack = [m.initial(memory)]
    while stack:
        s = stack.pop()
        if s in seen:
            continue
        seen.add(s)
        if s.finished:
            finals.add(tuple(tuple(sorted(c.regs)) for c in s.cpus))
        stack.extend(m.fire(s, e)[0] for e in m.enabled(s))
    return finals


def _two(steps0, steps1):
    def prog(cpu, steps):
        chained = [
            Step(s.id, s.func, s.file, s.code, s.access, s.before, s.after, next=n.id)
            for s, n in zip(steps[:-1], steps[1:], strict=True)
        ] + [steps[-1]]
        return Program(cpu, cpu, steps[0].id, {s.id: s for s in chained})

    return (prog("A", steps0), prog("B", steps1))


def st(sid, loc, value, after=()):
    return Step(sid, "litmus", "mm/litmus", "store", Store(loc, value), after=after)


def ld(sid, loc, before=()):
    return Step(sid, "litmus", "mm/litmus", "load", Load(loc), before=before)


@pytest.mark.parametrize(
    ("model", "fenced", "allowed"),
    [
        ("sc", False, False),
        ("tso", False, True),
        ("weak", False, True),
        ("sc", True, False),
        ("tso", True, False),
        ("weak", True, False),
    ],
)
def test_store_buffering(model, fenced, allowed):
    """SB: x=1; r0=y || y=1; r1=x. r0=r1=0 needs store->load reordering; smp_mb forbids it."""
    f = (MB,) if fenced else ()
    progs = _two([st("a", "x", 1, f), ld("b", "y")], [st("c", "y", 1, f), ld("d", "x")])
    finals = _finals(progs, model, {"x": 0, "y": 0})
    assert (((("b", 0),), (("d", 0),)) in finals) == allowed


@pytest.mark.parametrize(
    ("model", "wmb", "rmb", "allowed"),
    [
        ("sc", False, False, False),
        ("tso", False, False, False),
        ("weak", False, False, True),
        ("weak", True, False, True),
        ("weak", False, True, True),
        ("weak", True, True, False),
    ],
)
def test_message_passing(model, wmb, rmb, allowed):
    """MP: x=1; y=1 || r0=y; r1=x. r0=1, r1=0 needs both smp_wmb and smp_rmb to be forbidden."""
    progs = _two(
        [st("a", "x", 1, (WMB,) if wmb else ()), st("b", "y", 1)],
        [ld("c", "y"), ld("d", "x", (RMB,) if rmb else ())],
    )
    finals = _finals(progs, model, {"x": 0, "y": 0})
    assert (((), (("c", 1), ("d", 0))) in finals) == allowed


# ---------------------------------------------------------------------------- the records
# Each memory model is a record of the decisions the machine asks. Flipping any
# field of any record (a boolean negated, a None replaced by another model's
# value or a value by None, one barrier kind taken out of a set) must change
# some result, so no field is dead and no set lists a barrier that decides
# nothing. The witness is a variant (its verdict, schedule counts, outcomes or
# shortest schedule change) or a litmus test (its set of final registers
# changes) where no variant exercises the rule.


def _mp(wmb=(), unlock=(), rmb=(), lock=()):
    """Message passing: x=1; y=1 || r0=y; r1=x, with barriers placed as given."""
    a = [st("a", "x", 1, wmb), Step("b", "litmus", "mm/litmus", "store", Store("y", 1), unlock)]
    return _two(a, [ld("c", "y"), ld("d", "x", rmb + lock)])


LITMUS = {
    "MP": _mp(),
    "MP+wmb+lock": _mp(wmb=(WMB,), lock=(LOCK,)),
    "MP+unlock+rmb": _mp(unlock=(UNLOCK,), rmb=(RMB,)),
}

# flip -> the variant or litmus test whose result it changes
WITNESS = {
    "sc.store_buffer": "swapout-no-share-mb",
    "sc.early_loads": "swapout-no-share-mb",
    "tso.store_buffer": "swapout-no-share-mb",
    "tso.store_buffer.holds_atomics": "swapout-no-grab-mb",
    "tso.store_buffer.locked_atomics": "swapout-no-share-mb",
    "tso.store_buffer.drains-smp_mb": "swapout",
    "tso.store_buffer.drains-spin_lock": "fork",
    "tso.store_buffer.reorder": "MP",
    "tso.early_loads": "swapout-no-grab-mb",
    "weak.store_buffer": "swapout-no-grab-mb",
    "weak.store_buffer.holds_atomics": "swapout-no-grab-mb",
    "weak.store_buffer.locked_atomics": "swapout-no-share-mb",
    "weak.store_buffer.drains-smp_mb": "swapout",
    "weak.store_buffer.drains-smp_mb__after_atomic": "swapout",
    "weak.store_buffer.reorder": "ksm-aba-no-share-wmb",
    "weak.store_buffer.reorder-smp_wmb": "fork",
    "weak.store_buffer.reorder-spin_unlock": "MP+unlock+rmb",
    "weak.early_loads": "ksm-aba-no-unshare-rmb",
    "weak.early_loads-smp_mb": "swapout",
    "weak.early_loads-smp_mb__after_atomic": "swapout",
    "weak.early_loads-smp_rmb": "ksm-aba",
    "weak.early_loads-spin_lock": "MP+wmb+lock",
}


def _flips(record, label, others):
    """(label, flipped record) for every field of ``record`` (records recursively).

    ``others`` are the same field's values in the other models: a None is
    flipped to the first of them that is not None.
    """
    hints = typing.get_type_hints(type(record))
    for f in dataclasses.fields(record):
        if f.name in ("name", "help"):
            continue  # the spelling, never asked by the machine
        value = getattr(record, f.name)
        here = f"{label}.{f.name}"
        alts = [getattr(o, f.name) for o in others if o is not None]
        optional = type(None) in typing.get_args(hints[f.name])
        if isinstance(value, bool):
            yield here, dataclasses.replace(record, **{f.name: not value})
            continue
        if value is None:
            other = next(a for a in alts if a is not None)
            yield here, dataclasses.replace(record, **{f.name: other})
            continue
        if optional:
            yield here, dataclasses.replace(record, **{f.name: None})
        if isinstance(value, frozenset):
            for b in sorted(value):
                yield f"{here}-{b}", dataclasses.replace(record, **{f.name: value - {b}})
        elif dataclasses.is_dataclass(value):
            for sub, flipped in _flips(value, here, alts):
                yield sub, dataclasses.replace(record, **{f.name: flipped})
        elif not optional:
            raise AssertionError(f"{here}: no flip defined for {type(value).__name__}")


FLIPS = [
    flip
    for m in MODELS.values()
    for flip in _flips(m, m.name, [o for o in MODELS.values() if o is not m])
]


def _result(witness, model):
    if witness in LITMUS:
        return _finals(LITMUS[witness], model, {"x": 0, "y": 0})
    r = explore(witness, model)
    return (r.verdict, r.schedules, r.bad_schedules, r.outcomes, r.schedule)


def test_every_flip_has_a_witness():
    assert sorted(label for label, _ in FLIPS) == sorted(WITNESS)


@pytest.mark.parametrize(("label", "flipped"), FLIPS, ids=[label for label, _ in FLIPS])
def test_flipping_a_field_changes_a_result(label, flipped):
    base = MODELS[label.split(".", 1)[0]]
    witness = WITNESS[label]
    assert _result(witness, flipped) != _result(witness, base), f"{label} decides nothing"


def test_the_machine_never_reads_the_name():
    """A record renamed gives the same results under its new name."""
    renamed = dataclasses.replace(WEAK, name="arm", help="renamed")
    a, b = explore("fork-no-seq-wmb", WEAK), explore("fork-no-seq-wmb", renamed)
    assert b.memory_model == "arm" and a.verdict == b.verdict == "unsafe"
    assert (a.states, a.outcomes, a.frames, a.violations) == (
        b.states,
        b.outcomes,
        b.frames,
        b.violations,
    )


MODEL_NAMES = set(MODELS)
NAMEISH = {"MEMORY_MODELS", "MODELS", "MEMORY_MODEL_HELP", "model", "memory_model"}


def _name_comparisons(source, filename):
    """Comparisons of a model's name in ``source``, outside the lookup ``memory_model()``."""

    def ident(node):
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            inner = ident(node.value)
            return inner if node.attr == "name" and inner in NAMEISH else node.attr
        return None

    def suspicious(node):
        if isinstance(node, ast.Constant) and node.value in MODEL_NAMES:
            return True
        return ident(node) in NAMEISH

    found = []

    def visit(node, inside_lookup):
        if isinstance(node, ast.FunctionDef) and node.name == "memory_model":
            inside_lookup = True
        if not inside_lookup:
            if isinstance(node, ast.Compare) and any(
                suspicious(x) for x in [node.left, *node.comparators]
            ):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
            patterns = ast.walk(node.pattern) if isinstance(node, ast.match_case) else ()
            if any(isinstance(x, ast.MatchValue) and suspicious(x.value) for x in patterns):
                found.append(f"{filename}:{node.pattern.lineno}: case {ast.unparse(node.pattern)}")
        for child in ast.iter_child_nodes(node):
            visit(child, inside_lookup)

    visit(ast.parse(source), False)
    return found


def test_no_code_compares_a_model_name():
    race = ROOT / "anonlib" / "race"
    found = [
        hit
        for path in sorted(race.glob("*.py"))
        for hit in _name_comparisons(path.read_text(), path.name)
    ]
    assert found == []
    lookup = (race / "machine.py").read_text()
    assert "def memory_model(" in lookup and "MODELS[model]" in lookup


@pytest.mark.parametrize(
    "code",
    [
        'if self.model == "tso": pass',
        'x = "weak" != m',
        "ok = args.memory_model not in MEMORY_MODELS",
        'same = self.model.name == other',
        'match model:\n    case "sc": pass',
    ],
)
def test_the_name_check_catches_comparisons(code):
    assert _name_comparisons(code, "x.py")


def test_the_lookup_names_the_problem():
    assert memory_model("tso") is TSO and memory_model(WEAK) is WEAK
    with pytest.raises(ValueError, match="unknown memory model 'WEAK'; did you mean 'weak'?"):
        memory_model("WEAK")


# ---------------------------------------------------------------------------- CLI


def test_cli_list(capsys):
    assert main(["race", "--list"]) == 0
    out = capsys.readouterr().out
    for v in VARIANTS.values():
        assert v.name in out and v.expected_line in out


def test_cli_exit_codes(capsys):
    assert main(["race", "swapout", "--memory-model", "weak"]) == 0
    assert "safe" in capsys.readouterr().out
    assert main(["race", "swapout-no-share-mb", "-m", "tso"]) == 1
    out = capsys.readouterr().out
    assert "shortest bad schedule: " in out and "__folio_try_share_anon_rmap" in out
    assert main(["race", "nope"]) == 2
    assert main(["race", "swapout", "-m", "power"]) == 2
    assert main(["race"]) == 2


def test_cli_replays_the_printed_schedule(capsys):
    assert main(["race", "ksm-aba-no-b5", "--brief"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("shortest bad schedule: "))
    schedule = line.split(": ", 1)[1]
    assert main(["race", "ksm-aba-no-b5", "--schedule", schedule]) == 1
    assert "INV-2" in capsys.readouterr().out
    assert main(["race", "ksm-aba-no-b5", "--schedule", "B9"]) == 2


def test_python_dash_m():
    p = subprocess.run(
        [sys.executable, "-m", "anonlib", "race", "fork-no-seqcount"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert p.returncode == 1, p.stderr
    assert "copy_present_ptes" in p.stdout


# ---------------------------------------------------------------------------- the player


def test_player_is_deterministic_and_self_contained():
    from anonlib.race import player

    r = explore("ksm-aba-no-unshare-rmb", "weak")
    h = player(r).to_html()
    assert h == player(explore("ksm-aba-no-unshare-rmb", "weak")).to_html()
    assert "http://" not in h and "https://" not in h
    assert h.count('class="race-frame"') == len(r.schedule) + 1
    assert player(r).text().splitlines()[1 : 1 + len(r.schedule)] == [
        f.line() for f in r.frames[1:]
    ]
    with pytest.raises(ValueError):
        player(explore("swapout", "sc"))


# ---------------------------------------------------------------------------- litmus files


@pytest.mark.parametrize("path", sorted((ROOT / "tools" / "litmus").glob("*.litmus")))
def test_litmus_files_agree_with_the_model(path):
    """Each LKMM litmus file names a variant; the weak model's verdict matches its Result."""
    text = path.read_text()
    assert text.startswith(f"C {path.stem}\n")
    result = next(x for x in text.splitlines() if x.startswith(" * Result: ")).split(": ")[1]
    model_line = next(x for x in text.splitlines() if x.startswith(" * Model: "))
    name, verdict = model_line.split(": ", 1)[1].rstrip(")").split(" (weak: ")
    assert result in ("Never", "Sometimes")
    assert explore(name, "weak").verdict == verdict
    assert (verdict == "safe") == (result == "Never")
