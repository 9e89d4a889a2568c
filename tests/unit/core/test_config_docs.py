"""config/README.md documents exactly the keys of the config and sample-list schemas.

How a key is recognised in config/README.md: a row of a Markdown table whose first column is
headed ``key``; the first cell holds one key path in backticks, e.g. ``ml.models.<model>.family``.

* segments are joined by ``.``; ``<anything>`` is a name the user chooses (a map-like section:
  ``additionalProperties`` in the schema);
* ``name[]`` is an entry of a list of objects (``selection.cuts[].expr``);
* ``{a,b}`` stands for each alternative (``simulation.detector.{muon,electron}.efficiency``);
* paths starting with ``<sample>.`` are keys of the sample list (samples.schema.yaml), the
  others of the config (config.schema.yaml).

Every leaf of a schema (a key with no sub-keys) must be documented, and every documented path
must exist in its schema (a leaf or a section above leaves).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from thetaflow.core.config import read_schema

README = Path(__file__).resolve().parents[3] / "config" / "README.md"
SAMPLE_PREFIX = "<sample>."
_PLACEHOLDER = re.compile(r"<[^<>.]+>")
_BRACES = re.compile(r"\{([^{}]+)\}")


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        target = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _alternatives(schema: dict, root: dict) -> list[dict]:
    """The schema and every branch of its oneOf/anyOf/allOf and if/then/else (their keys
    all count)."""
    schema = _resolve(schema, root)
    out = [schema]
    for keyword in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(keyword, []):
            out += _alternatives(sub, root)
    for keyword in ("then", "else"):
        if keyword in schema:
            out += _alternatives(schema[keyword], root)
    return out


def schema_paths(schema: dict, root: dict, prefix: tuple[str, ...] = ()) -> tuple[set, set]:
    """(leaf key paths, section key paths) of ``schema``; maps become ``<*>``, lists ``[]``."""
    leaves: set[str] = set()
    sections: set[str] = set()
    has_children = False
    for alt in _alternatives(schema, root):
        children: list[tuple[tuple[str, ...], dict]] = [
            ((*prefix, name), sub) for name, sub in alt.get("properties", {}).items()
        ]
        extra = alt.get("additionalProperties")
        if isinstance(extra, dict):
            children.append(((*prefix, "<*>"), extra))
        items = alt.get("items")
        if (
            prefix
            and isinstance(items, dict)
            and any(a.get("properties") for a in _alternatives(items, root))
        ):
            children.append(((*prefix[:-1], prefix[-1] + "[]"), items))
        for path, sub in children:
            has_children = True
            sub_leaves, sub_sections = schema_paths(sub, root, path)
            leaves |= sub_leaves
            sections |= sub_sections
    if prefix:
        (sections if has_children else leaves).add(".".join(prefix))
    return leaves, sections


def _expand(path: str) -> list[str]:
    """``a.{b,c}.d`` -> [``a.b.d``, ``a.c.d``]; placeholders normalised to ``<*>``."""
    parts = _BRACES.split(path)  # odd indices are the brace contents
    choices = [
        [p.strip() for p in part.split(",")] if i % 2 else [part] for i, part in enumerate(parts)
    ]
    return [_PLACEHOLDER.sub("<*>", "".join(c)) for c in itertools.product(*choices)]


def documented_paths(text: str) -> tuple[set[str], set[str]]:
    """(config key paths, sample-list key paths) documented by the ``key`` tables of ``text``."""
    config: set[str] = set()
    samples: set[str] = set()
    in_key_table = False
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            in_key_table = False
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "key":
            in_key_table = True
            continue
        if not in_key_table or set(cells[0]) <= set("-: "):
            continue
        match = re.fullmatch(r"`([^`]+)`", cells[0])
        assert match, f"config/README.md: key cell {cells[0]!r} is not one key path in backticks"
        key = match.group(1)
        if key.startswith(SAMPLE_PREFIX):
            samples.update(_expand(key[len(SAMPLE_PREFIX) :]))
        else:
            config.update(_expand(key))
    return config, samples


def _check(documented: set[str], schema_name: str, what: str) -> list[str]:
    root: Any = read_schema(schema_name)
    leaves, sections = schema_paths(root, root)
    if what == "sample list":  # the top level is the map sample name -> definition
        leaves = {p.removeprefix("<*>.") for p in leaves}
        sections = {p.removeprefix("<*>.") for p in sections if p != "<*>"}
    problems = [
        f"{what} key '{p}' is in {schema_name} but not documented"
        for p in sorted(leaves - documented)
    ]
    problems += [
        f"{what} key '{p}' is documented but not in {schema_name}"
        for p in sorted(documented - leaves - sections)
    ]
    return problems


def doc_problems(text: str) -> list[str]:
    config, samples = documented_paths(text)
    return _check(config, "config.schema.yaml", "config") + _check(
        samples, "samples.schema.yaml", "sample list"
    )


def test_config_readme_documents_exactly_the_schema_keys():
    problems = doc_problems(README.read_text(encoding="utf-8"))
    assert not problems, "config/README.md and the schemas disagree:\n" + "\n".join(problems)


def test_schema_walk_finds_leaves_maps_and_lists():
    root: Any = read_schema("config.schema.yaml")
    leaves, sections = schema_paths(root, root)
    assert {"analysis.lumi_fb", "ml.models.<*>.family", "selection.cuts[].expr"} <= leaves
    assert "inference.discriminants.<*>.binning.n_bins" in leaves  # through a $ref
    assert {"simulation.detector", "ml.models"} <= sections
    samples: Any = read_schema("samples.schema.yaml")
    sample_leaves, _ = schema_paths(samples, samples)
    # both branches of generate's oneOf
    assert {"<*>.generate.model", "<*>.generate.pseudo_data.seed"} <= sample_leaves


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("| `analysis.sqrt_s_tev` |", "| `analysis.sqrt_s_tev_x` |"),
            "'analysis.sqrt_s_tev' is in config.schema.yaml but not documented",
        ),
        (
            lambda t: t.replace("| `analysis.sqrt_s_tev` |", "| `analysis.sqrt_s_tev_x` |"),
            "'analysis.sqrt_s_tev_x' is documented but not in config.schema.yaml",
        ),
        (
            lambda t: t.replace(".{muon,electron}.efficiency", ".{muon}.efficiency"),
            "'simulation.detector.electron.efficiency' is in config.schema.yaml",
        ),
        (
            lambda t: t.replace("| `<sample>.tree` |", "| `<sample>.trees` |"),
            "sample list key 'tree' is in samples.schema.yaml but not documented",
        ),
    ],
)
def test_a_missing_or_unknown_key_is_reported(edit, message):
    text = README.read_text(encoding="utf-8")
    edited = edit(text)
    assert edited != text
    assert any(message in p for p in doc_problems(edited))


def test_expand_braces_and_placeholders():
    assert _expand("a.{b, c}.<name>.{d,e}") == ["a.b.<*>.d", "a.b.<*>.e", "a.c.<*>.d", "a.c.<*>.e"]
