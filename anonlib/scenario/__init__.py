"""The scenario language: parse scenario text, run it on the model, report.

See ``shared/scenario-language.md`` for the language itself.
"""

from .parser import parse
from .syntax import Scenario, ScenarioError, Statement

__all__ = ["Scenario", "ScenarioError", "Statement", "parse"]
