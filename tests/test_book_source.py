"""Every scenario file a book page names is in the repository and on the book's
"Source files" page, and the source archive the book ships is deterministic and
complete (tools/book_source.py).

The pages read are the ones the book is built from: book/*.md (not the generated
ones), docs/*.md and the markdown cells of notebooks/*.ipynb.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pathlib
import re
import subprocess
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("book_source", ROOT / "tools" / "book_source.py")
book_source = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book_source)

GENERATED = {"source-files.md", "external-links.md"}
# A repository path to the scenario library, as a page writes it: in backticks,
# optionally linked. Kernel paths never start with "scenarios/".
SCN_PATH = re.compile(r"`((?:scenarios/)?(?:history|cow)/[A-Za-z0-9_.*-]+\.scn|"
                      r"[abcn][0-9]{1,2}-[a-z0-9-]+\.scn|scenarios/[A-Za-z0-9_./*-]*)`")
SCN_LINK = re.compile(r"\[`([^`]+)`\]\(#(scn-[a-z0-9-]+)\)")
# A markdown label line of the generated page: (scn-...)=
LABEL = re.compile(r"^\((scn-[a-z0-9-]+)\)=$", re.M)


def page_texts() -> list[tuple[str, str]]:
    """(where, markdown text) of every page and notebook markdown cell."""
    found = []
    for p in sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "docs").glob("*.md")):
        if not (p.parent.name == "book" and p.name in GENERATED):
            found.append((p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")))
    for p in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(p.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "markdown":
                found.append((f"{p.relative_to(ROOT).as_posix()} cell {i}",
                              "".join(cell["source"])))
    return found


@pytest.fixture(scope="module")
def files() -> list[str]:
    return book_source.source_files(ROOT)


@pytest.fixture(scope="module")
def page(files) -> str:
    return book_source.render_page(ROOT, "", files, 1)


@pytest.fixture(scope="module")
def labels(page) -> set[str]:
    return set(LABEL.findall(page))


def _matches(pattern: str, files: list[str]) -> list[str]:
    """Library files a named path stands for: one file, a folder, or a pattern
    where '*' or an upper-case placeholder (bNN, SLUG) stands for any text."""
    if "/" not in pattern:  # a bare file name: in any folder
        return [f for f in files if f.rsplit("/", 1)[-1] == pattern]
    if not pattern.startswith("scenarios/"):
        pattern = "scenarios/" + pattern
    if pattern.endswith("/"):
        return [f for f in files if f.startswith(pattern)]
    parts = re.split(r"(\*|[A-Z]+)", pattern)
    rx = "".join(".+" if i % 2 else re.escape(s) for i, s in enumerate(parts))
    return [f for f in files if re.fullmatch(rx, f)]


def named_paths() -> list[tuple[str, str]]:
    return [(where, m) for where, text in page_texts() for m in SCN_PATH.findall(text)]


def test_pages_name_scenario_files():
    # the check below has something to check
    assert len({p for _, p in named_paths() if p.endswith(".scn")}) >= 5


@pytest.mark.parametrize(("where", "path"), named_paths())
def test_every_named_scenario_path_exists_and_is_on_the_page(where, path, files, labels):
    found = _matches(path, files)
    assert found, f"{where}: `{path}` names no file of the scenario library"
    for f in found:
        if f.endswith(".scn"):
            label = book_source.scn_label(f)
            assert label in labels, f"{where}: {f} has no anchor {label} on the Source files page"


def links() -> list[tuple[str, str, str]]:
    return [(where, text, label) for where, page_text in page_texts()
            for text, label in SCN_LINK.findall(page_text)]


def test_pages_link_scenario_files():
    assert len(links()) >= 10


@pytest.mark.parametrize(("where", "text", "label"), links())
def test_every_scenario_link_leads_to_what_it_names(where, text, label, files, labels):
    assert label in labels, f"{where}: link to #{label}, which the Source files page lacks"
    if text == "scenarios/":
        expected = {"scn-library"}
    elif text == "scenarios/README.md":
        expected = {"scn-readme"}
    elif text.startswith("-"):  # "`history/b02-...scn`, `-thp.scn`": a sibling's suffix
        expected = {label} if label.endswith(text.removesuffix(".scn")) else set()
    else:
        found = _matches(text, files)
        expected = ({book_source.scn_label(found[0])} if len(found) == 1
                    else {book_source.scn_label(found[0].rsplit("/", 1)[0] + "/")} if found
                    else set())
    assert label in expected, f"{where}: `{text}` links to #{label}, expected {expected}"


REPO_LINK = re.compile(r"\[`([^`]+)`\]\(#source-repository\)")


def repo_links() -> list[tuple[str, str]]:
    return [(where, text) for where, page_text in page_texts()
            for text in REPO_LINK.findall(page_text)]


def test_pages_link_repository_paths():
    assert len(repo_links()) >= 10


@pytest.mark.parametrize(("where", "path"), repo_links())
def test_every_repository_link_names_a_file_of_the_archive(where, path, files, page):
    assert "(source-repository)=\n## " in page
    top = path.split("/", 1)[0]
    assert top in book_source.INCLUDE_DIRS, f"{where}: `{path}` is not a folder the book ships"
    found = ([f for f in files if re.fullmatch(re.escape(path).replace(r"\*", "[^/]+"), f)]
             if "*" in path else
             [f for f in files if f == path or f.startswith(path.rstrip("/") + "/")])
    assert found, f"{where}: `{path}` links to the repository but no tracked file is there"


def test_the_page_shows_every_scenario_with_its_text(files, page):
    scns = [f for f in files if f.startswith("scenarios/") and f.endswith(".scn")]
    assert len(scns) == len(list((ROOT / "scenarios").rglob("*.scn")))
    for f in scns:
        label = book_source.scn_label(f)
        head = f"({label})=\n#### `{f.rsplit('/', 1)[1]}`\n"
        assert page.count(head) == 1, f"{f}: not once on the page"
        body = (ROOT / f).read_text(encoding="utf-8").rstrip("\n")
        assert body in page.split(head, 1)[1], f"{f}: its text is not under its heading"


def test_every_document_a_scenario_cites_exists_and_is_linked(files, page):
    cited = 0
    for f in files:
        if f.startswith("scenarios/"):
            for doc in book_source.cited_docs((ROOT / f).read_text(encoding="utf-8")):
                assert (ROOT / doc).is_file(), f"{f} cites {doc}, which does not exist"
                section = page.split(f"({book_source.scn_label(f)})=\n", 1)[1]
                section = section.split("\n(scn-", 1)[0]
                assert f"{{doc}}`{doc} </{doc[:-3]}>`" in section, f"{f}: {doc} not linked"
                cited += 1
    assert cited > 100  # the cow cases cite their catalogue


SCN_NAME = re.compile(r"(?:(?:scenarios/)?(?:history|cow)/)?\b[abcn][0-9]{1,2}-[a-z0-9-]+\.scn\b")


def test_every_scenario_file_the_library_names_exists(files):
    # scenarios/README.md and the scenario headers name each other
    named = 0
    for f in files:
        if f.startswith("scenarios/"):
            for name in SCN_NAME.findall((ROOT / f).read_text(encoding="utf-8")):
                assert _matches(name, files), f"{f} names {name}, which does not exist"
                named += 1
    assert named >= 3


def test_labels_are_unique(page):
    found = LABEL.findall(page)
    assert len(found) == len(set(found))


def test_the_page_names_the_repository_setting(files):
    empty = book_source.render_page(ROOT, "", files, 1)
    assert "`repository: url:`" in empty and "https://" not in empty.split("## The scenario")[0]
    url = "https://example.org/anonlib"
    assert f"<{url}>" in book_source.render_page(ROOT, url, files, 1)


@pytest.mark.parametrize("bad", ["http://x.org/r", "ftp://x", "https://x y", "[x](y)", "42"])
def test_a_bad_repository_setting_is_refused(tmp_path, bad):
    cfg = tmp_path / "_config.yml"
    cfg.write_text(f"repository:\n  url: {json.dumps(bad) if bad != '42' else 42}\n")
    with pytest.raises(book_source.SourceError, match="repository.url"):
        book_source.repository_url(cfg)


def test_the_book_config_holds_a_valid_setting():
    url = book_source.repository_url(ROOT / "book" / "_config.yml")
    assert url == "" or url.startswith("https://")


def _tracked(root: pathlib.Path) -> list[str] | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], check=True,
                             capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [p for p in out.decode().split("\0") if p]


def test_the_archive_is_deterministic_and_complete(files):
    first = book_source.build_archive(ROOT, files)
    assert book_source.build_archive(ROOT, list(reversed(files))) == first
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {m.mtime for m in members} == {book_source.FIXED_MTIME}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "root", "root")}
    inside = {n.removeprefix(book_source.PREFIX + "/") for n in names}
    tracked = _tracked(ROOT)
    if tracked is None:
        pytest.skip("not a git checkout")
    wanted = {p for p in tracked
              if (p.split("/", 1)[0] in book_source.INCLUDE_DIRS and "/" in p
                  or p in book_source.INCLUDE_FILES) and (ROOT / p).exists()}
    for top in ("anonlib", "scenarios", "docs", "tools", "benchmarks", "tests", "notebooks"):
        assert any(p.startswith(top + "/") for p in wanted), top
    assert wanted <= inside, f"missing from the archive: {sorted(wanted - inside)[:10]}"
    assert inside <= set(tracked), f"not tracked: {sorted(inside - set(tracked))[:10]}"


def test_the_archive_holds_the_working_tree_bytes(files):
    data = book_source.build_archive(ROOT, files)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for rel in ("scenarios/history/b12-mprotect-upgrade.scn", "anonlib/__init__.py",
                    "README.md"):
            member = tar.extractfile(f"{book_source.PREFIX}/{rel}")
            assert member is not None and member.read() == (ROOT / rel).read_bytes()


def test_without_git_the_walk_finds_what_git_tracks(tmp_path):
    # A copy of part of the tree with the clutter a checkout gathers, and no .git.
    for rel in ("scenarios/README.md", "scenarios/history/b12-mprotect-upgrade.scn",
                "anonlib/__init__.py", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((ROOT / rel).read_bytes())
    for junk in ("anonlib/__pycache__/x.cpython-311.pyc", ".venv/lib/y.py",
                 "book/_build/html/index.html", "book/_source/anonlib-source.tar.gz",
                 "book/" + book_source.PAGE_REL, "tests/_output/z.txt", "node_modules/a/b.js",
                 "notebooks/.ipynb_checkpoints/01-checkpoint.ipynb", "anonlib/w.pyc"):
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / junk).write_text("junk\n")
    (tmp_path / "book").mkdir(exist_ok=True)
    (tmp_path / "book" / "docs").symlink_to("../scenarios")
    found = book_source.source_files(tmp_path)
    assert found == ["README.md", "anonlib/__init__.py", "book/docs", "scenarios/README.md",
                     "scenarios/history/b12-mprotect-upgrade.scn"]
    data = book_source.build_archive(tmp_path, found)
    assert data == book_source.build_archive(tmp_path, found)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        link = tar.getmember(f"{book_source.PREFIX}/book/docs")
        assert link.issym() and link.linkname == "../scenarios"


def test_the_generated_page_is_in_the_table_of_contents():
    toc = (ROOT / "book" / "_toc.yml").read_text(encoding="utf-8")
    assert re.search(r"^  - file: source-files\b", toc, re.M)
    assert "book/_source/" in (ROOT / ".gitignore").read_text(encoding="utf-8")
