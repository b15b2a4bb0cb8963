"""The committed notebooks are executed and carry no volatile metadata.

nbval compares only cells that have been executed (a cell whose
execution_count is null passes without any check), and the book renders the
stored outputs. So every code cell must be committed executed, and the files
must be as `make notebooks` leaves them.
"""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import clean_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_at_least_one_notebook():
    assert NOTEBOOKS, "notebooks/ has no .ipynb file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_executed_in_order(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c["execution_count"] for c in code]
    assert None not in counts, f"{path.name}: unexecuted code cells; run `make notebooks`"
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..n; run `make notebooks`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_metadata_is_clean(path):
    text = path.read_text(encoding="utf-8")
    cleaned = clean_notebooks.dumps(clean_notebooks.clean(json.loads(text)))
    assert text == cleaned, f"{path.name} has volatile metadata; run `make notebooks`"


def test_clean_drops_volatile_metadata_and_renumbers_widget_ids():
    a, b = "a" * 32, "b" * 32
    widget_state = {
        "state": {
            b: {"model_name": "LayoutModel", "state": {}},
            a: {"model_name": "VBoxModel", "state": {"layout": f"IPY_MODEL_{b}"}},
        },
        "version_major": 2,
        "version_minor": 0,
    }
    view = {"model_id": a, "version_major": 2, "version_minor": 0}
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "c1",
                "metadata": {"execution": {"iopub.status.busy": "2026-01-01"}, "tags": ["t"]},
                "outputs": [
                    {
                        "data": {"application/vnd.jupyter.widget-view+json": view},
                        "execution_count": 1,
                        "metadata": {},
                        "output_type": "execute_result",
                    }
                ],
                "source": "w",
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "venv", "language": "python"},
            "language_info": {"name": "python", "version": "3.11.7"},
            "widgets": {"application/vnd.jupyter.widget-state+json": widget_state},
            "vscode": {"interpreter": {}},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    out = clean_notebooks.clean(nb)
    one, two = f"{1:032x}", f"{2:032x}"
    assert out["cells"][0]["metadata"] == {"tags": ["t"]}
    assert out["metadata"]["kernelspec"]["name"] == "python3"
    assert out["metadata"]["language_info"] == {"name": "python"}
    assert "vscode" not in out["metadata"]
    state = out["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state[one]["state"]["layout"] == f"IPY_MODEL_{two}"
    view = out["cells"][0]["outputs"][0]["data"]["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == one
    assert clean_notebooks.clean(out) == out


def test_clean_drops_widget_state_that_only_hidden_cells_display():
    """A widget view in a remove-output cell is never shown by the book, so the models only it
    reaches (and links between them) go; the models a shown view reaches, and a jslink whose
    ends are both shown, stay."""
    view = clean_notebooks.WIDGET_VIEW
    shown, hidden, child, link = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)
    state = {
        shown: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{child}"]}},
        child: {"model_name": "IntSliderModel", "state": {}},
        hidden: {"model_name": "ButtonModel", "state": {}},
        link: {"model_name": "LinkModel",
               "state": {"source": [f"IPY_MODEL_{child}", "value"],
                         "target": [f"IPY_MODEL_{shown}", "x"]}},
    }

    def cell(model_id, tags):
        return {"cell_type": "code", "metadata": {"tags": tags}, "source": "",
                "execution_count": 1,
                "outputs": [{"output_type": "display_data",
                             "data": {view: {"model_id": model_id}}, "metadata": {}}]}

    nb = {"cells": [cell(shown, []), cell(hidden, ["remove-output"])],
          "metadata": {"widgets": {clean_notebooks.WIDGET_STATE: {"state": state}}},
          "nbformat": 4, "nbformat_minor": 5}
    kept = clean_notebooks.clean(nb)["metadata"]["widgets"][clean_notebooks.WIDGET_STATE]
    assert len(kept["state"]) == 3  # shown, child, link; the hidden button is gone
    names = sorted(m["model_name"] for m in kept["state"].values())
    assert names == ["IntSliderModel", "LinkModel", "VBoxModel"]

    only_hidden = {"cells": [cell(hidden, ["remove-output"])],
                   "metadata": {"widgets": {clean_notebooks.WIDGET_STATE: {
                       "state": {hidden: state[hidden]}}}},
                   "nbformat": 4, "nbformat_minor": 5}
    assert "widgets" not in clean_notebooks.clean(only_hidden)["metadata"]
