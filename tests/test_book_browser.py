"""The built book, opened in a real browser with no network.

Serves book/_build/html on 127.0.0.1 and opens every page in headless
Debian Chromium (driven by Playwright; `playwright install` is never needed).
Each page must render, raise no JavaScript error, log no console error and
ask no host but 127.0.0.1 for anything. Pages that embed widget state must
render every widget, and every kernel-free stepper (a Stack whose
`selected_index` is jslink-ed to a control) must move to another frame when
each of its controls is used.

Run by `make test` after `make book`. Without Chromium the tests skip, except
under CI=true, where a missing browser or book is a failure.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import pathlib
import re
import threading

import pytest

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML_DIR = ROOT / "book" / "_build" / "html"
OUTPUT_DIR = ROOT / "tests" / "_output"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
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


def skip_or_fail(message: str) -> None:
    """Skip locally; under CI=true a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(message + " (CI=true, so this is a failure)")
    pytest.skip(message)


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
    source = (HTML_DIR / path).read_text(encoding="utf-8")
    response = page.goto(f"{base_url}/{path}")
    assert response is not None and response.status == 200

    refresh = re.search(r'http-equiv="refresh" content="\d+;\s*url=([^"]+)"', source, re.I)
    if refresh:  # index.html only redirects to the first chapter
        target = html.unescape(refresh.group(1))
        page.wait_for_url(f"{base_url}/{target}")
        assert (HTML_DIR / target).is_file()
    page.wait_for_load_state("load")

    main = page.locator("main#main-content")
    assert main.is_visible(), f"{path}: no main content"
    assert main.locator("h1:visible").count(), f"{path}: main content has no title"

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
    watched.check()


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


def test_screenshots(watched, base_url):
    """Screenshots of the front page and the first chapter, in tests/_output/ (git-ignored)."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    page = watched.page
    page.goto(f"{base_url}/intro.html")
    page.screenshot(path=OUTPUT_DIR / "intro.png")
    chapter = next(p for p in book_pages() if p.startswith("notebooks/"))
    name = pathlib.PurePosixPath(chapter).stem
    page.goto(f"{base_url}/{chapter}")
    widget = page.locator(".widget-subarea")
    if widget.count():  # show the first widget, rendered
        widget.first.locator(".jupyter-widgets").first.wait_for()
        widget.first.scroll_into_view_if_needed()
    page.screenshot(path=OUTPUT_DIR / f"{name}.png")
    watched.check()
    for shot in ("intro.png", f"{name}.png"):
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


@pytest.mark.parametrize("query", ["PG_anon_exclusive", "fork"])
def test_search_works_offline(watched, base_url, query):
    page = watched.page
    page.goto(f"{base_url}/search.html?q={query}")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for()
    titles = results.locator("a").all_inner_texts()
    assert any("Orientation" in t for t in titles), titles
    watched.check()


def test_book_works_opened_from_disk(browser, book):
    """Opened as file:// (no server): widgets render and search finds pages, without errors."""
    w = Watched(browser, (book.as_uri() + "/",))
    try:
        page = w.page
        page.goto((book / "notebooks" / "01-orientation.html").as_uri())
        page.locator(".widget-subarea .jupyter-widgets").first.wait_for()
        page.goto((book / "search.html").as_uri() + "?q=fork")
        page.locator("#search-results ul.search li").first.wait_for()
        w.check()
    finally:
        w.close()
