"""Symmetric operations: one operation tried per orbit where a state is its own mirror image.

The canonical key (:mod:`anonlib.explorer.canon`) already counts a state
once however its THP's tail pages are ordered. This module saves the work
before the key: in a state that some permutation of tail pages leaves
*exactly* as it is (same entries, same pages, same references, nothing
renamed), an operation on tail page ``i`` and the same operation on tail
page ``j`` (``i`` and ``j`` swappable) lead to states that are mirror images
of each other: they share one canonical key, and every invariant gives both
the same verdict. The explorer then applies only the first of them (the
*representative*, with the smallest page numbers) and counts the others as
the same kind of transition (carried out, ``skipped`` or refused), with
their own coverage columns. A search with it gives the same states,
transitions, coverage and counterexamples as without it (a test holds it to
that); it only does less work. Where the key keeps tail pages in their order
(``--key names`` or ``raw``, or the ``head-only`` scheme) nothing is saved,
because there the mirror images are different states.

Which tails may be swapped is :func:`~.canon.swappable_classes` (the key uses
it too); any permutation within its classes leaves the state as it is.
This is the permutation the canonical key applies, restricted to those that
need no renaming, so it rests on the same property of the model, which the
symmetry test checks: tail pages are treated alike.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, NamedTuple

from ..ops import Madvise, Op, PageRef
from ..state import World
from .canon import _TAIL_MAPS, swappable_classes

__all__ = ["Tails", "representative", "swappable_tails"]


class Tails(NamedTuple):
    """The swappable tail pages of one state (:func:`swappable_tails`)."""

    #: each tail page in a class of two or more -> the members of its class, in order
    classes: dict[int, tuple[int, ...]]
    #: the (process, mapping) pairs whose pages the permutation moves (THP and mTHP ones)
    mappings: frozenset[tuple[str, str]]


def swappable_tails(world: World) -> Tails | None:
    """The classes of tail pages that may be swapped with each other; None when no two may
    be (or the world's tails are not permuted by the key: :func:`~.canon.tail_pages` is
    below 3)."""
    classes = swappable_classes(world)
    if not classes:
        return None
    maps = frozenset((p.name, v.name) for p in world.procs for v in p.vmas
                     if v.kind in _TAIL_MAPS)
    return Tails(classes, maps)


#: Per operation class, the fields that hold a page (a PageRef). Madvise of one page names
#: its page by ``index`` beside ``proc`` and ``mapping`` instead.
_PAGE_FIELDS: dict[type, tuple[str, ...]] = {}


def _page_fields(cls: type) -> tuple[str, ...]:
    hit = _PAGE_FIELDS.get(cls)
    if hit is None:
        hit = _PAGE_FIELDS[cls] = tuple(f.name for f in fields(cls)
                                        if f.type in ("PageRef", PageRef))
    return hit


def representative(op: Op, tails: Tails) -> Op:
    """The operation of ``op``'s orbit with the smallest tail pages: each tail page ``op``
    names in a THP or mTHP mapping is renamed, in order of appearance, to the smallest
    page of its class (:func:`swappable_tails`) not renamed to yet. ``op`` itself when
    nothing changes."""
    classes = tails.classes
    refs: list[tuple[str, str, str, int]] = []  # (field, proc, mapping, index)
    for name in _page_fields(type(op)):
        r: PageRef = getattr(op, name)
        if r.index in classes:
            refs.append((name, r.proc, r.mapping, r.index))
    if isinstance(op, Madvise) and op.index in classes:
        refs.append(("index", op.proc, op.mapping, op.index))
    if not refs:
        return op
    taken: dict[int, int] = {}  # old page -> new page
    used: set[int] = set()
    changes: dict[str, Any] = {}
    for name, proc, mapping, index in refs:
        if (proc, mapping) not in tails.mappings:
            continue
        new = taken.get(index)
        if new is None:
            new = next(i for i in classes[index] if i not in used)
            taken[index] = new
            used.add(new)
        if new != index:
            changes[name] = new
    if not changes:
        return op
    out: dict[str, Any] = {}
    for name, new in changes.items():
        if name == "index":
            out[name] = new
        else:
            r = getattr(op, name)
            out[name] = PageRef(r.proc, r.mapping, new)
    return replace(op, **out)  # type: ignore[type-var]
