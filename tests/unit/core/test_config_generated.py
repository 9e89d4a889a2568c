"""Every leaf of the config and sample-list schemas, set every way they forbid, is refused at
parse time with a ConfigError naming the key's dotted path.

The cases are generated from the packaged schemas over the default analysis: for each leaf a
wrong type; each bound, enum, pattern, length and size crossed; NaN, +inf and -inf where a
number is expected; an unknown sibling key. Values only a stage can judge (expressions,
feature and sample names, fixed-point types, model families, files) come from ``DOMAIN``. A
string leaf in neither ``DOMAIN`` nor ``EXEMPT`` fails the test, so no new key goes unchecked.
Each case goes through :func:`thetaflow.analysis.prepare`, the call of the Snakefile.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from thetaflow.analysis import prepare
from thetaflow.core.config import read_schema, read_yaml, validate
from thetaflow.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
UNKNOWN = "zz_unknown"
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
Path_ = tuple[str | int, ...]

# values the schema lets through and a stage's check refuses, by leaf pattern (map keys as
# <*>, entries of a list of objects as []; sample-list leaves start with <*>)
Bad = tuple[Path_, Any, Path_, dict[Path_, Any]]


def bad(
    path: Path_, value: Any, named: Path_ | None = None, context: dict[str, Any] | None = None
) -> Bad:
    """A DOMAIN case: ``value`` at ``path``, the error naming ``named`` (default ``path``);
    ``context`` (dotted key -> value) is set first."""
    return (
        path,
        value,
        path if named is None else named,
        {tuple(k.split(".")): v for k, v in (context or {}).items()},
    )


SIDEBANDS = {"anomaly.training.source": "sidebands"}  # the signal region is read only then
REGION = {"name": "sr", "kind": "signal", "expr": "n_jets >= 2"}  # the default has no regions
FPGA = ("benchmarks", "fpga")
DOMAIN: dict[str, list[Bad]] = {
    "samples": [bad(("samples",), "missing.yaml")],
    **{
        f"selection.objects.{o}": [bad(("selection", "objects", o), "pt >")]
        for o in ("muon", "electron", "jet")
    },
    "selection.cuts[].expr": [
        bad(("selection", "cuts", 0, "expr"), expr)
        for expr in ("n_jets >", "__import__('os')", "mll > 3")  # mll: not an event variable
    ],
    "regions[].expr": [
        bad(("regions", 0, "expr"), expr, context={"regions": [REGION]})
        for expr in ("n_jets >", "m_bb > 3")  # m_bb: not an event variable
    ],
    "features": [bad(("features", 0), "m_bbb", ("features",))],
    "ml.inputs": [bad(("ml", "inputs"), ["m_bbb"])],
    "ml.models.<*>.family": [bad(("ml", "models", "bdt", "family"), "nope")],
    "ml.models.<*>.params": [
        bad(("ml", "models", "bdt", "params"), {UNKNOWN: 1}),
        bad(("ml", "models", "bdt", "params"), {"n_estimators": "many"}),
        bad(
            ("ml", "models", "bdt", "params"),
            {"learning_rate": math.nan},
            ("ml", "models", "bdt", "params", "learning_rate"),
        ),
    ],
    "ml.optimiser_study.model": [
        bad(("ml", "optimiser_study", "model"), name) for name in ("bdt", "nope")
    ],
    "ml.optimiser_study.fold": [bad(("ml", "optimiser_study", "fold"), 5)],  # ml.folds: 5
    "ml.optimiser_study.optimizers[].name": [
        bad(("ml", "optimiser_study", "optimizers", 0, "name"), "lbfgs")
    ],
    "anomaly.inputs": [bad(("anomaly", "inputs"), ["m_bbb"])],
    "anomaly.training.sideband_data": [bad(("anomaly", "training", "sideband_data"), "zh")],
    "anomaly.training.signal_region.feature": [
        bad(("anomaly", "training", "signal_region", "feature"), "m_bbb", context=SIDEBANDS)
    ],
    "anomaly.training.signal_region.window_gev": [
        bad(
            ("anomaly", "training", "signal_region", "window_gev"), [150.0, 90.0], context=SIDEBANDS
        )
    ],
    "anomaly.blind_search.data": [bad(("anomaly", "blind_search", "data"), ["zh"])],
    "inference.data": [bad(("inference", "data"), "zh")],
    "inference.discriminants.<*>.feature": [
        bad(("inference", "discriminants", "m_bb", "feature"), "m_bbb")
    ],
    "inference.headline": [bad(("inference", "headline"), "nope")],
    "inference.reference": [bad(("inference", "reference"), "nope")],
    "inference.normalisation.<*>.samples": [
        bad(("inference", "normalisation", "xsec_zz", "samples"), ["zz", "nope"])
    ],
    "inference.systematics.<*>.up": [
        bad(("inference", "systematics", "jes", "up"), "jes_sideways")
    ],
    "inference.systematics.<*>.down": [
        bad(("inference", "systematics", "btag_hf", "down"), "weight_nope")
    ],
    "inference.systematics.<*>.samples": [
        bad(("inference", "systematics", "jes", "samples"), ["zz", "nope"])
    ],
    "inference.scan.parameters": [bad(("inference", "scan", "parameters"), ["mu", "nope"])],
    "fastsim.sample": [bad(("fastsim", "sample"), name) for name in ("data", "nope")],
    "inference.limit.significance_of": [bad(("inference", "limit", "significance_of"), ["mu_zz"])],
    "inference.closure.discriminants": [bad(("inference", "closure", "discriminants"), ["nope"])],
    "benchmarks.models": [bad(("benchmarks", "models"), ["nope"], ("benchmarks", "models", 0))],
    "benchmarks.fold": [bad(("benchmarks", "fold"), 7)],
    "benchmarks.gpu.min_seconds": [bad(("benchmarks", "gpu", "min_seconds"), 100.0)],
    "benchmarks.fpga.default_precision": [
        bad((*FPGA, "default_precision"), text)
        for text in ("ap_fixed<4,9>", "ap_fixed<0,0>", "ap_fixed<16>", "float")
    ],
    "benchmarks.fpga.output_precision": [bad((*FPGA, "output_precision"), "ap_ufixed<8,9>")],
    # 6 bits hold no fractional bit beside the 6 integer bits of ap_fixed<16,6>
    "benchmarks.fpga.scan_widths": [bad((*FPGA, "scan_widths"), [6, 16])],
    "<*>.weight": [bad(("zh", "weight"), "genWeight >")],
    "<*>.color": [bad(("zh", "color"), "not-a-colour")],
    "<*>.files": [bad(("extra", "files"), ["missing.root"], ("extra", "files", 0))],
    "<*>.generate.pseudo_data.processes": [
        bad(("data_bsm", "generate", "pseudo_data", "processes"), ["nope"])
    ],
    # a parameter of another generator model
    "<*>.generate.higgs_mass_gev": [bad(("ttbar", "generate", "higgs_mass_gev"), 125.0)],
}

# string leaves whose value no parse-time check can judge, and why
EXEMPT = {
    # free text: a legend or axis label may be any string
    "inference.discriminants.<*>.label": "free text (axis label)",
    "<*>.label": "free text (legend label)",
    # a TTree name inside files that a generated sample has only after the simulation ran;
    # the schema refuses the empty name, the reader names the file and tree it misses
    "ingest.tree": "TTree name, known only once the files exist",
    "<*>.tree": "TTree name, known only once the files exist",
    # passed to Yosys synth_xilinx -family: the families depend on the installed Yosys (a
    # system tool the parse step does not need); the job records Yosys's refusal as skipped
    "benchmarks.fpga.yosys_family": "Yosys device family, judged by the installed Yosys",
}


@dataclass(frozen=True)
class Leaf:
    """A key with no sub-keys: its schema pattern, concrete path and resolved schema."""

    pattern: str
    path: Path_
    schema: dict
    present: bool


@dataclass(frozen=True)
class Case:
    """One bad value: where it goes, in which document, and the key its error must name."""

    id: str
    document: str  # "config" or "samples"
    path: Path_
    value: Any
    expected: Path_
    context: tuple[tuple[Path_, Any], ...] = ()


def dotted(path: Path_) -> str:
    """The key path as errors spell it: ``a.b[0].c``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def resolve(node: dict, root: dict) -> dict:
    """``node`` with its local ``$ref`` followed."""
    while "$ref" in node:
        target = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def is_valid(node: dict, root: dict, instance: Any) -> bool:
    """Whether ``instance`` satisfies ``node`` (local references resolved against ``root``)."""
    return Draft202012Validator({**node, "$defs": root.get("$defs", {})}).is_valid(instance)


def parts(node: dict, root: dict, instance: Any) -> list[dict]:
    """The (sub)schemas whose keys apply to ``instance``: the node, the if/then/else branch
    it takes and the oneOf/anyOf branches it satisfies (every branch when it is absent)."""
    out = [node]
    if "if" in node:
        taken = [node["then"], node["else"]]
        if instance is not None:
            taken = [taken[0] if is_valid(node["if"], root, instance) else taken[1]]
        out += [resolve(t, root) for t in taken]
    for keyword in ("oneOf", "anyOf"):
        for sub in node.get(keyword, []):
            if instance is None or is_valid(sub, root, instance):
                out.append(resolve(sub, root))
    return out


def walk(node: dict, root: dict, instance: Any, path: Path_, pattern: str) -> Iterator[Leaf]:
    """Every leaf under ``node``; map entries and list entries of ``instance`` all walked."""
    node = resolve(node, root)
    children: list[tuple[dict, Any, Path_, str]] = []
    join = f"{pattern}." if pattern else ""
    for part in parts(node, root, instance):
        held = instance if isinstance(instance, dict) else {}
        for name, sub in part.get("properties", {}).items():
            children.append((sub, held.get(name), (*path, name), join + name))
        extra = part.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in held.items():
                children.append((extra, value, (*path, name), join + "<*>"))
        items = part.get("items")
        if isinstance(items, dict) and "properties" in resolve(items, root):
            first = instance[0] if isinstance(instance, list) and instance else None
            children.append((items, first, (*path, 0), pattern + "[]"))
    if not children:
        yield Leaf(pattern, path, node, instance is not None)
    for sub, value, sub_path, sub_pattern in children:
        yield from walk(sub, root, value, sub_path, sub_pattern)


def leaves(schema_name: str, document: Any) -> dict[str, Leaf]:
    """One leaf per schema pattern: the first present in ``document``, else the first absent."""
    root = read_schema(schema_name)
    chosen: dict[str, Leaf] = {}
    for leaf in walk(root, root, document, (), ""):
        if leaf.pattern not in chosen or (leaf.present and not chosen[leaf.pattern].present):
            chosen[leaf.pattern] = leaf
    return chosen


def types(schema: dict) -> set[str]:
    """The JSON types a schema allows (an enum's from its values)."""
    t = schema.get("type")
    if t is not None:
        return {t} if isinstance(t, str) else set(t)
    return {"string"} if "enum" in schema else set()


def example(schema: dict) -> Any:
    """A value of ``schema``'s type inside its bounds (to fill lists to a forbidden size)."""
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = types(schema)
    if kind & {"number", "integer"}:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return low + 1 if "integer" in kind else low + 0.5
    return "x"


def wrong_type(schema: dict) -> Any:
    """A value of a JSON type ``schema`` does not allow."""
    kind = types(schema)
    if kind & {"number", "integer", "boolean", "array", "object"}:
        return "not-of-this-type"
    return 12345


def scalar_values(schema: dict) -> Iterator[tuple[str, Any]]:
    """(label, value) of every bad scalar for ``schema``: wrong type, each bound crossed,
    outside the enum, against the pattern, too short, non-finite where a number goes."""
    yield "type", wrong_type(schema)
    for bound, step in (
        ("minimum", -1),
        ("exclusiveMinimum", 0),
        ("maximum", 1),
        ("exclusiveMaximum", 0),
    ):
        if bound in schema:
            yield bound, schema[bound] + step
    if "enum" in schema:
        yield "enum", "not_a_choice"
    if "pattern" in schema:
        value = "0 not a name!"
        assert not re.search(schema["pattern"], value)
        yield "pattern", value
    if schema.get("minLength", 0) > 0:
        yield "minLength", ""
    if types(schema) & {"number", "integer"}:
        yield from NON_FINITE.items()


def leaf_cases(document: str, leaf: Leaf, root: dict) -> Iterator[Case]:
    """The generated cases of one leaf."""

    def case(label: str, path: Path_, value: Any) -> Case:
        return Case(f"{document}:{dotted(path)}:{label}", document, path, value, path)

    s = leaf.schema
    if "array" in types(s):
        yield case("type", leaf.path, wrong_type(s))
        items = resolve(s.get("items", {}), root)
        if s.get("minItems", 0) > 0:
            yield case("minItems", leaf.path, [example(items)] * (s["minItems"] - 1))
        if "maxItems" in s:
            yield case("maxItems", leaf.path, [example(items)] * (s["maxItems"] + 1))
        if s.get("uniqueItems"):
            yield case("uniqueItems", leaf.path, [example(items)] * 2)
        for label, value in scalar_values(items):
            yield case(f"item-{label}", (*leaf.path, 0), value)
    else:
        for label, value in scalar_values(s):
            yield case(label, leaf.path, value)
    yield case("unknown", (*leaf.path[:-1], UNKNOWN), 1)


def domain_cases(document: str, pattern: str) -> Iterator[Case]:
    """The ``DOMAIN`` cases of a leaf."""
    for i, (path, value, expected, context) in enumerate(DOMAIN.get(pattern, [])):
        yield Case(
            f"{document}:{pattern}:domain{i}",
            document,
            path,
            value,
            expected,
            tuple(context.items()),
        )


def base_samples(files_sample: str) -> dict:
    """The default sample list plus a sample that reads a file (the default has none)."""
    samples = read_yaml(REPO / "config" / "samples.yaml")
    samples["extra"] = {"kind": "background", "xsec_pb": 1.0, "files": [files_sample]}
    return samples


def generate() -> tuple[list[Case], dict[str, dict[str, Leaf]]]:
    """Every case, and the leaves by document (for the coverage checks)."""
    config = read_yaml(REPO / "config" / "config.yaml")
    validate(config, "config.schema.yaml", "config")
    samples = validate(base_samples("events.root"), "samples.schema.yaml", "samples")
    found = {
        "config": leaves("config.schema.yaml", config),
        "samples": leaves("samples.schema.yaml", samples),
    }
    cases: dict[str, Case] = {}
    for document, schema_name in (
        ("config", "config.schema.yaml"),
        ("samples", "samples.schema.yaml"),
    ):
        root = read_schema(schema_name)
        for pattern, leaf in found[document].items():
            for c in (*leaf_cases(document, leaf, root), *domain_cases(document, pattern)):
                cases.setdefault(c.id, c)  # siblings share their unknown-key case
    return list(cases.values()), found


CASES, LEAVES = generate()


def set_at(document: Any, path: Path_, value: Any) -> None:
    """Put ``value`` at ``path``, creating missing maps and lists on the way."""
    node = document
    for key, following in zip(path[:-1], path[1:], strict=True):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(node, list):
            if len(node) <= int(key):
                node.append(empty)
        elif node.get(key) is None:
            node[key] = empty
        node = node[key]
    last = path[-1]
    if isinstance(last, int) and last >= len(node):
        node.append(value)
    else:
        node[last] = value


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    """(default config, sample list with a file-reading sample, the list's folder)."""
    folder = tmp_path_factory.mktemp("generated")
    events = folder / "events.root"
    events.touch()
    samples = base_samples(str(events))
    config = read_yaml(REPO / "config" / "config.yaml")
    config["samples"] = str(folder / "samples.yaml")
    (folder / "samples.yaml").write_text(yaml.safe_dump(samples, sort_keys=False))
    prepare(copy.deepcopy(config), [REPO])  # the base itself is valid
    return config, samples, folder


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_value_is_refused_at_parse_naming_its_key(case: Case, base) -> None:
    config, samples, folder = copy.deepcopy(base[0]), copy.deepcopy(base[1]), base[2]
    for path, value in case.context:
        set_at(config, path, value)
    if case.document == "config":
        set_at(config, case.path, case.value)
    else:
        set_at(samples, case.path, case.value)
        config["samples"] = str(folder / "case.yaml")
        (folder / "case.yaml").write_text(yaml.safe_dump(samples, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        prepare(config, [REPO])
    key = dotted(case.expected)
    names = (f"'{key}'",) if case.document == "config" else (f"'{key}'", f"'samples.{key}'")
    assert any(n in str(info.value) for n in names), f"{key} not named in: {info.value}"


def test_every_string_leaf_has_a_domain_check_or_an_exemption() -> None:
    """A string leaf the schema does not pin (enum, pattern) needs DOMAIN cases or a reason
    in EXEMPT; every DOMAIN and EXEMPT entry names an existing leaf."""
    patterns = {p for found in LEAVES.values() for p in found}
    free = set()
    for found in LEAVES.values():
        for pattern, leaf in found.items():
            s = leaf.schema
            if "array" in types(s):
                s = s.get("items", {})
            if types(s) == {"string"} and "enum" not in s and "pattern" not in s:
                free.add(pattern)
    assert sorted(free - set(DOMAIN) - set(EXEMPT)) == []
    assert sorted((set(DOMAIN) | set(EXEMPT)) - patterns) == []
    assert not set(DOMAIN) & set(EXEMPT)
