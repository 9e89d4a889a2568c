"""Checks that the per-stage conda environments in envs/ agree with pyproject.toml.

Every env file must use conda-forge, pin python=3.11, and pin each package to an
exact version that satisfies the compatible-release specifier of the same package in
``[project].dependencies``. Every ``conda:`` directive in workflow/rules/*.smk must
point at an existing env file, and that env must hold every package the rule's script
imports when it loads. Pure parsing: no network, no conda.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
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


RULE_BLOCK = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.M | re.S)
SCRIPT_DIRECTIVE = re.compile(r'script:\s*\n?\s*"([^"]+)"')
SRC_DIR = ROOT / "src"


def _load_time_imports(path: Path) -> set[str]:
    """Dotted names of the modules ``path`` imports when it is loaded: module-level imports,
    including those in top-level ``if``/``try`` blocks, but not ``if TYPE_CHECKING:`` ones nor
    optional ones in a ``try`` that catches ImportError. Imports inside functions are left
    out: which of them run depends on the call, which static reading cannot follow."""
    names: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try) and not any(
                handler.type is not None and "ImportError" in ast.unparse(handler.type)
                for handler in node.handlers
            ):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return names


def _third_party_modules(script: Path) -> set[str]:
    """Top-level third-party modules loading ``script`` imports: its own and those of every
    thetaflow module (and parent package) loaded along the way."""
    seen: set[Path] = set()
    todo, third_party = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _load_time_imports(path):
            parts = name.split(".")
            if parts[0] == "thetaflow":
                for depth in range(1, len(parts) + 1):
                    module = SRC_DIR.joinpath(*parts[:depth])
                    todo.extend(
                        p
                        for p in (module.with_suffix(".py"), module / "__init__.py")
                        if p.is_file()
                    )
            elif parts[0] not in sys.stdlib_module_names and parts[0] != "__future__":
                third_party.add(parts[0])
    return third_party


def _rules_with_env_and_script() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) of every rule that runs a script in a conda env."""
    out = []
    for smk in sorted(RULES_DIR.glob("*.smk")):
        for rule, body in RULE_BLOCK.findall(smk.read_text()):
            env, script = CONDA_DIRECTIVE.search(body), SCRIPT_DIRECTIVE.search(body)
            if env and script:
                out.append(
                    (
                        rule,
                        (RULES_DIR / env.group(1)).resolve(),
                        (RULES_DIR / script.group(1)).resolve(),
                    )
                )
    return out


def test_every_script_rule_is_checked() -> None:
    assert len(_rules_with_env_and_script()) >= 30


@pytest.mark.parametrize(
    "rule, env, script",
    _rules_with_env_and_script(),
    ids=[rule for rule, _, _ in _rules_with_env_and_script()],
)
def test_env_holds_what_its_rule_script_imports(rule: str, env: Path, script: Path) -> None:
    """`snakemake --use-conda` runs the script in the rule's env: every third-party module
    imported while loading the script and the thetaflow modules it reaches must be pinned
    there (thetaflow itself comes from the checkout's src/, which the workflow puts on
    PYTHONPATH)."""
    distributions = packages_distributions()
    pinned = {canonicalize_name(CONDA_TO_PYPI.get(n, n)) for _, n, _ in _pins(env)}
    missing = sorted(
        module
        for module in _third_party_modules(script)
        if not {canonicalize_name(d) for d in distributions.get(module, [module])} & pinned
    )
    assert not missing, f"rule {rule}: {script.name} imports {missing}, which {env.name} lacks"
