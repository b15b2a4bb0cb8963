"""The patterns the browser test rejects, on text from pages that had them (tests/page_problems.py).

Each "broken" sample is what a reader saw on a built page before it was fixed
(issue 15); each "fine" sample is text the book shows and must keep showing.
"""

from __future__ import annotations

import pytest
from page_problems import text_problems

BROKEN = {
    "chapter 12, B1 and B9": (
        'Dirty COW (CVE-2016-5195, fixed in 4.9 by {c("19be0eaffa3a")}): a write through',
        "unrendered template call",
    ),
    "chapter 12, gup.c": (
        'userfaultfd-wp tracking needs the write fault (can_follow_write_pte in {k("mm/gup.c")}).',
        "unrendered template call",
    ),
    "glossary": (
        "Chapters link here with the {term} role, for example {term}`FOLL_PIN` . Versions",
        "unrendered MyST role",
    ),
    "a role whose backticks became a code span": (
        "see {term}FOLL_PIN for the flag", "unrendered MyST role"),
    "a directive fence": (":::{dropdown} Answer\nok: unchanged", "unrendered MyST directive"),
    "90-visuals, As a picture": (
        "DMA device; their arrows point at the page they hold. <Figure size 800x258 with 0 Axes>",
        "matplotlib repr instead of a picture",
    ),
    "an HTML display's text form": (
        "<IPython.core.display.HTML object>", "Python repr instead of a rendering"),
    "09b, litmus tests": (
        "agree. herd7 itself could not be installed here (no Debian package, not on PyPI",
        "sentence about the build machine",
    ),
    "14, the benchmark's floor": (
        "No search of this model, in Python on this machine, takes thp:4 to depth 6",
        "sentence about the build machine",
    ),
    "QEMU": ("QEMU is not available here, so this was skipped.",
             "sentence about the build machine"),
}

FINE = {
    "a transcript": "  9  H read expect 1                 -> 1\nresult: ok",
    "a Python dict in an output": "{'mainline': 0, 'legacy-mapcount': 1}",
    "an f-string result": "step {n} of 8",
    "a set of entries": "{P A[0], Q A[0]}",
    "herd7, now": ("The test suite does not run herd7 (it has no Debian or PyPI package), so "
                   "their verdicts are argued in the files, not machine-checked."),
    "the benchmark, now": ("No search of this model in Python, at the costs per state the "
                           "benchmark measured, takes thp:4 to depth 6 in a minute"),
    "a page's own words about where it works": (
        "In JupyterLab this cell is a live Stepper. Here, with no Python kernel, it is the same "
        "run as a static player"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_old_defect_is_found(name):
    text, what = BROKEN[name]
    found = text_problems(text)
    assert found and all(f.startswith(what + ":") for f in found), found


@pytest.mark.parametrize("name", sorted(FINE))
def test_text_the_book_shows_passes(name):
    assert text_problems(FINE[name]) == []
