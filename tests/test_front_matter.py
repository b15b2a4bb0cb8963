"""The transcripts printed on the book's own pages (book/*.md) are what the model prints.

A Markdown page marks its checked examples with a MyST comment line before
a fenced block:

    % check: scenario                      the scenario the next checks run
    % check: run SCHEME [show]             run_scenario(scenario [+ "show"], SCHEME)
    % check: compare SCHEME SCHEME ...     compare(scenario, [SCHEME, ...])

The block after a `run` or `compare` line is the output, exactly as printed.
Chapters are checked by nbval; this does the same for the front matter.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from anonlib import run_scenario
from anonlib.compare import compare

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "book").glob("*.md"))
CHECK = re.compile(r"^% check: ([^\n]+)\n```[^\n]*\n(.*?)^```", re.M | re.S)


def examples() -> list[tuple[str, str, str, str]]:
    """(page, directive, scenario, expected output) of every checked example."""
    found = []
    for page in PAGES:
        scenario = None
        for m in CHECK.finditer(page.read_text(encoding="utf-8")):
            directive, block = m.group(1).strip(), m.group(2)
            if directive == "scenario":
                scenario = block
            else:
                assert scenario is not None, f"{page.name}: '{directive}' before any scenario"
                found.append((page.name, directive, scenario, block))
    return found


def test_the_how_to_read_page_has_checked_examples():
    pages = {page for page, *_ in examples()}
    assert "how-to-read.md" in pages


@pytest.mark.parametrize(
    ("page", "directive", "scenario", "expected"),
    examples(),
    ids=[f"{page}: {directive}" for page, directive, *_ in examples()],
)
def test_example_output(page, directive, scenario, expected):
    kind, *args = directive.split()
    if kind == "run":
        scheme, *extra = args
        assert extra in ([], ["show"]), directive
        text = scenario + ("show\n" if extra else "")
        actual = str(run_scenario(text, scheme))
    elif kind == "compare":
        actual = str(compare(scenario, args))
    else:
        raise AssertionError(f"{page}: unknown check {directive!r}")
    assert actual.rstrip("\n") == expected.rstrip("\n"), (
        f"{page}: the output of '{directive}' changed; update the page"
    )
