"""The scenario language: parse scenario text, run it on the model, report.

See ``docs/scenario-language.md`` for the language itself.
"""

from .parser import parse
from .runner import Failure, ScenarioResult, TraceStep, run, run_scenario
from .syntax import Scenario, ScenarioError, Statement

__all__ = [
    "Failure",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Statement",
    "TraceStep",
    "parse",
    "run",
    "run_scenario",
]
