"""Cross-check the kernel check's /proc/kcore reading of struct pages with drgn on a dump.

The kernel check reads a tail page's own PG_anon_exclusive from its
``struct page`` through ``/proc/kcore`` in the guest (docs/real-kernel.md).
This script reads the same words a second way, with drgn on a QEMU memory
dump of the same guest and the kernel's debug information, and compares:

1. Debian's ``linux-image-<release>-dbg`` (its ``vmlinux`` only) and the
   kernel package's ``qemu_fw_cfg`` module, downloaded once into
   ``.cache/kernel/drgn/`` (as the kernel check downloads its kernel);
2. the guest ``tools/kernelcheck/drgn-crosscheck-init.c`` makes a PTE-mapped
   THP whose pages carry their own flags, prints what it reads through
   ``/proc/kcore`` and waits;
3. QEMU (``-device vmcoreinfo``, QMP) writes ``dump-guest-memory`` with
   ``paging=true``; drgn (Debian's ``python3-drgn``, run by the system
   Python, which has it) reads ``page->flags`` and ``page->compound_head`` of
   the same frames and ``PG_anon_exclusive`` from the debug information.

Exit 0 when every word agrees. Not part of ``make test`` or the recorded run
(a 1 GB download, a 1 GB dump)::

    python tools/kernelcheck/drgn_crosscheck.py
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from anonlib.kernelcheck import vm  # noqa: E402

INIT = REPO / "tools" / "kernelcheck" / "drgn-crosscheck-init.c"
SYSTEM_PYTHON = "/usr/bin/python3"
READY_TIMEOUT = 180.0

#: Run by the system Python (python3-drgn): argv = dump, vmlinux, pfns; prints JSON.
DRGN_READER = """
import json, sys, drgn
from drgn.helpers.linux.mm import pfn_to_page
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
pages = {}
for pfn in sys.argv[3:]:
    page = pfn_to_page(prog, int(pfn, 16))
    pages[pfn] = [page.flags.value_(), page.compound_head.value_()]
print(json.dumps({"pg_anon_exclusive": prog.constant("PG_anon_exclusive").value_(),
                  "pages": pages}))
"""


def _deb_member(package: str, member: str, dest: Path) -> None:
    """Extract one file of a Debian package (downloaded with apt-get) to ``dest``."""
    with tempfile.TemporaryDirectory(prefix="anonlib-drgn-") as tmp:
        t = Path(tmp)
        vm._run(["apt-get", "download", package], cwd=t)
        deb = next(t.glob("*.deb"))
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(t), member], stdin=tar.stdout, check=True)
        tar.wait()
        data = (t / member).read_bytes()
        dest.write_bytes(lzma.decompress(data) if member.endswith(".xz") else data)


def fetch(kernel: vm.Kernel) -> tuple[Path, Path]:
    """The kernel's ``vmlinux`` with debug information, and ``qemu_fw_cfg.ko`` (cached)."""
    work = vm.cache_dir() / "drgn"
    work.mkdir(parents=True, exist_ok=True)
    package = (kernel.vmlinuz.parent / "PACKAGE").read_text().strip()
    vmlinux, fw_cfg = work / f"vmlinux-{kernel.release}", work / "qemu_fw_cfg.ko"
    if not vmlinux.is_file():
        print(f"downloading {package.removesuffix('-unsigned')}-dbg (about 1 GB, once)")
        _deb_member(package.removesuffix("-unsigned") + "-dbg",
                    f"./usr/lib/debug/boot/vmlinux-{kernel.release}", vmlinux)
    if not fw_cfg.is_file():
        _deb_member(package, f"./lib/modules/{kernel.release}/kernel/drivers/firmware/"
                    "qemu_fw_cfg.ko.xz", fw_cfg)
    return vmlinux, fw_cfg


def initramfs(init: Path, fw_cfg: Path) -> bytes:
    out = io.BytesIO()
    entries = [("dev", 0o040755, b""), ("dev/console", 0o020600, b""),
               ("init", 0o100755, init.read_bytes()),
               ("qemu_fw_cfg.ko", 0o100644, fw_cfg.read_bytes())]
    for ino, (name, mode, data) in enumerate(entries, start=1):
        rdev = (5, 1) if name == "dev/console" else (0, 0)
        out.write(vm._cpio_entry(name, mode, data, rdev, ino))
    out.write(vm._cpio_entry("TRAILER!!!", 0, b""))
    return gzip.compress(out.getvalue(), compresslevel=1)


def qmp(sock: Path, command: str, **arguments: object) -> dict[str, object]:
    """One QMP command (after the capabilities handshake); waits for a dump to complete."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        f = s.makefile("rw")
        json.loads(f.readline())
        for cmd, args in (("qmp_capabilities", {}), (command, arguments)):
            f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
            f.flush()
            while True:
                reply: dict[str, object] = json.loads(f.readline())
                if "error" in reply:
                    raise RuntimeError(f"QMP {cmd}: {reply['error']}")
                if "return" in reply and cmd != "dump-guest-memory":
                    break
                if reply.get("event") == "DUMP_COMPLETED":
                    return reply
    return {}


def main() -> int:
    if subprocess.run([SYSTEM_PYTHON, "-c", "import drgn"], capture_output=True).returncode:
        print("drgn is missing: apt-get install python3-drgn", file=sys.stderr)
        return 2
    kernel = vm.ensure_kernel()
    vmlinux, fw_cfg = fetch(kernel)
    with tempfile.TemporaryDirectory(prefix="anonlib-drgn-vm-") as tmp:
        t = Path(tmp)
        init = t / "init"
        vm._run(["gcc", "-static", "-O2", "-Wall", "-o", str(init), str(INIT)])
        (t / "initrd.gz").write_bytes(initramfs(init, fw_cfg))
        console, sock, dump = t / "console.log", t / "qmp.sock", t / "dump.elf"
        qemu = subprocess.Popen([
            vm.QEMU, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1",
            "-nodefaults", "-display", "none", "-no-reboot", "-device", "vmcoreinfo",
            "-kernel", str(kernel.vmlinuz), "-initrd", str(t / "initrd.gz"),
            "-append", "console=ttyS0 quiet panic=-1 transparent_hugepage=always",
            "-serial", f"file:{console}", "-qmp", f"unix:{sock},server,nowait"])
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while "@ready" not in (text := console.read_text(errors="replace")
                                   if console.exists() else ""):
                if time.monotonic() > deadline or qemu.poll() is not None or "@error" in text:
                    print(f"the guest did not get ready:\n{text[-3000:]}", file=sys.stderr)
                    return 3
                time.sleep(0.5)
            start = time.monotonic()
            qmp(sock, "dump-guest-memory", paging=True, protocol=f"file:{dump}")
            print(f"dump-guest-memory (paging=true): {dump.stat().st_size / 1e9:.2f} GB "
                  f"in {time.monotonic() - start:.1f} s")
        finally:
            qemu.kill()
            qemu.wait()
        guest = {m[2]: (int(m[1]), int(m[3], 16), int(m[4], 16), int(m[5], 16))
                 for m in re.finditer(r"@page (\d+) pfn=(\w+) kpageflags=(\w+) flags=(\w+) "
                                      r"compound_head=(\w+)", text)}
        r = subprocess.run([SYSTEM_PYTHON, "-c", DRGN_READER, str(dump), str(vmlinux),
                            *guest], capture_output=True, text=True)
    if r.returncode:
        print(f"drgn failed:\n{r.stderr[-3000:]}", file=sys.stderr)
        return 3
    seen = json.loads(r.stdout)
    bit = int(seen["pg_anon_exclusive"])
    print(f"PG_anon_exclusive (debug information): bit {bit}")
    print("subpage  pfn      kpageflags bit 34  own flag (kcore)  drgn = kcore")
    ok = bool(guest)
    for pfn, (sub, kpf, flags, head) in guest.items():
        same = seen["pages"][pfn] == [flags, head]
        ok &= same
        print(f"{sub:>7}  {pfn:<8} {kpf >> 34 & 1:>17}  {flags >> bit & 1:>16}  {same}")
    print("agree" if ok else "DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
