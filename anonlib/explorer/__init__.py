"""The explorer: exhaustive bounded search of a small world, every invariant at every step.

:func:`explore` (``python -m anonlib explore``) searches breadth first from one
process and its mappings through every enabled operation, deduplicating
states equal up to renaming (and THP tail pages in any order), and returns
an :class:`ExploreResult`: the states and transitions, what was covered, and
the shortest counterexample for each invariant broken, as a runnable
scenario. :func:`reachable` is the bare search, for the symmetry checks
(:func:`layers` the same, one depth at a time).
:func:`compare_schemes` finds the shortest sequences after which two kernel
eras differ; :func:`copy_counts` counts the page copies each era makes on
the same workloads.

Modules: :mod:`.alphabet` (which operations are tried), :mod:`.canon` (the
canonical form), :mod:`.search` (the search and its results),
:mod:`.copies` (copy counts), :mod:`.command` (the subcommand).
"""

from .compare import compare_schemes
from .copies import WORKLOADS, CopyTable, copy_counts
from .engine import layers, reachable
from .results import Counterexample, Difference, ExploreResult, SchemeComparison
from .search import explore
from .world import KNOWN_GAPS, KnownGap, WorldSpec

__all__ = [
    "KNOWN_GAPS",
    "WORKLOADS",
    "CopyTable",
    "Counterexample",
    "Difference",
    "ExploreResult",
    "KnownGap",
    "SchemeComparison",
    "WorldSpec",
    "compare_schemes",
    "copy_counts",
    "explore",
    "layers",
    "reachable",
]
