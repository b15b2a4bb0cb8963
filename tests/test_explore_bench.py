"""The explorer benchmark's floor times the operations the explorer applies (not timed here).

``benchmarks/explore_bench.py`` sets the explorer's time per state against the
model's own work in the same search: ``model.apply`` of every operation the
explorer applies in every state it expands, mirror images left out as the
explorer leaves them out. That comparison is only fair if both count the same
operations; this holds the benchmark's count to the explorer's on small searches.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from anonlib.explorer import explore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "explore_bench", ROOT / "benchmarks" / "explore_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("explore_bench", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("world,depth", [("base:1", 2), ("thp:4", 1), ("mthp:4", 1)])
def test_floor_times_the_operations_the_explorer_applies(bench: ModuleType, world: str,
                                                         depth: int) -> None:
    f = bench.floor(world, depth, repeat=1)
    r = explore("mainline", world, depth=depth + 1, stop_at_first=False)
    assert f.applied == r.transitions + r.refused - r.mirrored
    if world != "base:1":
        assert r.mirrored > 0  # the mirror images are left out on both sides
    assert f.work_s >= 0 and f.apply_s >= 0 and f.check_us > 0
