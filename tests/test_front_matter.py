"""The transcripts printed on the book's own pages (book/*.md) are what the model prints.

A Markdown page marks its checked examples with a MyST comment line before
a fenced block:

    % check: scenario                      the scenario the next checks run
    % check: run SCHEME [show]             run_scenario(scenario [+ "show"], SCHEME)
    % check: compare SCHEME SCHEME ...     compare(scenario, [SCHEME, ...])

The block after a `run` or `compare` line is the output, exactly as printed.
Chapters are checked by nbval; this does the same for the front matter.

When the model's output changes on purpose, `python tests/test_front_matter.py`
rewrites those blocks with the current output (review the diff, then commit).
"""

from __future__ import annotations

import pathlib
import re

import pytest

from anonlib import run_scenario
from anonlib.views.compare import compare

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


def output(directive: str, scenario: str) -> str:
    """What the model prints for a `run` or `compare` check."""
    kind, *args = directive.split()
    if kind == "run":
        scheme, *extra = args
        assert extra in ([], ["show"]), directive
        return str(run_scenario(scenario + ("show\n" if extra else ""), scheme))
    if kind == "compare":
        return str(compare(scenario, args))
    raise AssertionError(f"unknown check {directive!r}")


@pytest.mark.parametrize(
    ("page", "directive", "scenario", "expected"),
    examples(),
    ids=[f"{page}: {directive}" for page, directive, *_ in examples()],
)
def test_example_output(page, directive, scenario, expected):
    actual = output(directive, scenario)
    assert actual.rstrip("\n") == expected.rstrip("\n"), (
        f"{page}: the output of '{directive}' changed; if on purpose, run "
        "`python tests/test_front_matter.py` to update the page"
    )


def update() -> None:
    """Rewrite every checked output block with what the model prints now."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        scenario = None

        def fill(m: re.Match) -> str:
            nonlocal scenario
            directive, block = m.group(1).strip(), m.group(2)
            if directive == "scenario":
                scenario = block
                return m.group(0)
            new = output(directive, scenario).rstrip("\n") + "\n"
            return m.group(0).replace(block, new, 1) if block != new else m.group(0)

        new_text = CHECK.sub(fill, text)
        if new_text != text:
            page.write_text(new_text, encoding="utf-8")
            print(f"updated {page.relative_to(ROOT)}")


if __name__ == "__main__":
    update()
