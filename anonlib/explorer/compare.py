"""Two kernel eras driven by the same operation sequences: where they first differ.

:func:`compare_schemes` runs the explorer's one breadth-first search
(:func:`~.engine.breadth_first`) over pairs of worlds, one per scheme, and
returns a :class:`~.results.SchemeComparison`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import NamedTuple

from .. import model
from ..ops import Op
from ..results import ModelError
from ..scenario.parser import scheme_named
from ..schemes import Scheme
from ..state import World
from .alphabet import Alphabet, Names, enabled, parse_ops
from .canon import Key, pair_key, reads_mm_tracking
from .engine import Arcs, breadth_first
from .results import Difference, SchemeComparison
from .world import WorldSpec

__all__ = ["compare_schemes"]


class _Pair(NamedTuple):
    """A node of the search: the two worlds after the same operations, and those operations."""

    a: World
    b: World
    names: Names
    path: tuple[Op, ...]


def compare_schemes(a: str | Scheme, b: str | Scheme, pages: str = "base:1", processes: int = 2,
                    depth: int = 6,
                    ops: str = "all", handles: int = 1, values: int = 2, after: str = ""
                    ) -> SchemeComparison:
    """Drive two schemes with the same operation sequences; find where they differ.

    Breadth first over pairs of worlds, every sequence of at most ``depth``
    operations (pairs equal up to renaming are expanded once). Reports the
    shortest sequence after which an outcome differs (a read or reference
    read returns another value, a GUP fails in one, the kernel backs off in
    one...), the shortest after which the two have copied a different number
    of pages, and the pages each copied over all transitions. Invariants are
    not checked here (:func:`~.search.explore` does that). An operation
    refused under either scheme is not tried.
    """
    from .options import check_api, check_scheme

    check_scheme("b", b)
    check_api(a, pages, processes, depth, ops, None, 1, handles, values, after)
    sa, sb = scheme_named(a), scheme_named(b)
    a, b = sa.name, sb.name  # a scheme built in a notebook cell is named by its name field
    spec = WorldSpec.parse(pages, after)
    alphabet = Alphabet(parse_ops(ops), processes, handles, values)
    wa, wb = spec.initial(sa), spec.initial(sb)
    res = SchemeComparison((a, b), spec, depth)
    mm = reads_mm_tracking(sa) or reads_mm_tracking(sb)
    seen: dict[Key, int] = {pair_key(wa, wb, mm): 0}
    ca = cb = more_a = more_b = 0

    def successors(x: _Pair) -> Arcs[Key, _Pair]:
        nonlocal ca, cb, more_a, more_b
        for _f, op, after_names in enabled(x.a, sa, alphabet, x.names):
            ra, rb = model.apply(x.a, op, sa), model.apply(x.b, op, sb)
            if isinstance(ra, ModelError) or isinstance(rb, ModelError):
                continue
            res.transitions += 1
            da, db = ra.world.copies - x.a.copies, rb.world.copies - x.b.copies
            ca, cb = ca + da, cb + db
            more_a += da > db
            more_b += db > da
            ops_ = x.path + (op,)
            copies = (ra.world.copies, rb.world.copies)
            if res.outcome is None and ra.outcome.word != rb.outcome.word:
                res.outcome = Difference("outcome", (a, b), spec, ops_,
                                         (str(ra.outcome), str(rb.outcome)), copies)
            if res.copies is None and copies[0] != copies[1]:
                res.copies = Difference("copies", (a, b), spec, ops_,
                                        (str(copies[0]), str(copies[1])), copies)
            yield pair_key(ra.world, rb.world, mm), _Pair(ra.world, rb.world, after_names, ops_)

    def expand(frontier: list[_Pair]) -> Iterator[tuple[_Pair, Arcs[Key, _Pair]]]:
        for x in frontier:
            yield x, successors(x)

    def arrive(_x: _Pair, y: _Pair, _number: int | None) -> _Pair:
        return y

    was = gc.isenabled()
    gc.disable()
    try:
        for _layer in breadth_first(_Pair(wa, wb, spec.names(), ()), seen, depth, expand,
                                    arrive):
            pass
    finally:
        if was:
            gc.enable()
    res.pairs = len(seen)
    res.copied = (ca, cb)
    res.more = (more_a, more_b)
    return res
