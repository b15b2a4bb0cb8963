"""anonlib: a runnable model of Linux anonymous memory and PG_anon_exclusive.

The top level is the model: :mod:`.state` (a World), :mod:`.ops` (the
statements), :mod:`.model` (``apply``, the front door), :mod:`.mm` (the kernel
functions, one module per ``mm/*.c`` file), :mod:`.schemes` (the kernel eras),
:mod:`.invariants`, :mod:`.mem`, :mod:`.results`, :mod:`.pagemap` and
:mod:`.flaglife`. Around it: :mod:`.scenario` (the language and its runner),
:mod:`.explorer` (exhaustive search), :mod:`.race` (the GUP-fast race),
:mod:`.kernelcheck` (the real kernel) and :mod:`.cli`. Everything that shows a
World to a reader (text, HTML, figures, players, widgets) is in :mod:`.views`.

``anonlib.render``, ``anonlib.figure``, ``anonlib.player``,
``anonlib.reference`` and ``anonlib.compare`` are the old paths of those
``anonlib.views`` modules, kept while the notebooks import them.
"""

import sys
from typing import Any

__version__ = "0.1.0"

from .explorer import explore  # noqa: E402
from .scenario import run_scenario  # noqa: E402
from .views import compare as _compare_module  # noqa: E402

#: ``anonlib.compare`` is the function (``anonlib.compare(text, schemes)``) while
#: ``from anonlib.compare import compare`` imports from :mod:`anonlib.views.compare`.
sys.modules[f"{__name__}.compare"] = _compare_module
compare = _compare_module.compare

__all__ = [
    "Playground",
    "Player",
    "Predict",
    "Stepper",
    "__version__",
    "compare",
    "explore",
    "load_ipython_extension",
    "run_scenario",
    "static_player",
]

#: Names imported on first use, so that ``import anonlib`` needs neither
#: matplotlib nor ipywidgets (the scenario runner and the CLI do not).
_LAZY = {
    "Stepper": "views.widgets",
    "Predict": "views.widgets",
    "Playground": "views.widgets",
    "Player": "views.player",
    "static_player": "views.player",
}


def __getattr__(name: str) -> Any:
    """``anonlib.Stepper`` and friends: import their module on first use."""
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext anonlib``: registers the ``%%scenario`` cell magic."""
    from .views.magic import load_ipython_extension as load

    load(ipython)
