"""The kernel's own ``cow.c`` (and ``gup_longterm.c``) as the oracle for the scenario library.

``python -m anonlib selftests-check`` builds the real selftests of Linux 6.12
(``tools/testing/selftests/mm/cow.c`` and ``gup_longterm.c`` from Debian's
``linux-source-6.12``), and this project's ``swap_exclusive.c`` (the case cow.c lacks,
for the swap PTE's exclusive bit; ``tools/kernelcheck/``), as static binaries, runs them in
the kernel check's VM
(:mod:`anonlib.kernelcheck.vm`), and compares every TAP result with the
verdict the model gives the library scenario that mirrors the case
(``scenarios/cow/``, whose first header line names the ``cow.c`` case and
variant). See ``docs/real-kernel.md``, "The kernel's own selftests".

The build is cached under ``.cache/kernel/selftests/`` (``$ANONLIB_KERNEL_CACHE``)
and keyed by the sources, so later runs build nothing:

- the 6.12 source's ``make headers_install`` (Debian 12's ``linux-libc-dev`` is
  6.1, too old for the selftests), ``cow`` and ``gup_longterm`` with
  ``gcc -static`` and Debian's static ``liburing`` (``liburing-dev``: the
  io_uring cases);
- ``gup_test.ko``: Debian's kernel lacks ``CONFIG_GUP_TEST``, so
  ``mm/gup_test.c`` is built unchanged as an out-of-tree module (plus
  ``MODULE_LICENSE``) against ``linux-headers-<release>``
  (:func:`build_gup_test`, which the kernel check uses too); without it the
  R/O-pin cases skip;
- ``/init``: ``tools/kernelcheck/selftests-init.c``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from . import vm

REPO = vm.REPO
INIT_SOURCE = REPO / "tools" / "kernelcheck" / "selftests-init.c"
SOURCE_PACKAGE = "linux-source-6.12"
SOURCE_DIR = Path("/usr/src/linux-source-6.12")
SOURCE_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
#: The selftests built and run, in this order: the kernel's, then this project's own.
TESTS = ("cow", "gup_longterm", "swap_exclusive")
#: The selftest cow.c lacks, for the swap PTE's exclusive bit (built as the kernel's are).
OWN_TESTS = {"swap_exclusive": REPO / "tools" / "kernelcheck" / "swap_exclusive.c"}
#: Files of the source tree the build needs (relative to the source root).
SELFTEST_FILES = (
    "tools/testing/selftests/kselftest.h",
    "tools/testing/selftests/mm/cow.c",
    "tools/testing/selftests/mm/gup_longterm.c",
    "tools/testing/selftests/mm/vm_util.c",
    "tools/testing/selftests/mm/vm_util.h",
    "tools/testing/selftests/mm/thp_settings.c",
    "tools/testing/selftests/mm/thp_settings.h",
    "mm/gup_test.h",
    "mm/gup_test.c",
)
#: The VM's memory. The init program reserves the 2 MiB hugetlb pages; two 1 GiB pages
#: are reserved at boot, which needs two free 1 GiB-aligned gigabytes: with 5 GiB the
#: guest has RAM at [0, 3G) and [4G, 6G), and no fake NUMA nodes to cut them.
MEMORY_MB = 1536
MEMORY_MB_1G = 5120
CMDLINE = vm.CMDLINE.replace(" numa=fake=2", "")
CMDLINE_1G = CMDLINE + " hugepagesz=1G hugepages=2"
DEFAULT_TIMEOUT = 1800.0


def selftests_cache() -> Path:
    return vm.cache_dir() / "selftests"


def _apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True, env=env)
    vm._run(["apt-get", "install", "-y", "-q", *packages], env=env)


def source_root(install: bool) -> Path:
    """The unpacked 6.12 source (Debian's linux-source-6.12), unpacking the tarball if needed."""
    if (SOURCE_DIR / "tools" / "testing" / "selftests" / "mm" / "cow.c").is_file():
        return SOURCE_DIR
    unpacked = selftests_cache() / "linux-source-6.12"
    if (unpacked / "Makefile").is_file():
        return unpacked
    if not SOURCE_TARBALL.is_file():
        if not install:
            raise vm.Unavailable(f"no {SOURCE_DIR}: apt-get install {SOURCE_PACKAGE}")
        _apt_install([SOURCE_PACKAGE])
    if (SOURCE_DIR / "Makefile").is_file():
        return SOURCE_DIR
    unpacked.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(SOURCE_TARBALL) as tar:
        tar.extractall(unpacked.parent, filter="data")
    return unpacked


@dataclass(frozen=True)
class Build:
    """The cached build: the test binaries, /init and gup_test.ko."""

    directory: Path
    tests: tuple[Path, ...]
    init: Path
    gup_test: Path | None


def _digest(src: Path, release: str) -> str:
    h = hashlib.sha256(release.encode())
    for rel in SELFTEST_FILES:
        h.update(rel.encode() + b"\0" + (src / rel).read_bytes())
    h.update(INIT_SOURCE.read_bytes())
    for path in OWN_TESTS.values():
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _check(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    r = subprocess.run(cmd, text=True, capture_output=True, cwd=cwd)
    if r.returncode != 0:
        raise vm.VMError(f"{what} failed ({' '.join(cmd[:3])} ...):\n"
                         f"{(r.stdout + r.stderr)[-3000:]}")


def gup_test_name(k: int) -> str:
    """``gup_test`` for the first instance, ``gup_test1``, ``gup_test2``... for the others."""
    return "gup_test" if k == 0 else f"gup_test{k}"


def gup_test_source(code: str, k: int) -> str:
    """``mm/gup_test.c`` (``code``) as the source of instance ``k``, the code untouched.

    Every instance gets ``MODULE_LICENSE`` (a module needs one); instance
    ``k > 0`` also a macro, after ``<linux/debugfs.h>`` (whose include guard
    makes the file's own include a no-op), that renames its debugfs file to
    :func:`gup_test_name`.
    """
    head = "#include <linux/module.h>\n"
    if k:
        head += ("#include <linux/debugfs.h>\n"
                 "#define debugfs_create_file_unsafe(name, ...) "
                 f'debugfs_create_file_unsafe("{gup_test_name(k)}", __VA_ARGS__)\n')
    tail = 'MODULE_LICENSE("GPL");\nMODULE_DESCRIPTION("mm/gup_test.c built out of tree");\n'
    return head + code + tail


def build_gup_test(kernel: vm.Kernel, install: bool | None = None, log: object = None,
                   copies: int = 1) -> tuple[Path, ...]:
    """``mm/gup_test.c`` as ``copies`` out-of-tree modules; () without the kernel's headers.

    Debian's kernel lacks ``CONFIG_GUP_TEST``, so the 6.12 source's
    ``mm/gup_test.c`` is compiled unchanged against
    ``linux-headers-<release>``, with ``MODULE_LICENSE`` added (a module needs
    one). Its R/O long-term pin (``PIN_LONGTERM_TEST_START``) keeps one set of
    pinned pages per module, a static of ``gup_test.c``; a scenario that
    holds several R/O pins at once needs as many instances. Instance ``k > 0``
    is the same file built as module ``gup_test<k>``, its debugfs file
    renamed to ``gup_test<k>`` by a macro put in front of the source
    (:func:`gup_test_name`); the code is not touched. Cached in
    ``.cache/kernel/selftests/gup_test-<digest>/`` (keyed by the sources, the
    kernel release and ``copies``). Without ``linux-headers-<release>``, and
    not allowed to install it, nothing is built and () returned.
    """
    install = vm.may_install() if install is None else install
    say = log if callable(log) else (lambda s: None)
    src = source_root(install)
    h = hashlib.sha256(f"{kernel.release}\0{copies}".encode())
    for rel in ("mm/gup_test.c", "mm/gup_test.h"):
        h.update((src / rel).read_bytes())
    out = selftests_cache() / f"gup_test-{h.hexdigest()[:16]}"
    kos = tuple(out / f"{gup_test_name(k)}.ko" for k in range(copies))
    if all(k.is_file() for k in kos):
        return kos
    headers = Path(f"/lib/modules/{kernel.release}/build")
    if not (headers / "Makefile").is_file():
        if not install:
            return ()
        _apt_install([f"linux-headers-{kernel.release}"])
    say(f"building gup_test.ko ({copies} instance(s)) into {out} (once)")
    shutil.rmtree(out, ignore_errors=True)
    mod = out / "gupmod"
    mod.mkdir(parents=True)
    code = (src / "mm" / "gup_test.c").read_text()
    for k in range(copies):
        (mod / f"{gup_test_name(k)}.c").write_text(gup_test_source(code, k))
    shutil.copy(src / "mm" / "gup_test.h", mod / "gup_test.h")
    (mod / "Kbuild").write_text(
        "obj-m := " + " ".join(f"{gup_test_name(k)}.o" for k in range(copies)) + "\n")
    _check(["make", "-s", "-C", str(headers), f"M={mod}", "modules"], "building gup_test.ko")
    for ko in kos:
        shutil.copy(mod / ko.name, ko)
    return kos


def _first_gup_test(kernel: vm.Kernel, install: bool, say: object) -> Path | None:
    """The selftests' gup_test.ko: the first of the kernel check's instances (one build)."""
    from .plan import RO_PIN_SLOTS

    return next(iter(build_gup_test(kernel, install, say, copies=RO_PIN_SLOTS)), None)


def build(kernel: vm.Kernel, install: bool | None = None,
          log: object = None) -> Build:
    """Build (or find in the cache) everything the VM runs."""
    install = vm.may_install() if install is None else install
    say = log if callable(log) else (lambda s: None)
    src = source_root(install)
    out = selftests_cache() / _digest(src, kernel.release)
    tests = tuple(out / t for t in TESTS)
    init = out / "init"
    if all(p.is_file() for p in (*tests, init)) and (out / "DONE").is_file():
        return Build(out, tests, init, _first_gup_test(kernel, install, say))
    say(f"building the 6.12 selftests into {out} (once)")
    liburing = Path("/usr/lib/x86_64-linux-gnu/liburing.a")
    headers = Path(f"/lib/modules/{kernel.release}/build")
    need = []
    if not liburing.is_file():
        need.append("liburing-dev")
    if not (headers / "Makefile").is_file():
        need.append(f"linux-headers-{kernel.release}")
    if need:
        if not install:
            raise vm.Unavailable(f"missing {', '.join(need)}: apt-get install {' '.join(need)}")
        _apt_install(need)
    shutil.rmtree(out, ignore_errors=True)
    work = out / "src"
    for rel in SELFTEST_FILES:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, work / rel)
    mm = work / "tools" / "testing" / "selftests" / "mm"
    (mm / "local_config.h").write_text("#define LOCAL_CONFIG_HAVE_LIBURING 1\n")
    for name, path in OWN_TESTS.items():
        shutil.copy(path, mm / f"{name}.c")
    # The 6.12 uapi headers (make headers_install into the cache; the source stays clean).
    usr = selftests_cache() / f"headers-{kernel.release}"
    if not (usr / "include" / "linux" / "mman.h").is_file():
        _check(["make", "-s", "-C", str(src), f"O={selftests_cache() / 'kbuild'}",
                "headers_install", f"INSTALL_HDR_PATH={usr}"], "make headers_install")
    for t, binary in zip(TESTS, tests, strict=True):
        _check(["gcc", "-static", "-Wall", "-O2", "-U_FORTIFY_SOURCE", "-no-pie",
                "-isystem", str(usr / "include"), "-I", "..", f"{t}.c", "vm_util.c",
                "thp_settings.c", "-luring", "-lrt", "-lpthread", "-lm", "-o", str(binary)],
               f"building {t}", cwd=mm)
    _check(["gcc", "-static", "-O2", "-Wall", "-o", str(init), str(INIT_SOURCE)],
           "building selftests-init")
    (out / "DONE").write_text("")
    return Build(out, tests, init, _first_gup_test(kernel, install, say))


def make_initramfs(b: Build, kernel: vm.Kernel) -> bytes:
    """/init, the tests, the zram modules and gup_test.ko, /modules.txt, /tests.txt."""
    modules = [m for m in kernel.modules if m.name != "hwpoison_inject.ko"]
    if b.gup_test is not None:
        modules.append(b.gup_test)
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("init", 0o100755, b.init.read_bytes(), (0, 0)),
        ("tests.txt", 0o100644, "".join(f"{t.name}\n" for t in b.tests).encode(), (0, 0)),
        ("modules.txt", 0o100644, "".join(f"/{m.name}\n" for m in modules).encode(), (0, 0)),
    ]
    entries += [(t.name, 0o100755, t.read_bytes(), (0, 0)) for t in b.tests]
    entries += [(m.name, 0o100644, m.read_bytes(), (0, 0)) for m in modules]
    out = io.BytesIO()
    for ino, (name, mode, data, rdev) in enumerate(entries, start=1):
        out.write(vm._cpio_entry(name, mode, data, rdev, ino))
    out.write(vm._cpio_entry("TRAILER!!!", 0, b""))
    return gzip.compress(out.getvalue(), compresslevel=1)


def run_vm(install: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
           huge_1g: bool = True, log: object = None) -> vm.BootResult:
    """Build, boot, run the selftests; returns what the VM printed."""
    vm.ensure_tools(install)
    kernel = vm.ensure_kernel(install)
    b = build(kernel, install, log)
    return vm.boot(kernel, make_initramfs(b, kernel), timeout=timeout,
                   memory_mb=MEMORY_MB_1G if huge_1g else MEMORY_MB,
                   cmdline=CMDLINE_1G if huge_1g else CMDLINE)


# ------------------------------------------------------------------ TAP


@dataclass(frozen=True)
class TapResult:
    """One TAP result of one selftest, with the '[RUN]' line that announced it."""

    test: str
    number: int
    run: str
    verdict: str  # ok, not ok, skip, xfail
    message: str


_TAP = re.compile(r"^(not ok|ok) (\d+)\s*(?:# (SKIP|XFAIL|error)\b)?\s*(.*)$")


def parse_results(text: str) -> tuple[list[TapResult], dict[str, str]]:
    """The TAP results in the VM's output, and its '@' facts (kernel, swap, hugetlb, ...)."""
    results: list[TapResult] = []
    facts: dict[str, str] = {}
    test, run = "", ""
    for line in text.splitlines():
        line = line.rstrip()
        if line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            if key == "begin":
                test, run = value, ""
            elif key == "end":
                facts[f"exit {value.split()[0]}"] = value.partition(" ")[2]
            elif key in ("hugetlb", "log"):
                facts[f"{key} {value.split()[0]}"] = value.partition(" ")[2]
            else:
                facts[key] = value
            continue
        if line.startswith("# [RUN] "):
            run = line.removeprefix("# [RUN] ")
            continue
        m = _TAP.match(line)
        if m and test:
            verdict = m.group(1)
            if m.group(3) == "SKIP":
                verdict = "skip"
            elif m.group(3) == "XFAIL":
                verdict = "xfail"
            elif m.group(3) == "error":
                verdict = "not ok"
            results.append(TapResult(test, int(m.group(2)), run, verdict, m.group(4).strip()))
    return results, facts


# ------------------------------------------------------------------ the library's mirrors

COW_DIR = REPO / "scenarios" / "cow"
_HEADER = re.compile(r'^# (?:cow|swap_exclusive)\.c (\w+) "(.+?)"(?: \(\w+\))?, (with [^.]*)\.$')
_HEADER_N = re.compile(r'^# cow\.c (\w+) "(.+) \(\w+\), (with [^"]*)"\.$')
#: The PMD size and the one mTHP size the library generates (docs/cow-cases.md §2).
PMD_KB = 2048
#: The mTHP sizes the library has files for (tools/gen_cow_scenarios.py): 16 kB to 1 MB.
MTHP_KB = (16, 32, 64, 128, 256, 512, 1024)
#: The hugetlb sizes the 2 MiB files mirror: the model's hugetlb page has no size beside its
#: page count, and 6.12's hugetlb rules (hugetlb_wp, hugetlb_fault, copy_hugetlb_page_range,
#: GUP's follow_hugetlb_page path) are the same for a 2 MiB and a 1 GiB page.
HUGETLB_KB = (2048, 1048576)


def mirrors(directory: Path = COW_DIR) -> dict[tuple[str, str], Path]:
    """(cow.c title, variant text) -> the scenario file whose first header line names them."""
    index: dict[tuple[str, str], Path] = {}
    for path in sorted(directory.glob("*.scn")):
        first = path.read_text().split("\n", 1)[0]
        m = _HEADER_N.match(first) or _HEADER.match(first)
        if m:
            index[(m.group(2), m.group(3))] = path
    return index


_SIZE = re.compile(r"^(.*) \((\d+) kB\)$")
_NON_ANON = ("with memfd", "with tmpfile", "with local tmpfile", "with huge zeropage",
             "with memfd hugetlb")


def classify(test: str, run: str) -> tuple[tuple[str, str] | None, str]:
    """The library key a case maps to (or None), and its family.

    Families: "anonymous" (base pages, the PMD THP, every mTHP size from 16 kB
    to 1 MB, and hugetlb, whose 2 MiB files also mirror the 1 GiB runs),
    "mTHP N kB" and "hugetlb N kB" (a size the library has no files for), "not
    anonymous" (the huge zero page, memfd, tmpfile, hugetlb memfd), "shared zero
    page", "THP collapse", "gup_longterm" (file mappings), and "swap PTE exclusive
    bit" (this project's swap_exclusive.c).
    """
    if test == "swap_exclusive":
        title, _, variant = run.partition(" ... ")
        return (title, variant), "swap PTE exclusive bit"
    if test != "cow":
        return None, f"{test} (file mappings)"
    title, sep, variant = run.partition(" ... ")
    if not sep:
        return (title, "with THP"), "THP collapse"
    if variant == "with shared zeropage":
        return (title, variant), "shared zero page"
    if variant.startswith(_NON_ANON):
        return None, "not anonymous"
    m = _SIZE.match(variant)
    if not m:
        return (title, variant), "anonymous"
    base, kb = m.group(1), int(m.group(2))
    if base == "with hugetlb":
        return ((title, base), "anonymous") if kb in HUGETLB_KB else (None, f"hugetlb {kb} kB")
    if kb == PMD_KB:
        return (title, base), "anonymous"
    if kb in MTHP_KB:
        return (title, variant), "anonymous"
    return None, f"mTHP {kb} kB"


@dataclass(frozen=True)
class Row:
    """One selftest case against its mirror: real and model verdicts, and the outcome."""

    test: str
    number: int
    case: str
    real: str
    scenario: str
    model: str
    outcome: str  # agree, disagree, not modelled, no mirror, skipped
    family: str


#: Verdicts already computed in this process, by file and text: the model is deterministic,
#: and the comparison and the tests that hold the record to the library ask for the same
#: 751 mirrors (minutes of model runs) more than once.
_VERDICTS: dict[tuple[str, str], str] = {}


def model_verdict(path: Path) -> str:
    """The model's verdict on a scenario under mainline: 'pass' or 'fail: <why>'."""
    from ..scenario.runner import run_scenario
    from ..scenario.source import read_source

    source = read_source(path)
    key = (str(path), source.scenario_text)
    if key in _VERDICTS:
        return _VERDICTS[key]
    r = run_scenario(source.scenario_text, "mainline", name=str(path))
    if r.exit_code == 0:
        verdict = "pass"
    else:
        why = r.failures[0].summary() if r.failures else f"exit {r.exit_code}"
        verdict = "fail: " + re.sub(r"^line \d+: ", "", why)  # no line numbers: they move
    _VERDICTS[key] = verdict
    return verdict


def compare(results: list[TapResult], directory: Path = COW_DIR) -> list[Row]:
    """Every TAP result against the model's verdict on its mirror."""
    index = mirrors(directory)
    cache: dict[Path, str] = {}
    rows: list[Row] = []
    for t in results:
        key, family = classify(t.test, t.run)
        path = index.get(key) if key else None
        scenario = str(path.relative_to(REPO)) if path and path.is_relative_to(REPO) else (
            str(path) if path else "")
        model = ""
        if path is not None:
            model = cache.get(path) or cache.setdefault(path, model_verdict(path))
        if key is None:
            outcome = "not modelled"
        elif path is None:
            outcome = "no mirror"
        elif t.verdict == "skip":
            outcome = "skipped"
        else:
            real_pass = t.verdict == "ok"
            outcome = "agree" if real_pass == (model == "pass") else "disagree"
        rows.append(Row(t.test, t.number, t.run, t.verdict, scenario, model, outcome, family))
    return rows


# ------------------------------------------------------------------ the record and its tables

OUTCOMES = ("agree", "disagree", "no mirror", "skipped", "not modelled")
LAST_RUN = REPO / "tools" / "kernelcheck" / "selftests-last-run.json"
#: The VM's raw output of that run (TAP), so the record can be recomputed without a VM.
LAST_RESULTS = REPO / "tools" / "kernelcheck" / "selftests-last-results.txt"
APPENDIX = REPO / "book" / "appendix-selftests.md"


def eras(rows: list[Row]) -> dict[str, dict[str, object]]:
    """The same real results scored against every other scheme a mirror's header names.

    For each scheme: how many mirrored cases (real ok, xfail or not ok) it was run on,
    and the cases where its verdict is not the real kernel's. A scheme that stands for
    an older kernel should disagree somewhere; one that never does is a difference
    ``cow.c`` cannot see.
    """
    from ..scenario.library import read_expectations
    from ..scenario.runner import run_scenario
    from ..scenario.source import read_source

    out: dict[str, dict[str, object]] = {}
    for r in rows:
        if not r.scenario or r.real == "skip":
            continue
        source = read_source(REPO / r.scenario)
        expected = read_expectations(source.text)
        if isinstance(expected, str):
            continue
        for scheme in expected:
            if scheme == "mainline":
                continue
            entry = out.setdefault(scheme, {"compared": 0, "disagree": []})
            entry["compared"] = int(str(entry["compared"])) + 1
            got = run_scenario(source.scenario_text, scheme, name=r.scenario).exit_code
            if (got == 0) != (r.real == "ok"):
                cases = entry["disagree"]
                assert isinstance(cases, list)
                cases.append(f"{r.test} {r.number}")
    return dict(sorted(out.items()))


def record(results: list[TapResult], facts: dict[str, str], rows: list[Row]) -> dict[str, object]:
    """The JSON record of one run (committed as tools/kernelcheck/selftests-last-run.json)."""
    return {
        "kernel": facts.get("kernel", ""),
        "setup": {k: v for k, v in sorted(facts.items())
                  if k.startswith(("hugetlb", "swap", "gup_test", "exit"))},
        "eras": eras(rows),
        "rows": [r.__dict__ for r in rows],
    }


def rows_of(rec: dict[str, object]) -> list[Row]:
    raw = rec.get("rows", [])
    assert isinstance(raw, list)
    return [Row(**r) for r in raw]


REAL = ("ok", "xfail", "skip", "not ok")
COLUMNS = (*REAL, *OUTCOMES)


def summary(rows: list[Row]) -> list[tuple[str, str, dict[str, int]]]:
    """Per (selftest, family): the count of each real verdict and outcome, in the order
    cases first appear."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        counts = out.setdefault((r.test, r.family), dict.fromkeys(COLUMNS, 0))
        counts[r.outcome] += 1
        counts[r.real] += 1
    return [(t, f, c) for (t, f), c in out.items()]


def _real_counts(rows: list[Row], test: str) -> str:
    c = {v: sum(1 for r in rows if r.test == test and r.real == v)
         for v in ("ok", "not ok", "xfail", "skip")}
    n = sum(c.values())
    return f"{test}: {n} cases, {c['ok']} pass, {c['xfail']} xfail, {c['skip']} skip, " \
           f"{c['not ok']} fail"


def text_table(rows: list[Row], verbose: bool = False) -> str:
    lines = [_real_counts(rows, t) for t in dict.fromkeys(r.test for r in rows)]
    lines.append("")
    head = ("selftest", "family", *COLUMNS)
    table = [head] + [(t, f, *(str(c[o]) for o in COLUMNS)) for t, f, c in summary(rows)]
    total = tuple(str(sum(1 for r in rows if o in (r.outcome, r.real))) for o in COLUMNS)
    table.append(("total", "", *total))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in table]
    shown = [r for r in rows if verbose or r.outcome in ("disagree", "no mirror")]
    if shown:
        lines.append("")
        for r in shown:
            lines.append(f"{r.test} {r.number:4d} {r.real:7s} {r.outcome:12s} {r.case}"
                         + (f"  -> {r.scenario} ({r.model})" if r.scenario else ""))
    return "\n".join(lines)


RERUN = """\
The tables below come from the last recorded run
(`tools/kernelcheck/selftests-last-run.json`); building the book boots nothing. To run
the kernel's own selftests again, `make selftests-check` (as root on Debian 12 it
installs `linux-source-6.12`, `linux-headers-6.12.*-amd64` and `liburing-dev` the first
time, and caches the build in `.cache/kernel/selftests/`); to refresh this page:

```
python -m anonlib selftests-check --json tools/kernelcheck/selftests-last-run.json \\
    --save-results tools/kernelcheck/selftests-last-results.txt
python -m anonlib.kernelcheck.selftests
```

When only the library changed, the record is recomputed from the committed TAP without
a VM: `python -m anonlib selftests-check --from-results
tools/kernelcheck/selftests-last-results.txt --json tools/kernelcheck/selftests-last-run.json`.

`cow` and `gup_longterm` are built from the 6.12 source (`tools/testing/selftests/mm/`),
with this project's `swap_exclusive` (`tools/kernelcheck/swap_exclusive.c`, the case
`cow.c` lacks: a pipe holds an exclusive page while it is swapped out, so only the swap
PTE's exclusive bit can bring it back exclusive), as static binaries and run in the kernel
check's VM: THP `always` (`cow.c` enables each
mTHP size itself), 2 MiB and 1 GiB hugetlb pages reserved, swap on zram, `gup_test.ko`
(`mm/gup_test.c` built as an out-of-tree module, since Debian's kernel lacks
`CONFIG_GUP_TEST`). Each case is matched to the scenario of `scenarios/cow/` whose first
header line names its `cow.c` (or `swap_exclusive.c`) title and variant, and the model's
verdict is that
scenario's, run under `mainline`. A real pass agrees with a model pass; a real failure
or expected failure (XFAIL) agrees with a model failure. The one case the kernel skips,
C2, is the one `cow.c` itself skips: after the fork every PTE is read-only and
`MADV_COLLAPSE` fails with EINVAL, as the scenario's header says; its mirror passes."""

FAMILY_NOTES = {
    "anonymous": "base pages, the PMD THP (2048 kB), every mTHP size from 16 kB to 1024 kB "
                 "(a file per size), hugetlb (the 2 MiB files also mirror the 1 GiB runs: "
                 "the model's hugetlb page has no size beside its page count, and 6.12's "
                 "hugetlb rules do not depend on it)",
    "swap PTE exclusive bit": "`swap_exclusive.c` (X1, X2): the case `cow.c` lacks, which "
                              "tells 6.12 from `no-swp-exclusive`",
    "THP collapse": "`anon_thp_test_cases[]` (C1-C4)",
    "shared zero page": "the non-anonymous cases on the shared zero page (N1-N3)",
    "not anonymous": "the huge zero page, memfd, tmpfile, hugetlb memfd: the model has no "
                     "file-backed memory and no huge zero page",
    "gup_longterm (file mappings)": "`gup_longterm.c`: long-term pins of file mappings, "
                                    "outside the model",
}


def _family_note(family: str) -> str:
    if family.startswith("mTHP "):
        return "an mTHP size the library has no files for"
    if family.startswith("hugetlb "):
        return "a hugetlb size the library's files do not mirror"
    return FAMILY_NOTES.get(family, "")


def markdown(rec: dict[str, object], rerun: str = RERUN) -> str:
    rows = rows_of(rec)
    out = ["# Appendix: the kernel's own selftests against the model", "",
           f"Kernel: `{rec.get('kernel', '')}`. "
           + "; ".join(_real_counts(rows, t) for t in dict.fromkeys(r.test for r in rows))
           + ".", "", rerun, "", "## Summary", "",
           "The first four counts are the kernel's verdicts (ok, expected failure, skip, "
           "failure), the last five the comparison with the model.", "",
           "| selftest | family | " + " | ".join(COLUMNS) + " | what |",
           "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for t, f, c in summary(rows):
        out.append(f"| {t} | {f} | " + " | ".join(str(c[o]) for o in COLUMNS)
                   + f" | {_family_note(f)} |")
    total = [sum(1 for r in rows if o in (r.outcome, r.real)) for o in COLUMNS]
    out.append("| **total** | | " + " | ".join(str(n) for n in total) + " | |")
    era = rec.get("eras", {})
    if isinstance(era, dict) and era:
        from ..schemes import SCHEMES

        out += ["", "## The same results against the older schemes", "",
                "Each mirror is also run under the other schemes its header names (the "
                "mTHP mirrors name only `head-only`), and scored against the real 6.12 "
                "result. A scheme that stands for an older kernel disagrees where that "
                "kernel's rules would have failed `cow.c` (or passed its expected "
                "failures); a scheme that never disagrees differs from 6.12 in "
                "something `cow.c` does not observe.", "",
                "| scheme | kernels | mirrored cases run | disagree with 6.12 |",
                "|---|---|---|---|"]
        for name, e in era.items():
            d = e.get("disagree", [])
            versions = SCHEMES[name].versions if name in SCHEMES else ""
            out.append(f"| `{name}` | {versions} | {e.get('compared', 0)} | "
                       f"{len(d) if isinstance(d, list) else d} |")
    odd = [r for r in rows if r.outcome in ("disagree", "no mirror", "skipped")
           or r.real in ("xfail", "not ok")]
    if odd:
        out += ["", "## Failures, expected failures, skips and disagreements", "",
                "| # | case | real | scenario | model | outcome |", "|---|---|---|---|---|---|"]
        out += [f"| {r.test} {r.number} | {r.case} | {r.real} | {_link(r.scenario)} | "
                f"{r.model} | {r.outcome} |" for r in odd]
    out += ["", "## Every mirrored case", "",
            "| # | case | real | scenario | model | outcome |", "|---|---|---|---|---|---|"]
    out += [f"| {r.test} {r.number} | {r.case} | {r.real} | {_link(r.scenario)} | "
            f"{r.model} | {r.outcome} |" for r in rows if r.scenario]
    return "\n".join(out) + "\n"


def _link(scenario: str) -> str:
    return f"`{scenario}`" if scenario else ""


def write_appendix(run: Path = LAST_RUN, out: Path = APPENDIX) -> Path:
    import json

    out.write_text(markdown(json.loads(run.read_text())))
    return out


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    run = Path(args[0]) if args else LAST_RUN
    out = Path(args[1]) if len(args) > 1 else APPENDIX
    if not run.exists():
        print(f"no recorded run at {run}: run python -m anonlib selftests-check --json {run}",
              file=sys.stderr)
        return 2
    print(write_appendix(run, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
