"""The static player: frames of a run as self-contained, deterministic HTML for the book."""

from __future__ import annotations

import os
import pathlib
import re
from html.parser import HTMLParser

import pytest

from anonlib import run_scenario
from anonlib.views.player import Player, static_player, trace_frames, transcript

COW = """\
# the smallest COW story
spawn P
P mmap A 1
P write A[0] x
P fork Q
P write A[0] y   # copy-on-write: P gets a new page
"""

BUG = pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "history" / \
    "b02-cve-2020-29374.scn"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(text)
    return p.tags


def test_frames_of_a_run():
    r = run_scenario(COW)
    frames = trace_frames(r)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.line for f in frames] == [0, 2, 3, 4, 5, 6]
    assert frames[5].title(6) == "step 5/5  line 6: P write A[0] y -> ok"
    assert frames[0].title(6) == "step 0/5  start"
    assert frames[5].diff[0] == "P A[0]: present read-only 1.0 -> present writable 2.0"
    assert frames[5].before is frames[4].world
    assert all(f.violations == () and f.note == "" for f in frames)


def test_transcript_is_exact():
    assert transcript(run_scenario(COW, name="cow")) == """\
cow under scheme mainline: 5 steps, ok
step 0/5  start
step 1/5  line 2: spawn P -> ok
    new process P
step 2/5  line 3: P mmap A 1 -> ok
    new mapping P A (base, 1 page, rw)
step 3/5  line 4: P write A[0] x -> ok
    P A[0]: none -> present writable 1.0
    new folio 1 (small)
    page 1.0: data 'x', exclusive, mapcount 1
step 4/5  line 5: P fork Q -> ok
    P A[0]: present writable -> present read-only
    new process Q
    new mapping Q A (base, 1 page, rw)
    Q A[0]: none -> present read-only 1.0
    folio 1: refcount 1 -> 2
    page 1.0: exclusive -> shared, mapcount 1 -> 2
step 5/5  line 6: P write A[0] y -> ok
    P A[0]: present read-only 1.0 -> present writable 2.0
    folio 1: refcount 2 -> 1
    page 1.0: mapcount 2 -> 1
    new folio 2 (small)
    page 2.0: data 'y', exclusive, mapcount 1"""


def test_a_violation_is_shown_on_its_step_with_its_explanation():
    r = run_scenario(BUG.read_text(), "legacy-mapcount")
    assert r.status == "failed"
    frames = trace_frames(r)
    last = frames[-1]
    assert last.statement == "P write A[0] secret"
    assert last.violations and last.violations[0].startswith("INV-12 (isolation) violated")
    assert "run stopped" in last.note
    html = static_player(r)
    assert 'role="alert"' in html and "INV-12 (isolation) violated" in html
    assert all(not f.violations for f in frames[:-1])


def test_invalid_scenario_gives_a_one_frame_player():
    r = run_scenario("spawn P\nP frobnicate\n")
    assert r.status == "invalid"
    html = static_player(r)
    assert html.count('class="anonlib-frame"') == 1
    assert "run stopped: &lt;scenario&gt;: line 2, column 3: unknown operation" in html
    assert "invalid" in Player(r).text()


def test_player_is_deterministic_and_ids_come_from_the_content():
    one = static_player(COW)
    assert one == static_player(COW)
    assert one == static_player(run_scenario(COW), source=COW)
    ids = re.findall(r'id="(anonlib-player-[0-9a-f]+)"', one)
    assert len(ids) == 1 and len(ids[0]) == len("anonlib-player-") + 12
    other = static_player(COW.replace("y", "z"))
    assert re.findall(r'id="(anonlib-player-[0-9a-f]+)"', other) != ids
    assert static_player(COW, view="table") != one  # the view is part of the content


@pytest.mark.parametrize("drawing", ["svg", "png"])
@pytest.mark.parametrize("view", ["table", "figure", "both"])
def test_player_is_self_contained(view: str, drawing: str):
    html = static_player(COW, view=view, drawing=drawing)
    # the SVG namespace names the vocabulary; nothing is fetched from it
    assert not re.search(r"https?://", html.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    assert not re.search(r"""(src|href)=["'](?!data:)""", html)
    assert "<link" not in html and "@import" not in html
    frames = 0 if view == "table" else 6
    imgs = [a for t, a in tags(html) if t == "img"]
    svgs = [a for t, a in tags(html) if t == "svg"]
    if drawing == "png":
        assert len(imgs) == frames and not svgs
        assert all((a["src"] or "").startswith("data:image/png;base64,") for a in imgs)
        assert all(a.get("alt") for a in imgs)
    else:
        assert not imgs and len(svgs) == frames
        assert all(a.get("role") == "img" and a.get("aria-label") for a in svgs)


def test_player_controls_are_labelled_for_people_and_tests():
    html = static_player(COW)
    found = tags(html)
    buttons = [a for t, a in found if t == "button"]
    assert [(b["data-act"], b["title"], b["aria-label"]) for b in buttons] == [
        ("first", "First step", "First step"),
        ("back", "Previous step", "Previous step"),
        ("next", "Next step", "Next step"),
        ("last", "Last step", "Last step"),
    ]
    slider = [a for t, a in found if t == "input"]
    assert slider == [{"type": "range", "min": "0", "max": "5", "value": "0", "step": "1",
                       "aria-label": "Step", "title": "Step"}]
    frames = [a for t, a in found if t == "section"]
    assert [f["data-step"] for f in frames] == ["0", "1", "2", "3", "4", "5"]
    assert ["hidden" in f for f in frames] == [False, True, True, True, True, True]
    lines = [a["data-line"] for t, a in found if t == "span" and a.get("data-line")]
    assert lines == ["1", "2", "3", "4", "5", "6"]
    root = found[0][1]
    assert root["tabindex"] == "0" and root["data-steps"] == "5"
    # without JavaScript: no controls, every frame shown, the transcript in <details>
    assert '<div class="anonlib-controls" hidden>' in html
    assert re.search(r"<noscript><style>#anonlib-player-[0-9a-f]+ section\[data-step\]\[hidden\]",
                     html)
    assert "<details><summary>Transcript (plain text)</summary>" in html
    assert "ArrowRight" in html and "ArrowLeft" in html


def test_player_escapes_the_scenario():
    text = 'spawn P\nP mmap A 1\nP write A[0] "</script><b>"\n'
    html = static_player(text, view="table")
    assert "</script><b>" not in html
    assert html.count("</script>") == 1


def test_player_object_text_and_html():
    p = Player(COW, view="table")
    assert p.text() == "static player\n" + transcript(p.result)
    assert repr(p) == p.text()
    bundle = p._repr_mimebundle_()
    assert bundle["text/plain"] == p.text()
    assert bundle["text/html"] == p._repr_html_() == static_player(COW, view="table")


def test_bad_view_is_refused():
    with pytest.raises(ValueError, match="view must be"):
        static_player(COW, view="movie")


# ------------------------------------------------------------------ in a browser
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.mark.browser
def test_player_steps_in_a_real_browser(tmp_path: pathlib.Path):
    """Buttons, slider and keys move the player, with no request leaving the page."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    page_file = tmp_path / "player.html"
    page_file.write_text("<!doctype html><meta charset='utf-8'><body>"
                         + static_player(COW) + "</body>", encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())

            def shown() -> str:
                return page.locator("section.anonlib-frame:visible").get_attribute("data-step")

            def current_line() -> str:
                return page.locator(".anonlib-line.anonlib-current").get_attribute("data-line")

            assert shown() == "0"
            page.click('button[title="Next step"]')
            assert shown() == "1" and current_line() == "2"
            page.click('button[aria-label="Last step"]')
            assert shown() == "5" and current_line() == "6"
            assert page.locator('button[title="Next step"]').is_disabled()
            page.click('button[title="Previous step"]')
            assert shown() == "4"
            page.locator(".anonlib-player").focus()
            page.keyboard.press("Home")
            assert shown() == "0"
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            assert shown() == "2"
            page.locator("input[type=range]").fill("3")
            assert shown() == "3"
            assert page.locator(".anonlib-counter").inner_text() == "step 3 of 5"
            page.click('.anonlib-line[data-line="5"]')  # a scenario line shows its step
            assert shown() == "4" and current_line() == "5"
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
            assert errors == []
        finally:
            browser.close()
