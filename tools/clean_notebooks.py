"""Strip volatile metadata from executed notebooks so that re-running them is a no-op in git.

Usage: python tools/clean_notebooks.py [--check] NOTEBOOK...

`make notebooks` runs this after executing the notebooks. With --check it
changes nothing and exits 1 if any notebook is not clean.

What it does, and why each step is safe:
- notebook metadata: keeps only `kernelspec` (always python3), `language_info`
  without the Python version, and `widgets` (the stored widget state, which the
  book renders);
- cell metadata: drops execution timings and UI state (`execution`,
  `ExecuteTime`, `collapsed`, `scrolled`, `trusted`); keeps tags and the rest;
- widget state: models that only views in remove-output / remove-cell cells,
  or views with an HTML form next to them, reach are dropped (the book never
  shows them);
- widget model ids: ipywidgets names every model with a random uuid4. They are
  renumbered 1, 2, 3, ... so that the same code gives the same file. Only ids
  that are keys of the stored widget state are touched, and their order comes
  from walking the widget tree, not from the ids.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from typing import Any

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
VOLATILE_CELL_KEYS = {"execution", "ExecuteTime", "collapsed", "scrolled", "trusted"}


REF = re.compile(r"IPY_MODEL_([0-9a-f]{32})")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _canonical_order(nb: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Model ids in an order that does not depend on the ids themselves.

    Depth-first from the widgets the outputs display (in cell order), following
    IPY_MODEL_ references. Models nobody references (jslink's LinkModels, say)
    are then taken in order of their content, with already numbered ids filled in.
    """
    order: list[str] = []

    def visit(root: str) -> None:
        stack = [root]
        while stack:
            mid = stack.pop()
            if mid in order or mid not in state:
                continue
            order.append(mid)
            stack.extend(reversed(REF.findall(json.dumps(state[mid], sort_keys=True))))

    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                visit(view.get("model_id", ""))

    while len(order) < len(state):
        numbered = {old: f"{n:032x}" for n, old in enumerate(order, start=1)}

        def content(mid: str, numbered: dict[str, str] = numbered) -> str:
            text = json.dumps(state[mid], sort_keys=True)
            return REF.sub(lambda ref: "IPY_MODEL_" + numbered.get(ref.group(1), "?"), text)

        visit(min((m for m in state if m not in order), key=content))
    return order


def _renumber_widget_ids(text: str, nb: dict[str, Any]) -> str:
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    mapping = {old: f"{n:032x}" for n, old in enumerate(_canonical_order(nb, state), start=1)}
    return re.sub(r"[0-9a-f]{32}", lambda m: mapping.get(m.group(0), m.group(0)), text)


HIDDEN_TAGS = {"remove-output", "remove-cell"}


def _prune_widget_state(nb: dict[str, Any]) -> None:
    """Keep only the widget models the book displays.

    A view in a cell tagged remove-output / remove-cell is never shown, nor is
    one whose output also has an HTML form (the book ranks text/html above
    widget views: book/_config.yml), so the models only such views reach are
    dead weight in every built page (and a page that
    embeds widget state but shows no widget looks broken to the browser test).
    Kept: everything reachable from a displayed view, plus models (jslink's
    LinkModels) whose every reference points at a kept model.
    """
    widgets = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})
    state = widgets.get("state", {})
    if not state:
        return
    kept: set[str] = set()
    stack = []
    for cell in nb.get("cells", []):
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and "text/html" not in output["data"]:
                stack.append(view.get("model_id", ""))
    while stack:
        mid = stack.pop()
        if mid in kept or mid not in state:
            continue
        kept.add(mid)
        stack.extend(REF.findall(json.dumps(state[mid])))
    changed = True
    while changed:
        changed = False
        for mid, model in state.items():
            refs = set(REF.findall(json.dumps(model)))
            if mid not in kept and refs and refs <= kept:
                kept.add(mid)
                changed = True
    if kept:
        widgets["state"] = {mid: state[mid] for mid in state if mid in kept}
    else:
        del nb["metadata"]["widgets"]


def _merged_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive stdout (or stderr) chunks as one output.

    Where a cell's printing is split into chunks depends on when the kernel
    flushed, so the same run could store different files; nbval joins the
    chunks before comparing, and so does this.
    """
    out: list[dict[str, Any]] = []
    for o in outputs:
        prev = out[-1] if out else None
        if (prev is not None and o.get("output_type") == "stream"
                and prev.get("output_type") == "stream" and prev.get("name") == o.get("name")):
            text = "".join(prev["text"]) + "".join(o["text"])
            prev["text"] = text.splitlines(keepends=True)
        else:
            out.append(o)
    return out


def clean(nb: dict[str, Any]) -> dict[str, Any]:
    """Return a cleaned copy of the notebook `nb` (a JSON dict)."""
    nb = json.loads(json.dumps(nb))
    meta = nb.get("metadata", {})
    language_info = {k: v for k, v in meta.get("language_info", {}).items() if k != "version"}
    new_meta: dict[str, Any] = {"kernelspec": dict(KERNELSPEC), "language_info": language_info}
    if "widgets" in meta:
        new_meta["widgets"] = meta["widgets"]
    nb["metadata"] = new_meta
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_KEYS & cell.get("metadata", {}).keys():
            del cell["metadata"][key]
        if "outputs" in cell:
            cell["outputs"] = _merged_streams(cell["outputs"])
    text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False)
    nb = json.loads(_renumber_widget_ids(text, nb))  # with the full state: stable ids everywhere
    _prune_widget_state(nb)
    return nb


def dumps(nb: dict[str, Any]) -> str:
    """Serialise like Jupyter does (nbformat: indent 1, sorted keys, trailing newline)."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    args = parser.parse_args(argv)
    dirty = []
    for path in args.notebooks:
        before = path.read_text(encoding="utf-8")
        after = dumps(clean(json.loads(before)))
        if before != after:
            dirty.append(path)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    if args.check and dirty:
        for path in dirty:
            print(f"{path}: not clean; run `make notebooks`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
