"""pyproject.toml and environment.yml must list the same dependencies.

pip users install from pyproject.toml, conda users from environment.yml.
Every runtime dependency and every package of the notebooks, book and test
extras must appear in both files, with the same version specifier.
"""

from __future__ import annotations

import copy
import pathlib
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Packages that only the conda file needs: conda has to be told to install
# Python, pip and Node.js (npm fetches the book's widget runtime); pip users
# bring their own.
CONDA_ONLY = {"python", "pip", "nodejs"}


def load_pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def load_environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def _index(requirements: list[str], where: str) -> dict[str, str]:
    """Map canonical package name to its version specifier, refusing duplicates."""
    out: dict[str, str] = {}
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in out:
            raise AssertionError(f"{name} is listed twice in {where}")
        out[name] = str(req.specifier)
    return out


def pyproject_requirements(pyproject: dict) -> dict[str, str]:
    """Runtime dependencies plus every extra except `dev`."""
    project = pyproject["project"]
    reqs = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra != "dev":
            reqs.extend(items)
    return _index(reqs, "pyproject.toml")


def environment_requirements(env: dict) -> tuple[dict[str, str], list[str]]:
    """Conda packages (without the conda-only ones) and the pip section."""
    conda: list[str] = []
    pip: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip.extend(item.get("pip", []))
        else:
            conda.append(item)
    index = _index(conda, "environment.yml")
    return {k: v for k, v in index.items() if k not in CONDA_ONLY}, pip


def differences(pyproject: dict, env: dict) -> list[str]:
    """Human-readable list of every way the two files disagree."""
    problems: list[str] = []
    pyp = pyproject_requirements(pyproject)
    conda, pip = environment_requirements(env)
    for name in sorted(pyp.keys() - conda.keys()):
        problems.append(f"{name}{pyp[name]} is in pyproject.toml but not in environment.yml")
    for name in sorted(conda.keys() - pyp.keys()):
        problems.append(f"{name}{conda[name]} is in environment.yml but not in pyproject.toml")
    for name in sorted(pyp.keys() & conda.keys()):
        if pyp[name] != conda[name]:
            problems.append(
                f"{name}: pyproject.toml says {pyp[name]!r}, environment.yml says {conda[name]!r}"
            )

    python = _index([i for i in env["dependencies"] if isinstance(i, str)], "environment.yml")
    requires_python = pyproject["project"]["requires-python"]
    if python.get("python") != requires_python:
        problems.append(
            f"python: pyproject.toml requires {requires_python!r}, "
            f"environment.yml has {python.get('python')!r}"
        )

    if pip != ["-e .[dev]"]:
        problems.append(f"environment.yml's pip section should be ['-e .[dev]'], not {pip}")

    # `dev` is everything: the package itself with every other extra.
    extras = set(pyproject["project"]["optional-dependencies"]) - {"dev"}
    dev = [Requirement(r) for r in pyproject["project"]["optional-dependencies"].get("dev", [])]
    if len(dev) != 1 or dev[0].name != pyproject["project"]["name"] or dev[0].extras != extras:
        problems.append(f"the dev extra should be anonlib[{','.join(sorted(extras))}] only")
    return problems


def test_pyproject_and_environment_yml_agree():
    problems = differences(load_pyproject(), load_environment())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("side", ["pyproject", "environment"])
def test_a_dependency_added_to_one_side_only_is_reported(side):
    pyproject, env = copy.deepcopy(load_pyproject()), copy.deepcopy(load_environment())
    if side == "pyproject":
        pyproject["project"]["optional-dependencies"]["test"].append("tabulate>=0.9")
    else:
        env["dependencies"].insert(3, "tabulate>=0.9")
    problems = differences(pyproject, env)
    assert len(problems) == 1 and problems[0].startswith("tabulate>=0.9 is in"), problems


def test_a_changed_version_is_reported():
    env = copy.deepcopy(load_environment())
    env["dependencies"] = [
        "numpy>=1.0" if isinstance(d, str) and d.startswith("numpy") else d
        for d in env["dependencies"]
    ]
    assert differences(load_pyproject(), env) == [
        "numpy: pyproject.toml says '>=2.4.6', environment.yml says '>=1.0'"
    ]
