"""anonlib: a runnable model of Linux anonymous memory and PG_anon_exclusive."""

__version__ = "0.1.0"

from .scenario import run_scenario  # noqa: E402

__all__ = ["__version__", "load_ipython_extension", "run_scenario"]


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext anonlib``: registers the ``%%scenario`` cell magic."""
    from .magic import load_ipython_extension as load

    load(ipython)
