"""One-line checks of the workflow config that the JSON schema reports badly or cannot express.

Run before the schema's defaults are filled in (jsonschema's own messages for a misspelt
top-level key or a ``oneOf`` sample run to hundreds of lines): each problem raises
:class:`ConfigError` with one line naming the key, and :func:`schema_problem` says in one line
what the schema itself refuses. NaN and infinity, which the schema's bounds let through, are
refused anywhere. Also the checks of paths the workflow writes: a safe, not too long run name,
and every output under ``results/<run>/``.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rocksr.config.enhance import Enhance
from rocksr.config.merge import ConfigError, suggest

RUN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
# a run name is a folder name under results/ and part of every output's path
RUN_MAX_LENGTH = 100
FRACTION_TOLERANCE = 1e-6


def check_run_name(run: object) -> str:
    """``run`` as a single safe folder name under ``results/`` (not ``.``, ``..``, no ``/``)."""
    if not isinstance(run, str) or not re.match(RUN_PATTERN, run) or run in (".", ".."):
        raise ConfigError(
            f"config: run: {reprlib.repr(run)} is not a safe folder name; use letters, digits, "
            "'_', '-' and '.', not starting with '.' (outputs go to results/<run>/)"
        )
    if len(run) > RUN_MAX_LENGTH:
        raise ConfigError(
            f"config: run: {reprlib.repr(run)} is {len(run)} characters long; use at most "
            f"{RUN_MAX_LENGTH} (outputs go to results/<run>/)"
        )
    return run


def dotted(path: Iterable[Any]) -> str:
    """``["samples", 0, "mct"]`` -> ``samples[0].mct``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def nonfinite_keys(value: Any, path: tuple = ()) -> list[str]:
    """``key = value`` (the dotted key) of every NaN or infinite number in ``value``."""
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in nonfinite_keys(v, (*path, key))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in nonfinite_keys(v, (*path, i))]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{dotted(path)} = {value}"]
    return []


def schema_problem(config: dict, schema: dict) -> str | None:
    """The schema's most relevant complaint about ``config`` as one line naming the key (None:
    valid). An unknown key is named with the closest valid one."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    where = dotted(error.absolute_path) or "(top level)"
    known = error.schema.get("properties") if isinstance(error.schema, dict) else None
    if error.validator == "additionalProperties" and isinstance(error.instance, dict) and known:
        unknown = [k for k in error.instance if k not in known]
        if unknown:
            return (
                f"config: {where}: unknown key {unknown[0]!r}{suggest(str(unknown[0]), known)}; "
                f"valid keys: {', '.join(known)}"
            )
    message = " ".join(error.message.split())
    long = repr(error.instance)
    if message.startswith(long) and len(long) > 60:
        message = reprlib.repr(error.instance) + message[len(long) :]
    return f"config: {where}: {message}"


def precheck_config(config: dict, schema: dict) -> None:
    """Raise :class:`ConfigError` (one line) for the problems the schema reports badly."""
    valid = schema.get("properties", {})
    for key in config:
        if key not in valid:
            raise ConfigError(
                f"config: unknown top-level key {key!r}{suggest(str(key), valid)}; valid keys: "
                + ", ".join(valid)
            )
    bad = nonfinite_keys(config)
    if bad:
        raise ConfigError(
            f"config: {', '.join(bad)}: NaN and infinity are never valid settings; give a finite "
            "number"
        )
    check_run_name(config.get("run", valid.get("run", {}).get("default", "demo")))
    samples = config.get("samples")
    if not isinstance(samples, list) or not samples:
        raise ConfigError("config: samples: give a list of at least one sample")
    sample_keys = list(valid.get("samples", {}).get("items", {}).get("properties", {}))
    for i, s in enumerate(samples):
        if not isinstance(s, dict) or "name" not in s:
            raise ConfigError(f"config: samples[{i}]: each sample needs a 'name'")
        name = s["name"]
        unknown = [k for k in s if k not in sample_keys]
        if unknown and sample_keys:
            raise ConfigError(
                f"config: sample {name!r}: unknown key {unknown[0]!r}"
                f"{suggest(str(unknown[0]), sample_keys)}; valid keys: {', '.join(sample_keys)}"
            )
        files = [k for k in ("mct", "sem") if k in s]
        if "synthetic" in s and files:
            raise ConfigError(
                f"config: sample {name!r} has both 'synthetic' and {' and '.join(map(repr, files))}"
                "; give either a file pair (mct, sem) or synthetic, not both"
            )
        if "synthetic" not in s and len(files) != 2:
            missing = [k for k in ("mct", "sem") if k not in s]
            raise ConfigError(
                f"config: sample {name!r} lacks {' and '.join(map(repr, missing))}; give a file "
                "pair (mct, sem) or synthetic"
            )
    dup = sorted(n for n, c in Counter(str(s["name"]) for s in samples).items() if c > 1)
    if dup:
        raise ConfigError(
            f"config: duplicate sample name(s) {', '.join(map(repr, dup))}; "
            "sample names must be unique"
        )
    angles = _section(config, "tiling").get("angles")
    if isinstance(angles, list):
        numbers = [float(a) % 360 for a in angles if isinstance(a, int | float)]
        seen = [a for a, c in Counter(numbers).items() if c > 1]
        if seen:
            raise ConfigError(
                f"config: tiling.angles repeats {sorted(seen)}; every angle must "
                "appear once (a repeated angle duplicates every view)"
            )
    split = _section(config, "split")
    fractions = split.get("fractions")
    if (
        isinstance(fractions, dict)
        and split.get("strategy") != "holdout_sample"
        and all(isinstance(v, int | float) for v in fractions.values())
    ):
        check_fractions(fractions)
    enhance = _section(config, "enhance")
    crop, figure_crop = enhance.get("crop"), enhance.get("figure_crop", Enhance().figure_crop)
    if isinstance(crop, int) and isinstance(figure_crop, int) and crop < figure_crop:
        raise ConfigError(
            f"config: enhance.crop {crop} is smaller than enhance.figure_crop {figure_crop}: the "
            "figure shows a crop of the enhanced square; raise crop or lower figure_crop"
        )


def _section(config: dict, key: str) -> dict:
    """``config[key]`` when it is a mapping, else ``{}`` (the schema check names a wrong type)."""
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def check_fractions(fractions: dict) -> None:
    """Split fractions must sum to 1 (within 1e-6): nothing is rescaled in silence."""
    total = sum(float(v) for v in fractions.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise ConfigError(
            f"config: split.fractions {fractions} sum to {total:g}; they must sum to 1"
        )


def check_outputs_under(root: str, paths: Iterable[str]) -> None:
    """Raise unless every path (rule outputs, logs, benchmarks) stays inside ``root``."""
    base = os.path.normpath(root)
    for p in paths:
        norm = os.path.normpath(str(p))
        if os.path.isabs(norm) or not (norm == base or norm.startswith(base + os.sep)):
            raise ConfigError(f"workflow: output {p} is outside {root}/; refusing to run")
