"""book/notation.md explains every word the text form prints.

The vocabulary is taken from the model, not listed here: the state of every
row of the reference table (every kind of entry) and of the notation page's
own examples is printed with ``world_text``, and each word that is not a
number, a name or a value must appear on the page.
"""

from __future__ import annotations

import pathlib
import re

from anonlib import run_scenario
from anonlib.schemes import get_scheme
from anonlib.views import reference
from anonlib.views.render import world_text

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "notation.md"


SCENARIO = re.compile(r"^% check: scenario\n```[^\n]*\n(.*?)^```", re.M | re.S)


def _worlds(scheme: str) -> list:
    """Every row of the reference table, then the page's own examples."""
    s = get_scheme(scheme)
    out = []
    for setup in reference.ENTRY_SETUPS.values():
        try:
            out.append(reference.build(setup, s))
        except ValueError:
            continue
    for text in SCENARIO.findall(PAGE.read_text(encoding="utf-8")):
        out.append(run_scenario(text, scheme).world)
    return out


def vocabulary() -> set[str]:
    words: set[str] = set()
    for scheme in ("mainline", "page-count"):
        s = get_scheme(scheme)
        for world in _worlds(scheme):
            for line in world_text(world, s).splitlines():
                line = re.sub(r"data='[^']*'", "data=", line)
                line = re.sub(r"\[[0-9, ]*\]", "[]", line)
                for w in line.split():
                    w = re.sub(r"=.*", "=", w)
                    if re.fullmatch(r"[0-9.]+|->|[A-Z]|\[\]|[A-Z]\[\]|[A-Z]:", w):
                        continue
                    words.add(w)
    return words


def test_the_vocabulary_is_found():
    words = vocabulary()
    assert {"excl", "shared", "swapcache=", "anon_exclusive", "(MMF_HAS_PINNED)"} <= words


def test_every_word_is_on_the_notation_page():
    text = PAGE.read_text(encoding="utf-8")
    missing = sorted(w for w in vocabulary() if w not in text)
    assert missing == [], f"book/notation.md does not explain: {missing}"
