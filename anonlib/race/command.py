"""Subcommand ``race`` of ``python -m anonlib`` (see :mod:`anonlib.cli`)."""

from __future__ import annotations

import argparse
import sys

from ..cli import Command, register
from ..scenario.parser import q, suggest
from ..scenario.source import clip
from .explorer import explore, replay, table
from .machine import MEMORY_MODEL_HELP, MEMORY_MODELS, memory_model
from .variants import VARIANTS

DESCRIPTION = """\
Run every interleaving of GUP-fast (CPU B) against a path that clears
PG_anon_exclusive (CPU A: swap-out, migration, KSM, or fork) under a memory
model, and print the shortest schedule that leaves a pinned page
non-exclusive or unmapped. Each step names the kernel function and the line
it models."""

EPILOG = (
    "memory models:\n"
    + "\n".join(f"  {m:<5} {h}" for m, h in MEMORY_MODEL_HELP.items())
    + """

events in a schedule:
  A2        CPU A runs step A2
  A1@mem    A1's store leaves CPU A's store buffer and reaches memory
  B5@early  B5's load is satisfied ahead of the steps before it (weak only)

examples:
  python -m anonlib race --list
  python -m anonlib race swapout-check-first
  python -m anonlib race swapout-no-share-mb --memory-model tso
  python -m anonlib race fork-no-seqcount --schedule F2,F3,F4,B1,B2,B3,B4,F5,F6,F7

exit status:
  0  no schedule loses the pin (or the replayed schedule does not)
  1  a schedule loses the pin: the shortest is printed (or the replayed one does)
  2  unknown variant or memory model, or a replayed event that cannot happen"""
)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("variant", nargs="?", metavar="VARIANT", help="a variant from --list")
    p.add_argument("--list", action="store_true", help="list the variants and expected verdicts")
    p.add_argument(
        "--table",
        action="store_true",
        help="explore every variant under every memory model and print the verdicts",
    )
    p.add_argument(
        "-m",
        "--memory-model",
        default="sc",
        metavar="MODEL",
        help=f"one of {', '.join(MEMORY_MODELS)} (default: sc)",
    )
    p.add_argument(
        "--schedule",
        metavar="EVENTS",
        help="replay these comma-separated events instead of exploring",
    )
    p.add_argument(
        "--brief", action="store_true", help="one line per event instead of the state after each"
    )


def _list() -> str:
    width = max(len(n) for n in VARIANTS)
    lines = []
    for v in VARIANTS.values():
        lines.append(f"{v.name:<{width}}  {v.summary}")
        lines.append(f"{'':<{width}}  expected: {v.expected_line}")
    return "\n".join(lines)


def _error(message: str) -> int:
    print(f"anonlib race: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    try:
        model = memory_model(args.memory_model)
    except ValueError as e:
        return _error(str(e))
    if args.list:
        print(_list())
        return 0
    if args.table:
        print(table())
        return 0
    if args.variant is None:
        return _error("name a VARIANT (see --list)")
    if args.variant not in VARIANTS:
        hint = suggest(args.variant, list(VARIANTS))
        return _error(f"unknown variant {q(args.variant)};{hint} see "
                      "'python -m anonlib race --list'")
    if args.schedule is not None:
        events = [e.strip() for e in args.schedule.split(",")]
        if not any(events):
            return _error(f"--schedule {q(args.schedule)} names no event; e.g. A1,B1,A2")
        if not all(events):
            return _error(f"--schedule {q(args.schedule)}: an empty event between commas")
        r = replay(args.variant, events, model)
        if r.error:
            # the replay up to the event that cannot happen, then the error on stderr
            print("\n".join(x for x in r.text().split("\n") if x != f"error: {r.error}"))
            sys.stdout.flush()
            return _error(clip(r.error, 400))
        print(r.text())
        return r.exit_status
    result = explore(args.variant, model)
    print(result.text(verbose=not args.brief))
    return result.exit_status


register(
    Command(
        "race",
        "explore the GUP-fast race: every interleaving under a memory model",
        _configure,
        _run,
        description=DESCRIPTION,
        epilog=EPILOG,
    )
)
