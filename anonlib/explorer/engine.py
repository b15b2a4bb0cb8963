"""The one breadth-first search under every search of the explorer.

:func:`breadth_first` expands a frontier one depth at a time and keeps each
state once, by a key the caller computes: :func:`anonlib.explorer.explore`
runs it over fingerprints of canonical forms, with invariant checks and
forked workers; :func:`anonlib.explorer.compare_schemes` over pairs of
worlds, one per scheme; :func:`layers` and :func:`reachable` over plain
worlds, with nothing checked.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, NamedTuple, TypeVar

from .. import model
from ..results import ModelError
from ..scenario.parser import scheme_named
from ..schemes import Scheme
from ..state import World
from .alphabet import Alphabet, Names, enabled
from .canon import KEYS, MM_KEYS, Key, reads_mm_tracking
from .world import WorldSpec

__all__ = ["Layer", "breadth_first", "layers", "reachable"]

N = TypeVar("N")  # a node of the frontier: a state and what the caller carries with it
A = TypeVar("A")  # what an arc out of a node carries to ``arrive``
K = TypeVar("K", bound=Hashable)  # the key of a state (a canonical form, a fingerprint)

#: One node's arcs, from ``expand``: (key of the target, or None if it has none, arc)
Arcs = Iterable[tuple[K | None, A]]


class Layer(NamedTuple, Generic[N]):
    """What one depth of :func:`breadth_first` added."""

    depth: int
    new: int  # states not seen before (expanded next or not)
    frontier: list[N]  # the nodes to expand at the next depth


def breadth_first(start: N, seen: dict[K, int], depth: int,
                  expand: Callable[[list[N]], Iterable[tuple[N, Arcs[K, A]]]],
                  arrive: Callable[[N, A, int | None], N | None]) -> Iterator[Layer[N]]:
    """Expand from ``start`` to at most ``depth`` steps; yield each depth's :class:`Layer`.

    ``seen`` maps the key of every state found to its number, in the order
    found; it holds the start's key when called and the search adds to it
    (``expand`` may read it, to skip work on targets already seen).
    ``expand(frontier)`` gives, for each node of the frontier in order, the
    arcs out of it, each with its target's key. For each arc the search
    calls ``arrive(node, arc, number)``: ``number`` is the number a key not
    seen before has just been given, else None (a seen key, or no key). The
    node ``arrive`` returns for a new key is expanded at the next depth; None
    leaves the new state unexpanded. Stops early, with no layer for that
    depth, when a frontier is empty.
    """
    frontier = [start]
    for d in range(1, depth + 1):
        if not frontier:
            return
        nxt: list[N] = []
        new = 0
        for node, arcs in expand(frontier):
            for key, arc in arcs:
                number = None
                if key is not None and key not in seen:
                    number = seen[key] = len(seen)
                    new += 1
                child = arrive(node, arc, number)
                if number is not None and child is not None:
                    nxt.append(child)
        frontier = nxt
        yield Layer(d, new, nxt)


def layers(scheme: str | Scheme, pages: str, depth: int, key: str = "canonical"
           ) -> Iterator[tuple[dict[Key, World], list[tuple[World, Names]]]]:
    """The plain breadth-first search, one depth at a time: for depth 0 (the start) and
    after each depth, the states seen so far (one per ``key`` class) and the new ones,
    with their fresh-name counters.

    No invariants, no coverage, one process; the key named as in :data:`~.canon.KEYS`
    is taken as is (its :data:`~.canon.MM_KEYS` variant where the scheme reads the
    per-MM tracking of large folios). :func:`reachable` keeps the first, the explorer
    benchmark's floor samples the second.
    """
    sch = scheme_named(scheme)
    keyfn = (MM_KEYS if reads_mm_tracking(sch) else KEYS)[key]
    spec = WorldSpec.parse(pages)
    w0 = spec.initial(sch)
    alphabet = Alphabet()
    seen: dict[Key, int] = {keyfn(w0): 0}
    worlds = [w0]

    def successors(world: World, names: Names) -> Arcs[Key, tuple[World, Names]]:
        for _f, op, after in enabled(world, sch, alphabet, names):
            r = model.apply(world, op, sch)
            if not isinstance(r, ModelError):
                yield keyfn(r.world), (r.world, after)

    def expand(frontier: list[tuple[World, Names]]
               ) -> Iterator[tuple[tuple[World, Names], Arcs[Key, tuple[World, Names]]]]:
        for node in frontier:
            yield node, successors(*node)

    def arrive(_node: tuple[World, Names], child: tuple[World, Names], number: int | None
               ) -> tuple[World, Names]:
        if number is not None:
            worlds.append(child[0])
        return child

    def so_far() -> dict[Key, World]:
        return dict(zip(seen, worlds, strict=True))

    yield so_far(), [(w0, spec.names())]
    done = 0
    for layer in breadth_first((w0, spec.names()), seen, depth, expand, arrive):
        done = layer.depth
        yield so_far(), layer.frontier
    for _ in range(done, depth):  # the search ran out of states: the remaining depths add none
        yield so_far(), []


def reachable(scheme: str | Scheme, pages: str, depth: int, key: str = "canonical"
              ) -> dict[Key, World]:
    """Every state within ``depth`` operations of the world ``pages``, one per ``key`` class.

    The plain breadth-first search of :func:`layers`. The symmetry checks
    compare two of these: a search that keeps one state per class must reach
    every class the finer one reaches.
    """
    *_earlier, (seen, _layer) = layers(scheme, pages, depth, key)
    return seen
