"""The scenario language: parse scenario text, run it on the model, report.

See ``docs/scenario-language.md`` for the language itself, ``docs/limits.md`` for
what it refuses and how.
"""

from .parser import parse
from .runner import Failure, ScenarioResult, TraceStep, run, run_scenario
from .syntax import InputError, Scenario, ScenarioError, Statement

__all__ = [
    "Failure",
    "InputError",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Statement",
    "TraceStep",
    "parse",
    "run",
    "run_scenario",
]
