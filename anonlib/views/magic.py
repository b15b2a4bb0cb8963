"""The ``%%scenario`` cell magic: run the cell as a scenario and display the result.

Load it with ``%load_ext anonlib``, then::

    %%scenario --scheme page-count
    spawn P
    P mmap A 1
    ...

Options: ``--scheme NAME`` (overrides the cell's ``scheme`` line), ``--trace``
(the state after every statement), ``--name NAME`` (what titles and messages call the
cell; default ``this cell``). The cell's value is the
:class:`~anonlib.scenario.ScenarioResult`: notebooks show its text and HTML
forms, and ``_`` holds it for a following cell.
"""

from __future__ import annotations

import shlex
from typing import Any

from ..scenario.parser import q, scheme_named
from ..scenario.runner import ScenarioResult, run_scenario
from ..scenario.syntax import InputError

USAGE = "usage: %%scenario [--scheme NAME] [--trace] [--name NAME]"


class MagicUsageError(ValueError):
    """Bad options on the ``%%scenario`` line."""


def parse_magic_line(line: str) -> dict[str, Any]:
    """The options of a ``%%scenario`` line: ``scheme``, ``trace``, ``name``."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise MagicUsageError(f"{e}\n{USAGE}") from None
    opts: dict[str, Any] = {"scheme": None, "trace": False, "name": "this cell"}
    i = 0
    while i < len(words):
        word = words[i]
        key, eq, value = word.partition("=")
        if key in ("--scheme", "--name"):
            if not eq:
                if i + 1 >= len(words):
                    raise MagicUsageError(f"{key} needs a value\n{USAGE}")
                i += 1
                value = words[i]
            opts[key[2:]] = value
        elif word == "--trace":
            opts["trace"] = True
        else:
            raise MagicUsageError(f"unknown option {q(word)}\n{USAGE}")
        i += 1
    if opts["scheme"] is not None:
        try:
            scheme_named(opts["scheme"])
        except InputError as e:
            raise MagicUsageError(f"--scheme: {e}") from None
    return opts


def scenario(line: str, cell: str) -> ScenarioResult:
    """Run ``cell`` as a scenario with the options on ``line``."""
    opts = parse_magic_line(line)
    return run_scenario(cell, opts["scheme"], name=opts["name"], trace=opts["trace"])


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%scenario`` (called by ``%load_ext anonlib``)."""
    from IPython.core.error import UsageError

    def scenario_magic(line: str, cell: str) -> ScenarioResult:
        try:
            return scenario(line, cell)
        except MagicUsageError as e:
            raise UsageError(str(e)) from None

    scenario_magic.__doc__ = __doc__
    ipython.register_magic_function(scenario_magic, magic_kind="cell", magic_name="scenario")
