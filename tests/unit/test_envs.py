"""Checks that the per-stage conda environments in envs/ agree with pyproject.toml.

Every env file must use conda-forge, pin python=3.11, and pin each package to an
exact version that satisfies the compatible-release specifier of the same package in
``[project].dependencies``. Every ``conda:`` directive in workflow/rules/*.smk must
point at an existing env file. Pure parsing: no network, no conda.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = ROOT / "envs"
RULES_DIR = ROOT / "workflow" / "rules"
ENV_FILES = sorted(ENV_DIR.glob("*.yaml"))

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {"py-xgboost": "xgboost", "pytorch": "torch"}
# Interpreter and installer: pinned, but not project dependencies.
TOOLING = {"python", "pip"}
# The `conda:` path, on its own line or on the directive's line.
CONDA_DIRECTIVE = re.compile(r'conda:\s*\n?\s*"([^"]+)"')
EXACT_CONDA = re.compile(r"^([A-Za-z0-9_.\-]+)=([0-9][A-Za-z0-9_.+]*)$")
EXACT_PIP = re.compile(r"^([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9_.+]*)$")


def _project_requirements() -> dict[str, Requirement]:
    """Map canonical PyPI name -> requirement from pyproject's [project].dependencies."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = (Requirement(line) for line in data["project"]["dependencies"])
    return {canonicalize_name(r.name): r for r in reqs}


def _load(path: Path) -> dict[str, Any]:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict), f"{path.name}: not a YAML mapping"
    return env


def _pins(path: Path) -> list[tuple[str, str, str]]:
    """(entry as written, name, version) for every package in the env, pip ones included.

    Fails on any entry that is not pinned to an exact version.
    """
    pins: list[tuple[str, str, str]] = []
    for dep in _load(path)["dependencies"]:
        entries, pattern = ([dep], EXACT_CONDA) if isinstance(dep, str) else (dep["pip"], EXACT_PIP)
        for entry in entries:
            match = pattern.match(str(entry).strip())
            assert match, f"{path.name}: {entry!r} is not pinned to an exact version"
            pins.append((str(entry), match.group(1), match.group(2)))
    return pins


def test_env_files_exist() -> None:
    assert ENV_FILES, f"no env files under {ENV_DIR}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_structure(path: Path) -> None:
    """Channels are conda-forge only, python is 3.11, and the file has a header comment."""
    env = _load(path)
    assert env.get("channels") == ["conda-forge", "nodefaults"], f"{path.name}: channels"
    deps = env.get("dependencies")
    assert isinstance(deps, list) and deps, f"{path.name}: no dependencies"
    assert "python=3.11" in deps, f"{path.name}: python=3.11 missing"
    for dep in deps:
        assert isinstance(dep, str) or set(dep) == {"pip"}, f"{path.name}: bad entry {dep!r}"
    assert path.read_text().startswith("#"), f"{path.name}: missing header comment"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_pyproject(path: Path) -> None:
    """Every exact pin satisfies the pyproject specifier for the same package."""
    project = _project_requirements()
    for entry, name, version in _pins(path):
        if name in TOOLING:
            continue
        pypi = canonicalize_name(CONDA_TO_PYPI.get(name, name))
        assert pypi in project, f"{path.name}: package {name!r} is not in pyproject dependencies"
        spec = project[pypi].specifier
        assert spec.contains(Version(version), prereleases=True), (
            f"{path.name}: package {name!r} pinned {entry!r} does not satisfy {pypi}{spec}"
        )


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_has_common_packages(path: Path) -> None:
    """The library imports these in every stage."""
    names = {canonicalize_name(CONDA_TO_PYPI.get(n, n)) for _, n, _ in _pins(path)}
    for needed in ("numpy", "awkward", "pyyaml", "jsonschema"):
        assert needed in names, f"{path.name}: package {needed!r} missing"


def test_rule_conda_directives_point_at_env_files() -> None:
    """`conda:` paths in workflow/rules/*.smk are relative to the rules dir and must exist."""
    for smk in sorted(RULES_DIR.glob("*.smk")):
        for target in CONDA_DIRECTIVE.findall(smk.read_text()):
            resolved = (RULES_DIR / target).resolve()
            assert resolved.is_file(), f"{smk.name}: conda env {target!r} does not exist"
            assert resolved.parent == ENV_DIR, f"{smk.name}: conda env {target!r} is not in envs/"
