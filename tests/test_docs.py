"""The project's contracts under docs/ exist, agree with the code, and every citation resolves.

* No file of the repository cites the team's private notes (a directory a
  reader never has) or a document path that the repository does not contain.
* docs/statements.md has a row for every statement the parser accepts, names
  only model functions that exist, and only kernel functions that Linux 6.12
  defines in the file it names.
* docs/invariants.md gives each registered invariant's id, title, statement
  and kernel source as the registry (anonlib/invariants.py) has them.
* docs/cow-cases.md lists every case tools/gen_cow_scenarios.py generates, by
  the title cow.c gives it; docs/history.md has a section for every bug the
  library replays.
* Every glossary entry (book/glossary.md) is linked from at least one chapter.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from anonlib.invariants import INVARIANTS
from anonlib.ops import Advice
from anonlib.scenario.parser import HANDLE_VERBS, KERNEL_ACTIONS, PROCESS_VERBS

ROOT = pathlib.Path(__file__).resolve().parents[1]
THIS = pathlib.Path(__file__).resolve()
DOCS = ROOT / "docs"
KERNEL = pathlib.Path("/usr/src/linux-source-6.12")
TEXT_SUFFIXES = {".py", ".md", ".scn", ".ipynb", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".c",
                 ".json", ".sh", ""}
SKIP_DIRS = {".git", ".venv", "node_modules", "_build", ".cache", "__pycache__"}
# Spelled in two pieces so that this file does not cite what it forbids.
PRIVATE_NOTES = re.compile(r"(?<![\w.-])" + "sha" + r"red/(?:reference/)?[\w.-]*")
MD_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.md)\b")
URL = re.compile(r"https?://\S+")


def repo_files() -> list[pathlib.Path]:
    """The repository's files: tracked and untracked-but-not-ignored, or a walk without git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True, text=True,
        ).stdout
        paths = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.is_file() and not p.is_symlink()
                  and not SKIP_DIRS & set(p.relative_to(ROOT).parts)
                  and p.suffix in TEXT_SUFFIXES)


def text_of(path: pathlib.Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


def cited_paths(text: str, code: bool = False) -> list[str]:
    """Document paths (``*.md``) a text names, outside URLs.

    Not citations: a placeholder in a usage line (``OUT.md``), and in code
    (``code``) a bare file name in a string literal, which names a file the
    code writes.
    """
    text = URL.sub(" ", text)
    found = []
    for m in MD_PATH.finditer(text):
        name = m.group(1)
        bare = "/" not in name
        if bare and name[:-3].isupper() and name != "README.md":
            continue
        if bare and code and m.start() and text[m.start() - 1] in "\"'":
            continue
        found.append(name)
    return found


def resolves(cited: str, source: pathlib.Path, basenames: set[str]) -> bool:
    """A cited path exists: from the repository root, from the citing file, or from
    where the book shows it (a chapter is ``book/notebooks/NN.ipynb`` there); a bare
    name, as some file's name."""
    if "/" not in cited:
        return cited in basenames
    bases = [ROOT, source.parent, ROOT / "book"]
    if source.parent.name == "notebooks":
        bases.append(ROOT / "book" / "notebooks")
    return any(pathlib.Path(os.path.normpath(base / cited)).is_file() for base in bases)


def test_no_file_cites_the_private_notes():
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}"
                 for p in repo_files() if p != THIS for m in PRIVATE_NOTES.finditer(text_of(p))]
    assert not offenders, "cites notes a reader never has:\n" + "\n".join(offenders)


def test_every_cited_document_exists():
    files = repo_files()
    basenames = {p.name for p in files}
    missing = sorted({f"{p.relative_to(ROOT)}: {c}" for p in files if p != THIS
                      for c in cited_paths(text_of(p), code=p.suffix == ".py")
                      if not resolves(c, p, basenames)})
    assert not missing, "cites documents the repository does not contain:\n" + "\n".join(missing)


def test_the_citation_check_catches_a_missing_document():
    basenames = {p.name for p in repo_files()}
    here = ROOT / "scenarios" / "history" / "x.scn"
    assert cited_paths("# See docs/history.md B2 and kernel-semantics.md section 8.") == [
        "docs/history.md", "kernel-semantics.md"]
    assert resolves("docs/history.md", here, basenames)
    assert not resolves("kernel-semantics.md", here, basenames)
    assert not resolves("docs/nowhere.md", here, basenames)
    assert cited_paths("https://example.org/README.md") == []
    assert cited_paths("--markdown OUT.md") == []
    assert cited_paths('tmp / "appendix.md"', code=True) == []
    assert cited_paths('tmp / "appendix.md"') == ["appendix.md"]
    assert PRIVATE_NOTES.search("see " + "sha" + "red/reference/history-bugs.md")


# ---------------------------------------------------------------- docs/README.md and the book


def test_the_index_and_the_book_list_every_document():
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    toc = (ROOT / "book" / "_toc.yml").read_text(encoding="utf-8")
    assert pages, "docs/ has no documents"
    for name in pages:
        assert f"]({name})" in index, f"docs/README.md does not link {name}"
        assert f"file: docs/{name[:-3]}\n" in toc, f"book/_toc.yml does not include docs/{name}"


# ---------------------------------------------------------------- statements.md


def statement_rows() -> dict[str, tuple[str, str]]:
    """statement -> (model cell, kernel cell) of docs/statements.md's table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in (DOCS / "statements.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[2], cells[3])
    return rows


def expected_statements() -> set[str]:
    want = {"spawn", "unpin", "put", "show", "expect"}
    want |= {f"P {v}" for v in PROCESS_VERBS if v != "madvise"}
    want |= {f"P madvise {a.value}" for a in Advice}
    want |= {f"H {v}" for v in HANDLE_VERBS}
    want |= {f"kernel {a}" for a in KERNEL_ACTIONS}
    return want


def test_statements_table_has_a_row_for_every_statement():
    rows = set(statement_rows())
    assert rows == expected_statements(), (
        f"missing rows: {sorted(expected_statements() - rows)}; "
        f"rows for no statement: {sorted(rows - expected_statements())}")


def test_statements_table_names_model_functions_that_exist():
    defined = set()
    for p in (ROOT / "anonlib").rglob("*.py"):
        defined |= set(re.findall(r"^\s*def (\w+)\(", p.read_text(encoding="utf-8"), re.M))
    named = {n for model, _ in statement_rows().values() for n in re.findall(r"`(\w+)`", model)}
    assert named, "the table names no model function"
    assert not named - defined, f"not defined in anonlib/: {sorted(named - defined)}"


def kernel_functions() -> set[tuple[str, str]]:
    return {(f, fn) for _, kernel in statement_rows().values()
            for f, fn in re.findall(r"`([\w./-]+\.[ch]):(\w+)`", kernel)}


@pytest.mark.skipif(not KERNEL.is_dir(), reason="the Linux 6.12 source is not unpacked")
def test_statements_table_names_kernel_functions_that_612_defines():
    assert kernel_functions()
    missing = []
    for file, fn in sorted(kernel_functions()):
        src = KERNEL / file
        text = src.read_text(encoding="utf-8", errors="replace") if src.is_file() else ""
        if not re.search(rf"^(?:\w[^;\n]*[\s*])?{re.escape(fn)}\(", text, re.M):
            missing.append(f"{file}:{fn}")
    assert not missing, f"not defined in Linux 6.12: {missing}"


# ---------------------------------------------------------------- invariants.md


def squash(text: str) -> str:
    return " ".join(text.split())


def test_invariants_doc_matches_the_registry():
    doc = squash((DOCS / "invariants.md").read_text(encoding="utf-8"))
    for inv in INVARIANTS:
        assert f"## {inv.id}: {inv.title}" in doc, f"no section '{inv.id}: {inv.title}'"
        assert squash(inv.statement) in doc, f"{inv.id}: the statement differs from the registry"
        assert squash(inv.kernel_source) in doc, f"{inv.id}: the kernel source differs"
    ids = re.findall(r"^## (INV-\d+):", (DOCS / "invariants.md").read_text(encoding="utf-8"), re.M)
    assert ids == [inv.id for inv in INVARIANTS], "sections and registry differ in number or order"


# ---------------------------------------------------------------- cow-cases.md and history.md


def generator():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_cow_scenarios
    finally:
        sys.path.pop(0)
    return gen_cow_scenarios


def generated_cases() -> list[tuple[str, str]]:
    g = generator()
    return ([(c.id, c.title) for c in g.CASES] + [(x[0], x[2]) for x in g.COLLAPSE]
            + [(x[0], x[2]) for x in g.ZERO])


def test_cow_catalogue_lists_every_generated_case():
    doc = (DOCS / "cow-cases.md").read_text(encoding="utf-8")
    for cid, title in generated_cases():
        assert re.search(rf"^\| {cid} \| {re.escape(title)} \|", doc, re.M), f"{cid} {title!r}"
    for v in generator().VARIANTS:
        assert f"| `{v.key}` | {v.log} |" in doc, f"variant {v.key}"
    for x in generator().SWAP_EXCLUSIVE:
        assert re.search(rf"^\| {x[0]} \| {re.escape(x[2])} \|", doc, re.M), x[0]


@pytest.mark.skipif(not (KERNEL / "tools/testing/selftests/mm/cow.c").is_file(),
                    reason="the Linux 6.12 source is not unpacked")
def test_cow_case_titles_are_the_kernels():
    cow = (KERNEL / "tools/testing/selftests/mm/cow.c").read_text(encoding="utf-8")
    titles = set(re.findall(r'"([^"\n]+)"', cow))
    for cid, title in generated_cases():
        base = title.split(" (test_")[0].split(", with ")[0]
        assert base in titles, f"{cid}: cow.c has no case titled {base!r}"


def test_history_has_a_section_for_every_replayed_bug():
    doc = (DOCS / "history.md").read_text(encoding="utf-8")
    sections = {int(n) for n in re.findall(r"^## B(\d+)\. ", doc, re.M)}
    assert sections == set(range(1, 15))
    for p in (ROOT / "scenarios" / "history").glob("b*.scn"):
        assert int(p.name[1:3]) in sections, p.name


# ---------------------------------------------------------------- glossary


GLOSSARY = ROOT / "book" / "glossary.md"
TERM_ROLE = re.compile(r"\{term\}`([^`]+)`")


def glossary_entries() -> list[list[str]]:
    """Each entry of the glossary's ``{glossary}`` blocks: its term and aliases."""
    entries: list[list[str]] = []
    inside = False
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.startswith("```{glossary}"):
            inside, fresh = True, True
            continue
        if inside and line.startswith("```"):
            inside = False
            continue
        if not inside or line.startswith(":"):
            continue
        if not line.strip():
            fresh = True
        elif not line[0].isspace():
            if fresh:
                entries.append([])
                fresh = False
            entries[-1].append(line.strip())
        else:
            fresh = True
    return entries


def linked_terms(text: str) -> set[str]:
    """Terms a text links with ``{term}``, lower-cased (Sphinx matches terms case-insensitively)."""
    out = set()
    for target in TERM_ROLE.findall(text):
        m = re.fullmatch(r".*<([^>]+)>", target, re.S)
        out.add(squash(m.group(1) if m else target).lower())
    return out


def chapter_links() -> set[str]:
    found: set[str] = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                found |= linked_terms("".join(cell["source"]))
    return found


def test_glossary_has_entries():
    entries = glossary_entries()
    assert len(entries) > 40 and ["FOLL_PIN"] in entries, entries


def test_every_glossary_term_is_linked_from_a_chapter():
    links = chapter_links()
    unlinked = [e[0] for e in glossary_entries() if not {t.lower() for t in e} & links]
    assert not unlinked, f"no chapter links these glossary entries: {unlinked}"


def test_every_term_a_chapter_links_is_in_the_glossary():
    terms = {t.lower() for e in glossary_entries() for t in e}
    assert not chapter_links() - terms, sorted(chapter_links() - terms)


def test_the_glossary_page_shows_no_raw_role():
    text = GLOSSARY.read_text(encoding="utf-8")
    assert "``{term}" not in text, "a {term} role in a code span shows up raw on the page"
