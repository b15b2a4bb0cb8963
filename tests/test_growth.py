"""Growth with the input's size, counted in executed lines of Python (not timed).

Each test measures the same work at two sizes, n and 4n, by counting the
lines the interpreter executes (sys.settrace): deterministic, and blind to
the machine's load. Linear work grows about 4x; a ratio near 16 means a
quadratic cost came back. The sizes are small so that tracing stays cheap;
benchmarks/growth_bench.py measures time and memory at real sizes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from anonlib import invariants
from anonlib.scenario import runner
from anonlib.scenario.parser import parse
from anonlib.scenario.runner import run_scenario
from anonlib.schemes import MAINLINE
from anonlib.views import render
from anonlib.views.player import trace_frames

#: Above this, 4x the input cost more than 4x plus a little for constant costs.
LINEAR = 5.0


def lines_run(fn: Callable[[], Any]) -> int:
    """How many lines of Python ``fn()`` executes."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def call(frame: FrameType, event: str, arg: Any) -> Any:
        return local

    old = sys.gettrace()
    sys.settrace(call)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


def growth(make: Callable[[int], Callable[[], Any]], n: int) -> float:
    """Lines executed at size 4n over lines at size n."""
    return lines_run(make(4 * n)) / lines_run(make(n))


def forks(n: int) -> str:
    return "spawn P\nP mmap A 2\nP write A[0] x\n" + "".join(f"P fork C{i}\n" for i in range(n))


def mmaps(n: int) -> str:
    return "spawn P\n" + "".join(f"P mmap A{i} 1\nP write A{i}[0] v\n" for i in range(n))


def world_of(text: str) -> Any:
    result = run_scenario(text)
    assert result.ok, str(result)
    return result.world


def test_drawing_a_world_is_linear_in_its_size() -> None:
    # was folios * entries: every folio's refcount and mapcount scanned every entry
    def make(n: int) -> Callable[[], Any]:
        world = world_of(mmaps(n))
        return lambda: render.world_text(world, MAINLINE)

    assert growth(make, 10) < LINEAR


def test_drawing_many_processes_is_linear_in_their_number() -> None:
    def make(n: int) -> Callable[[], Any]:
        world = world_of("spawn P\nP mmap A 2\nP write A[0] x\n" + "".join(
            f"P fork C{i}\nC{i} write A[1] y\n" for i in range(n)))
        return lambda: (render.world_text(world, MAINLINE), render.world_rows(world, MAINLINE))

    assert growth(make, 10) < LINEAR


def test_checking_many_mappings_is_linear_in_their_number() -> None:
    # was mappings * mappings: each page's mapping was looked up by a scan of the process's
    def make(n: int) -> Callable[[], Any]:
        world = world_of(mmaps(n))
        return lambda: invariants.check(world, MAINLINE)

    assert growth(make, 25) < LINEAR


def test_a_run_of_writes_is_linear_in_its_length() -> None:
    def make(n: int) -> Callable[[], Any]:
        sc = parse("spawn P\nP mmap A 4\n" + "".join(f"P write A[{i % 4}] v{i}\n"
                                                       for i in range(n)))
        return lambda: runner.run(sc)

    assert growth(make, 25) < LINEAR


def test_the_players_frames_cost_what_the_run_costs() -> None:
    # was two diffs per frame, each drawing both worlds, and every invariant checked again
    def make(n: int) -> Callable[[], Any]:
        result = run_scenario("spawn P\nP mmap A 4\n" + "".join(
            f"P write A[{i % 4}] v{i}\nshow P A[{i % 4}]\n" for i in range(n)))
        return lambda: trace_frames(result)

    assert growth(make, 10) < LINEAR
    result = run_scenario(forks(6))
    assert lines_run(lambda: trace_frames(result)) < 2 * lines_run(lambda: run_scenario(forks(6)))


def test_a_run_without_steps_keeps_none() -> None:
    text = forks(3)
    kept, lean = run_scenario(text), run_scenario(text, keep_steps=False)
    assert str(kept) == str(lean)
    assert kept.trace and kept.rows and kept.checked
    assert not lean.trace and not lean.rows and not lean.checked
    assert lean.world == kept.world


def test_a_huge_unknown_word_is_not_compared_letter_by_letter() -> None:
    def make(n: int) -> Callable[[], Any]:
        text = "spawn P\n" + "x" * n + "\n"
        return lambda: run_scenario(text)

    # tokenising is a loop per character: linear; the suggestion must add nothing per letter
    assert growth(make, 2000) < LINEAR
    result = run_scenario("spawn P\n" + "spwan" * 10 + "\n")
    assert result.exit_code == 2 and "did you mean" not in str(result.failures[0])
    assert "did you mean 'spawn'" in str(run_scenario("spwan P\n").failures[0])


@pytest.mark.parametrize(("limit", "text", "words"), [
    ("MAX_PROCESSES", "spawn P\nP fork Q\nQ fork R\n", "too many processes: 3 alive"),
    ("MAX_PAGES", "spawn P\nP mmap A 2\nP mmap B 1\n", "too much memory mapped: 3 pages"),
    ("MAX_PAGES", "spawn P\nP mmap A 2\nP fork Q\n", "too much memory mapped: 4 pages"),
    ("MAX_REFERENCES", "spawn P\nP mmap A 1\nP pin A[0] ro as H\nP get A[0] ro as I\n"
     "P pin A[0] rw as J\n", "too many references: 3 held"),
])
def test_what_is_alive_at_once_is_bounded(monkeypatch: pytest.MonkeyPatch, limit: str,
                                          text: str, words: str) -> None:
    monkeypatch.setattr(runner, limit, 2)
    result = run_scenario(text, name="big.scn")
    assert result.exit_code == 2
    failure = result.failures[0]
    last = text.count("\n")
    assert (failure.line, failure.column) == (last, 1)
    assert words in failure.message and "docs/limits.md" in failure.message
    assert result.world is not None and result.trace[-1].world is result.world
    world = result.world  # the refused statement left nothing behind
    assert len(world.procs) <= 2 and len(world.handles) <= 2
    assert sum(v.npages for p in world.procs for v in p.vmas) <= 2 or limit != "MAX_PAGES"


def test_a_snapshot_counts_as_a_mem_does() -> None:
    # Snapshot answers from its index what Mem answers by scanning: the same, in the same order
    from pathlib import Path

    from anonlib.mem import MAPPING_KINDS, PAGE_KINDS, Mem, Snapshot
    from anonlib.scenario.library import is_size_variant
    from anonlib.state import EntryKind

    # cow.c's mTHP size variants above 16 kB are left out: the same steps on folios of up
    # to 256 pages, each step compared page by page, would take minutes and show nothing new
    files = sorted(p for p in (Path(__file__).resolve().parents[1] / "scenarios").rglob("*.scn")
                   if not is_size_variant(p))
    seen = 0
    for path in files[::3]:
        result = run_scenario(path.read_text(encoding="utf-8"))
        for step in result.trace:
            world = step.world
            m, s = Mem(world, MAINLINE), Snapshot(world, MAINLINE)
            for f in world.folios:
                for kinds in (MAPPING_KINDS, PAGE_KINDS, (EntryKind.MIGRATION,)):
                    assert s.mappings_of(f.id, kinds) == m.mappings_of(f.id, kinds)
                assert (s.refcount(f.id), s.pincount(f.id)) == (m.refcount(f.id), m.pincount(f.id))
                assert [s.mapcount(f.id, i) for i in range(len(f.pages))] == [
                    m.mapcount(f.id, i) for i in range(len(f.pages))]
                seen += 1
            for slot in world.slots:
                assert s.swap_count(slot.id) == m.swap_count(slot.id)
                seen += 1
    assert seen > 100
