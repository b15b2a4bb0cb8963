"""anonlib: a runnable model of Linux anonymous memory and PG_anon_exclusive."""

__version__ = "0.1.0"

from .compare import compare  # noqa: E402
from .explorer import explore  # noqa: E402
from .scenario import run_scenario  # noqa: E402

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
    "Stepper": "widgets",
    "Predict": "widgets",
    "Playground": "widgets",
    "Player": "player",
    "static_player": "player",
}


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """``anonlib.Stepper`` and friends: import their module on first use."""
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext anonlib``: registers the ``%%scenario`` cell magic."""
    from .magic import load_ipython_extension as load

    load(ipython)
