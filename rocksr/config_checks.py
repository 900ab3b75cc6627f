"""One-line checks of the workflow config that the JSON schema reports badly or cannot express.

Run before :func:`snakemake.utils.validate` (whose messages for a misspelt top-level key or a
``oneOf`` sample run to hundreds of lines): each problem raises :class:`ConfigError` with one
line naming the key. Also the checks of paths the workflow writes: a safe run name, and every
output under ``results/<run>/``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable

from rocksr.config.merge import ConfigError, suggest

RUN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
FRACTION_TOLERANCE = 1e-6


def check_run_name(run: object) -> str:
    """``run`` as a single safe folder name under ``results/`` (not ``.``, ``..``, no ``/``)."""
    if not isinstance(run, str) or not re.match(RUN_PATTERN, run) or run in (".", ".."):
        raise ConfigError(
            f"config: run: {run!r} is not a safe folder name; use letters, digits, '_', '-' and "
            "'.', not starting with '.' (outputs go to results/<run>/)"
        )
    return run


def precheck_config(config: dict, schema: dict) -> None:
    """Raise :class:`ConfigError` (one line) for the problems the schema reports badly."""
    valid = schema.get("properties", {})
    for key in config:
        if key not in valid:
            raise ConfigError(
                f"config: unknown top-level key {key!r}{suggest(key, valid)}; valid keys: "
                + ", ".join(valid)
            )
    check_run_name(config.get("run", valid.get("run", {}).get("default", "demo")))
    samples = config.get("samples")
    if not isinstance(samples, list) or not samples:
        raise ConfigError("config: samples: give a list of at least one sample")
    for i, s in enumerate(samples):
        if not isinstance(s, dict) or "name" not in s:
            raise ConfigError(f"config: samples[{i}]: each sample needs a 'name'")
        name = s["name"]
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
    angles = (config.get("tiling") or {}).get("angles")
    if isinstance(angles, list):
        numbers = [float(a) % 360 for a in angles if isinstance(a, int | float)]
        seen = [a for a, c in Counter(numbers).items() if c > 1]
        if seen:
            raise ConfigError(
                f"config: tiling.angles repeats {sorted(seen)}; every angle must "
                "appear once (a repeated angle duplicates every view)"
            )
    split = config.get("split") or {}
    fractions = split.get("fractions")
    if (
        isinstance(fractions, dict)
        and split.get("strategy") != "holdout_sample"
        and all(isinstance(v, int | float) for v in fractions.values())
    ):
        check_fractions(fractions)


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
