"""The dependency pins live in one place: ``[project].dependencies`` of pyproject.toml.

envs/rocksr.yaml (the conda env of ``snakemake --software-deployment-method conda``) repeats
them under ``pip:``; these tests keep the two lists identical.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
ENV_FILE = REPO / "envs" / "rocksr.yaml"


def project_dependencies() -> list[str]:
    """``[project].dependencies`` of pyproject.toml, in order."""
    with PYPROJECT.open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def env_pip_dependencies() -> list[str]:
    """The ``pip:`` list of envs/rocksr.yaml, in order."""
    env = yaml.safe_load(ENV_FILE.read_text())
    pips = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, f"{ENV_FILE}: expected exactly one `pip:` list, found {len(pips)}"
    return [str(r) for r in pips[0]]


def test_env_pip_list_equals_pyproject_dependencies() -> None:
    want, got = project_dependencies(), env_pip_dependencies()
    assert got == want, (
        f"{ENV_FILE.relative_to(REPO)} `pip:` differs from [project].dependencies of "
        f"{PYPROJECT.name}, the source of truth. Copy the pyproject list into the env file "
        "verbatim (same strings, same order):\n"
        + "\n".join(f"      - {r}" for r in want)
        + f"\nmissing from the env: {[r for r in want if r not in got]}"
        + f"\nnot in pyproject: {[r for r in got if r not in want]}"
    )


def test_torch_is_pinned_exactly() -> None:
    name = re.compile(r"\s*([A-Za-z0-9._-]+)")
    torch = [r for r in project_dependencies() if name.match(r).group(1).lower() == "torch"]
    assert len(torch) == 1, f"expected one torch requirement in {PYPROJECT.name}, got {torch}"
    assert "==" in torch[0], (
        f"torch must be pinned with == in {PYPROJECT.name} (got {torch[0]!r}): GPU users install "
        "the CUDA build of that exact version first"
    )
