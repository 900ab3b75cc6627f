"""Seam study: how visible the tile borders of whole-slice inference are, per fusion mode.

On a crop of a slice with ground truth, each model is run with ``rocksr enhance`` in every
mode: half-tile overlap (the default; for the DDPM ``fuse step`` and ``fuse end``) and no
overlap. Two numbers per run (:mod:`rocksr.enhance.blending`): the **seam ratio**, the mean
absolute error against the truth in a 3 px band along the tile hand-over lines divided by the
error in tile interiors (1.0 = no seams), and the truth-free **step ratio**, neighbour
differences across the hand-over lines divided by those at the same phase elsewhere (it
separates real seams from errors that averaging two samples in an overlap merely lowers).

Both average over whole hand-over lines and miss a *band*: a few rows of each tile period where
the output is sharper or blurrier than elsewhere (two tiles blended 50/50 where their content is
misaligned by a sub-pixel shift blur; one tile alone does not). :func:`banding` measures it on
whole-slice outputs: the mean |gradient| profiled by position modulo the tile period (the
stride), divided by the same profile of the input micro-CT (so that structure of the rock at
some phase cancels), peak over mean, the larger of the two axes. 1.0 is perfectly flat; with a
finite slice the null is what the truth SEM gives on the same statistic (no tiling: only the
rock's own variation), and a model is band-free when it stays within 0.05 of that null.

The seconds of each run (:data:`TIMING_COLUMNS`) are written apart from the study's CSV and
Markdown (``seam_study_timing.csv``, by ``model, mode``; :func:`rocksr.timing.write_with_timing`),
which are the same byte for byte wherever and whenever the study runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from rocksr.data.registration import centre_crop

# what the study measures of the machine, and the columns that name a row
TIMING_COLUMNS = ("seconds",)
ROW_KEYS = ("model", "mode")

# (mode label, enhance options) of a deterministic and of a stochastic (sampling) model;
# `overlap` None = half a tile
DETERMINISTIC_MODES: list[tuple[str, dict]] = [
    ("default overlap", {"overlap": None}),
    ("no overlap", {"overlap": 0, "window": "constant"}),
]
STOCHASTIC_MODES: list[tuple[str, dict]] = [
    ("fuse step, overlap ½ tile", {"overlap": None, "fuse": "step"}),
    ("fuse end, overlap ½ tile", {"overlap": None, "fuse": "end"}),
    ("fuse step, no overlap", {"overlap": 0, "window": "constant", "fuse": "step"}),
]


def modes(kind: str) -> list[tuple[str, dict]]:
    """The modes the study runs for a model of ``kind``."""
    from rocksr.models.registry import get_kind

    return STOCHASTIC_MODES if get_kind(kind).stochastic else DETERMINISTIC_MODES


def gradient_profile(img: np.ndarray, period: int, axis: int) -> np.ndarray:
    """Mean |difference of neighbouring pixels| along ``axis`` (axis 0: rows i, i + 1) per
    position modulo ``period``, over the complete periods of a 2-D image."""
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    g = np.abs(np.diff(img.astype(np.float64), axis=axis)).mean(axis=1 - axis)
    n = len(g) // period * period
    if n < 2 * period:
        raise ValueError(f"an image of {img.shape} holds fewer than two periods of {period}")
    return g[:n].reshape(-1, period).mean(axis=0)


def banding(img: np.ndarray, reference: np.ndarray, period: int) -> float:
    """Peak over mean of ``gradient_profile(img) / gradient_profile(reference)`` per axis, the
    larger axis (1.0 = no band at any phase of the period; see the module docstring)."""
    if img.shape != reference.shape:
        raise ValueError(f"image {img.shape} and reference {reference.shape} differ in shape")
    worst = 0.0
    for axis in (0, 1):
        r = gradient_profile(img, period, axis) / np.maximum(
            gradient_profile(reference, period, axis), 1e-12
        )
        worst = max(worst, float(r.max() / r.mean()))
    return worst


def banding_table(
    enhanced: dict[str, str | os.PathLike], mct: str | os.PathLike, sem: str | os.PathLike
) -> pd.DataFrame:
    """One row per whole-slice output (``enhanced``: model name -> the `enhance` rule's image,
    its JSON report beside it): the banding at its tile period, and the truth's (the null)."""
    import json

    from rocksr.data.images import read_image

    x_slice, truth_slice = read_image(mct), read_image(sem)
    rows = []
    for name, path in enhanced.items():
        report = json.loads(Path(path).with_suffix(".json").read_text())
        period = int(report["tile"]) - int(report["overlap"])
        img = read_image(path)
        x, truth = x_slice, truth_slice
        if report.get("crop"):  # `enhance --crop`: the slice's square that was enhanced
            (y0, x0), size = report["crop"]["origin"], int(report["crop"]["size"])
            x, truth = (a[y0 : y0 + size, x0 : x0 + size] for a in (x_slice, truth_slice))
        if min(img.shape) < 2 * period:  # too small a slice to profile: no number
            null = value = float("nan")
        else:
            null, value = banding(truth, x, period), banding(img, x, period)
        rows.append(
            {
                "model": name,
                "tile": int(report["tile"]),
                "overlap": int(report["overlap"]),
                "window": report.get("window"),
                "banding": value,
                "banding_null": null,
                "excess": value - null,
            }
        )
    return pd.DataFrame(rows)


def banding_markdown(df: pd.DataFrame, limit: float = 0.05) -> str:
    """The banding table with a verdict (every model within ``limit`` of the null)."""
    lines = [
        "| model | tile / overlap | window | banding | null (truth) | excess |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in df.itertuples():
        lines.append(
            f"| {r.model} | {r.tile} / {r.overlap} | {r.window} | {r.banding:.3f} | "
            f"{r.banding_null:.3f} | {r.excess:+.3f} |"
        )
    over = df[df["excess"] > limit]
    verdict = (
        f"Every whole-slice output within {limit} of the null - no band at the tile period."
        if over.empty
        else "Banding above the null + "
        + f"{limit}: "
        + ", ".join(f"{r.model} ({r.excess:+.3f})" for r in over.itertuples())
        + " - a band at the tile period is visible."
    )
    note = (
        "Banding: mean |gradient| per position modulo the tile period (the stride), divided "
        "by the micro-CT's, peak / mean, the larger axis; null = the truth SEM's value (no "
        "tiling). Computed on the whole slices of the `enhance` rule."
    )
    return "\n".join(lines) + f"\n\n{verdict}\n\n{note}\n"


def seam_study(
    checkpoints: dict[str, str | os.PathLike],
    mct: str | os.PathLike,
    sem: str | os.PathLike,
    *,
    crop: int = 512,
    sampler: str = "ddim",
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    window: str | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """One row per (model, mode): seam ratio, step ratio, MAE, seconds (the
    :data:`TIMING_COLUMNS`), on the central ``crop`` of the normalized pair (``mct``, ``sem``:
    8-bit, as training saw them)."""
    import tifffile

    from rocksr.data.images import read_image
    from rocksr.enhance.blending import seam_ratio, step_ratio
    from rocksr.enhance.run import enhance
    from rocksr.inference import load_for_inference

    x = centre_crop(read_image(mct), crop)
    truth = centre_crop(read_image(sem), crop)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rocksr-seams-") as tmp:
        src = Path(tmp) / "mct_crop.tif"
        tifffile.imwrite(src, x)
        for name, ckpt in checkpoints.items():
            kind = load_for_inference(ckpt)[0]
            for label, opts in modes(kind):
                out = Path(tmp) / f"{name}_{len(rows)}.tif"
                r = enhance(
                    ckpt,
                    src,
                    out,
                    normalize="none",
                    sampler=sampler,
                    steps=steps,
                    seed=seed,
                    batch_size=batch_size,
                    device=device,
                    progress=False,
                    **{"window": window, **opts},
                )
                pred = tifffile.imread(out)
                err = np.abs(pred.astype(np.float32) - truth.astype(np.float32))
                rows.append(
                    {
                        "model": name,
                        "mode": label,
                        "tile": r["tile"],
                        "overlap": r["overlap"],
                        "crop": int(x.shape[0]),
                        "seam_ratio": seam_ratio(pred, truth, r["tile"], r["overlap"]),
                        "step_ratio": step_ratio(pred, r["tile"], r["overlap"]),
                        "mae_grey": float(err.mean()),
                        "seconds": r["seconds"],
                    }
                )
    return pd.DataFrame(rows)


def seam_study_markdown(df: pd.DataFrame, limit: float = 1.05) -> str:
    """The table, with a verdict on the default modes (seam ratio <= ``limit``); no timings
    (they are in ``seam_study_timing.csv``)."""
    lines = [
        "| model | mode | tile / overlap | seam ratio | step ratio | MAE (grey) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in df.itertuples():
        lines.append(
            f"| {r.model} | {r.mode} | {r.tile} / {r.overlap} | {r.seam_ratio:.3f} | "
            f"{r.step_ratio:.3f} | {r.mae_grey:.2f} |"
        )
    default = df[df["mode"].isin(["default overlap", "fuse step, overlap ½ tile"])]
    worst = float(default["seam_ratio"].max()) if len(default) else float("nan")
    verdict = f"Default settings: worst seam ratio {worst:.3f} (target <= {limit})" + (
        " - met." if worst <= limit else " - NOT met: tile borders are visible."
    )
    note = (
        "Seam ratio: error in a 3 px band along tile hand-over lines / error in tile "
        "interiors (1.0 = no seams). Step ratio: neighbour differences across hand-over "
        "lines / elsewhere at the same phase (needs no truth; high = visible steps)."
    )
    return "\n".join(lines) + f"\n\n{verdict}\n\n{note}\n"
