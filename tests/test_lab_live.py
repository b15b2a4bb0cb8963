"""The live widgets in a real JupyterLab, driven by headless Chromium.

The test starts JupyterLab on 127.0.0.1 (a free port, a random token, no
browser, ``--allow-root`` when run as root) on a copy of one chapter, opens it
in Debian's Chromium through Playwright, runs all cells, then:

- clicks the Stepper's **Next** and checks that the step it shows changed and
  that the scenario listing shows the current line;
- adds a cell with a Stepper on CVE-2020-29374's scenario (27 lines, more than
  the listing shows), clicks Next four times and checks that line 23, the
  fork, is the current line and scrolled into view;
- applies one Playground operation and checks that the playground's state and
  scenario changed;

with no page error along the way. The chapter is copied to a temporary
directory, so JupyterLab's autosave never touches notebooks/.

Marked ``browser``: `make test` runs it (via `make browser`). Without Chromium
it skips, except under CI=true, where that is a failure. Bounded: every wait
has a timeout, and the whole test has one.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from chromium import CHROMIUM, LAUNCH_ARGS, skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUT_DIR = ROOT / "tests" / "_output"  # screenshots of the live widgets, to look at
CHAPTER = "90-visuals.ipynb"
START_TIMEOUT = 90  # seconds for JupyterLab to answer
RUN_TIMEOUT = 180_000  # ms for "run all cells" to finish



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> bytes:
    req = urllib.request.Request(f"{base}{path}", method=method,
                                 headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - 127.0.0.1 only
        return r.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of the chapter: (base URL, token, server log)."""
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"Chromium not found at {CHROMIUM} (Debian/Ubuntu: apt-get install chromium)")
    work = tmp_path_factory.mktemp("lab")
    (work / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / CHAPTER, work / "notebooks" / CHAPTER)
    (work / "scenarios").symlink_to(ROOT / "scenarios")  # chapters read ../scenarios/
    for d in ("config", "data", "runtime", "workspaces", "settings"):
        (work / d).mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0",
               JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = work / "lab.log"
    log = log_path.open("wb")
    server = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited ({server.returncode}):\n{log_path.read_text()}")
            try:
                _api(base, token, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {START_TIMEOUT}s:\n"
                                + log_path.read_text())
                time.sleep(0.5)
        yield base, token, log_path
    finally:
        try:  # shuts its kernels down too
            _api(base, token, "/api/shutdown", method="POST")
            server.wait(timeout=20)
        except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        log.close()


# The text of a widget without its controls and list boxes: what a step changes.
SHOWN_JS = """(el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll("select, button, input, style").forEach((e) => e.remove());
    return copy.innerText.split(/\\s+/).join(" ");
}"""
# Whether a stepper shows a line of its scenario listing: the innermost element whose
# text is that line (an optional current-line mark, the number, the statement) lies
# inside the visible area of the box that scrolls it (a list box, or any element
# whose content overflows), not scrolled away. How the listing is built is not assumed.
LINE_IN_VIEW_JS = """([root, pattern]) => {
    const re = new RegExp("^\\W?\\s*" + pattern);
    const lines = [...root.querySelectorAll("*")].filter((e) =>
        e.children.length === 0 && re.test(e.textContent.replace(/\u00a0/g, " ").trim()));
    if (lines.length !== 1) return false;
    const line = lines[0];
    let box = line.parentElement;
    while (box !== root && !(box.tagName === "SELECT" || box.scrollHeight > box.clientHeight + 1))
        box = box.parentElement;
    if (box.tagName === "SELECT") {  // a list box lays out its options itself: rows of one height
        const row = box.scrollHeight / box.options.length, top = line.index * row;
        return top >= box.scrollTop - 1 && top + row <= box.scrollTop + box.clientHeight + 1;
    }
    const outer = box.getBoundingClientRect(), inner = line.getBoundingClientRect();
    return inner.top >= outer.top - 1 && inner.bottom <= outer.bottom + 1;
}"""


LONG_STEPPER = """\
import pathlib

CVE_TEXT = pathlib.Path("../scenarios/history/b02-cve-2020-29374.scn").read_text()
anonlib.Stepper(CVE_TEXT, "legacy-mapcount")
"""


def test_stepper_and_playground_are_live_in_jupyterlab(lab):
    base, token, log_path = lab
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.goto(f"{base}/lab/tree/notebooks/{CHAPTER}?token={token}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                ".connectionStatus === 'connected'")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # run all is done when every code cell has an execution count and the kernel idles
            page.wait_for_function(
                """() => {
                    const nb = window.jupyterapp.shell.currentWidget;
                    const cells = nb.content.widgets.filter((c) => c.model.type === "code");
                    return cells.every((c) => c.model.executionCount !== null)
                        && nb.sessionContext.session.kernel.status === "idle";
                }""", timeout=RUN_TIMEOUT)
            errors_in_cells = page.evaluate(
                """() => window.jupyterapp.shell.currentWidget.content.widgets
                    .filter((c) => c.model.type === "code")
                    .flatMap((c) => c.model.outputs.toJSON())
                    .filter((o) => o.output_type === "error")
                    .map((o) => o.ename + ": " + o.evalue)""")
            assert errors_in_cells == [], errors_in_cells

            # the Stepper: cell 12 moved it to step 7; Next shows step 8
            stepper = page.locator(".anonlib-stepper").first
            stepper.scroll_into_view_if_needed()
            page.wait_for_function("(el) => el.innerText.includes('step 7/8')",
                                   arg=stepper.element_handle())
            before = stepper.evaluate(SHOWN_JS)
            assert "line 7: kernel swapout Q A[0]" in before, before
            stepper.get_by_role("button", name="Next ›").click()
            page.wait_for_function("(el) => el.innerText.includes('step 8/8')",
                                   arg=stepper.element_handle())
            after = stepper.evaluate(SHOWN_JS)
            assert after != before and "line 8: P write A[0] y" in after, after
            page.wait_for_function(LINE_IN_VIEW_JS,
                                   arg=[stepper.element_handle(), r"8\s+P write A\[0\] y"])

            # the Playground: cell 22 applied five operations; apply one more
            play = page.locator(".anonlib-playground").first
            play.scroll_into_view_if_needed()
            page.wait_for_function("(el) => el.innerText.includes('Q write A[0] y')",
                                   arg=play.element_handle())
            before = play.evaluate(SHOWN_JS)
            choice = play.locator("select").nth(1)  # the operation (the first is its family)
            op = choice.evaluate("(s) => s.options[s.selectedIndex].textContent")
            op = op.replace("\xa0", " ").strip()
            assert op, "the playground offers no operation"
            play.get_by_role("button", name="Apply").click()
            page.wait_for_function("([el, op]) => el.innerText.includes('6: ' + op)",
                                   arg=[play.element_handle(), op])
            after = play.evaluate(SHOWN_JS)
            assert after != before, "applying an operation changed nothing shown"
            assert op in after.split("scenario", 1)[1], f"{op!r} is not in the scenario"

            # a Stepper on a scenario longer than its listing: the listing follows
            page.evaluate("""(code) => {
                const nb = window.jupyterapp.shell.currentWidget;
                nb.content.activeCellIndex = nb.content.widgets.length - 1;
                return window.jupyterapp.commands.execute("notebook:insert-cell-below")
                    .then(() => {
                        nb.content.activeCell.model.sharedModel.setSource(code);
                        return window.jupyterapp.commands.execute("notebook:run-cell");
                    });
            }""", LONG_STEPPER)
            page.wait_for_function("() => document.querySelectorAll('.anonlib-stepper').length"
                                   " === 3")  # the stepper, the quiz (a stepper too), this one
            cve = page.locator(".anonlib-stepper").nth(2)
            cve.get_by_role("button", name="Next ›").wait_for()
            cve.scroll_into_view_if_needed()
            for _ in range(4):
                cve.get_by_role("button", name="Next ›").click()
            page.wait_for_function("(el) => el.innerText.includes('step 4/7')",
                                   arg=cve.element_handle())
            page.wait_for_function(LINE_IN_VIEW_JS,
                                   arg=[cve.element_handle(), r"23\s+P fork Q"], timeout=10_000)
            OUTPUT_DIR.mkdir(exist_ok=True)
            cve.screenshot(path=OUTPUT_DIR / "lab-stepper-cve-step4.png")
            play.screenshot(path=OUTPUT_DIR / "lab-playground.png")
        finally:
            browser.close()
    assert errors == [], "\n".join(errors) + "\n" + log_path.read_text()[-3000:]

