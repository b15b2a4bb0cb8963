"""book/external-links.md lists every external link of the book, and every link
points at an allowed host (tools/list_external_links.py has the list).

When this fails after you added or changed a link in a chapter or a page, run
`python tools/list_external_links.py` and commit book/external-links.md.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "list_external_links", ROOT / "tools" / "list_external_links.py"
)
links_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(links_tool)


@pytest.fixture(scope="module")
def links() -> dict[str, list[str]]:
    return links_tool.collect()


def test_the_page_is_up_to_date(links):
    expected = links_tool.render(links)
    current = links_tool.OUTPUT.read_text(encoding="utf-8")
    assert current == expected, (
        "book/external-links.md is out of date: run `python tools/list_external_links.py` "
        "and commit the result"
    )


def test_every_link_points_at_an_allowed_host(links):
    assert links_tool.problems(links) == []


def test_the_scan_finds_links_in_pages_and_notebooks(links):
    docs = {doc for used_on in links.values() for doc in used_on}
    assert any(doc.startswith("notebooks/") for doc in docs), docs
    assert any(not doc.startswith("notebooks/") for doc in docs), docs


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://elixir.bootlin.com/linux/v6.12/source/mm/memory.c", True),
        ("https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id=1", True),
        ("https://lwn.net/Articles/849638/", True),
        ("https://lore.kernel.org/linux-mm/", True),
        ("https://docs.kernel.org/core-api/pin_user_pages.html", True),
        ("https://www.kernel.org/doc/html/latest/", True),
        ("https://github.com/torvalds/linux/blob/master/mm/memory.c", True),
        ("https://github.com/someone/linux", False),
        ("https://github.com/torvaldsx/linux", False),
        ("http://lwn.net/Articles/849638/", False),  # plain http
        ("https://cdn.jsdelivr.net/npm/x.js", False),
        ("https://lwn.net.example.com/", False),
    ],
)
def test_allowed(url, ok):
    assert links_tool.allowed(url) is ok


def test_urls_end_before_markup_and_punctuation():
    text = (
        "See [memory.c](https://elixir.bootlin.com/a/memory.c), "
        "<https://lwn.net/Articles/1/>, and https://lwn.net/Articles/2/. "
        '<a href="https://lwn.net/Articles/3/">x</a>'
    )
    assert links_tool.urls_in_text(text) == [
        "https://elixir.bootlin.com/a/memory.c",
        "https://lwn.net/Articles/1/",
        "https://lwn.net/Articles/2/",
        "https://lwn.net/Articles/3/",
    ]
