"""Ship the project's source with the book: an archive and a "Source files" page.

Usage: python tools/book_source.py [--root DIR]

The book and the scenario headers name repository paths (`scenarios/history/
b12-mprotect-upgrade.scn`, `anonlib/model.py`, `benchmarks/results/*.md`). A
reader of the built book must be able to follow every one of them with no
network, so at book build time (`make book` runs this before jupyter-book)
this script writes two files, both git-ignored:

- `book/_source/anonlib-source.tar.gz`: the tracked files of the working tree
  under INCLUDE (`git ls-files` in a git checkout, else a walk of the tree with
  the exclusions of EXCLUDED_DIRS and EXCLUDED_FILES). The archive is
  deterministic: entries sorted by path, one fixed mtime, owner root, modes
  0644/0755, no name or time in the gzip header. The same tree gives the same
  bytes.
- the page "Source files" (PAGE_REL in `book/`, under "About this book").
  It says where the repository lives, links the archive (Sphinx copies it into
  `_downloads/`), and shows every scenario of `scenarios/` with its text, one
  anchor per file: `scn-FOLDER-NAME` for `scenarios/FOLDER/NAME.scn`
  (`scn_label`), `scn-FOLDER` for a folder, `scn-readme` for
  `scenarios/README.md`. Chapters link a scenario as
  ``[`scenarios/history/b02-cve-2020-29374.scn`](#scn-history-b02-cve-2020-29374)``,
  and any other repository path (`anonlib/model.py`) to the section on where
  the repository lives, ``[`anonlib/model.py`](#source-repository)``.

Where the repository lives is one setting, `repository: url:` in
`book/_config.yml`. Empty (the default): the page says the archive is the
source. Set to an https URL: the page names it as the repository, and the
archive stays as the copy the book was built from.

`tests/test_book_source.py` checks that every scenario path a page names exists
and has its anchor here, and that the archive is deterministic and complete.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import pathlib
import re
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Sequence

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARCHIVE_NAME = "anonlib-source.tar.gz"
PREFIX = "anonlib-source"
# Relative to the book folder: where the archive is written, and the page.
ARCHIVE_REL = f"_source/{ARCHIVE_NAME}"
PAGE_REL = "source-files.md"

# What a reader may need: the library, its scenarios, contracts, tools,
# benchmarks, tests, chapters, the book's own sources, and the files that
# build and test them.
INCLUDE_DIRS = ("anonlib", "benchmarks", "book", "docs", "notebooks", "scenarios",
                "tests", "tools")
INCLUDE_FILES = ("Makefile", "README.md", "environment.yml", "nbval_sanitize.cfg",
                 "package-lock.json", "package.json", "pyproject.toml")
# For a tree that is not a git checkout: what .gitignore leaves out, and what
# this script and `make book` generate.
EXCLUDED_DIRS = frozenset({".venv", "node_modules", "__pycache__", ".ipynb_checkpoints",
                           ".pytest_cache", ".ruff_cache", ".hypothesis", ".cache",
                           "_build", "build", "dist", ".git"})
EXCLUDED_PATHS = frozenset({"book/_assets/widgets", "book/_source", "book/" + PAGE_REL,
                            "tests/_output"})
EXCLUDED_SUFFIXES = (".pyc", ".egg-info")
# 1980-01-01 00:00:00 UTC: the earliest time every archive format can store.
FIXED_MTIME = 315532800


class SourceError(Exception):
    """A problem with the tree or the setting, said in one line."""


def _included(rel: str) -> bool:
    top = rel.split("/", 1)[0]
    return rel in INCLUDE_FILES or ("/" in rel and top in INCLUDE_DIRS)


def _git_files(root: pathlib.Path) -> list[str] | None:
    """The tracked paths under root, or None when root is not a git checkout."""
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached"],
                             check=True, capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def _walk_files(root: pathlib.Path) -> list[str]:
    """The paths a checkout would track, found by walking the tree."""
    found: list[str] = []
    for name in INCLUDE_FILES:
        if (root / name).is_file():
            found.append(name)
    for top in INCLUDE_DIRS:
        for dirpath, dirnames, filenames in os.walk(root / top):
            rel_dir = pathlib.Path(dirpath).relative_to(root).as_posix()
            keep = []
            for d in dirnames:
                rel = f"{rel_dir}/{d}"
                if d in EXCLUDED_DIRS or d.endswith(EXCLUDED_SUFFIXES) or rel in EXCLUDED_PATHS:
                    continue
                if (pathlib.Path(dirpath) / d).is_symlink():
                    found.append(rel)  # a link, stored as one (os.walk does not enter it)
                    continue
                keep.append(d)
            dirnames[:] = keep
            for f in filenames:
                rel = f"{rel_dir}/{f}"
                if f.endswith(EXCLUDED_SUFFIXES) or rel in EXCLUDED_PATHS:
                    continue
                found.append(rel)
    return found


def source_files(root: pathlib.Path = ROOT) -> list[str]:
    """The sorted paths (relative, '/'-separated) the archive holds.

    In a git checkout: the tracked files under INCLUDE that exist in the working
    tree. Otherwise: a walk with the same exclusions as .gitignore.
    """
    tracked = _git_files(root)
    paths = tracked if tracked is not None else _walk_files(root)
    return sorted(p for p in set(paths) if _included(p) and os.path.lexists(root / p))


def build_archive(root: pathlib.Path, paths: Iterable[str]) -> bytes:
    """A .tar.gz of paths under root, the same bytes for the same files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(paths):
            path = root / rel
            st = path.lstat()
            info = tarfile.TarInfo(f"{PREFIX}/{rel}")
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                info.mode = 0o777
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
                tar.addfile(info, io.BytesIO(data))
            else:
                raise SourceError(f"{rel}: neither a file nor a symbolic link")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def repository_url(config: pathlib.Path) -> str:
    """`repository: url:` of the book's config: "" or an https URL."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"{config}: cannot read the book config: {exc}") from None
    repo = data.get("repository") or {}
    url = repo.get("url", "") if isinstance(repo, dict) else None
    if url is None:
        url = ""
    if not isinstance(url, str):
        raise SourceError(f"{config}: repository.url must be a string, not {url!r}")
    url = url.strip()
    if url and not re.fullmatch(r"https://[^\s<>`\[\]()]+", url):
        raise SourceError(f"{config}: repository.url must be empty or an https:// URL "
                          f"with no spaces or brackets, not {url!r}")
    return url


def scn_label(rel: str) -> str:
    """The page's anchor for scenarios/FOLDER/NAME.scn, scenarios/FOLDER/ or the README."""
    parts = pathlib.PurePosixPath(rel).parts
    if parts[0] != "scenarios":
        raise ValueError(f"{rel}: not under scenarios/")
    if rel == "scenarios/README.md":
        return "scn-readme"
    stem = "-".join(parts[1:]).removesuffix(".scn").rstrip("/")
    return "scn-" + re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * max(3, longest + 1)


def _block(text: str, lang: str) -> list[str]:
    fence = _fence(text)
    return [f"{fence}{lang}", text.rstrip("\n"), fence]


DOC_PATH = re.compile(r"\bdocs/([A-Za-z0-9_-]+)\.md\b")


def cited_docs(text: str) -> list[str]:
    """The project documents (pages of `docs/`) a text cites, each once, in order."""
    return list(dict.fromkeys(m.group(0) for m in DOC_PATH.finditer(text)))


def _cited_docs(root: pathlib.Path, text: str) -> list[str]:
    """A line linking the docs/ pages a scenario's header cites (they are pages
    of this book); a cited document that does not exist is left unlinked, and
    tests/test_book_source.py fails on it."""
    docs = [d for d in cited_docs(text) if (root / d).is_file()]
    if not docs:
        return []
    refs = ", ".join(f"{{doc}}`{d} </{d.removesuffix('.md')}>`" for d in docs)
    return ["", f"Cites {refs}."]


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"


def render_page(root: pathlib.Path, url: str, paths: Sequence[str], archive_size: int) -> str:
    """The text of the Source files page."""
    archive = f"{{download}}`{ARCHIVE_NAME} <{ARCHIVE_REL}>`"
    lines = [
        "# Source files",
        "",
        "% Generated by tools/book_source.py when the book is built (`make book`); not in",
        "% git. Edit that script, or the scenario files it shows, not this page.",
        "",
        "The chapters, the contracts and the scenario headers name files of the project's",
        "repository: `scenarios/history/b02-cve-2020-29374.scn`, `anonlib/model.py`,",
        "`tools/gen_cow_scenarios.py`, `benchmarks/results/explore.md`. This page says",
        "where those files are. Paths such as `mm/memory.c` or",
        "`tools/testing/selftests/mm/cow.c` are the kernel's (Linux 6.12), not the",
        "project's.",
        "",
        "(source-repository)=",
        "## Where the repository lives",
        "",
    ]
    if url:
        lines += [
            f"The project's repository is <{url}>. Every repository path in this book is",
            "relative to its top folder.",
            "",
            f"The book also ships the files it was built from: {archive}",
            f"({len(paths)} files, {_size(archive_size)}). Inside it every path is below the",
            f"top folder `{PREFIX}/`; the repository may have moved on since.",
        ]
    else:
        lines += [
            "This edition of the book names no public repository, so it ships its source:",
            f"{archive} ({len(paths)} files, {_size(archive_size)}), the tracked files of",
            "the tree the book was built from. Every repository path in this book is a path",
            f"inside that archive, below its top folder `{PREFIX}/`.",
        ]
    lines += [
        "",
        "Whoever publishes the book says where the repository lives with one setting,",
        "`repository: url:` in `book/_config.yml`"
        + (": empty in this edition." if not url else
           "; when it is empty, the book names no repository and the archive is the source."),
        "",
        "To run a scenario from the archive (Python 3.11 or later, with the packages",
        "`pyproject.toml` lists):",
        "",
        "```sh",
        f"tar xzf {ARCHIVE_NAME}",
        f"cd {PREFIX}",
        "python -m anonlib run scenarios/history/b02-cve-2020-29374.scn",
        "```",
        "",
        "## What the archive holds",
        "",
        "| Folder or file | Files |",
        "| --- | ---: |",
    ]
    counts: dict[str, int] = {}
    for p in paths:
        key = p.split("/", 1)[0] + ("/" if "/" in p else "")
        counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        lines.append(f"| `{key}` | {counts[key]} |")

    lines += [
        "",
        "(scn-library)=",
        "## The scenario library",
        "",
        "Every scenario file of `scenarios/`, grouped by folder, with its text. The",
        "first comment of each says what it shows, where it comes from and, on its",
        "`expect:` line, its exit status under each scheme.",
    ]
    readme = "scenarios/README.md"
    if readme in paths:
        text = (root / readme).read_text(encoding="utf-8")
        lines += ["", f"({scn_label(readme)})=", f"### `{readme}`", "",
                  *_block(text, "text"), *_cited_docs(root, text)]
    folders: dict[str, list[str]] = {}
    for p in paths:
        if p.startswith("scenarios/") and p.endswith(".scn"):
            folders.setdefault(p.rsplit("/", 1)[0], []).append(p)
    for folder in sorted(folders):
        files = folders[folder]
        lines += ["", f"({scn_label(folder + '/')})=", f"### `{folder}/`", "",
                  f"{len(files)} scenario{'' if len(files) == 1 else 's'}."]
        for p in files:
            text = (root / p).read_text(encoding="utf-8")
            lines += ["", f"({scn_label(p)})=", f"#### `{p.rsplit('/', 1)[1]}`", "",
                      *_block(text, "text"), *_cited_docs(root, text)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path, default=ROOT,
                        help="the project's top folder (default: this script's)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    book = root / "book"
    try:
        url = repository_url(book / "_config.yml")
        paths = source_files(root)
        if not paths:
            raise SourceError(f"{root}: no project files found")
        data = build_archive(root, paths)
        page = render_page(root, url, paths, len(data))
    except (SourceError, OSError, UnicodeDecodeError) as exc:
        print(f"book_source: {exc}", file=sys.stderr)
        return 1
    target = book / ARCHIVE_REL
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    (book / PAGE_REL).write_text(page, encoding="utf-8")
    print(f"wrote book/{ARCHIVE_REL} ({len(paths)} files, {len(data)} bytes) "
          f"and book/{PAGE_REL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
