"""A job's settings: the part of the analysis config one job reads, with the config's nesting.

The workflow passes each job only this slice (as a rule's ``params``), so that a change to a
config key reruns exactly the jobs that read it, and a job cannot read a key its params lack.
The sample list enters a slice as the specs of the samples the job reads (``samples``: name ->
spec, in sample-list order) instead of the path of the list; :func:`load_samples
<thetaflow.core.samples.load_samples>` accepts either.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

_MISSING = object()


def _lookup(config: Mapping[str, Any], keys: list[str]) -> Any:
    node: Any = config
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _put(out: dict[str, Any], keys: list[str], value: Any) -> None:
    node = out
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def config_slice(
    config: Mapping[str, Any],
    paths: Iterable[str],
    samples: Mapping[str, Mapping[str, Any]] | None = None,
    keys_of: Iterable[str] = (),
    present: Iterable[str] = (),
) -> dict[str, Any]:
    """The sub-trees of ``config`` at the dotted ``paths`` (``"inference.closure"``), nested as
    in ``config``; a path the config lacks is left out, so a job's ``config.get(key, default)``
    sees what it would see in the whole config. ``samples``: the sample specs the job reads.
    ``keys_of``: mappings whose names (not values) the job reads, such as ``ml.models`` for a
    model's seed: name -> {} unless ``paths`` holds that entry. ``present``: mappings whose
    presence alone the job checks (``"anomaly" in config``): an empty mapping.
    """
    out: dict[str, Any] = {}
    for path in present:
        if isinstance(_lookup(config, path.split(".")), Mapping):
            _put(out, path.split("."), {})
    for path in keys_of:
        keys = path.split(".")
        value = _lookup(config, keys)
        if isinstance(value, Mapping):
            _put(out, keys, {name: {} for name in value})
    for path in paths:
        keys = path.split(".")
        value = _lookup(config, keys)
        if value is _MISSING:
            continue
        _put(out, keys, copy.deepcopy(value))
    if samples is not None:
        out["samples"] = {name: copy.deepcopy(dict(spec)) for name, spec in samples.items()}
    return out
