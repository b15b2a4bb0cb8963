"""docs/model.md shows exactly the list of simplifications in anonlib.model's docstring."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import anonlib.model

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import model_page  # noqa: E402


def test_page_equals_the_docstring_list() -> None:
    page = model_page.PAGE.read_text(encoding="utf-8")
    assert model_page.updated(page, anonlib.model.__doc__ or "") == page, (
        "docs/model.md is out of date: run python tools/model_page.py")


def test_every_item_of_the_docstring_is_on_the_page() -> None:
    page = model_page.PAGE.read_text(encoding="utf-8")
    groups = model_page.simplifications(anonlib.model.__doc__ or "")
    items = [item for _, group in groups for item in group]
    # The docstring splits its items at "\n  * "; the page must have as many bullets.
    assert len(items) == len((anonlib.model.__doc__ or "").split("\n  * ")) - 1
    for heading, _ in groups:
        assert f"\n## {heading}\n" in page
    assert page.count("\n- ") >= len(items)


def test_a_changed_docstring_makes_the_page_stale() -> None:
    page = model_page.PAGE.read_text(encoding="utf-8")
    doc = (anonlib.model.__doc__ or "").replace("default 4, not 512", "default 8, not 512")
    assert model_page.updated(page, doc) != page


@pytest.mark.parametrize("doc", [
    "no such section",
    "Simplifications\n---------------\n  * an item before a heading\n",
    "Simplifications\n---------------\nHeading\n   three spaces\n",
    "Simplifications\n---------------\nHeading without items\n",
])
def test_a_docstring_the_tool_cannot_read_is_an_error(doc: str) -> None:
    with pytest.raises(ValueError):
        model_page.simplifications(doc)


def test_check_mode_passes_on_the_committed_page() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "model_page.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
