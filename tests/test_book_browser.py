"""The built book, opened in a real browser with no network.

Serves book/_build/html on 127.0.0.1 and opens every page in headless
Debian Chromium (driven by Playwright; `playwright install` is never needed).
Each page must render, raise no JavaScript error, log no console error and
ask no host but 127.0.0.1 for anything. Its text must hold no unrendered
template or MyST syntax, no Python repr where a picture or widget belongs,
and no sentence about the machine the book was built on
(tests/page_problems.py); no output may be empty, and a cell whose stored
output is a widget must show something. Pages that embed widget state must
render every widget, and every kernel-free stepper (a Stack whose
`selected_index` is jslink-ed to a control) must move to another frame when
each of its controls is used.

Run by `make test` after `make book`. Without Chromium the tests skip, except
under CI=true, where a missing browser or book is a failure. ANONLIB_BOOK_HTML
points the tests at another build (say, an old one, to see a check fail).
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import json
import os
import pathlib
import re
import threading

import pytest
from chromium import CHROMIUM, LAUNCH_ARGS, skip_or_fail
from page_problems import text_problems

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML_DIR = pathlib.Path(os.environ.get("ANONLIB_BOOK_HTML", ROOT / "book" / "_build" / "html"))
OUTPUT_DIR = ROOT / "tests" / "_output"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
REF = re.compile(r"IPY_MODEL_([0-9a-f]+)")
# What each control is in the DOM that html-manager renders.
CONTROL_CSS = {
    "IntSliderModel": ".widget-slider",
    "ToggleButtonsModel": ".widget-toggle-buttons",
    "PlayModel": ".widget-play",
}
NOT_PAGES = ("_static/", "_sources/", "_images/")



def book_pages() -> list[str]:
    if not HTML_DIR.is_dir():
        return []
    pages = (p.relative_to(HTML_DIR).as_posix() for p in HTML_DIR.rglob("*.html"))
    return sorted(p for p in pages if not p.startswith(NOT_PAGES))


# ---- what a page's stored widget state says ------------------------------------


def widget_state(page_html: str) -> dict:
    m = re.search(rf'<script type="{re.escape(WIDGET_STATE)}">(.*?)</script>', page_html, re.S)
    return json.loads(m.group(1))["state"] if m else {}


def widget_views(page_html: str) -> list[str]:
    """Model ids of the displayed widgets, in page order."""
    scripts = re.findall(
        rf'<script type="{re.escape(WIDGET_VIEW)}">(.*?)</script>', page_html, re.S
    )
    return [json.loads(s)["model_id"] for s in scripts]


def _refs(model: dict) -> list[str]:
    return REF.findall(json.dumps(model["state"], sort_keys=True))


def rendered_models(state: dict, root: str) -> list[str]:
    """Models of a view in DOM order: boxes show their children, a Stack only its selected one."""
    out: list[str] = []

    def walk(mid: str) -> None:
        model = state.get(mid)
        if model is None:
            return
        out.append(mid)
        children = [REF.fullmatch(c).group(1) for c in model["state"].get("children", [])]
        if model["model_name"] == "StackModel":
            index = model["state"].get("selected_index")
            children = [children[index]] if index is not None else []
        for child in children:
            walk(child)

    walk(root)
    return out


def linked_endpoints(state: dict) -> list[set[tuple[str, str]]]:
    """Groups of (model, attribute) that jslink ties together, as connected components."""
    groups: list[set[tuple[str, str]]] = []
    for model in state.values():
        if model["model_name"] not in ("LinkModel", "DirectionalLinkModel"):
            continue
        src, dst = model["state"]["source"], model["state"]["target"]
        ends = {(REF.fullmatch(src[0]).group(1), src[1]), (REF.fullmatch(dst[0]).group(1), dst[1])}
        touching = [g for g in groups if g & ends]
        for g in touching:
            groups.remove(g)
            ends |= g
        groups.append(ends)
    return groups


def steppers(state: dict, view: str) -> list[dict]:
    """Stacks shown in `view` whose selected_index is jslink-ed to controls in the same view."""
    shown = rendered_models(state, view)
    found = []
    for group in linked_endpoints(state):
        stacks = [m for m, attr in group if attr == "selected_index" and m in shown]
        controls = [m for m, _ in group if state[m]["model_name"] in CONTROL_CSS and m in shown]
        for stack in stacks:
            kinds = [state[m]["model_name"] for m in shown]
            children = [REF.fullmatch(c).group(1) for c in state[stack]["state"]["children"]]
            found.append(
                {
                    "stack": stack,
                    # the text of each frame where a frame is an HTML widget, else None
                    "frames": [
                        frame_text(state[c]["state"]["value"])
                        if state[c]["model_name"] == "HTMLModel"
                        else None
                        for c in children
                    ],
                    # (css selector, n-th element of that kind in the view)
                    "controls": [
                        (
                            CONTROL_CSS[state[c]["model_name"]],
                            [
                                m
                                for m, k in zip(shown, kinds, strict=True)
                                if k == kinds[shown.index(c)]
                            ].index(c),
                        )
                        for c in controls
                    ],
                }
            )
    return found


def frame_text(value: str) -> str:
    """What a reader sees of an HTML frame: tags dropped, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", value)).split())


# ---- fixtures ------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def book():
    if not (HTML_DIR / "index.html").is_file():
        skip_or_fail(f"{HTML_DIR}/index.html not found: run `make book` first")
    return HTML_DIR


@pytest.fixture(scope="module")
def base_url(book):
    handler = functools.partial(_QuietHandler, directory=str(book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(
            f"Chromium not found at {CHROMIUM}. Install it (Debian/Ubuntu: "
            "`sudo apt-get install chromium`) or set CHROMIUM=/path/to/chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class Watched:
    """A fresh page that records every request, error and console error."""

    def __init__(self, browser, allowed_prefixes: tuple[str, ...]):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.allowed = (*allowed_prefixes, "data:", "blob:", "about:")
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", self._request)
        self.page.on("websocket", lambda ws: self.foreign.append(ws.url))
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("console", self._console)
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"),
        )

    def _request(self, request) -> None:
        if not request.url.startswith(self.allowed):
            self.foreign.append(request.url)

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text}")

    def check(self) -> None:
        assert self.foreign == [], f"requests that left 127.0.0.1: {self.foreign}"
        assert self.errors == [], "\n".join(self.errors)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser, base_url):
    w = Watched(browser, (base_url + "/",))
    yield w
    w.close()


# ---- the tests -----------------------------------------------------------------

# Content of a widget view without its controls: what the reader sees change.
VIEW_CONTENT_JS = """(sub, controls) => {
    const copy = sub.cloneNode(true);
    copy.querySelectorAll(controls).forEach((e) => e.remove());
    return copy.innerHTML;
}"""
VIEW_TEXT_JS = VIEW_CONTENT_JS.replace("copy.innerHTML", "copy.textContent")
ALL_CONTROLS = ", ".join(CONTROL_CSS.values())


def test_the_book_has_pages(book):
    pages = book_pages()
    assert "intro.html" in pages and "index.html" in pages, pages
    assert any(p.startswith("notebooks/") for p in pages), pages


@pytest.mark.parametrize("path", book_pages())
def test_page(watched, base_url, path):
    page = watched.page
    response = page.goto(f"{base_url}/{path}")
    assert response is not None and response.status == 200
    path = follow_redirect(page, base_url, path)
    check_page(page, path)
    check_header_buttons(page, path, base_url)
    watched.check()


def follow_redirect(page, base: str, path: str) -> str:
    """Wait for a meta-refresh page (index.html) to reach its target; the page now shown."""
    source = (HTML_DIR / path).read_text(encoding="utf-8")
    refresh = re.search(r'http-equiv="refresh" content="\d+;\s*url=([^"]+)"', source, re.I)
    if refresh:  # index.html only redirects to the first page
        target = html.unescape(refresh.group(1))
        page.wait_for_url(f"{base}/{target}")
        assert (HTML_DIR / target).is_file()
        path = target
    page.wait_for_load_state("load")
    return path


def check_page(page, path: str) -> None:
    """The page shows its content, renders every widget, and every stepper and player steps."""
    main = page.locator("main#main-content")
    assert main.is_visible(), f"{path}: no main content"
    assert main.locator("h1:visible").count(), f"{path}: main content has no title"
    check_widgets(page, path)
    check_players(page, path)
    problems = text_on_page(page) + empty_outputs(page, path)
    assert not problems, f"{path}:\n  " + "\n  ".join(problems)


# The page's text as a reader gets it, without what is code or machinery: code-cell
# inputs (Python, where "{x(" is legitimate), styles and scripts. Folded-away text
# (dropdowns, hidden player frames) is included: a reader unfolds it.
READER_TEXT_JS = """(main) => {
    const copy = main.cloneNode(true);
    copy.querySelectorAll(".cell_input, style, script, noscript").forEach((e) => e.remove());
    return copy.textContent;
}"""


def text_on_page(page) -> list[str]:
    """Unrendered template syntax, a repr instead of a picture, words about the build host."""
    return text_problems(page.locator("main#main-content").evaluate(READER_TEXT_JS))


# Whether an output area shows anything: text, a picture, or a rendered widget.
SHOWS_SOMETHING_JS = """(el) => el.textContent.trim() !== ""
    || el.querySelector("img, svg, canvas, video, iframe, .jupyter-widgets") !== null"""
WIDGET_CELL_TAGS_HIDDEN = {"remove-cell"}


def notebook_code_cells(path: str) -> list[dict] | None:
    """The code cells of the page's source notebook that the page shows (None: not a notebook)."""
    doc = path.removesuffix(".html")
    source = HTML_DIR / "_sources" / f"{doc}.ipynb"
    if not source.is_file():
        return None
    cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == "code"
            and not WIDGET_CELL_TAGS_HIDDEN & set(c.get("metadata", {}).get("tags", []))]


def empty_outputs(page, path: str) -> list[str]:
    """Output areas that show nothing, and cells displaying a widget that show nothing here."""
    found = []
    main = page.locator("main#main-content")
    outputs = main.locator("div.cell_output")
    for i in range(outputs.count()):
        if not outputs.nth(i).evaluate(SHOWS_SOMETHING_JS):
            found.append(f"output {i} of the page is empty")
    cells = notebook_code_cells(path)
    if cells is None:
        return found
    shown = main.locator("div.cell.docutils")
    if shown.count() != len(cells):
        return [*found, f"{shown.count()} code cells shown, {len(cells)} in the notebook"]
    for i, cell in enumerate(cells):
        if not any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", [])):
            continue
        out = shown.nth(i).locator("div.cell_output")
        if not (out.count() and out.first.evaluate(SHOWS_SOMETHING_JS)):
            first_line = "".join(cell["source"]).splitlines()[0]
            found.append(f"the cell `{first_line}` displays a widget, and the page shows "
                         "nothing for it")
    return found


def check_widgets(page, path: str) -> None:
    """Every stored widget view renders, and every jslink-ed stepper moves to another frame."""
    source = (HTML_DIR / path).read_text(encoding="utf-8")
    state, views = widget_state(source), widget_views(source)
    if state:
        assert views, f"{path}: widget state is embedded but no widget is displayed"
    scripts = page.locator(f'script[type="{WIDGET_VIEW}"]')
    assert scripts.count() == len(views)
    # html-manager renders each view into a .widget-subarea just before its script.
    page.wait_for_function(
        """([type, n]) => [...document.querySelectorAll(`script[type="${type}"]`)]
                 .filter((s) => s.previousElementSibling?.matches(".widget-subarea")
                                && s.previousElementSibling.querySelector(".jupyter-widgets"))
                 .length === n""",
        arg=[WIDGET_VIEW, len(views)],
    )

    for i, view in enumerate(views):
        sub = scripts.nth(i).locator("xpath=preceding-sibling::div[1]")
        found = steppers(state, view)
        stacks = {m for m in rendered_models(state, view) if state[m]["model_name"] == "StackModel"}
        unlinked = stacks - {st["stack"] for st in found}
        assert not unlinked, f"{path}: a Stack with no jslink-ed control cannot be stepped here"
        for stepper in found:
            assert stepper["controls"], f"{path}: a stepper with no control"
            for css, nth in stepper["controls"]:
                control = sub.locator(css).nth(nth)
                before = sub.evaluate(VIEW_CONTENT_JS, ALL_CONTROLS)
                use_control(control, css)
                page.wait_for_function(
                    f"([sub, controls, before]) => ({VIEW_CONTENT_JS})(sub, controls) !== before",
                    arg=[sub.element_handle(), ALL_CONTROLS, before],
                )
            sliders = [nth for css, nth in stepper["controls"] if css == ".widget-slider"]
            if sliders and None not in stepper["frames"]:
                walk_frames(sub, sub.locator(".widget-slider").nth(sliders[0]), stepper["frames"])


def shown_text(sub) -> str:
    """The text of a widget view without its controls, whitespace collapsed."""
    return " ".join(sub.evaluate(VIEW_TEXT_JS, ALL_CONTROLS).split())


def walk_frames(sub, slider, frames: list[str]) -> None:
    """Slider at i shows frame i's text, for every i (the slider is linked to the Stack)."""
    handle = slider.locator(".noUi-handle")
    for _ in frames:  # back to the first frame
        if handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemin"):
            break
        handle.press("ArrowLeft")
    for i, frame in enumerate(frames):
        assert frame in shown_text(sub), f"slider at step {i} does not show frame {i}: {frame!r}"
        if i + 1 < len(frames):
            handle.press("ArrowRight")


def use_control(control, css: str) -> None:
    """Move a stepper control one frame on (or back, at the last frame)."""
    if css == ".widget-slider":
        handle = control.locator(".noUi-handle")
        at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        before = control.locator(".widget-readout").inner_text()
        handle.focus()
        handle.press("ArrowLeft" if at_end else "ArrowRight")
        after = control.locator(".widget-readout").inner_text()
        assert int(after) == int(before) + (-1 if at_end else 1), (before, after)
    elif css == ".widget-toggle-buttons":
        control.locator("button:not(.mod-active)").first.click()
    elif css == ".widget-play":
        control.locator("button").first.click()  # play
    else:  # pragma: no cover - CONTROL_CSS lists every kind
        raise AssertionError(css)


# ---- kernel-free players (anonlib.player, anonlib.race) ----------------------------

# A player is a root element holding <section data-step="i"> frames, one shown at a
# time, and buttons with data-act first/back/next/last (title and aria-label
# "Next step", "Next event", ...). Its inline script un-hides the controls.
PLAYERS = ".anonlib-player, .anonlib-race"
SHOWN_FRAMES_JS = """(root) => [...root.querySelectorAll("section[data-step]")]
    .filter((s) => !s.hidden).map((s) => [s.dataset.step, s.innerText])"""
# Players in folded-away output (a hide-output cell, an answer dropdown) are
# stepped too: unfold them first, as a reader would.
UNFOLD_JS = """(el) => {
    for (let d = el.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
}"""


def check_players(page, path: str) -> None:
    """Each player shows frame 0; "Next" shows frame 1 with other content; "Back" returns."""
    players = page.locator(PLAYERS)
    n = players.count()
    assert page.locator('button[data-act="next"]').count() == n, (
        f"{path}: a Next button outside the players this test knows ({PLAYERS})"
    )
    for i in range(n):
        root = players.nth(i)
        root.evaluate(UNFOLD_JS)
        name = f"{path}: player {i} ({root.get_attribute('aria-label')})"
        next_button = root.locator('button[data-act="next"]')
        back_button = root.locator('button[data-act="back"]')
        assert next_button.get_attribute("aria-label").startswith("Next"), name
        next_button.wait_for()  # visible: the player's script ran
        start = root.evaluate(SHOWN_FRAMES_JS)
        assert [step for step, _ in start] == ["0"], f"{name}: shows frames {start}"
        if root.locator("section[data-step]").count() == 1:
            assert next_button.is_disabled(), f"{name}: one frame, but Next is enabled"
            continue
        assert back_button.is_disabled(), f"{name}: Back is enabled at the first frame"
        next_button.scroll_into_view_if_needed()
        next_button.click()
        after = root.evaluate(SHOWN_FRAMES_JS)
        assert [step for step, _ in after] == ["1"], f"{name}: Next shows frames {after}"
        assert after[0][1] != start[0][1], f"{name}: Next did not change what the frame shows"
        back_button.click()
        assert root.evaluate(SHOWN_FRAMES_JS) == start, f"{name}: Back did not return"


# ---- the page's own buttons --------------------------------------------------------

# Buttons that only make sense with a host: launch (Binder, Colab, ...), the
# repository, edit and issue links. The book is read offline, so it has none.
HOSTED_BUTTONS = (
    ".dropdown-launch-buttons, [class*='btn-launch'], .dropdown-source-buttons, "
    ".btn-source-repository-button, .btn-source-edit-button, .btn-source-issues-button"
)
REMOTE_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//", re.I)


def check_header_buttons(page, path: str, base: str) -> None:
    """Every page of a source file offers it for download, from the book itself."""
    header = page.locator(".article-header-buttons")
    assert header.count() == 1, f"{path}: no article header buttons"
    hrefs = header.locator("a[href]").evaluate_all(
        "(els) => els.map((e) => e.getAttribute('href'))"
    )
    remote = [h for h in hrefs if REMOTE_URL.match(h)]
    assert remote == [], f"{path}: header buttons leave the book: {remote}"
    hosted = page.locator(HOSTED_BUTTONS).count()
    assert hosted == 0, f"{path}: {hosted} launch/edit/repository buttons"

    doc = path.removesuffix(".html")
    sources = [p for p in (HTML_DIR / "_sources").glob(f"{doc}.*") if p.suffix in (".md", ".ipynb")]
    if not sources:  # generated pages (search, genindex) have no source
        return
    download = header.locator("a.btn-download-source-button")
    assert download.count() == 1, f"{path}: no 'download source' button"
    href = download.get_attribute("href")
    target = ((HTML_DIR / path).parent / href).resolve()
    assert target in [p.resolve() for p in sources], f"{path}: download points at {href}"
    page.locator('.article-header-buttons button[aria-label="Download this page"]').click()
    download.wait_for()  # the dropdown opens: its menu shows the link
    if base.startswith("http"):
        response = page.request.get(f"{base}/{target.relative_to(HTML_DIR).as_posix()}")
        assert response.ok, f"{path}: downloading {href}: HTTP {response.status}"
        assert response.body() == target.read_bytes()
        if target.suffix == ".ipynb":
            assert json.loads(response.body())["cells"], f"{path}: {href} is not a notebook"


# ---- more tests --------------------------------------------------------------------


def pages_with_players() -> list[str]:
    return [
        p
        for p in book_pages()
        if re.search(r'class="(?:anonlib-player|anonlib-race)"', (HTML_DIR / p).read_text("utf-8"))
    ]


def pages_with_widgets() -> list[str]:
    return [p for p in book_pages() if widget_views((HTML_DIR / p).read_text("utf-8"))]


def test_screenshots(watched, base_url):
    """Screenshots of the front page and of a chapter's player, in tests/_output/ (git-ignored)."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    page = watched.page
    page.goto(f"{base_url}/index.html")
    follow_redirect(page, base_url, "index.html")
    page.screenshot(path=OUTPUT_DIR / "index.png")
    chapters = pages_with_players() or [p for p in book_pages() if p.startswith("notebooks/")]
    chapter = chapters[0]
    name = pathlib.PurePosixPath(chapter).stem
    page.goto(f"{base_url}/{chapter}")
    player = page.locator(PLAYERS)
    widget = page.locator(".widget-subarea")
    if player.count():  # show the first player, one step on
        player.first.evaluate(UNFOLD_JS)
        player.first.locator('button[data-act="next"]').click()
        player.first.scroll_into_view_if_needed()
    elif widget.count():  # show the first widget, rendered
        widget.first.locator(".jupyter-widgets").first.wait_for()
        widget.first.scroll_into_view_if_needed()
    page.screenshot(path=OUTPUT_DIR / f"{name}.png")
    watched.check()
    for shot in ("index.png", f"{name}.png"):
        assert (OUTPUT_DIR / shot).stat().st_size > 10_000, f"{shot} looks blank"


RESOURCE_TAG = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object|track)\b[^>]*>", re.I
)
RESOURCE_ATTR = re.compile(r"""\b(?:src|href|data|srcset|poster)\s*=\s*["']?\s*([^"'\s>]+)""", re.I)
CSS_REMOTE = re.compile(r"""(?:url\(\s*["']?|@import\s+["']?)(?:https?:)?//""", re.I)


def test_no_page_or_stylesheet_names_a_remote_resource(book):
    """Static check of the files, browser or not: links a reader clicks may leave, loads may not."""
    remote = []
    for path in book_pages():
        for tag in RESOURCE_TAG.findall((book / path).read_text(encoding="utf-8")):
            remote += [
                f"{path}: {tag}"
                for url in RESOURCE_ATTR.findall(tag)
                if re.match(r"(?:https?:)?//", url, re.I)
            ]
    for css in sorted(book.rglob("*.css")):
        if CSS_REMOTE.search(css.read_text(encoding="utf-8", errors="replace")):
            remote.append(str(css.relative_to(book)))
    assert remote == [], "\n".join(remote)


def search_results(page):
    """The result list once Sphinx's search has finished filling it.

    searchtools.js appends results one at a time (a timer each), so the
    first item appearing says nothing about the rest; the summary line
    "Search finished, found N page(s)" is written after the last one.
    """
    page.locator("#search-results p.search-summary", has_text="Search finished").wait_for()
    return page.locator("#search-results ul.search li")


@pytest.mark.parametrize("query", ["PG_anon_exclusive", "fork"])
def test_search_works_offline(watched, base_url, query):
    page = watched.page
    page.goto(f"{base_url}/search.html?q={query}")
    results = search_results(page)
    titles = results.locator("a").all_inner_texts()
    assert any("Orientation" in t for t in titles), titles
    watched.check()


def test_search_box_works_offline(watched, base_url):
    """The search box in the header leads to results, as a reader would use it."""
    page = watched.page
    page.goto(f"{base_url}/intro.html")
    page.locator(".search-button__button:visible").first.click()
    box = page.locator("#pst-search-dialog input[type=search]")
    box.fill("PG_anon_exclusive")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\.html\?q=PG_anon_exclusive"))
    results = search_results(page)
    assert results.count() >= 3, results.all_inner_texts()
    watched.check()


def test_book_works_opened_from_disk(browser, book):
    """Opened as file:// (no server): the front page, chapters with players and widgets,
    and search work, without errors and without any request leaving the book's folder."""
    base = book.as_uri()
    chapters = sorted({*pages_with_players()[:1], *pages_with_widgets()[:1]})
    assert chapters, "no chapter has a player or a widget to try from disk"
    w = Watched(browser, (base + "/",))
    try:
        page = w.page
        page.goto(f"{base}/index.html")
        path = follow_redirect(page, base, "index.html")
        check_page(page, path)
        check_header_buttons(page, path, base)
        for chapter in chapters:
            page.goto(f"{base}/{chapter}")
            page.wait_for_load_state("load")
            check_page(page, chapter)
            check_header_buttons(page, chapter, base)
        page.goto(f"{base}/search.html?q=fork")
        search_results(page)
        w.check()
    finally:
        w.close()


def test_every_external_link_is_listed(book):
    """Every link to another host in the built pages is on the external-links page."""
    spec = importlib.util.spec_from_file_location(
        "list_external_links", ROOT / "tools" / "list_external_links.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    listed = set(tool.collect())
    unlisted = set()
    for path in book_pages():
        text = (book / path).read_text(encoding="utf-8")
        for url in re.findall(r"""<a\b[^>]*\bhref=["'](https?://[^"']+)""", text, re.I):
            if html.unescape(url) not in listed:
                unlisted.add(f"{path}: {html.unescape(url)}")
    assert sorted(unlisted) == [], "not in book/external-links.md"
