"""Put what the book's scenario lab runs into the book: Pyodide, and anonlib from this tree.

Usage: python tools/lab_bundle.py [--root DIR]

`make book` runs this before jupyter-book. It writes, under
`book/_assets/lab/` (git-ignored; Sphinx copies `_assets/` to `_static/`):

- `pyodide/`: the Pyodide runtime (CPython compiled to WebAssembly and its
  standard library) copied from `node_modules/pyodide`, which `npm ci`
  installs at the version `package-lock.json` pins. Only the files the
  browser loads: no source maps, no TypeScript declarations, no Node entry.
- `anonlib.zip`: the pure-Python package `anonlib/` (every `.py` file of the
  working tree, so the lab runs the code the book was built from) and the
  scenario library `scenarios/` (every `.scn` and `README.md`): the lab's
  examples menu, and the files `python -m anonlib run scenarios/...` reads.
  Deterministic: entries sorted, one fixed time, fixed modes; the same tree
  gives the same bytes.

The lab's own page and scripts are committed: `book/lab.md`,
`book/_assets/lab/*.js` and `lab.css`.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import shutil
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT_REL = "book/_assets/lab"
#: The files of the npm package `pyodide` that a browser loads.
PYODIDE_FILES = ("pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json")
FIXED_TIME = (2022, 1, 1, 0, 0, 0)  # zip times start in 1980; any fixed one will do


def bundle_files(root: pathlib.Path) -> list[str]:
    """The paths (relative, sorted) that go into anonlib.zip."""
    files = [p for p in (root / "anonlib").rglob("*.py") if "__pycache__" not in p.parts]
    files += [p for p in (root / "scenarios").rglob("*")
              if p.is_file() and (p.suffix == ".scn" or p.name == "README.md")]
    return sorted(p.relative_to(root).as_posix() for p in files)


def build_zip(root: pathlib.Path, paths: list[str]) -> bytes:
    """A deterministic zip of ``paths`` under ``root``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for rel in paths:
            info = zipfile.ZipInfo(rel, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, (root / rel).read_bytes())
    return out.getvalue()


def pyodide_dir(root: pathlib.Path) -> pathlib.Path:
    return root / "node_modules" / "pyodide"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=pathlib.Path, default=ROOT)
    args = ap.parse_args(argv)
    root: pathlib.Path = args.root
    out = root / OUT_REL
    src = pyodide_dir(root)
    missing = [f for f in PYODIDE_FILES if not (src / f).is_file()]
    if missing:
        print(f"lab_bundle: {src} lacks {', '.join(missing)}: run `npm ci` (make book does)",
              file=sys.stderr)
        return 1
    (out / "pyodide").mkdir(parents=True, exist_ok=True)
    for f in PYODIDE_FILES:
        shutil.copyfile(src / f, out / "pyodide" / f)
    data = build_zip(root, bundle_files(root))
    target = out / "anonlib.zip"
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    print(f"lab_bundle: {out.relative_to(root)}: pyodide "
          f"({sum((src / f).stat().st_size for f in PYODIDE_FILES):,} bytes), "
          f"anonlib.zip ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
