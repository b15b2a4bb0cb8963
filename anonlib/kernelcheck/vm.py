"""The real kernel: fetch Debian's Linux 6.12 or 6.1, build the test program, boot it under QEMU.

Everything comes from Debian packages (see ``docs/real-kernel.md``):
``qemu-system-x86`` for the emulator and ``linux-image-6.12.*-amd64-unsigned``
(or, for the 6.1 series, ``linux-image-6.1.0-*-amd64-unsigned``) for the
kernel and its modules. :data:`SERIES` lists the kernel series the check
knows; each is kept in the cache under its own release, and
:func:`cached_kernel` picks the newest release of the series asked for.
Nothing is installed on the host except QEMU; the kernel package is only
unpacked, and what the check needs (the kernel image, the zram,
hwpoison-inject and brd modules and their dependencies, decompressed) is kept
in a cache folder (``.cache/kernel/`` in the repository, git-ignored, or
``$ANONLIB_KERNEL_CACHE``) so later runs download nothing (``gup_test.ko``,
built from the 6.12 source, comes from
:func:`anonlib.kernelcheck.selftests.build_gup_test` and is passed to
:func:`make_initramfs`). The test program
(``tools/kernelcheck/anoncheck.c``) is compiled with ``gcc -static`` into the
same cache and runs as ``/init`` from an initramfs written here (the cpio
"newc" format, so no ``cpio`` binary is needed).

One boot runs a whole job; :func:`boot` kills QEMU after ``timeout`` seconds
and raises :class:`VMError` with the end of the console log, so a VM that
does not boot or hangs never hangs the caller.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tools" / "kernelcheck" / "anoncheck.c"
#: Headers of the guest programs beside them (kernel memory through /proc/kcore).
HEADERS = (REPO / "tools" / "kernelcheck" / "kcore.h",)
#: Modules the check loads in the VM (their dependencies are added from their modinfo):
#: swap on zram, hwpoison-inject for memory failure, brd (a ramdisk) for O_DIRECT.
MODULES = ("zram", "hwpoison_inject", "brd")

@dataclass(frozen=True)
class Series:
    """A kernel series the check can boot: how its Debian package and releases are named,
    and the scheme of the model that stands for it."""

    name: str  # "6.12"
    #: the apt-cache search pattern and the full-name regex of its image packages
    search: str
    package_pattern: str
    #: the model's scheme for this kernel (anonlib.schemes)
    scheme: str
    #: the kernel has multi-size THP (6.8+: sysfs hugepages-<size>kB)
    mthp: bool
    #: added to the names of the series' files in tools/kernelcheck/ (known differences,
    #: the recorded run): "" for the default series
    suffix: str
    #: the first swap type the kernel uses for special entries (hwpoison, then the three
    #: migration types): 32 less the special types Debian's build has
    max_swapfiles: int
    #: /proc/kpageflags shows each page's own flags (6.1: fs/proc/page.c stable_page_flags
    #: reads page->flags), not its folio's (6.12 reads folio->flags), so the
    #: PG_anon_exclusive of every page of a PTE-mapped large folio is visible
    own_page_flags: bool
    #: gup_test.ko is built for it (from the 6.12 source's mm/gup_test.c). Not for 6.1:
    #: its own gup_test.c cannot hold a R/O long-term pin (PIN_LONGTERM_TEST_START is
    #: 6.2), and the 6.12 file does not build against 6.1's GUP interface
    gup_test: bool
    #: an O_DIRECT write takes a R/O FOLL_PIN on the user buffer (block/bio.c:
    #: __bio_iov_iter_get_pages uses iov_iter_extract_pages, 6.3 and later); 6.1 takes
    #: plain references there (iov_iter_get_pages2, FOLL_GET), which unshare nothing, so
    #: without gup_test a R/O long-term pin is not expressible on it
    odirect_pins: bool

    def has_release(self, release: str) -> bool:
        """Whether a kernel release (``uname -r``, the cache folder's name) is of this series."""
        return re.match(re.escape(self.name) + r"\.[0-9]", release) is not None


SERIES: dict[str, Series] = {
    s.name: s
    for s in (
        Series("6.12", "linux-image-6.12.*-amd64-unsigned",
               r"^linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64-unsigned$", "mainline",
               # 32 - 3 (migration) - 1 (hwpoison) - 1 (PTE marker); no DEVICE_PRIVATE
               mthp=True, suffix="", max_swapfiles=27, own_page_flags=False, gup_test=True,
               odirect_pins=True),
        # Debian 12's own kernel: the package names the ABI (6.1.0-57), not the stable release
        Series("6.1", "linux-image-6.1.0-.*-amd64-unsigned",
               r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$", "lts-6.1",
               # 6.1 also reserves SWP_SWAPIN_ERROR (include/linux/swap.h), so 26
               mthp=False, suffix="-6.1", max_swapfiles=26, own_page_flags=True,
               gup_test=False, odirect_pins=False),
    )
}
DEFAULT_SERIES = "6.12"
QEMU = "qemu-system-x86_64"
#: Kernel command line: fake NUMA nodes for move_pages, no zswap in front of zram.
CMDLINE = "console=ttyS0 quiet panic=-1 numa=fake=2 zswap.enabled=0 transparent_hugepage=always"
DEFAULT_TIMEOUT = 240.0


class VMError(Exception):
    """The VM could not be prepared, did not boot, or did not finish in time."""


class Unavailable(Exception):
    """QEMU, gcc or the kernel is missing and may not be installed here; says how to get them."""


def cache_dir() -> Path:
    return Path(os.environ.get("ANONLIB_KERNEL_CACHE", REPO / ".cache" / "kernel"))


def may_install() -> bool:
    """Install missing pieces with apt-get only as root on a system that has apt-get."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


HOW_TO_INSTALL = (
    "the kernel check needs qemu-system-x86_64, gcc with a static C library, and Debian's "
    "linux-image-6.12.*-amd64-unsigned package (for --kernel 6.1: "
    "linux-image-6.1.0-*-amd64-unsigned). As root on Debian 12, "
    "`make kernel-check` installs them (apt-get install qemu-system-x86 gcc libc6-dev; "
    "apt-get download linux-image-6.12.<N>+deb12-amd64-unsigned). Elsewhere install QEMU and "
    "gcc yourself and put an unpacked kernel (vmlinuz + modules) in .cache/kernel/, "
    "see anonlib/kernelcheck/vm.py."
)


def series_named(name: str) -> Series:
    """The series called ``name``; ValueError names the known ones."""
    try:
        return SERIES[name]
    except KeyError:
        raise ValueError(f"unknown kernel series {name!r}; known: {', '.join(SERIES)}") from None


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, env=env, cwd=cwd)


# ------------------------------------------------------------------ tools


def ensure_tools(install: bool | None = None) -> None:
    """Make sure QEMU and gcc are there (install them with apt-get when allowed)."""
    install = may_install() if install is None else install
    missing = [t for t in (QEMU, "gcc") if shutil.which(t) is None]
    if not missing:
        return
    if not install:
        raise Unavailable(f"{', '.join(missing)} not found: {HOW_TO_INSTALL}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True, env=env)
    _run(["apt-get", "install", "-y", "-q", "qemu-system-x86", "gcc", "libc6-dev"], env=env)


# ------------------------------------------------------------------ the kernel


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel in the cache: its image, release and modules in load order."""

    release: str
    vmlinuz: Path
    modules: tuple[Path, ...]


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"[0-9]+", name))


def pick_package(apt_search_output: str, series: Series) -> str | None:
    """The newest image package of ``series`` in ``apt-cache search`` output (None: none)."""
    names = [ln.split()[0] for ln in apt_search_output.splitlines() if ln.strip()]
    names = [n for n in names if re.match(series.package_pattern, n)]
    return max(names, key=_version_key) if names else None


def newest_package(series: Series = SERIES[DEFAULT_SERIES]) -> str:
    """The newest image package of the series (linux-image-6.12.*-amd64-unsigned) apt knows."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        out = subprocess.run(
            ["apt-cache", "search", "--names-only", series.search],
            text=True, capture_output=True, check=False, env=env,
        ).stdout
        name = pick_package(out, series)
        if name is not None:
            return name
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True,
                           env=env)
    raise VMError(f"apt knows no {series.search} package (is this Debian 12 "
                  "with bookworm-updates or security?)")


def _modinfo_depends(ko: bytes) -> list[str]:
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", ko)
    if not m or not m.group(1):
        return []
    return [d.decode().replace("-", "_") for d in m.group(1).split(b",") if d]


def cached_kernel(series: Series = SERIES[DEFAULT_SERIES]) -> Kernel | None:
    """The newest kernel of ``series`` in the cache, if one is there."""
    base = cache_dir()
    if not base.is_dir():
        return None
    for d in sorted(base.iterdir(), key=lambda p: _version_key(p.name), reverse=True):
        if not series.has_release(d.name):
            continue
        order = d / "modules.txt"
        if (d / "vmlinuz").is_file() and order.is_file():
            names = order.read_text().split()
            mods = tuple(d / "modules" / n for n in names)
            # a cache made before a module joined MODULES is unpacked again
            if all(m.is_file() for m in mods) and all(f"{m}.ko" in names for m in MODULES):
                return Kernel(d.name, d / "vmlinuz", mods)
    return None


def ensure_kernel(install: bool | None = None,
                  series: Series = SERIES[DEFAULT_SERIES]) -> Kernel:
    """The cached kernel of ``series``, downloading and unpacking its newest package if needed."""
    k = cached_kernel(series)
    if k is not None:
        return k
    install = may_install() if install is None else install
    if not install:
        raise Unavailable(f"no Linux {series.name} kernel in {cache_dir()}: {HOW_TO_INSTALL}")
    pkg = newest_package(series)
    with tempfile.TemporaryDirectory(prefix="anonlib-kernel-") as tmp:
        t = Path(tmp)
        _run(["apt-get", "download", pkg], cwd=t)
        deb = next(t.glob("*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(t / "x")])
        vmlinuz = next((t / "x" / "boot").glob("vmlinuz-*"))
        release = vmlinuz.name.removeprefix("vmlinuz-")
        if not series.has_release(release):
            raise VMError(f"{pkg} holds release {release}, not a Linux {series.name} kernel")
        index = {
            p.name.split(".ko")[0].replace("-", "_"): p
            for p in (t / "x" / "lib" / "modules" / release).rglob("*.ko*")
        }
        order: list[str] = []
        blobs: dict[str, bytes] = {}

        def add(name: str) -> None:
            if name in blobs:
                return
            if name not in index:
                raise VMError(f"module {name} is not in {pkg}")
            p = index[name]
            data = p.read_bytes()
            if p.name.endswith(".xz"):
                # imported here: Pyodide (the book's lab) ships without lzma, and every
                # command line, the lab's too, imports this module
                import lzma

                data = lzma.decompress(data)
            elif p.name.endswith(".zst"):
                data = subprocess.run(["zstd", "-dc", str(p)], check=True,
                                      capture_output=True).stdout
            blobs[name] = data
            for dep in _modinfo_depends(data):
                add(dep)
            order.append(name)

        for m in MODULES:
            add(m)
        dest = cache_dir() / release
        part = dest.with_name(dest.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        (part / "modules").mkdir(parents=True)
        shutil.copy(vmlinuz, part / "vmlinuz")
        for name, data in blobs.items():
            (part / "modules" / f"{name}.ko").write_bytes(data)
        (part / "modules.txt").write_text("\n".join(f"{n}.ko" for n in order) + "\n")
        (part / "PACKAGE").write_text(pkg + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        part.rename(dest)
    k = cached_kernel(series)
    assert k is not None
    return k


# ------------------------------------------------------------------ the test program


def build_program() -> Path:
    """Compile anoncheck.c with gcc -static into the cache (once per version of its sources:
    the file and the header it includes, :data:`HEADERS`)."""
    h = hashlib.sha256(SOURCE.read_bytes())
    for header in HEADERS:
        h.update(header.read_bytes())
    digest = h.hexdigest()[:16]
    out = cache_dir() / "bin" / f"anoncheck-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    r = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(tmp), str(SOURCE)],
                       text=True, capture_output=True)
    if r.returncode != 0:
        raise VMError(f"gcc -static failed on {SOURCE}:\n{r.stderr[-2000:]}")
    tmp.rename(out)
    return out


# ------------------------------------------------------------------ initramfs


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
                ino: int = 0) -> bytes:
    nb = name.encode() + b"\x00"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
    head = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
    buf = head + nb
    buf += b"\x00" * (-len(buf) % 4)
    buf += data
    buf += b"\x00" * (-len(buf) % 4)
    return buf


def make_initramfs(program: Path, kernel: Kernel, job: str,
                   extra_modules: Sequence[Path] = ()) -> bytes:
    """A gzipped newc cpio archive: /init, /job.txt, the modules, /dev/console.

    ``extra_modules`` (built here, not Debian's: the gup_test instances) are
    loaded after the kernel's own.
    """
    out = io.BytesIO()
    ino = 1
    modules = (*kernel.modules, *extra_modules)
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("init", 0o100755, program.read_bytes(), (0, 0)),
        ("job.txt", 0o100644, job.encode(), (0, 0)),
        ("modules.txt", 0o100644, "".join(f"/{m.name}\n" for m in modules).encode(),
         (0, 0)),
    ]
    entries += [(m.name, 0o100644, m.read_bytes(), (0, 0)) for m in modules]
    for name, mode, data, rdev in entries:
        out.write(_cpio_entry(name, mode, data, rdev, ino))
        ino += 1
    out.write(_cpio_entry("TRAILER!!!", 0, b""))
    return gzip.compress(out.getvalue(), compresslevel=1)


# ------------------------------------------------------------------ boot


@dataclass(frozen=True)
class BootResult:
    """What one boot printed: the result channel (ttyS1), the console (ttyS0), and how long."""

    results: str
    console: str
    seconds: float


def boot(kernel: Kernel, initrd: bytes, timeout: float = DEFAULT_TIMEOUT,
         memory_mb: int = 1024, cmdline: str = CMDLINE) -> BootResult:
    """Boot the kernel with the initramfs under QEMU TCG; the program powers the VM off."""
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise Unavailable(f"{QEMU} not found: {HOW_TO_INSTALL}")
    with tempfile.TemporaryDirectory(prefix="anonlib-vm-") as tmp:
        t = Path(tmp)
        (t / "initrd.gz").write_bytes(initrd)
        console, results = t / "console.log", t / "results.log"
        cmd = [
            qemu, "-accel", "tcg", "-cpu", "max", "-m", str(memory_mb), "-smp", "1",
            "-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none",
            "-kernel", str(kernel.vmlinuz), "-initrd", str(t / "initrd.gz"),
            "-append", cmdline,
            "-serial", f"file:{console}", "-serial", f"file:{results}",
        ]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            qemu_out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise VMError(
                f"the VM did not finish within {timeout:.0f} s and was killed.\n"
                f"console (last lines):\n{_tail(console)}\nresults (last lines):\n"
                f"{_tail(results)}"
            ) from None
        seconds = time.monotonic() - start
        res = results.read_text(errors="replace") if results.exists() else ""
        con = console.read_text(errors="replace") if console.exists() else ""
        if proc.returncode != 0:
            raise VMError(f"QEMU exited with status {proc.returncode}: {qemu_out.strip()}\n"
                          f"console (last lines):\n{_tail(console)}")
        if "@done" not in res:
            raise VMError("the VM stopped before the test program finished "
                          f"(no '@done').\nconsole (last lines):\n{_tail(console)}\n"
                          f"results (last lines):\n{_tail(results)}")
        return BootResult(res.replace("\r", ""), con, seconds)


def _tail(path: Path, n: int = 25) -> str:
    if not path.exists():
        return "  (nothing)"
    lines = path.read_text(errors="replace").replace("\r", "").splitlines()[-n:]
    return "\n".join("  " + ln for ln in lines) or "  (nothing)"
