"""Reading, merging and validating configuration files against the packaged JSON schemas.

The schemas (``thetaflow/core/schemas/*.schema.yaml``, shipped as package data) fix
structure, types, ranges and defaults, with no unknown keys anywhere; :func:`validate` also
refuses every non-finite number (NaN, ±inf), which JSON Schema cannot. What a schema cannot
express (cross-references, expressions, features) each stage checks in its own ``checks``
module; :mod:`thetaflow.analysis` runs them all. Every error names the key (as a dotted
path) and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.protocols import Validator

from thetaflow.core.errors import ConfigError

#: a key's path in a document: map keys and list indices, root first
KeyPath = tuple[str | int, ...]


def _key_path(path: Iterable[str | int]) -> str:
    """A document path as the dotted key a user writes: ``a.b[0].c``."""
    parts: list[str] = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "(top level)"


def _extend_with_defaults(validator_class: type[Validator]) -> type[Validator]:
    """A jsonschema validator that also fills ``default`` values (as snakemake's validate)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: Validator, properties: Mapping[str, Any], instance: Any, schema: Any
    ) -> Iterator[jsonschema.ValidationError]:
        """Fill the missing properties' defaults, then validate them as jsonschema does."""
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _extend_with_defaults(jsonschema.Draft202012Validator)


def read_schema(schema_name: str) -> Any:
    """A schema shipped with the package (``thetaflow/core/schemas/``), found through
    importlib.resources so that an installed package finds it too."""
    text = resources.files("thetaflow.core").joinpath("schemas", schema_name).read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def _validator(schema_name: str) -> Validator:
    """The validator of a packaged schema, built once per process (parse-time checks of
    many configs, as in the tests, would otherwise re-read the schema every time)."""
    return _Validator(read_schema(schema_name))


def validate(data: Any, schema_name: str, source: str) -> Any:
    """Validate ``data`` against the packaged schema ``schema_name``, filling defaults, and
    refuse every non-finite number anywhere in it (free-form blocks such as model
    parameters included: a NaN luminosity would make every weight NaN).

    Raises:
        ConfigError: naming ``source``, the offending key path and the expectation.
    """
    problems = [p for e in _validator(schema_name).iter_errors(data) for p in _explain(e)]
    problems += [
        (path, f"a finite number expected, got {value}") for path, value in _non_finite(data)
    ]
    if problems:
        problems.sort(key=lambda p: [str(k) for k in p[0]])
        lines = [f"{source}: key '{_key_path(path)}': {why}" for path, why in problems[:10]]
        raise ConfigError("invalid configuration\n  " + "\n  ".join(lines))
    return data


def _non_finite(data: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, float]]:
    """(key path, value) of every NaN or infinite float in a YAML document."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _non_finite(value, (*path, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _non_finite(value, (*path, i))
    elif isinstance(data, float) and not math.isfinite(data):
        yield path, data


def _explain(error: jsonschema.ValidationError) -> list[tuple[KeyPath, str]]:
    """(key path, short human sentence) for a schema violation: one per unknown key (with a
    suggestion), one per excluded key (``not: {required: [...]}``, the schema's description
    saying why); a failed ``oneOf``/``anyOf`` explained by its most relevant branch."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        parent = _key_path(error.absolute_path)
        out = []
        for key in sorted(set(error.instance) - allowed, key=str):
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(
                (
                    (*error.absolute_path, str(key)),
                    f"unknown key{hint}; allowed in '{parent}': {', '.join(sorted(allowed))}",
                )
            )
        return out
    excluded = error.validator_value if error.validator == "not" else None
    if isinstance(excluded, dict) and list(excluded) == ["required"]:
        why = error.schema.get("description", "excluded by another key here")
        return [
            ((*error.absolute_path, str(k)), f"not allowed: {why}") for k in excluded["required"]
        ]
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _explain(jsonschema.exceptions.best_match(error.context))
    return [(tuple(error.absolute_path), error.message)]


def deep_merge(base: dict, override: Mapping) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (as Snakemake merges configs)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Read a YAML file, naming it in any error."""
    try:
        # the C loader when PyYAML has libyaml (a 200-sample list: 8 ms instead of 62 ms)
        return yaml.load(
            Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err


def resolve_path(path: str, search: Iterable[str | os.PathLike[str]]) -> Path:
    """Find a relative config path in the working directory, then in ``search`` dirs."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in search:
        candidate = Path(base) / p
        if candidate.exists():
            return candidate
    return p
