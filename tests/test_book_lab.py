"""The book's scenario lab (book/lab.md), in headless Chromium, against CPython.

The book is served on 127.0.0.1 (the fixtures of tests/test_book_browser.py);
the lab loads Pyodide and anonlib from the book itself and runs the model in
a Web Worker. Each test checks that no request leaves 127.0.0.1 and that no
page error or console error occurs. What the lab prints must be exactly what
``python -m anonlib run`` prints under CPython (stdout and stderr, in the
order a terminal shows them): for two schemes side by side, for an invalid
scenario, and for every scenario of the library under mainline
(``test_every_library_scenario_matches_cpython``; about half a minute).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import urllib.parse
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from test_book_browser import HTML_DIR, Watched, base_url, book, browser  # noqa: F401

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
B02 = "scenarios/history/b02-cve-2020-29374.scn"
READY = "#anonlib-lab[data-lab-ready]"
LOAD_TIMEOUT = 90_000  # ms: Pyodide's start on a loaded machine


@pytest.fixture
def lab(browser, base_url):  # noqa: F811
    if not (HTML_DIR / "_static" / "lab" / "pyodide" / "pyodide.asm.wasm").is_file():
        pytest.fail("the book has no lab runtime: build it with `make book`")
    w = Watched(browser, (base_url + "/",))
    w.page.set_default_timeout(LOAD_TIMEOUT)
    yield w
    w.close()


def cpython(*argv: str, cwd: Path = ROOT) -> tuple[str, int]:
    """``python -m anonlib ARGV`` under CPython: its output (stdout and stderr merged), status."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "anonlib", *argv], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=False)
    return out.stdout, out.returncode


def open_lab(lab, base_url: str, fragment: str = "") -> None:  # noqa: F811
    lab.page.goto(f"{base_url}/lab.html{fragment}")
    lab.page.wait_for_selector(READY)


def wait_idle(page) -> None:
    page.wait_for_function("() => !document.querySelector('#anonlib-lab[data-busy]')")


def runs(page) -> list[dict]:
    return page.locator(".lab-run").evaluate_all(
        """(els) => els.map((e) => ({scheme: e.dataset.scheme, status: +e.dataset.status,
            output: e.querySelector("pre.lab-output").textContent}))""")


def test_lab_runs_a_library_scenario_under_two_schemes(lab, base_url):  # noqa: F811
    page = lab.page
    open_lab(lab, base_url)
    page.select_option("#lab-example", B02)
    assert page.input_value("#lab-text") == (ROOT / B02).read_text()
    page.check("#lab-schemes input[value=mainline]")
    page.check("#lab-schemes input[value=legacy-mapcount]")
    page.click("#lab-run-btn")
    page.wait_for_selector(".lab-run")
    wait_idle(page)
    got = runs(page)
    assert [(r["scheme"], r["status"]) for r in got] == [("mainline", 0), ("legacy-mapcount", 1)]
    for r in got:
        assert (r["output"], r["status"]) == cpython("run", B02, "--scheme", r["scheme"])
    assert "legacy-mapcount  exit 1  line 26: INV-12" in page.inner_text("pre.lab-compare")
    # the rendered state: the chapters' player, its frames drawn as SVG
    player = page.locator(".lab-run[data-scheme=legacy-mapcount] .anonlib-player")
    assert player.locator("svg.anonlib-svg").count() == player.locator("section[data-step]").count()
    player.locator('button[data-act="last"]').click()
    last = player.locator("section[data-step]:not([hidden])")
    assert last.locator('[data-gid="holder:get:H"]').count() == 1
    assert "INV-12" in last.locator(".anonlib-bad").first.inner_text()
    assert player.locator(".anonlib-line.anonlib-current").inner_text().endswith(
        "P write A[0] secret")
    # the fragment now holds the run (test_a_shared_link_... opens such a link)
    fragment = page.evaluate("location.hash")
    assert "scheme=mainline%2Clegacy-mapcount" in fragment
    assert f"name={urllib.parse.quote_plus(B02)}" in fragment
    lab.check()


def test_an_invalid_line_gets_the_command_lines_error(lab, base_url, tmp_path):  # noqa: F811
    page = lab.page
    open_lab(lab, base_url)
    page.select_option("#lab-example", B02)
    text = page.input_value("#lab-text").replace("P write A[0] secret", "P wirte A[0] secret")
    page.fill("#lab-text", text)
    page.click("#lab-run-btn")
    page.wait_for_selector(".lab-run")
    wait_idle(page)
    (r,) = runs(page)
    (tmp_path / "lab.scn").write_text(text)
    assert (r["output"], r["status"]) == cpython("run", "lab.scn", cwd=tmp_path)
    assert "line 26, column 3: unknown operation 'wirte'; did you mean 'write'?" in r["output"]
    assert page.locator(".lab-run .anonlib-player").count() == 0
    assert page.input_value("#lab-example") == ""  # an edited text is no longer the example
    lab.check()


def test_a_shared_link_runs_in_the_readers_browser(lab, base_url):  # noqa: F811
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nP pin A[0] ro longterm as H\nP fork Q\n" \
           "P write A[0] 2\nexpect invariants\n"
    fragment = "#" + urllib.parse.urlencode({"scheme": "page-count", "scn": text})
    page = lab.page
    page.goto(f"{base_url}/lab.html{fragment}")
    page.wait_for_selector(".lab-run")
    wait_idle(page)
    assert page.input_value("#lab-text") == text
    assert page.is_checked("#lab-schemes input[value=page-count]")
    (r,) = runs(page)
    path = ROOT / "tests" / "_output" / "lab.scn"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    assert (r["output"], r["status"]) == cpython("run", "lab.scn", "--scheme", "page-count",
                                                 cwd=path.parent)
    lab.check()


def test_edit_in_the_lab_from_a_chapter(lab, base_url):  # noqa: F811
    page = lab.page
    chapter = "notebooks/10-fork.html"
    page.goto(f"{base_url}/{chapter}")
    links = page.locator("a.anonlib-edit-lab")
    players = page.locator(".anonlib-player")
    assert links.count() >= players.count() > 0
    # the first player's listing, and its scheme, travel to the lab
    player = players.first
    listing = player.locator(".anonlib-src .anonlib-line").evaluate_all(
        "(els) => els.map((e) => [+e.dataset.line, e.textContent])")
    scheme = player.locator("div > code").first.inner_text()
    link = player.locator("xpath=preceding-sibling::div[1]").locator("a.anonlib-edit-lab")
    link.click()
    page.wait_for_url(re.compile(r".*/lab\.html#.*"))
    page.wait_for_selector(".lab-run")
    wait_idle(page)
    text = page.input_value("#lab-text").splitlines()
    for number, line in listing:
        assert text[number - 1] == re.sub(r"^\S\s+\d+  ", "", line)
    assert page.is_checked(f"#lab-schemes input[value='{scheme}']")
    (r,) = runs(page)
    assert r["scheme"] == scheme and r["status"] in (0, 1)
    assert page.locator(".lab-run .anonlib-player svg").count() > 0
    lab.check()


def test_explore_finds_a_counterexample_and_a_large_one_can_be_cancelled(lab, base_url):  # noqa: F811
    page = lab.page
    open_lab(lab, base_url)
    page.click("[role=tab][data-tab=explore]")
    assert page.inner_text("#lab-ex-families").startswith("families: write, read, fork")
    page.select_option("#lab-ex-scheme", "page-count")
    page.fill("#lab-ex-pages", "base:1")
    page.fill("#lab-ex-depth", "4")
    page.click("#lab-ex-btn")
    page.wait_for_selector("#lab-ex-open:not([hidden])")
    out = page.inner_text("#lab-ex-out")
    want, status = cpython("explore", "--scheme", "page-count", "--pages", "base:1", "--depth",
                           "4", "--ops", "all", "--processes", "2", "--progress", "never")
    assert status == 1
    strip_time = re.compile(r"^time: .*$", re.M)  # the one line that is a measurement
    assert strip_time.sub("", out) == strip_time.sub("", want)
    page.click("#lab-ex-open")
    page.wait_for_selector(".lab-run")
    wait_idle(page)
    assert page.input_value("#lab-text").startswith("# INV-11 (pin coherence)")
    assert runs(page)[0]["status"] == 1
    # a search that would take minutes: started, shows progress, cancelled, the lab restarts
    page.click("[role=tab][data-tab=explore]")
    page.select_option("#lab-ex-scheme", "mainline")
    page.fill("#lab-ex-pages", "base:2")
    page.fill("#lab-ex-depth", "9")
    page.click("#lab-ex-btn")
    page.wait_for_function(
        "() => /^depth \\d+\\/9/.test(document.querySelector('#lab-ex-progress').textContent)",
        timeout=60_000)
    page.click("#lab-ex-cancel")
    page.wait_for_function(
        "() => document.querySelector('#lab-ex-progress').textContent === 'cancelled'")
    page.wait_for_selector(READY)
    assert page.is_enabled("#lab-ex-btn") and page.is_enabled("#lab-run-btn")
    lab.check()


def _cpython_in_process(path: str) -> tuple[str, int]:
    """The command line in this process (as a subprocess would print it; 248 subprocesses
    would take minutes): tests/test_lab.py checks that the two agree."""
    from anonlib.cli import main

    buf = io.StringIO()
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        with redirect_stdout(buf), redirect_stderr(buf):
            status = main(["run", path, "--scheme", "mainline"])
    finally:
        os.chdir(here)
    return buf.getvalue(), status


def test_every_library_scenario_matches_cpython(lab, base_url):  # noqa: F811
    """The lab's text for every library scenario under mainline is CPython's, byte for byte."""
    page = lab.page
    open_lab(lab, base_url)
    paths = page.evaluate("""async () => {
        const out = {};
        const lib = (await window.anonlibLab.call({cmd: "init"})).library;
        for (const s of lib) {
            const v = await window.anonlibLab.call({cmd: "run", text: s.text, name: s.path,
                                                     schemes: ["mainline"], player: false});
            out[s.path] = [v.runs[0].output, v.runs[0].status];
        }
        return out;
    }""")
    library = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "scenarios").rglob("*.scn"))
    assert sorted(paths) == library
    differ = [p for p in library if tuple(paths[p]) != _cpython_in_process(p)]
    assert differ == [], f"{len(differ)} scenarios print differently in the lab: {differ[:5]}"
    lab.check()


def test_the_lab_from_file_says_how_to_serve_the_book(browser, book):  # noqa: F811
    w = Watched(browser, ("file://",))
    try:
        w.page.goto((book / "lab.html").as_uri())
        status = w.page.locator("#anonlib-lab .lab-status")
        status.wait_for()
        assert "python3 -m http.server -d book/_build/html" in status.inner_text()
        assert w.page.locator("#lab-text").is_hidden()
        w.check()
    finally:
        w.close()


def test_edit_in_the_lab_from_a_scenario_cell(lab, base_url):  # noqa: F811
    """Each %%scenario cell of a chapter links its text and its --scheme to the lab."""
    page = lab.page
    page.goto(f"{base_url}/notebooks/02-present-ptes.html")
    cells = page.locator("div.cell").filter(
        has=page.locator(".cell_input pre", has_text=re.compile(r"^%%scenario")))
    assert cells.count() > 1
    for i in range(cells.count()):
        assert cells.nth(i).locator("a.anonlib-edit-lab").count() == 1
    with_scheme = cells.filter(has=page.locator(".cell_input pre",
                                                has_text=re.compile(r"^%%scenario.*--scheme")))
    cell = with_scheme.first if with_scheme.count() else cells.first
    source = cell.locator(".cell_input pre").text_content()
    head, _, body = source.partition("\n")
    scheme = re.search(r"--scheme[= ]+(\S+)", head)
    cell.locator("a.anonlib-edit-lab").click()
    page.wait_for_url(re.compile(r".*/lab\.html#.*"))
    page.wait_for_selector(".lab-run")
    wait_idle(page)
    assert page.input_value("#lab-text") == body.rstrip() + "\n"
    if scheme:
        assert page.is_checked(f"#lab-schemes input[value='{scheme.group(1)}']")
    lab.check()
