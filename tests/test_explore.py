"""The explorer: what it proves per scheme, its counterexamples replay, its canonical form is sound.

Budgets are small (depth 3 to 5, sometimes a reduced operation alphabet) so
the file runs in well under a minute; benchmarks/explore_bench.py runs the
standard worlds to depth 6.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterator

import pytest

import anonlib
from anonlib import cli, invariants, model, state
from anonlib.explorer import (
    KNOWN_GAPS,
    WORKLOADS,
    Counterexample,
    ExploreResult,
    WorldSpec,
    compare_schemes,
    copy_counts,
    explore,
    reachable,
)
from anonlib.explorer import search as search_mod
from anonlib.explorer.alphabet import FAMILIES, Alphabet, Names, enabled, parse_ops
from anonlib.explorer.canon import (
    ENCODED_FIELDS,
    IGNORED_FIELDS,
    canonical_key,
    key_for,
    names_key,
)
from anonlib.invariants import CheckedMem, Checker
from anonlib.ops import Fork, Gup, Kernel, KernelAction, Op, PageRef, Read, Write
from anonlib.results import ModelError
from anonlib.schemes import SCHEMES

MAINLINE = SCHEMES["mainline"]


def replay(c: Counterexample) -> anonlib.scenario.runner.ScenarioResult:
    """Run a counterexample through the scenario runner."""
    return anonlib.run_scenario(c.scenario(), name="counterexample")


def assert_replays(c: Counterexample) -> None:
    """The runner fails with exit 1 at the counterexample's last operation, for its invariant."""
    r = replay(c)
    assert r.exit_code == 1, str(r)
    failure = r.failures[0]
    assert failure.kind == "invariant"
    assert c.invariant in {f.invariant for f in r.failures}
    last = c.scenario().splitlines().index(next(
        line for line in c.scenario().splitlines() if "violated here" in line)) + 1
    assert failure.line == last


def states_along(spec: WorldSpec, depth: int, scheme: str = "mainline", ops: str = "all"
                 ) -> Iterator[tuple]:
    """(world, op, step) for every transition of a small exhaustive run."""
    sch = SCHEMES[scheme]
    alphabet = Alphabet(parse_ops(ops))
    layer = [(spec.initial(sch), spec.names())]
    for _ in range(depth):
        nxt = []
        seen = set()
        for world, names in layer:
            for _f, op, after in enabled(world, sch, alphabet, names):
                r = model.apply(world, op, sch)
                if isinstance(r, ModelError):
                    continue
                yield world, op, r
                k = canonical_key(r.world)
                if k not in seen:
                    seen.add(k)
                    nxt.append((r.world, after))
        layer = nxt


# ------------------------------------------------------------------ the alphabet
def test_every_family_is_generated_somewhere() -> None:
    """In a few THP worlds, every operation family of the alphabet is tried."""
    seen: set[str] = set()
    for after in ("P write A[0] P1; P fork Q", "P write A[0] P1; P fork Q; P pin A[1] rw as H",
                  "P write A[0] P1; P get A[1] rw as H"):
        spec = WorldSpec.parse("thp:2", after)
        fams = {f for f, _op, _n in enabled(spec.initial(MAINLINE), MAINLINE,
                                            Alphabet(processes=3), spec.names())}
        if " as H" in after:  # one reference held: the bound stops a second GUP
            assert not fams & {"pin-ro", "pin-rw", "get-ro", "get-rw"}
        seen |= fams
    assert seen == set(FAMILIES)


def test_bounds_and_fresh_names() -> None:
    spec = WorldSpec.parse("base:1", "P fork Q")
    w, names = spec.initial(MAINLINE), spec.names()
    ops = [op for _f, op, _n in enabled(w, MAINLINE, Alphabet(processes=3), names)]
    forks = [op for op in ops if isinstance(op, Fork)]
    assert [f.child for f in forks] == ["R", "R"]  # a fresh name, never Q again
    assert not [op for _f, op, _n in enabled(w, MAINLINE, Alphabet(processes=2), names)
                if isinstance(op, Fork)]
    gups = [op for op in ops if isinstance(op, Gup)]
    assert len(gups) == 2 * 12 and {g.handle for g in gups} == {"H"}
    # values: the writer's values present in the world, and one absent one
    writes = {op.value for op in ops if isinstance(op, Write) and op.page.proc == "P"}
    assert writes == {"P1"}
    w2 = model.apply(w, Write(PageRef("P", "A", 0), "P1"), MAINLINE).world
    writes = {op.value for _f, op, _n in enabled(w2, MAINLINE, Alphabet(), names)
              if isinstance(op, Write) and op.page.proc == "P"}
    assert writes == {"P1", "P2"}


def test_parse_ops() -> None:
    assert parse_ops("all") == frozenset(FAMILIES)
    assert parse_ops("all,-poison") == frozenset(FAMILIES) - {"poison"}
    assert parse_ops("-kernel") == frozenset(FAMILIES) - set(parse_ops("kernel"))
    assert parse_ops("gup") == {"pin-ro", "pin-rw", "get-ro", "get-rw"}
    with pytest.raises(ValueError, match="unknown operation family 'swap'"):
        parse_ops("write,swap")


def test_world_spec() -> None:
    spec = WorldSpec.parse("base:2,thp:2,hugetlb")
    assert spec.text() == "base:2,thp:2,hugetlb:4"
    assert spec.statements() == ["config thp_pages=2", "spawn P", "P mmap A 2", "P mmap B thp",
                                 "P mmap C hugetlb"]
    for bad in ("", "base", "thp:3", "huge:1", "thp:2,thp:4"):
        with pytest.raises(ValueError):
            WorldSpec.parse(bad)
    with pytest.raises(ValueError, match="after"):
        WorldSpec.parse("base:1", "P write B[0] x")
    with pytest.raises(ValueError, match="already violates INV-11"):
        WorldSpec.parse("base:1", "P pin A[0] ro longterm as H; P write A[0] x").initial(
            SCHEMES["legacy-mapcount"])


# ------------------------------------------------------------------ the canonical form
def test_key_covers_every_field_of_the_state() -> None:
    """A field added to the state must be added to the canonical form (or ignored on purpose)."""
    for cls in (state.World, state.Process, state.Vma, state.Entry, state.Folio, state.Page,
                state.Handle, state.Slot):
        names = {f.name for f in dataclasses.fields(cls)}
        known = set(ENCODED_FIELDS[cls.__name__]) | set(IGNORED_FIELDS.get(cls.__name__, ()))
        assert names == known, cls.__name__


def _world(text: str) -> state.World:
    sc = anonlib.scenario.parse(text)
    w = model.initial_world(sc.config)
    for st in sc.statements:
        r = model.apply(w, st.action, MAINLINE)
        assert not isinstance(r, ModelError), r
        w = r.world
    return w


def test_renamed_worlds_share_a_key() -> None:
    a = _world("spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\nQ write A[0] y\n"
               "P get A[0] ro as H\nkernel swapout Q A[0]")
    b = _world("spawn P\nP mmap A 1\nP write A[0] u\nP fork R\nR write A[0] v\n"
               "P get A[0] ro as K\nkernel swapout R A[0]")
    assert a != b and canonical_key(a) == canonical_key(b)
    # parent and child swapped: the child writes and the parent keeps the old page
    c = _world("spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\nP write A[0] y\n"
               "Q get A[0] ro as H\nkernel swapout P A[0]")
    assert canonical_key(a) == canonical_key(c)


def test_different_worlds_keep_different_keys() -> None:
    base = "spawn P\nP mmap A 1\nP write A[0] x\nP fork Q\n"
    keys = {canonical_key(_world(base + extra)) for extra in (
        "", "Q write A[0] y", "Q write A[0] x", "P get A[0] ro as H", "P pin A[0] ro as H",
        "kernel swapout P A[0]", "P mprotect A ro", "P madvise A[0] dontfork")}
    assert len(keys) == 8


def test_mthp_tail_pages_in_any_order_share_a_key() -> None:
    """The same for one 4-page mTHP (the mthp:4 world): tails 1..3 are interchangeable,
    and an mthp mapping of another shape is not permuted at all."""
    base = "spawn P\nP mmap A mthp\nP write A[0] h\nP write A[{}] x\n"
    shared = "P fork Q\nQ pin A[{}] ro as H\nP madvise A[{}] dontneed\n"
    a = _world(base.format(1) + shared.format(2, 3))
    b = _world(base.format(3) + shared.format(1, 2))
    assert a != b and names_key(a) != names_key(b) and canonical_key(a) == canonical_key(b)
    assert any(f.partially_mapped for f in a.folios) == any(f.partially_mapped for f in b.folios)
    head = _world(base.format(0) + shared.format(2, 3))
    assert canonical_key(head) != canonical_key(a)
    wide = "config mthp_pages=4\nspawn P\nP mmap A 8 mthp\nP write A[0] h\nP write A[{}] x\n"
    assert canonical_key(_world(wide.format(1))) != canonical_key(_world(wide.format(3)))


def test_thp_tail_pages_in_any_order_share_a_key() -> None:
    """Tail pages 1..3 of a THP are interchangeable (the head page is not)."""
    base = "spawn P\nP mmap A thp\nP write A[0] h\nkernel split-pmd P A[0]\nP write A[{}] x\n"
    pinned = "P fork Q\nQ pin A[{}] ro as H\nkernel swapout P A[{}]\n"
    a = _world(base.format(1) + pinned.format(2, 3))
    b = _world(base.format(3) + pinned.format(1, 2))
    assert a != b and names_key(a) != names_key(b) and canonical_key(a) == canonical_key(b)
    head = _world(base.format(0) + pinned.format(2, 3))  # the head page holds x: not a tail
    assert canonical_key(head) != canonical_key(a)
    # the same shapes on different pages after the GUP reference's mapping is gone
    c = _world(base.format(1) + "P pin A[2] ro as H\nP munmap A\n")
    d = _world(base.format(2) + "P pin A[1] ro as H\nP munmap A\n")
    assert canonical_key(c) == canonical_key(d)


@pytest.mark.parametrize("world", ["thp:4", "mthp:4"])
@pytest.mark.parametrize("scheme", [s for s in SCHEMES if not SCHEMES[s].head_only])
def test_tail_symmetry_is_sound_for_the_model(scheme: str, world: str) -> None:
    """The model treats tail pages alike: searching one state per class of tail orders
    reaches every class that a search without that reduction reaches (thp:4 and mthp:4,
    depth 2; the benchmark's check runs depth 3)."""
    full = reachable(scheme, world, 2, key="names")
    reduced = reachable(scheme, world, 2, key="canonical")
    key = key_for("canonical", SCHEMES[scheme])  # with the per-MM tracking where it is read
    assert {key(w) for w in full.values()} == set(reduced)
    # about half: 6.12's make_device_exclusive_range skips a tail page (device_exclusive_walk
    # RMAP_WALK), so there are fewer tail-order variants to collapse (page-count, thp:4:
    # 1263 states to 639)
    assert len(reduced) < 0.55 * len(full)


def test_head_only_keeps_tail_order() -> None:
    """Under head-only the first tail page reclaim unmaps takes the folio's one bit, so
    tail pages are not interchangeable there and the explorer does not treat them so.

    Scenarios no longer reach that state: zapping the head marks the folio partially
    mapped, and 6.12's reclaim splits such a folio first. The rule is still the
    scheme's, so it is shown on the same world with the mark taken off by hand."""
    def swapped(written: int, first: int) -> state.World:
        r = anonlib.run_scenario(f"scheme head-only\nspawn P\nP mmap A thp\n"
                                 f"P write A[{written}] x\nP madvise A[0] dontneed\n")
        world = r.trace[-1].world
        assert all(f.partially_mapped for f in world.folios if f.kind is state.FolioKind.THP)
        world = state.replace(world, folios=tuple(state.replace(f, partially_mapped=False)
                                                  for f in world.folios))
        step = model.apply(world, Kernel(KernelAction.SWAPOUT, PageRef("P", "A", first)),
                           SCHEMES["head-only"])
        assert isinstance(step, model.Step) and step.outcome.word == "ok"
        return step.world
    exclusive = [[e.exclusive for e in swapped(w, 1).procs[0].vmas[0].ptes[1:]] for w in (1, 2)]
    assert exclusive == [[True, False, False], [True, False, False]]  # page 1's entry, always
    assert key_for("canonical", SCHEMES["head-only"]) is names_key
    assert key_for("canonical", MAINLINE) is canonical_key


@pytest.mark.parametrize("scheme", ["mainline", "legacy-mapcount"])
def test_what_the_alphabet_leaves_out_for_hugetlb_is_always_skipped(scheme: str) -> None:
    """KSM, swap-out, swap-cache drop and device migration never act on a hugetlb page:
    in every state of a hugetlb world (and next to a small page) the model backs off.
    madvise on one page of a hugetlb mapping, and clear-softdirty in a process with
    nothing but hugetlb mappings, never change the state."""
    from anonlib.explorer.alphabet import NOT_FOR_HUGETLB
    from anonlib.ops import Advice, ClearSoftDirty, Kernel, KernelAction, Ksm, Madvise, MapKind

    sch = SCHEMES[scheme]
    for pages, depth in (("hugetlb:2", 3), ("base:1,hugetlb:2", 2)):
        for world in reachable(scheme, pages, depth, key="names").values():
            refs = [PageRef(p.name, v.name, i) for p in world.procs for v in p.vmas
                    for i in range(v.npages) if i not in v.holes]
            huge = [r for r in refs if r.mapping == "B" or pages == "hugetlb:2"]
            ops = [Kernel(a, r) for r in huge for a in NOT_FOR_HUGETLB
                   if a is not KernelAction.DEVICE_EXCLUSIVE or sch.device_exclusive]
            ops += [Ksm(a, b) for a in refs for b in refs if a != b and (a in huge or b in huge)]
            for op in ops:
                r = model.apply(world, op, sch)
                assert not isinstance(r, ModelError) and r.world is world, (pages, op, r)
            for r in huge:
                for adv in (Advice.DONTNEED, Advice.DONTFORK, Advice.DOFORK):
                    step = model.apply(world, Madvise(r.proc, r.mapping, r.index, adv), sch)
                    assert not isinstance(step, ModelError) and step.world == world, (r, adv)
            for p in world.procs:
                if all(v.kind is MapKind.HUGETLB for v in p.vmas):
                    step = model.apply(world, ClearSoftDirty(p.name), sch)
                    assert not isinstance(step, ModelError) and step.world == world, p.name


def test_changed_flags_are_every_page_whose_flag_differs() -> None:
    """The transition checks' list of changed flags skips folios the step left untouched
    (the same object); it must equal the plain comparison of every page's flag."""
    n = 0
    for spec, depth in (("thp:2", 2), ("hugetlb:2", 2), ("base:1", 3)):
        for before, _op, step in states_along(WorldSpec.parse(spec), depth):
            b, a = CheckedMem(before, MAINLINE), CheckedMem(step.world, MAINLINE)
            old, new = invariants._raw_flags(b), invariants._raw_flags(a)
            plain = sorted((k, v) for k, v in new.items() if k in old and old[k] != v)
            assert invariants._changed(b, a) == plain, (spec, _op)
            n += plain != []
    assert n > 0  # some steps do change a flag


def test_canonical_dedup_finds_what_plain_dedup_finds() -> None:
    """Symmetry reduction loses nothing: the same violations, at the same depths, fewer states."""
    for scheme in ("legacy-mapcount", "page-count"):
        canon = explore(scheme, "base:1", depth=4, ops="write,fork,gup,handle,munmap,exit")
        raw = explore(scheme, "base:1", depth=4, ops="write,fork,gup,handle,munmap,exit",
                      key="raw")
        assert canon.found() == raw.found() and canon.found()
        assert canon.states < raw.states


def _mainline_ctx() -> search_mod._Ctx:
    return search_mod._Ctx(MAINLINE, Alphabet(), Checker.select(MAINLINE), canonical_key, ())


def _step_halves(before: state.World, after: state.World, op: Op) -> list[tuple[str, tuple]]:
    """The transition checks alone, straight from each invariant's own step check."""
    prior, now = CheckedMem(before, MAINLINE), CheckedMem(after, MAINLINE)
    return [(i.id, tuple(found)) for i in invariants.INVARIANTS
            if i.applies(MAINLINE) and i.step_check and (found := i.step_check(prior, now, op))]


def test_self_loops_check_nothing_and_a_seen_target_gets_its_transition_checks() -> None:
    """The two shortcuts of the search are exact, on every transition of a small world.

    A skipped operation (or one giving an equal world) breaks nothing a state
    check of the world before does not. A transition into a state seen before
    (all of them pass their state checks here) gets what ``invariants.check``
    finds for it, from the transition halves alone and the before-state's Mem
    shared by every operation tried in that state.
    """
    ctx = _mainline_ctx()
    step_ids = tuple(i.id for i in ctx.checker.steps)
    n = 0
    prior: tuple[state.World, CheckedMem] | None = None
    for spec, depth, ops in ((WorldSpec.parse("base:1"), 3, "all"),
                             (WorldSpec.parse("thp:2"), 2, "all")):
        for before, op, step in states_along(spec, depth, ops=ops):
            if step.world == before:  # skipped, or an equal world: nothing can fail
                assert invariants.check(step.world, MAINLINE, before, op) == \
                    invariants.check(before, MAINLINE), op
                continue
            assert invariants.check(step.world, MAINLINE) == []
            if prior is None or prior[0] is not before:
                prior = (before, ctx.checker.prepare(before))
            mine = search_mod._violations(prior[1], step.world, op, ctx, False)
            assert mine == invariants.check(step.world, MAINLINE, before, op, only=step_ids)
            assert [(v.invariant.id, v.offenders) for v in mine] == \
                _step_halves(before, step.world, op)
            n += 1
    assert n > 1000


def test_a_seen_target_breaking_a_state_half_is_charged_only_its_transition_half() -> None:
    """INV-2 has a state and a transition half: on a transition into a state seen before
    (and already reported), only the transition's own offenders count."""
    ctx = _mainline_ctx()
    before = WorldSpec.parse("base:1", "P write A[0] P1; P pin A[0] ro longterm as H"
                             ).initial(MAINLINE)
    (folio,) = [f for f in before.folios if f.id != state.ZERO_FOLIO]
    cleared = dataclasses.replace(folio, pages=(dataclasses.replace(
        folio.pages[0], anon_exclusive=False),))
    after = dataclasses.replace(before, folios=tuple(
        cleared if f is folio else f for f in before.folios))
    op = Read(PageRef("P", "A", 0))
    full = {v.invariant.id: v.offenders for v in invariants.check(after, MAINLINE, before, op)}
    assert len(full["INV-2"]) == 2  # the state half and the transition half
    mine = search_mod._violations(CheckedMem(before, MAINLINE), after, op, ctx, False)
    assert [(v.invariant.id, v.offenders) for v in mine] == _step_halves(before, after, op)
    assert dict(_step_halves(before, after, op))["INV-2"] == full["INV-2"][1:]
    # a target seen for the first time gets everything check() finds
    assert {v.invariant.id: v.offenders
            for v in search_mod._violations(CheckedMem(before, MAINLINE), after, op, ctx, True)
            } == full


# ------------------------------------------------------------------ what each scheme shows
def test_mainline_small_worlds_are_clean_but_for_the_known_hugetlb_gap() -> None:
    r = explore("mainline", "base:1", depth=4)
    assert r.ok and not r.known and r.states > 5000, str(r)
    assert r.exit_code == 0
    r = explore("mainline", "thp:2", depth=3)
    assert r.ok and not r.known and r.states > 3000, str(r)
    r = explore("mainline", "hugetlb:2", depth=4)
    assert r.ok and not r.violations, str(r)
    assert [c.known_gap.id for c in r.known if c.known_gap] == ["hugetlb-vmsplice"]
    gap = r.known[0]
    assert gap.invariant == "INV-12" and "KNOWN GAP hugetlb-vmsplice" in str(r)
    assert_replays(gap)  # reported, never hidden: the runner fails on it
    strict = explore("mainline", "hugetlb:2", depth=4, known_gaps=False)
    assert not strict.ok and strict.counterexample is not None
    assert strict.counterexample.invariant == "INV-12"


def test_mainline_thp_world_is_clean() -> None:
    r = explore("mainline", "thp:2", depth=3)
    assert r.ok, str(r)


def test_mainline_thp_device_exclusive_keeps_inv8() -> None:
    r = explore("mainline", "thp:2", depth=4, ops="write,fork,madvise,device-exclusive")
    assert r.ok, str(r)


def test_legacy_mapcount_cve_2020_29374() -> None:
    """vmsplice (FOLL_GET, read-only) after fork: one process's pipe sees the other's write."""
    ops = "write,fork,get-ro,handle-read,put,munmap,exit"
    fork = "P write A[0] P1; P fork Q"
    r = explore("legacy-mapcount", "base:1", depth=3, ops=ops, after=fork)
    (c,) = r.violations
    assert c.invariant == "INV-12" and c.length == 3 and isinstance(c.ops[0], Gup)
    (o,) = c.offenders
    assert o.problem == "handle-reads-foreign" and o.handle == "H" and o.proc in ("P", "Q")
    assert isinstance(o.expected, tuple) and isinstance(o.seen, str)
    assert o.seen not in o.expected
    assert str(o).startswith(f"H (taken by {o.proc}) reads {o.seen!r}, written by someone else")
    assert_replays(c)
    assert explore("mainline", "base:1", depth=3, ops=ops, after=fork).ok
    assert explore("gup-cow-break", "base:1", depth=3, ops=ops, after=fork).ok  # 5.8's fix
    # from scratch: the shortest leak takes the reference before fork, which 5.8 left open
    for scheme, length in (("legacy-mapcount", 5), ("gup-cow-break", 4)):
        (c,) = explore(scheme, "base:1", depth=5, ops=ops).violations
        kinds = [type(op).__name__ for op in c.ops]
        assert c.invariant == "INV-12" and c.length == length
        assert kinds.index("Gup") < kinds.index("Fork")
        assert_replays(c)
    assert explore("mainline", "base:1", depth=5, ops=ops).ok


def test_legacy_mapcount_cow_breaks_either_way() -> None:
    """A R/W pin, then fork, then the parent's write: the parent leaves the pinned page."""
    ops = "write,fork,pin-rw"
    r = explore("legacy-mapcount", "base:1", depth=4, ops=ops)
    c = next(c for c in r.violations if c.invariant == "INV-11")
    assert [type(op).__name__ for op in c.ops] == ["Gup", "Fork", "Write"]
    assert c.ops[2].page.proc == "P"  # type: ignore[union-attr]
    assert_replays(c)
    assert explore("mainline", "base:1", depth=4, ops=ops).ok


def test_page_count_unreliable_ro_pin() -> None:
    """5.9-5.17: a R/O pin on a written page, a write-protect event, a write: the pin is lost."""
    r = explore("page-count", "base:1", depth=3, ops="write,pin-ro,mprotect,clear-softdirty",
                after="P write A[0] P1")
    c = next(c for c in r.violations if c.invariant == "INV-11")
    pins = [op for op in c.ops if isinstance(op, Gup)]
    assert c.length == 3 and len(pins) == 1 and not pins[0].write
    assert isinstance(c.ops[-1], Write)
    assert_replays(c)
    assert explore("mainline", "base:1", depth=3, ops="write,pin-ro,mprotect,clear-softdirty",
                   after="P write A[0] P1").ok
    # with the whole alphabet, the shortest R/O pin failure is two operations long
    full = explore("page-count", "base:1", depth=2)
    assert full.found() == {"INV-11": 2}
    assert_replays(full.violations[0])


def test_no_swp_exclusive_is_clean_but_copies_more() -> None:
    """Without the swap bit no invariant breaks: the loss is a FOLL_GET reference's data.

    No invariant covers FOLL_GET (INV-12 promises nothing for device writes through it),
    so the difference shows as page copies and a read: comparing the two schemes on
    the same operation sequences.
    """
    assert explore("no-swp-exclusive", "base:1", depth=4).ok
    cmp = compare_schemes("mainline", "no-swp-exclusive", depth=5,
                          ops="write,read,get-rw,handle-write,swapout")
    assert cmp.copies is not None
    assert [type(op).__name__ for op in cmp.copies.ops] == ["Gup", "Kernel", "Write"]
    assert cmp.copies.copies == (0, 1)
    assert cmp.more[0] == 0 and cmp.more[1] > 0 and cmp.copied[1] > cmp.copied[0]
    assert cmp.outcome is not None and cmp.outcome.outcomes[0] != cmp.outcome.outcomes[1]
    table = copy_counts(schemes=("mainline", "no-swp-exclusive"))
    cell = table.cells[("swap-foll-get", "no-swp-exclusive")]
    assert (cell.copies, cell.reads) == (1, ("b",))  # the device wrote 'dma' into the old page
    assert table.cells[("swap-foll-get", "mainline")].reads == ("dma",)


def test_head_only_breaks_inv1_on_a_partially_shared_thp() -> None:
    r = explore("head-only", "thp:2", depth=3, ops="write,fork,madvise")
    c = next(c for c in r.violations if c.invariant == "INV-1")
    assert c.length == 3 and isinstance(c.ops[-1], Fork)
    assert "dontfork" in c.scenario()
    assert_replays(c)
    assert explore("mainline", "thp:2", depth=3, ops="write,fork,madvise").ok


def test_copy_counts_table() -> None:
    t = copy_counts()
    assert t.copies("thp-partial-fork", "mainline") == 0
    assert t.copies("thp-partial-fork", "head-only") == 3
    assert t.copies("thp-partial-ro-pin", "head-only") == 3
    assert t.cells[("thp-partial-fork", "head-only")].broken == ("INV-1",)
    assert t.copies("thp-partial-fork", "page-count") == 3  # PTE-mapped THP: never reused
    assert t.total("head-only") > t.total("mainline")
    assert t.cells[("ro-pin-mprotect", "page-count")].broken == ("INV-11",)
    assert all(not c.broken for (w, s), c in t.cells.items() if s == "mainline")
    text = str(t)
    assert text == str(copy_counts()) and "thp-partial-fork" in text
    assert t.markdown().startswith("| workload | mainline |")
    assert "<table" in t._repr_html_()
    assert len(t.rows()) == len(WORKLOADS) + 2


# ------------------------------------------------------------------ the result object
def test_result_text_html_and_plot() -> None:
    a = explore("gup-cow-break", "base:1", depth=3)
    b = explore("gup-cow-break", "base:1", depth=3)
    assert str(a) == str(b)
    text = str(a)
    assert "states: " in text and "coverage (operation x entry kind):" in text
    assert "VIOLATED:" in text and "shortest counterexample for INV-11" in text
    assert not re.search(r"\d+\.\d+ ?s\b", text)  # no timings in the text form
    assert a.depth_reached == 3 and len(a.per_depth) == 4
    assert sum(n for n, _t in a.per_depth) == a.states
    assert sum(t for _n, t in a.per_depth) == a.transitions
    html = a._repr_html_()
    assert "invariant violated" in html and "<pre>" in html
    fig = a.plot()
    assert len(fig.axes[0].patches) == 4
    for c in a.violations:
        assert_replays(c)


def test_exhausted_world() -> None:
    r = explore("mainline", "base:1", processes=1, depth=10, ops="write,read")
    assert r.exhausted and r.depth_reached < 10 and "every reachable state" in str(r)


def test_coverage_rows_and_columns() -> None:
    r = explore("mainline", "base:1", depth=3)
    table = r.coverage_table()
    for row in ("pin ro longterm fast", "get rw", "kernel swapcache-drop", "madvise dontfork",
                "H write", "unpin", "put"):
        assert re.search(rf"^{re.escape(row)} ", table, re.M), row
    assert " swap" in table.splitlines()[0]
    assert r.coverage[("kernel swapout", "pte", False)] > 0


def test_the_first_counterexample_is_announced_and_ctrl_c_keeps_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The progress line says at once that a (shortest) counterexample is in hand; Ctrl-C
    from then on ends the search with it, saying the depth it was found at is incomplete.
    Before one is found Ctrl-C stops the search as any other command."""
    explore("legacy-mapcount", "base:1", depth=8, progress=True)
    err = capsys.readouterr().err
    assert re.search(r"found INV-11 in 2 operations after [0-9.]+ s; finishing depth 2 to "
                     r"report every violation of that length \(Ctrl-C prints", err), err

    def ctrl_c(*_args: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(search_mod._Progress, "found", ctrl_c)
    r = explore("legacy-mapcount", "base:1", depth=8)
    assert r.interrupted == 2 and r.exit_code == 1 and r.counterexample is not None
    assert r.counterexample.length == 2 and not r.exhausted
    assert "interrupted (Ctrl-C) during depth 2, after its first violation" in str(r)
    assert "searched every state reachable in at most 1 operations" in str(r)
    assert_replays(r.counterexample)
    monkeypatch.setattr(search_mod._Progress, "update", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        explore("mainline", "base:1", depth=3)


@pytest.mark.parametrize("stop_at_first", [True, False])
def test_parallel_equals_serial(stop_at_first: bool) -> None:
    one = explore("page-count", "base:1", depth=4, stop_at_first=stop_at_first)
    two = explore("page-count", "base:1", depth=4, jobs=2, stop_at_first=stop_at_first)
    assert str(one) == str(two)
    assert (one.states, one.transitions, one.coverage) == (two.states, two.transitions,
                                                           two.coverage)
    # forked workers stop after the same depth as one process (or search on, with the flag)
    assert one.stopped_at == two.stopped_at == (2 if stop_at_first else None)


# ------------------------------------------------------------------ mirror-image operations
@pytest.mark.parametrize(("scheme", "world"), [("mainline", "thp:4"), ("page-count", "thp:4"),
                                               ("lts-6.1", "thp:4"), ("mainline", "mthp:4"),
                                               ("lts-6.18", "mthp:4"),
                                               ("iouring-unpin-head", "mthp:4")])
def test_mirror_images_counted_not_applied_change_nothing(
        scheme: str, world: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Applying one operation per orbit of swappable tail pages (orbits.py) gives the
    search without it, number for number: states per depth, transitions, skipped, refused,
    the coverage table, and every counterexample."""
    def run(orbits: bool) -> ExploreResult:
        monkeypatch.setattr(search_mod, "ORBITS", orbits)
        return explore(scheme, world, depth=3, stop_at_first=False)

    every, one = run(False), run(True)
    assert (every.per_depth, every.transitions, every.skipped, every.refused) == \
        (one.per_depth, one.transitions, one.skipped, one.refused)
    assert every.coverage == one.coverage
    assert [(c.invariant, c.ops) for c in every.violations + every.known] == \
        [(c.invariant, c.ops) for c in one.violations + one.known]


def test_swappable_tails_and_representatives() -> None:
    """Swappable tails: equal in every respect once swapped; an operation's representative
    names the smallest pages of their classes, in order of appearance."""
    from anonlib.explorer.orbits import representative, swappable_tails

    fresh = _world("spawn P\nP mmap A thp\n")
    tails = swappable_tails(fresh)
    assert tails is not None and tails.mappings == {("P", "A")}
    assert tails.classes == {1: (1, 2, 3), 2: (1, 2, 3), 3: (1, 2, 3)}
    one = swappable_tails(_world("spawn P\nP mmap A thp\nP write A[2] x\n"))
    assert one is not None and one.classes == {1: (1, 3), 3: (1, 3)}  # 2 holds x
    assert swappable_tails(_world("spawn P\nP mmap A 1\n")) is None
    pinned = swappable_tails(_world("spawn P\nP mmap A thp\nP pin A[3] ro as H\n"))
    assert pinned is not None and set(pinned.classes) == {1, 2}  # the reference names 3
    assert representative(Write(PageRef("P", "A", 3), "P1"), tails) == \
        Write(PageRef("P", "A", 1), "P1")
    head = Kernel(KernelAction.SWAPOUT, PageRef("P", "A", 0))
    assert representative(head, tails) is head  # the head page is not a tail
    from anonlib.ops import Ksm
    pair = Ksm(PageRef("P", "A", 3), PageRef("P", "A", 2))
    assert representative(pair, tails) == Ksm(PageRef("P", "A", 1), PageRef("P", "A", 2))
    assert representative(pair, one) == Ksm(PageRef("P", "A", 1), PageRef("P", "A", 2))


@pytest.mark.parametrize(("scheme", "world"), [("mainline", "thp:4"), ("lts-6.18", "mthp:4")])
def test_one_order_per_class_of_swappable_tails_gives_the_same_key(scheme: str,
                                                                   world: str) -> None:
    """canonical_key tries one order of tails the world cannot tell apart: the key is the
    minimum over every tail order all the same (every state a names-only search reaches
    in two operations, with and without the per-MM tracking)."""
    from anonlib.explorer import canon

    def every_order(w: state.World, mm: bool) -> object:
        perms = canon._tail_perms(w)
        if perms == [None]:
            return canon.names_key(w, mm)
        return min(canon._encode(w, order, perm=perm, mm=mm)[0]
                   for perm in perms for order in canon._orders(w, perm))

    worlds = list(reachable(scheme, world, 2, key="names").values())
    assert sum(1 for w in worlds if canon.swappable_classes(w)) > len(worlds) // 4
    for mm in (False, True):
        assert [canonical_key(w, mm) for w in worlds] == [every_order(w, mm) for w in worlds]


def test_pages_of_the_huge_zero_page_move_with_their_address() -> None:
    """A GUP reference to a page of the huge zero page names that page: taken at A[1] or at
    A[2] of a fresh THP mapping, the two states are mirror images and share a key, also
    after the mapping is gone."""
    a = _world("spawn P\nP mmap A thp\nP pin A[1] ro as H\n")
    b = _world("spawn P\nP mmap A thp\nP pin A[2] ro as H\n")
    assert [h.folio for h in a.handles] == [state.ZERO_FOLIO] and a != b
    assert canonical_key(a) == canonical_key(b)
    c = _world("spawn P\nP mmap A thp\nP pin A[1] ro as H\nP munmap A\n")
    d = _world("spawn P\nP mmap A thp\nP pin A[2] ro as H\nP munmap A\n")
    assert canonical_key(c) == canonical_key(d)
    head = _world("spawn P\nP mmap A thp\nP pin A[0] ro as H\n")
    assert canonical_key(head) != canonical_key(a)


# ------------------------------------------------------------------ stopping at the first violation
def test_stops_after_the_first_depth_with_a_violation() -> None:
    """The issue's case: a bug two operations deep, asked for depth 8, costs depth 2."""
    r = explore("legacy-mapcount", "base:1", depth=8)
    assert not r.ok and r.exit_code == 1
    assert r.stopped_at == 2 and r.depth_reached == 2 and len(r.per_depth) == 3
    assert not r.exhausted
    assert r.counterexample is not None and r.counterexample.length == 2
    text = str(r)
    assert "stopped after depth 2: violations found; --full (stop_at_first=False) searches " \
           "to depth 8" in text
    assert "searched every state reachable in at most 2 operations" in text
    assert_replays(r.counterexample)
    # every violation of that depth is reported: the full search's, cut at its length
    full = explore("legacy-mapcount", "base:1", depth=3, stop_at_first=False)
    assert full.stopped_at is None and full.depth_reached == 3
    assert "stopped after" not in str(full)
    assert r.found() == {k: n for k, n in full.found().items() if n <= 2}
    assert full.per_depth[:3] == r.per_depth and full.states > r.states
    assert full.command().endswith(" --depth 3 --full") and "--full" not in r.command()
    assert "--full" not in full.violations[0].scenario()  # found as soon without it
    # the time to the first counterexample: inside the search, before its depth ends
    assert r.first_seconds is not None and r.first_cpu is not None
    assert 0 < r.first_seconds <= r.seconds and r.first_cpu > 0


def test_no_stop_without_a_violation_nor_at_the_last_depth() -> None:
    clean = explore("mainline", "base:1", depth=3)
    assert clean.ok and clean.stopped_at is None and clean.depth_reached == 3
    # a known gap (here 4 operations deep) does not stop the search
    gap = explore("mainline", "hugetlb:2", depth=5, ops="write,fork,get-ro,munmap",
                  after="P write A[0] P1")
    assert gap.ok and gap.known and gap.known[0].length == 4
    assert gap.stopped_at is None and gap.depth_reached == 5
    assert clean.first_seconds is None and gap.first_seconds is None  # a known gap is not one
    last = explore("legacy-mapcount", "base:1", depth=2)  # found at the last depth anyway
    assert not last.ok and last.stopped_at is None and "stopped after" not in str(last)


def test_a_model_crash_stops_the_search_too(monkeypatch: pytest.MonkeyPatch) -> None:
    real = model.apply

    def flaky(world, op, scheme):  # type: ignore[no-untyped-def]
        if isinstance(op, Fork):
            raise RuntimeError("boom")
        return real(world, op, scheme)

    monkeypatch.setattr(search_mod.model, "apply", flaky)
    r = explore("mainline", "base:1", depth=5, ops="write,fork")
    assert r.stopped_at == 1 and r.crashes and not r.violations
    assert "stopped after depth 1: the model crashed;" in str(r)


def test_stop_at_first_must_be_a_bool() -> None:
    with pytest.raises(anonlib.scenario.InputError, match="stop_at_first is True or False"):
        explore("mainline", "base:1", depth=1, stop_at_first="no")  # type: ignore[arg-type]


def test_a_model_crash_is_reported_with_its_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    real = model.apply

    def flaky(world, op, scheme):  # type: ignore[no-untyped-def]
        if isinstance(op, Fork) and world.folios:
            raise RuntimeError("boom")
        return real(world, op, scheme)

    monkeypatch.setattr(search_mod.model, "apply", flaky)
    r = explore("mainline", "base:1", depth=2, ops="write,fork")
    assert not r.ok and r.exit_code == 1 and r.crashes
    c = r.crashes[0]
    assert c.title == "RuntimeError: boom" and [type(o).__name__ for o in c.ops] == [
        "Write", "Fork"]
    assert "MODEL CRASH" in str(r)


def test_known_gap_matches_only_hugetlb_foll_get() -> None:
    (gap,) = [g for g in KNOWN_GAPS if g.id == "hugetlb-vmsplice"]
    leak = "spawn P\nP mmap A {}\nP write A[0] a\nP fork Q\nQ get A[0] ro as H\nQ munmap A\n" \
           "P write A[0] b\n"
    hv = invariants.check(_world("config hugetlb_pages=2\n" + leak.format("hugetlb")),
                          MAINLINE)
    assert hv and gap.matches(_world("config hugetlb_pages=2\n" + leak.format("hugetlb")),
                              MAINLINE, hv[0])
    legacy = SCHEMES["legacy-mapcount"]
    w = model.initial_world()
    sc = anonlib.scenario.parse(leak.format("1"))
    for st in sc.statements:
        w = model.apply(w, st.action, legacy).world  # type: ignore[union-attr]
    (v,) = invariants.check(w, legacy)
    assert v.invariant.id == "INV-12" and not gap.matches(w, legacy, v)


# ------------------------------------------------------------------ the command line
def test_cli_violation_prints_a_replayable_scenario(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    code = cli.main(["explore", "--scheme", "legacy-mapcount", "--depth", "4",
                     "--ops", "write,fork,pin-rw"])
    out = capsys.readouterr().out
    assert code == 1 and "scheme legacy-mapcount" in out and "# <- INV-11 violated here" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(out))
    assert cli.main(["run", "-"]) == 1
    assert "INV-11" in capsys.readouterr().err


def test_cli_full_searches_past_the_first_violation(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    args = ["explore", "--scheme", "legacy-mapcount", "--depth", "4", "--progress", "never"]
    assert cli.main(args) == 1
    stopped = capsys.readouterr().out
    assert "# stopped after depth 2: violations found; --full" in stopped
    assert cli.main([*args, "--full"]) == 1
    full = capsys.readouterr().out
    assert "stopped after" not in full and "depth reached: 4" in full
    # the same shortest counterexample either way
    assert stopped.split("\n\n")[0] == full.split("\n\n")[0]


def test_cli_clean_run_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["explore", "--depth", "2", "--progress", "never"]) == 0
    out = capsys.readouterr().out
    assert "no invariant violated" in out and "coverage" in out
    for bad in (["--scheme", "nope"], ["--pages", "thp:3"], ["--ops", "swap"],
                ["--invariants", "INV-99"], ["--after", "P frob"]):
        assert cli.main(["explore", *bad]) == 2, bad
        assert "anonlib explore:" in capsys.readouterr().err


def test_cli_compare_and_counterexample_files(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["explore", "--scheme", "mainline", "--compare", "no-swp-exclusive",
                     "--depth", "3", "--ops", "write,get-rw,swapout"]) == 0
    assert "copies differs after 3 operations" in capsys.readouterr().out
    assert cli.main(["explore", "--scheme", "gup-cow-break", "--depth", "3",
                     "--counterexamples", str(tmp_path)]) == 1
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "gup-cow-break-INV-11.scn" in files
    r = anonlib.run_scenario((tmp_path / "gup-cow-break-INV-11.scn").read_text())
    assert r.exit_code == 1 and r.failures[0].invariant == "INV-11"


def test_progress_line_only_after_a_second(capsys: pytest.CaptureFixture[str]) -> None:
    p = search_mod._Progress(True, 5)
    p.update(1, 1, 10, 5, 7)
    assert capsys.readouterr().err == ""
    p.start -= 2
    p.update(2, 5, 10, 50, 70)
    p.close()
    err = capsys.readouterr().err
    assert "depth 2/5" in err and "states 50" in err
    quiet = search_mod._Progress(False, 5)
    quiet.start -= 2
    quiet.update(2, 5, 10, 50, 70)
    assert capsys.readouterr().err == ""
    assert isinstance(Names().proc(), str)


# ------------------------------------------------------------------ the package's layout
#: The explorer's modules in the order its docstring lists them: each imports only earlier ones.
LAYERS = ("alphabet", "canon", "orbits", "world", "options", "results", "engine", "search",
          "compare", "copies", "rulediff", "command", "diff_command")


def test_explorer_modules_import_only_the_ones_above_them() -> None:
    import ast
    import pathlib

    import anonlib.explorer as pkg

    here = pathlib.Path(pkg.__file__).parent
    assert sorted(p.stem for p in here.glob("*.py") if p.stem != "__init__") == sorted(LAYERS)
    for i, name in enumerate(LAYERS):
        assert f":mod:`.{name}`" in (pkg.__doc__ or "")
        tree = ast.parse((here / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                used = [node.module] if node.module else [a.name for a in node.names]
                for mod in used:
                    assert mod is not None and LAYERS.index(mod.split(".")[0]) < i, (name, mod)


def test_only_the_invariants_run_their_checks() -> None:
    """One invariant loop: the explorer asks the invariants' Checker for every verdict,
    transition-only ones included, and never runs a check function itself."""
    import pathlib

    import anonlib.explorer as pkg

    for path in pathlib.Path(pkg.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "state_check" not in text and "step_check" not in text, path.name
    search = (pathlib.Path(pkg.__file__).parent / "search.py").read_text()
    assert "checker.check(" in search and "transition_only=" in search


def test_breadth_first_numbers_each_key_once_and_stops_when_nothing_is_new() -> None:
    """The one search: numbers n -> 2n, 2n+1 below 10, odd ones left unexpanded."""
    from anonlib.explorer.engine import breadth_first

    seen: dict = {1: 0}
    arrived: list[tuple[int, int, int | None]] = []

    def expand(frontier: list[int]) -> Iterator[tuple[int, list[tuple[int | None, int]]]]:
        for n in frontier:
            yield n, [(m if m < 10 else None, m) for m in (2 * n, 2 * n + 1, n)]

    def arrive(n: int, m: int, number: int | None) -> int | None:
        arrived.append((n, m, number))
        return m if m % 2 == 0 else None

    got = [(layer.depth, layer.new, layer.frontier)
           for layer in breadth_first(1, seen, 10, expand, arrive)]
    assert got == [(1, 2, [2]), (2, 2, [4]), (3, 2, [8]), (4, 0, [])]
    assert seen == {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 8: 5, 9: 6}
    assert (1, 1, None) in arrived and (8, 16, None) in arrived  # seen, and keyless, arcs
