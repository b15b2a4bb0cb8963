"""The GUP-fast race: two CPUs, step by step, under three memory models.

GUP-fast pins pages without taking any lock. Swap-out, migration and KSM
clear PG_anon_exclusive on a page that is still mapped, and fork clears it
without even unmapping. This package splits both sides into the steps the
kernel orders with barriers, runs every interleaving of them under
sequential consistency, x86-TSO and an ARM-like weak model, and reports the
shortest schedule that leaves a pinned page non-exclusive or unmapped.

    >>> from anonlib.race import explore
    >>> explore("swapout", "tso").verdict
    'safe'
    >>> explore("swapout-check-first", "sc").schedule[:2]
    ('A2', 'G0')

:mod:`~anonlib.race.machine` is the interleaving machine and its memory
models, :mod:`~anonlib.race.variants` the kernel's steps and the variants,
:mod:`~anonlib.race.explorer` the search and replay, :mod:`~anonlib.race.view`
a static step-through of a schedule for the book.
"""

from .explorer import Frame, RaceResult, Replay, explore, replay, table
from .machine import (
    MEMORY_MODEL_HELP,
    MEMORY_MODELS,
    MODELS,
    MemoryModel,
    StoreBuffer,
    memory_model,
)
from .variants import VARIANTS, Variant, variant
from .view import RacePlayer, player

__all__ = [
    "MEMORY_MODELS",
    "MEMORY_MODEL_HELP",
    "MODELS",
    "VARIANTS",
    "Frame",
    "MemoryModel",
    "RacePlayer",
    "RaceResult",
    "Replay",
    "StoreBuffer",
    "Variant",
    "explore",
    "memory_model",
    "player",
    "replay",
    "table",
    "variant",
]
