"""What ``rocksr enhance`` records: the provenance stored in every output, the slice-to-slice
consistency of a stack, and the run's report (:func:`report_text` is what ``--report`` writes).

The provenance holds no timing and no location (paths inside the working directory are recorded
relative to it, :func:`rocksr.files.recorded_path`), so the same run in two folders writes the
same output bytes; the report adds the run's ``seconds``, ``megapixels_per_s`` and
``working_directory``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rocksr.enhance.inputs import CroppedSource, Source
from rocksr.enhance.normalization import Normalizer
from rocksr.enhance.outputs import ENHANCE_TOOL
from rocksr.enhance.slices import SliceSettings
from rocksr.inference import SAMPLE_SEEDING


def provenance(
    kind: str,
    ckpt_path: Path,
    src: Source,
    norm: Normalizer,
    settings: SliceSettings,
    *,
    mct_scale: int,
    tile_source: str,
) -> dict:
    """The record stored in every output (and opening the report): the checkpoint, the input,
    the normalization and every setting; sampling settings are None for a deterministic
    model, ``slice_noise`` also for a 2-D input."""
    from rocksr import __version__
    from rocksr.files import recorded_path, sha256_file

    plan = settings.sampling
    ddpm = plan is not None
    return {
        "tool": ENHANCE_TOOL,
        "rocksr_version": __version__,
        "checkpoint": recorded_path(ckpt_path),
        "checkpoint_sha256": sha256_file(ckpt_path),
        "kind": kind,
        "input": recorded_path(src.path),
        "pages": [src.first, src.first + src.n - 1] if src.stack else None,
        "normalization": norm.record,
        "mct_scale": mct_scale,
        "crop": (
            {"size": src.size, "origin": list(src.origin)}
            if isinstance(src, CroppedSource)
            else None
        ),
        "tile": settings.tile,
        "tile_source": tile_source,
        "overlap": settings.overlap,
        "window": settings.window,
        "fuse": settings.fuse if ddpm else None,
        "sampler": plan.sampler if ddpm else None,
        "steps": plan.steps if ddpm else None,
        "prediction": plan.prediction if ddpm else None,
        "threshold": plan.threshold if ddpm else None,
        "seed": settings.seed if ddpm else None,
        "samples": settings.samples,
        "slice_noise": settings.slice_noise if ddpm and src.stack else None,
        "batch_size": settings.batch_size,
        "sample_seeding": SAMPLE_SEEDING if ddpm else None,
    }


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 slices, in grey levels."""
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def consistency(diffs_out: list[float], diffs_in: list[float]) -> dict | None:
    """The report's ``consistency`` of a stack: mean slice-to-slice differences of the output
    and of the normalized input (None for one slice)."""
    if not diffs_out:
        return None
    mo, mi = float(np.mean(diffs_out)), float(np.mean(diffs_in))
    return {
        "output_mean_abs_diff": mo,
        "input_mean_abs_diff": mi,
        "ratio": mo / mi if mi > 0 else None,
        "note": "mean |slice[z+1] - slice[z]| in grey levels, output vs normalized input",
    }


# what the report adds to the provenance (run_report); the rest of a report is the provenance
RUN_KEYS = (
    "outputs",
    "format",
    "shape",
    "dtype",
    "n_tiles_per_slice",
    "seconds",
    "megapixels_per_s",
    "consistency",
    "working_directory",
    "shards",
    "gather_seconds",
)


def run_report(
    prov: dict,
    targets: dict[str, Path],
    fmt: str,
    shape: tuple[int, ...],
    n_tiles_per_slice: int,
    n_slices: int,
    seconds: float,
    stack_consistency: dict | None,
) -> dict[str, Any]:
    """The report ``enhance`` returns: the provenance, the outputs, their shape, and what the
    outputs leave out: the speed (``n_slices`` in ``seconds``) and the working directory (which
    the recorded relative paths are relative to)."""
    from rocksr.files import recorded_path

    h, w = shape[-2:]
    return {
        **prov,
        "outputs": {k: recorded_path(p) for k, p in targets.items()},
        "format": fmt,
        "shape": list(shape),
        "dtype": "uint8",
        "n_tiles_per_slice": n_tiles_per_slice,
        "seconds": seconds,
        "megapixels_per_s": n_slices * h * w / 1e6 / seconds if seconds > 0 else None,
        "consistency": stack_consistency,
        "working_directory": os.getcwd(),
    }


def report_text(report: dict) -> str:
    """The report as the JSON that ``--report`` writes and the command prints."""
    return json.dumps(report, indent=2, sort_keys=True, default=str)
