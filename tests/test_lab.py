"""The scenario lab's Python side (anonlib.views.lab) and its bundle (tools/lab_bundle.py).

The lab runs these functions in the reader's browser under Pyodide; here they run under
CPython, and their text must be the command line's (tests/test_book_lab.py checks the
browser's text against CPython's).
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from anonlib.views import lab

ROOT = Path(__file__).resolve().parent.parent
B02 = "scenarios/history/b02-cve-2020-29374.scn"


def _cli(*argv: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-m", "anonlib", *argv], cwd=ROOT, check=False,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return out.stdout, out.returncode


@pytest.fixture
def in_root(monkeypatch, tmp_path):
    """Run in a copy of the scenario library, as the lab's worker does."""
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_prints_what_the_command_line_prints(in_root):
    text = (ROOT / B02).read_text()
    got = lab.run(text, ["mainline", "legacy-mapcount"], B02)
    assert got["file"] == B02
    for run in got["runs"]:
        assert (run["output"], run["status"]) == _cli("run", B02, "--scheme", run["scheme"])
        assert '<div class="anonlib-player"' in run["player"] and "<svg " in run["player"]
    assert [r["status"] for r in got["runs"]] == [0, 1]
    assert got["compare"].splitlines()[1].startswith("legacy-mapcount  exit 1")


def test_an_edited_scenario_runs_from_lab_scn(in_root):
    text = (ROOT / B02).read_text().replace("P write A[0] secret", "P wirte A[0] secret")
    got = lab.run(text, [], B02)
    assert got["file"] == "lab.scn" and (in_root / "lab.scn").read_text() == text
    (run,) = got["runs"]
    assert run["status"] == 2 and run["player"] == ""
    assert "lab.scn: line 26, column 3: unknown operation 'wirte'; did you mean 'write'?" in (
        run["output"])


def test_an_unknown_scheme_gets_the_command_lines_error(in_root):
    got = lab.run("spawn P\n", ["mainline", "mainlin"], "")
    bad = got["runs"][1]
    assert bad["status"] == 2 and "did you mean 'mainline'" in bad["output"]
    assert got["compare"] == ""


def test_explore_gives_the_counterexample_as_a_scenario(in_root):
    got = lab.explore("page-count", "base:1", 4, "all")
    assert got["status"] == 1
    ce = got["counterexample"]
    assert "P pin A[0] ro longterm as H" in ce and "# explore:" not in ce
    rerun = lab.run(ce, [], "")
    assert rerun["runs"][0]["status"] == 1
    bad = lab.explore("mainline", "base:9x", 4, "all")
    assert bad["status"] == 2 and bad["output"].startswith("anonlib explore: --pages")


def test_explore_progress_goes_to_the_callback():
    lines: list[str] = []
    err = lab._Progress(io.StringIO(), lines.append)
    err.write("\rdepth 2/4 [####    ] 3/9  states 10 ")
    err.write("time: 1 s\n")
    assert lines == ["depth 2/4 [####    ] 3/9  states 10"]
    assert err.out.getvalue() == "time: 1 s\n"


def test_families_name_what_ops_takes():
    line = lab.families()
    assert line.startswith("families: ") and "groups: " in line and "fork" in line


def test_library_and_schemes():
    names = [s["name"] for s in lab.schemes()]
    assert names[0] == "mainline" and "legacy-mapcount" in names
    import os

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        lib = lab.library()
    finally:
        os.chdir(here)
    paths = [s["path"] for s in lib]
    assert B02 in paths and all(p.startswith("scenarios/") for p in paths)
    assert next(s for s in lib if s["path"] == B02)["expect"].startswith("mainline=0")


def _bundle_module():
    spec = importlib.util.spec_from_file_location("lab_bundle", ROOT / "tools" / "lab_bundle.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_bundle_is_the_working_tree_and_deterministic():
    mod = _bundle_module()
    paths = mod.bundle_files(ROOT)
    assert "anonlib/views/lab.py" in paths and "anonlib/__init__.py" in paths and B02 in paths
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]
    data = mod.build_zip(ROOT, paths)
    assert data == mod.build_zip(ROOT, paths)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("anonlib/views/lab.py") == (ROOT / "anonlib/views/lab.py").read_bytes()
