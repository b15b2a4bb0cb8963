"""Known differences between the model and the real kernel (``known-differences.toml``).

Each entry names where a disagreement is expected and why::

    [[difference]]
    scenario = "cow/*-swapped-*.scn"   # glob (* and ?) on the file's path (relative to scenarios/)
    statement = "kernel swapout *"     # optional: glob on the statement text
    line = 12                          # optional: the statement's line
    check = "outcome"                  # optional: glob on the check's name
    why = "what the model simplifies"
    matters = "no: ..."                # whether the simplification matters, and for what

A disagreement matched by an entry is reported as a *known difference* and
does not fail the check; every other disagreement does.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .compare import DISAGREED, KNOWN, FileResult
from .vm import Series

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "tools" / "kernelcheck" / \
    "known-differences.toml"


def known_file_for(series: Series) -> Path:
    """The known differences of a kernel series: ``known-differences.toml`` for 6.12, the
    default, ``known-differences-6.1.toml`` for 6.1."""
    return DEFAULT_FILE.with_name(f"known-differences{series.suffix}.toml")


def glob_match(text: str, pattern: str) -> bool:
    """``*`` matches any run of characters, ``?`` one; everything else (``[``, ``]``) is literal."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.DOTALL) is not None


class KnownDifferencesError(ValueError):
    """The known-differences file is not valid."""


@dataclass(frozen=True)
class KnownDifference:
    scenario: str
    why: str
    matters: str
    statement: str | None = None
    line: int | None = None
    check: str | None = None

    def covers(self, path: str) -> bool:
        """Whether the entry is about the file ``path``."""
        name = path.replace("\\", "/")
        return (glob_match(name, self.scenario)
                or glob_match(name.rsplit("/", 1)[-1], self.scenario)
                or glob_match(name, "*/" + self.scenario))

    def matches(self, path: str, line: int, text: str, check: str) -> bool:
        if not self.covers(path):
            return False
        if self.line is not None and self.line != line:
            return False
        if self.statement is not None and not glob_match(text, self.statement):
            return False
        return self.check is None or glob_match(check, self.check)

    def label(self) -> str:
        where = self.scenario
        if self.line is not None:
            where += f":{self.line}"
        if self.statement:
            where += f" `{self.statement}`"
        if self.check:
            where += f" (check {self.check})"
        return where


def _names(keys: set[str]) -> str:
    """Keys for a message: each quoted and cut short, in order, at most ten."""
    from ..scenario.parser import listing

    return listing([f"'{k}'" for k in sorted(keys)][:10])


def parse_known(text: str, source: str = "known-differences.toml") -> list[KnownDifference]:
    """Parse the TOML text; raises :class:`KnownDifferencesError` naming the bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise KnownDifferencesError(f"{source}: {err}") from None
    unknown = set(data) - {"difference"}
    if unknown:
        raise KnownDifferencesError(f"{source}: unknown top-level key(s) {_names(unknown)}; "
                                    "entries are [[difference]] tables")
    entries = data.get("difference", [])
    if not isinstance(entries, list):
        raise KnownDifferencesError(f"{source}: 'difference' must be an array of tables "
                                    "([[difference]] entries)")
    out = []
    allowed = {"scenario", "statement", "line", "check", "why", "matters"}
    for i, e in enumerate(entries, 1):
        where = f"{source}: difference #{i}"
        if not isinstance(e, dict):
            raise KnownDifferencesError(f"{where}: must be a table ([[difference]]), "
                                        f"not a {type(e).__name__}")
        extra = set(e) - allowed
        if extra:
            raise KnownDifferencesError(f"{where}: unknown key(s) {_names(extra)}; keys: "
                                        f"{_names(allowed)}")
        for key in ("scenario", "why", "matters"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise KnownDifferencesError(f"{where}: '{key}' (a non-empty string) is required")
        if "line" in e and (not isinstance(e["line"], int) or isinstance(e["line"], bool)
                            or e["line"] < 1):
            raise KnownDifferencesError(f"{where}: 'line' must be a positive integer")
        for key in ("statement", "check"):
            if key in e and not isinstance(e[key], str):
                raise KnownDifferencesError(f"{where}: '{key}' must be a string")
        out.append(KnownDifference(e["scenario"], e["why"].strip(), e["matters"].strip(),
                                   e.get("statement"), e.get("line"), e.get("check")))
    return out


def load_known(path: Path | None = None) -> list[KnownDifference]:
    """The entries of ``path`` (default: :data:`DEFAULT_FILE`, which may be absent).

    A file that was named but is missing, a directory, too large, not UTF-8
    or not valid raises :class:`KnownDifferencesError`.
    """
    from ..scenario.source import SourceError, read_source

    if path is None:
        if not DEFAULT_FILE.exists():
            return []
        path = DEFAULT_FILE
    try:
        text = read_source(path).text
    except SourceError as e:
        raise KnownDifferencesError(str(e)) from None
    return parse_known(text, str(path))


def apply_known(result: FileResult, path: str, known: list[KnownDifference]) -> set[int]:
    """Mark disagreements explained by ``known`` as known differences; returns entries used."""
    used: set[int] = set()
    for st in result.statements:
        if st.verdict != DISAGREED:
            continue
        explained = []
        for c in st.disagreements:
            hit = next((i for i, k in enumerate(known)
                        if k.matches(path, st.line, st.text, c.name)), None)
            if hit is None:
                break
            used.add(hit)
            explained.append(known[hit])
        else:
            st.verdict = KNOWN
            st.known = sorted({k.why for k in explained})
    return used
