"""The agreement table: text for the terminal, markdown for the book, JSON to keep a run."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .compare import AGREED, DISAGREED, KNOWN, NOT_CHECKED, Check, FileResult, StatementResult
from .known import KnownDifference


@dataclass
class Report:
    """A kernel-check run: every file's verdicts, the kernel, and the known differences used."""

    files: list[FileResult]
    kernel: str = ""
    seconds: float = 0.0
    known: list[KnownDifference] = field(default_factory=list)
    known_used: set[int] = field(default_factory=set)
    #: the model's scheme the kernel was compared with
    scheme: str = "mainline"

    @property
    def failed(self) -> bool:
        return any(f.disagreed or f.error for f in self.files)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def totals(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            AGREED: sum(f.agreed for f in self.files),
            DISAGREED: sum(f.disagreed for f in self.files),
            KNOWN: sum(f.known for f in self.files),
            NOT_CHECKED: sum(f.not_checked for f in self.files),
        }


HEAD = ("agreed", "disagreed", "known", "not checked")


def _counts(f: FileResult) -> tuple[int, int, int, int]:
    return f.agreed, f.disagreed, f.known, f.not_checked


def _explain(st: StatementResult) -> str:
    bad = [c for c in st.checks if c.agreed is False]
    if bad:
        return "; ".join(_check_text(c) for c in bad)
    if st.verdict == KNOWN:
        return "known: " + "; ".join(st.known)
    return st.reason


def _check_text(c: Check) -> str:
    if c.name.startswith("same-page (all"):
        return f"same-page: {c.kernel}"
    text = f"{c.name}: model {c.model or '-'}, kernel {c.kernel or '-'}"
    return text + (f" ({c.note})" if c.note else "")


def statement_table(f: FileResult) -> str:
    """One file, statement by statement."""
    width = min(44, max((len(s.text) for s in f.statements), default=10))
    lines = [f"{f.name}: statement by statement"]
    for s in f.statements:
        verdict = s.verdict.upper() if s.verdict == DISAGREED else s.verdict
        lines.append(f"  {s.line:>4}  {s.text:<{width}}  {verdict:<16}  {_explain(s)}".rstrip())
    return "\n".join(lines)


def text_table(report: Report, *, verbose: bool = False) -> str:
    """The agreement table, then statement by statement for every failing file."""
    width = max([len(f.name) for f in report.files] + [4])
    kernel = report.kernel or "?"
    out = [f"kernel-check: the model (scheme {report.scheme}) against Linux {kernel} "
           f"(one QEMU boot, {report.seconds:.1f} s)", ""]
    out.append(f"{'file':<{width}}  " + "  ".join(f"{h:>11}" for h in HEAD) + "  status")
    for f in report.files:
        nums = "  ".join(f"{n:>11}" for n in _counts(f))
        out.append(f"{f.name:<{width}}  {nums}  {f.status}" + (f": {f.error}" if f.error else ""))
    t = report.totals()
    out.append(f"{'total (' + str(t['files']) + ' files)':<{width}}  " + "  ".join(
        f"{t[k]:>11}" for k in (AGREED, DISAGREED, KNOWN, NOT_CHECKED)))
    for f in report.files:
        if verbose or f.disagreed:
            out += ["", statement_table(f)]
    unused = [k for i, k in enumerate(report.known) if i not in report.known_used
              and any(k.covers(f.name) for f in report.files)]
    if unused and report.files:
        out += ["", "known differences that matched nothing in this run:"]
        out += [f"  {k.label()}" for k in unused]
    out.append("")
    if report.failed:
        bad = sum(1 for f in report.files if f.disagreed or f.error)
        out.append(f"result: {bad} file(s) disagree with the kernel beyond the known "
                   "differences (exit 1)")
    else:
        out.append("result: the model agrees with the kernel on everything checked "
                   "(known differences aside)")
    return "\n".join(out)


def _statement_json(s: StatementResult) -> dict[str, Any]:
    """A statement, keeping only what is not implied: agreed checks are left out."""
    d: dict[str, Any] = {"line": s.line, "text": s.text, "verdict": s.verdict}
    if s.reason:
        d["reason"] = s.reason
    if s.known:
        d["known"] = s.known
    bad = [asdict(c) for c in s.checks if c.agreed is False]
    if bad:
        d["checks"] = bad
    return d


def to_json(report: Report) -> dict[str, Any]:
    return {
        "kernel": report.kernel,
        "scheme": report.scheme,
        "seconds": round(report.seconds, 1),
        "totals": report.totals(),
        "files": [
            {
                "name": f.name,
                "error": f.error,
                "status": f.status,
                "counts": dict(zip(HEAD, _counts(f), strict=True)),
                "statements": [_statement_json(s) for s in f.statements],
            }
            for f in report.files
        ],
        "known_differences": [asdict(k) for k in report.known],
    }


def from_json(data: dict[str, Any]) -> Report:
    files = []
    for fd in data["files"]:
        f = FileResult(fd["name"], error=fd.get("error", ""))
        for sd in fd["statements"]:
            f.statements.append(StatementResult(
                sd["line"], sd["text"], sd["verdict"],
                [Check(**c) for c in sd.get("checks", [])], sd.get("reason", ""),
                list(sd.get("known", []))))
        files.append(f)
    known = [KnownDifference(**k) for k in data.get("known_differences", [])]
    return Report(files, data.get("kernel", ""), data.get("seconds", 0.0), known,
                  set(range(len(known))), scheme=data.get("scheme", "mainline"))


def dumps(report: Report) -> str:
    """JSON text, one file per line (small diffs when a run is recorded again)."""
    data = to_json(report)
    files = data.pop("files")
    head = json.dumps(data, separators=(",", ":"))[:-1]
    body = ",\n".join(json.dumps(f, separators=(",", ":")) for f in files)
    return f'{head},\n"files":[\n{body}\n]}}\n'


def not_checked_reasons(report: Report) -> list[tuple[str, int]]:
    """Why statements were not checked: each cause with its count, the largest first.

    A statement after the one that ended the kernel's part of a scenario
    counts under that statement's cause (its "after line N:" or "the VM
    stopped the scenario at line N (...)" wrapper is taken off), so every
    not-checked statement is counted once, under the reason it has.
    """
    causes: Counter[str] = Counter()
    for f in report.files:
        for s in f.statements:
            if s.verdict != NOT_CHECKED:
                continue
            r = re.sub(r"^after line \d+: ", "", s.reason)
            r = re.sub(r"^the VM stopped the scenario at line \d+ \((.*)\)$", r"\1", r)
            r = re.sub(r"^line \d+ is not expressible: |^not expressible( here)?: ",
                       "not expressible: ", r)
            causes[r or "no reason recorded"] += 1
    return sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))


def _md(s: str) -> str:
    return s.replace("|", "\\|")


INTRO = (
    "Every scenario in `scenarios/`, and the probes in `tools/kernelcheck/probes/` that "
    "exercise what the library does not (migration, KSM, memory failure, folio splits, "
    "mTHP), was run on the model and on a real kernel, Debian's, booted once under QEMU "
    "for all of them. Each statement is *agreed* when every outcome and every state "
    "word the real kernel shows (present, swap, PMD-mapped, PG_anon_exclusive, same "
    "page, the folio a page belongs to, values read, signals, GUP results, skipped "
    "kernel actions) matches the "
    "model; *not checked* when user space cannot express it or observe anything about "
    "it (the causes and their counts are listed with each kernel's table); a *known "
    "difference* when it disagrees for a reason listed with the kernel's known differences."
)


def _totals_line(report: Report) -> str:
    t = report.totals()
    return (f"**{t['files']} files: {t[AGREED]} statements agreed, {t[DISAGREED]} disagreed, "
            f"{t[KNOWN]} known differences, {t[NOT_CHECKED]} not checked.**")


def _kernel_section(report: Report, level: str) -> list[str]:
    """The per-file table, the statements that differ and the known differences of one run;
    ``level`` is the markdown heading prefix of its subsections."""
    out = ["| file | agreed | disagreed | known | not checked | status |",
           "|---|---:|---:|---:|---:|---|"]
    for f in report.files:
        a, d, k, n = _counts(f)
        out.append(f"| `{_md(f.name)}` | {a} | {d} | {k} | {n} | {_md(f.status)} |")
    reasons = not_checked_reasons(report)
    if reasons:
        out += ["", f"{level} Why statements were not checked", "",
                "Each statement that was not checked, counted under its cause (a statement "
                "after the one that ended the kernel's part of its scenario counts under "
                "that statement's cause).", "",
                "| statements | cause |", "|---:|---|"]
        out += [f"| {n} | {_md(r)} |" for r, n in reasons]
    failing = [f for f in report.files if f.disagreed or f.known]
    if failing:
        out += ["", f"{level} Statements that differ", ""]
        for f in failing:
            out += [f"{level}# `{_md(f.name)}`", "", "| line | statement | verdict | detail |",
                    "|---:|---|---|---|"]
            for s in f.statements:
                if s.verdict in (DISAGREED, KNOWN):
                    out.append(f"| {s.line} | `{_md(s.text)}` | {s.verdict} | "
                               f"{_md(_explain(s))} |")
            out.append("")
    if report.known:
        out += ["", f"{level} Known differences", "",
                "| where | why the model differs | does it matter |", "|---|---|---|"]
        for kd in report.known:
            out.append(f"| `{_md(kd.label())}` | {_md(kd.why)} | {_md(kd.matters)} |")
    return out


def markdown(report: Report, *, rerun: str = "") -> str:
    """One run as a page: totals, the per-file table, failing files in detail, known
    differences."""
    out = [
        "# Appendix: the model checked against Linux",
        "",
        f"{INTRO} This run: the model under scheme `{report.scheme}`, the kernel Linux "
        f"{report.kernel or '6.12'}.",
        "",
        _totals_line(report),
        "",
    ]
    if rerun:
        out += [rerun, ""]
    out += _kernel_section(report, "##")
    return "\n".join(out).rstrip() + "\n"


def markdown_kernels(reports: list[Report], *, intro: str = "", rerun: str = "") -> str:
    """Several runs, one per kernel, as one page: a table of the totals per kernel, then each
    kernel's section (its per-file table, statements that differ, known differences)."""
    out = ["# Appendix: the model checked against Linux", "", INTRO, ""]
    if intro:
        out += [intro, ""]
    out += ["| kernel | scheme | files | agreed | disagreed | known | not checked |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for r in reports:
        t = r.totals()
        out.append(f"| Linux {_md(r.kernel)} | `{r.scheme}` | {t['files']} | {t[AGREED]} | "
                   f"{t[DISAGREED]} | {t[KNOWN]} | {t[NOT_CHECKED]} |")
    out.append("")
    if rerun:
        out += [rerun, ""]
    for r in reports:
        out += [f"## Linux {_md(r.kernel)} (scheme `{r.scheme}`)", "", _totals_line(r), ""]
        out += _kernel_section(r, "###")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
