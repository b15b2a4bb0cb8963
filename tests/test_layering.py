"""No import cycle anywhere in anonlib/, and anonlib/mm keeps the layering its docstring states.

Every import is read from the source with :mod:`ast`: at module level and
inside functions, relative and absolute, ``import a.b`` and ``from a import b``
(where ``b`` may itself be a module). A cycle is reported with its modules in
order, so whoever introduces one sees which import closes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import anonlib

ROOT = Path(anonlib.__file__).resolve().parent
PACKAGE = "anonlib"


def _module_name(path: Path, root: Path = ROOT, package: str = PACKAGE) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    return {_module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}


def _resolve(current: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module a ``from`` import names (``level`` dots, then ``name``)."""
    if level == 0:
        return name or ""
    base = current.split(".")
    if not is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            # "from a import b" imports the module a.b if there is one, else a name of a
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        for target in targets:
            # the parent packages' __init__ that every import also runs are not edges here:
            # an import names the module it needs
            if target in known and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (every import statement, at any depth)."""
    mods = _modules(root, package)
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = BLACK
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop(0)
            if colour.get(nxt) == GREY:
                return path[path.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_no_import_cycle_in_anonlib():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_inside_a_function_in_mm():
    """anonlib/mm states its layering at the top of each module: no import hides in a function."""
    hidden = []
    for name, path in _modules().items():
        if not name.startswith("anonlib.mm."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                hidden += [f"{name}:{n.lineno}" for n in ast.walk(fn)
                           if isinstance(n, ast.Import | ast.ImportFrom)]
    assert hidden == []


def test_mm_follows_the_layering_in_its_docstring():
    """Each anonlib/mm module imports only the mm modules of lower layers."""
    from anonlib import mm

    layers = mm.LAYERS
    level = {mod: i for i, group in enumerate(layers) for mod in group}
    graph = import_graph()
    on_disk = {n.rsplit(".", 1)[1] for n in graph if n.startswith("anonlib.mm.")}
    assert on_disk == set(level), "every mm module is in exactly one layer"
    for name, deps in graph.items():
        if not name.startswith("anonlib.mm."):
            continue
        me = name.rsplit(".", 1)[1]
        for dep in deps:
            if dep.startswith("anonlib.mm."):
                other = dep.rsplit(".", 1)[1]
                assert level[other] < level[me], f"{me} (layer {level[me]}) imports {other} " \
                                                 f"(layer {level[other]})"
    for mod in level:
        assert f"``{mod}``" in (mm.__doc__ or ""), f"the docstring names {mod}"


# ------------------------------------------------------------------ the checker itself


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def test_the_checker_finds_a_cycle_closed_inside_a_function(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "",
        "sub/a.py": "from . import b\n",
        "sub/b.py": "def f():\n    from .c import g\n",
        "sub/c.py": "import pkg.sub.a\n",
    })
    cycle = find_cycle(import_graph(root, "pkg"))
    assert cycle == ["pkg.sub.a", "pkg.sub.b", "pkg.sub.c", "pkg.sub.a"]


def test_the_checker_resolves_parent_relative_imports(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": "",
        "top.py": "from .sub.a import x\n",
        "sub/__init__.py": "",
        "sub/a.py": "from ..top import y\n",
    })
    assert import_graph(root, "pkg")["pkg.sub.a"] == {"pkg.top"}
    assert find_cycle(import_graph(root, "pkg")) == ["pkg.sub.a", "pkg.top", "pkg.sub.a"]


def test_the_checker_passes_a_tree_without_cycles(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "a.py": "from . import b\n", "b.py": ""})
    assert find_cycle(import_graph(root, "pkg")) is None
