"""What must never be on a page of the built book, as text patterns.

The browser test (tests/test_book_browser.py) reads each page's text, minus
code-cell inputs, styles and scripts, and fails on any of these; the unit test
(tests/test_page_problems.py) runs them on text taken from pages that had
them. Each problem is a sentence naming what was found, quoted.

- unrendered template or MyST syntax: a role such as {term}`FOLL_PIN` (its
  backticks become a code span, so the text reads ``{term}FOLL_PIN``), a
  template call such as ``{c("19be0eaffa3a")}`` or ``{k("mm/gup.c")}``, a
  directive fence ``:::{dropdown}`` or a ``{{ substitution }}``;
- a Python repr where a rendering belongs: ``<Figure size 800x258 with 0 Axes>``
  (a matplotlib figure that was never drawn), ``<IPython.core.display.HTML
  object>``, ``<anonlib.views.widgets.Stepper object at 0x...>``;
- a sentence about the machine the book was built on ("could not be installed
  here", "on this machine"): a reader has another machine.
"""

from __future__ import annotations

import re

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unrendered MyST role", re.compile(r"\{[a-z][\w:+-]*\}(?=[`\w])")),
    ("unrendered template call", re.compile(r"\{[A-Za-z_]\w*\(")),
    ("unrendered MyST directive", re.compile(r"(?m)^\s*(?:```+|:::+)\s*\{[a-z]")),
    ("unrendered substitution", re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}")),
    ("matplotlib repr instead of a picture",
     re.compile(r"<(?:Figure size \d+(?:\.\d+)?x\d+|matplotlib\.[\w.]+ (?:object|at))")),
    ("Python repr instead of a rendering",
     re.compile(r"<(?:IPython\.core\.display\.\w+|anonlib\.[\w.]+|ipywidgets\.[\w.]+) object")),
    ("sentence about the build machine",
     re.compile(r"(?i)\b(?:could not|couldn't|cannot|can't|can not|was not|wasn't|is not|"
                r"isn't|are not|aren't)\s+(?:be\s+)?(?:installed|run|built|downloaded|fetched|"
                r"booted|available|tested)\s+here\b")),
    ("sentence about the build machine",
     re.compile(r"(?i)\b(?:on|in) this (?:machine|container|sandbox|build host|computer|VM)\b")),
    ("sentence about the build machine", re.compile(r"(?i)\bbuild (?:machine|host)\b")),
)


def text_problems(text: str) -> list[str]:
    """Every forbidden thing in ``text``: what it is, and the text around it."""
    found = []
    for what, pattern in PATTERNS:
        for m in pattern.finditer(text):
            around = " ".join(text[max(0, m.start() - 40): m.end() + 40].split())
            found.append(f"{what}: {m.group(0)!r} in '...{around}...'")
    return found
