"""The explorer's arguments, checked before any search: the command line's and the API's.

``python -m anonlib explore`` and :func:`anonlib.explore` take the same
arguments; both go through these checks, so a bad one is refused the same
way (``docs/limits.md``): a :class:`~anonlib.scenario.InputError` naming the
option (``--pages`` on the command line, ``pages`` in Python) and the value.
The scenario language's own limits apply to the world (1 to 512 pages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..invariants import BY_ID
from ..ops import MAX_PAGES, STATEMENTS, to_text
from ..scenario.parser import parse, q, suggest
from ..scenario.runner import unknown_scheme
from ..scenario.syntax import InputError, ScenarioError
from ..schemes import SCHEMES, Scheme
from .alphabet import groups, parse_ops

if TYPE_CHECKING:
    from .world import WorldSpec

#: Most worker processes ``jobs`` may ask for (0: one per core).
MAX_JOBS = 64
_PAGE_ITEM_RE = re.compile(r"(base|thp|hugetlb|mthp)(?::([0-9]{1,9}))?")


def check_scheme(option: str, scheme: object) -> None:
    """A scheme name (or a Scheme), or InputError with the nearest name."""
    if isinstance(scheme, Scheme) or (isinstance(scheme, str) and scheme in SCHEMES):
        return
    raise InputError(f"{option}: {unknown_scheme(scheme)}")


def check_pages(option: str, text: str) -> None:
    """``pages`` within the scenario language's own limits, or InputError saying which."""
    items = [s.strip() for s in text.split(",")]
    if not any(items):
        raise InputError(f"{option} {q(text)} names no mapping; e.g. base:1")
    for item in items:
        if not item:
            raise InputError(f"{option} {q(text)}: an empty item between commas")
        m = _PAGE_ITEM_RE.fullmatch(item)
        if m is None:
            raise InputError(f"{option}: bad item {q(item)}: use base:N, thp[:N], hugetlb[:N] "
                             "or mthp[:N] (N in digits 0-9)")
        if m.group(2) is not None and not 1 <= int(m.group(2)) <= MAX_PAGES:
            raise InputError(f"{option}: {q(item)}: a mapping has 1 to {MAX_PAGES} pages, as in "
                             "a scenario")


def world(option: str, pages: str, after: str = "") -> WorldSpec:
    """The world ``pages`` and ``after`` describe, checked as the scenario it stands for."""
    from .world import WorldSpec

    check_pages(option, pages)
    try:
        spec = WorldSpec.parse(pages, after)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(str(e)) from None
    text = "\n".join(spec.header() + [to_text(op) for op in spec.setup()])
    sc = parse(text, option)
    if isinstance(sc, ScenarioError):
        raise InputError(f"{option}: {sc.message}")
    return spec


def selection(option: str, text: str, known: Sequence[str]) -> list[str]:
    """The comma-separated names of ``option``; an empty selection is an error."""
    names = [i.strip() for i in text.split(",") if i.strip()]
    if not names:
        raise InputError(f"{option} {q(text)} selects nothing; name at least one of "
                         f"{', '.join(known)}")
    return names


def check_ops(option: str, ops: str | Iterable[str]) -> None:
    """Operation families or groups (``all,-poison``) that select at least one family."""
    families, grouped = STATEMENTS.families(), groups()  # the registry as it is now
    words = selection(option, ops, families) if isinstance(ops, str) else list(ops)
    if not words:
        raise InputError(f"{option} selects no operation family; families: {', '.join(families)}")
    known = (*families, *grouped) if isinstance(ops, str) else families  # a list: families only
    for word in words:
        name = word.removeprefix("-") if isinstance(ops, str) else word
        if not isinstance(name, str) or name not in known:
            shown = name if isinstance(name, str) else type(name).__name__
            if shown in grouped:
                raise InputError(f"{option}: {q(shown)} is a group; a list names families "
                                 f"(or pass the string {shown!r})")
            hint = suggest(shown, list(known))
            raise InputError(f"{option}: unknown operation family {q(shown)};{hint} families: "
                             f"{', '.join(families)}; groups: {', '.join(grouped)}")
    if isinstance(ops, str) and not parse_ops(ops):
        raise InputError(f"{option} {q(ops)} removes every operation family; "
                         "the search would check nothing")


def check_invariants(option: str, invariants: str | Sequence[str]) -> list[str]:
    """Invariant ids (a comma-separated string or a list), at least one, each known."""
    if isinstance(invariants, str):
        ids = selection(option, invariants, list(BY_ID))
    else:
        ids = list(invariants)
        if not ids:
            raise InputError(f"{option} selects nothing; name at least one of "
                             f"{', '.join(BY_ID)}")
    for i in ids:
        if not isinstance(i, str) or i not in BY_ID:
            shown = i if isinstance(i, str) else type(i).__name__
            hint = suggest(shown, list(BY_ID))
            raise InputError(f"{option}: unknown invariant {q(shown)};{hint} known: "
                             f"{', '.join(BY_ID)}")
    return ids


def check_api(scheme: object, pages: object, processes: int, depth: int, ops: object,
              invariants: object, jobs: int, handles: int, values: int, after: str,
              stop_at_first: object = True) -> None:
    """:func:`anonlib.explore`'s arguments, named as its keywords."""
    check_scheme("scheme", scheme)
    if not isinstance(stop_at_first, bool):
        raise InputError(f"stop_at_first is True or False, not {type(stop_at_first).__name__}")
    if isinstance(pages, str):
        if not isinstance(after, str):
            raise InputError(f"after is statement text (str), not {type(after).__name__}")
        world("pages", pages, after)
    if not isinstance(ops, str) and not isinstance(ops, Iterable):
        raise InputError(f"ops is a string or a list of families, not {type(ops).__name__}")
    check_ops("ops", ops)
    if invariants is not None:
        if not isinstance(invariants, (str, list, tuple)):
            raise InputError(f"invariants is a list of ids, not {type(invariants).__name__}")
        check_invariants("invariants", invariants)
    check_counts("", processes, depth, handles, values, jobs)


def check_counts(style: str, processes: int, depth: int, handles: int, values: int,
                 jobs: int) -> None:
    """The search's bounds; ``style`` is ``--`` for the command line, empty for the API."""
    for name, value, low in (("processes", processes, 1), ("depth", depth, 0),
                             ("handles", handles, 0), ("values", values, 1),
                             ("jobs", jobs, 0)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"{style}{name} must be a whole number, not "
                             f"{type(value).__name__}")
        if value < low:
            raise InputError(f"{style}{name} must be at least {low}, not {value}")
    if jobs > MAX_JOBS:
        raise InputError(f"{style}jobs must be from 0 (one per core) to {MAX_JOBS}, not {jobs}")
