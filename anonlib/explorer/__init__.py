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
the same workloads; :func:`rule_diff` puts all of these together for two schemes.

Layout, one responsibility per module; a module imports only those above it
(a test holds the package to this order):

- :mod:`.alphabet`: the operations tried in a state, and their fresh names.
- :mod:`.canon`: the canonical form that tells states equal up to renaming.
- :mod:`.orbits`: the operations that are mirror images of each other in a state
  that swapping tail pages leaves as it is (the search applies one of each).
- :mod:`.world`: the world a search starts from (:class:`WorldSpec`, ``--pages``
  and ``--after``) and the kernel's known gaps (:data:`KNOWN_GAPS`).
- :mod:`.options`: the explorer's arguments checked before any search, the
  same way for the command line and the API (``docs/limits.md``).
- :mod:`.results`: what a search found (:class:`ExploreResult`,
  :class:`Counterexample`, :class:`SchemeComparison`, :class:`Difference`) and
  its views: text, HTML, a plot.
- :mod:`.engine`: the one breadth-first search (:func:`.engine.breadth_first`),
  and :func:`layers` and :func:`reachable`, plain searches on it.
- :mod:`.search`: :func:`explore`, the engine over fingerprints of canonical
  forms, every transition checked by :func:`anonlib.invariants.check`, with
  forked workers.
- :mod:`.compare`: :func:`compare_schemes`, the engine over pairs of worlds.
- :mod:`.copies`: copy counts of fixed workloads (no search).
- :mod:`.rulediff`: :func:`rule_diff`, what a rule change changes: the library's
  verdicts, the copy counts and the comparison searches, for two schemes.
- :mod:`.command`: the ``explore`` subcommand.
- :mod:`.diff_command`: the ``diff`` subcommand.
"""

from .compare import compare_schemes
from .copies import WORKLOADS, CopyTable, copy_counts
from .engine import layers, reachable
from .results import Counterexample, Difference, ExploreResult, SchemeComparison
from .rulediff import RuleDiff, rule_diff
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
    "RuleDiff",
    "SchemeComparison",
    "WorldSpec",
    "compare_schemes",
    "copy_counts",
    "explore",
    "layers",
    "reachable",
    "rule_diff",
]
