"""Table 1 as Markdown (``evaluation/table1.md``): the table, its verdicts and a methods note.

:func:`table1_markdown` writes the means ± std of Table 1 (:mod:`rocksr.evaluation.table1`)
with the count per row, a "⚠" on every cell that :func:`rocksr.evaluation.verdicts.table1_findings`
flags and its sentences under the table, then a note on how the numbers were made (metric
settings, porosity threshold, pore-phase and spectrum distances), the pore-mode sentence and an
optional note of the caller's (:func:`rocksr.stages.evaluate.evaluate`: threshold source, crop,
SSIM overrides).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rocksr.evaluation.per_tile import S2_MAX_R
from rocksr.evaluation.spectrum import SPECTRUM_BAND
from rocksr.evaluation.verdicts import (
    ROCK_ERRORS,
    as_number,
    mostly_infinite,
    pore_mode_sentence,
    table1_findings,
)

_HEADER = [
    "| Model | Kind | n | SSIM | PSNR (dB) | abs. porosity error | S2 distance | chord W1 (px) "
    "| spectrum distance (dec.) |",
    "|---|---|---:|---|---|---|---|---|---|",
]


def _pm(mean: float, std: float, fmt: str) -> str:
    """``mean ± std`` (just the mean when the std is NaN; ``n/a`` when the mean is)."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:{fmt}} ± {std:{fmt}}" if not math.isnan(std) else f"{mean:{fmt}}"


def _kind_label(r: Any) -> str:
    """The Kind cell: the kind, a stochastic model's sampler and steps, and how many samples."""
    kind = str(r.kind)
    sampler = getattr(r, "sampler", None)
    if isinstance(sampler, str) and sampler:  # a stochastic model's store records its sampler
        steps = as_number(getattr(r, "steps", None))
        kind = f"{kind}, {sampler}" + ("" if math.isnan(steps) else f" {int(steps)} steps")
    k = int(as_number(getattr(r, "n_samples", 1), 1.0))
    if getattr(r, "array", "pred") == "mean":
        kind += f", mean of {k} samples"
    elif k > 1:
        kind += f", 1 sample (of {k})"
    return kind


def _with_inf(r: Any, name: str, fmt: str) -> str:
    """mean ± std of a distance column, saying how many infinite tiles the mean leaves out."""
    text = _pm(getattr(r, f"{name}_mean", math.nan), getattr(r, f"{name}_std", 0), fmt)
    n_inf = int(as_number(getattr(r, f"{name}_n_inf", 0), 0.0))
    if n_inf:
        unranked = mostly_infinite(r, name) and text != "n/a"  # n/a: no mean to rank anyway
        text += f" ({n_inf} × inf excluded{'; not ranked' if unranked else ''})"
    return text


def _table_row(i: int, r: Any, flags: set[tuple[int, str]], no_pores: bool) -> str:
    """Row ``i`` of Table 1 as a Markdown table line, with the ⚠ of its flagged cells."""
    psnr = _pm(r.psnr_mean, r.psnr_std, ".2f")
    if r.psnr_n_inf:
        psnr += f" ({r.psnr_n_inf} × inf excluded)"
    ssim = _pm(r.ssim_mean, r.ssim_std, ".3f")
    if (i, "psnr") in flags:
        psnr = f"⚠ {psnr}"
    if (i, "ssim") in flags:
        ssim = f"⚠ {ssim}"
    rock = [
        _pm(r.porosity_abs_err_mean, r.porosity_abs_err_std, ".4f"),
        _with_inf(r, "s2_distance", ".3f"),
        _with_inf(r, "chord_distance", ".2f"),
    ]
    rock = [
        f"⚠ {cell}" if (i, metric) in flags else cell
        for cell, (metric, _, _) in zip(rock, ROCK_ERRORS, strict=True)
    ]
    if no_pores:
        rock = ["n/a (no pore mode)"] * 3
    spectrum = _pm(
        as_number(getattr(r, "spectrum_distance_mean", math.nan)),
        as_number(getattr(r, "spectrum_distance_std", math.nan)),
        ".3f",
    )
    return (
        f"| {r.model} | {_kind_label(r)} | {r.count} | {ssim} | {psnr} | "
        + " | ".join([*rock, spectrum])
        + " |"
    )


def _methods_note(porosity_threshold: float | None) -> str:
    """How the numbers of Table 1 were made (metric settings, pore-phase and spectrum
    distances, what ⚠ and "mean of K" mean)."""
    thr = "" if porosity_threshold is None else f"{porosity_threshold:.4f}"
    return (
        "Mean ± sample std (ddof 1) over the test tiles. Images in [0, 1] (uint8/255). "
        "PSNR = 10 log10(1/MSE); infinite PSNR (identical images) is excluded from the mean "
        "and counted. SSIM: Gaussian window sigma 1.5 (11×11), population covariance, "
        "K1 = 0.01, K2 = 0.03, mean of the SSIM map without the 5-px border (= scikit-image). "
        f"Porosity: fraction of SEM pixels ≤ {thr} (threshold on [0, 1]); pore masks at that "
        f"threshold give the S2 distance (mean over r = 0..{S2_MAX_R} px of |S2_pred(r) − "
        "S2_true(r)| / true porosity, S2 = two-point correlation of the pore phase along x and "
        "y) and the chord W1 (Wasserstein-1 distance between pore chord-length distributions "
        "along rows and columns, px); lower is better. Spectrum distance: mean over the "
        f"frequencies {SPECTRUM_BAND[0]:g}–{SPECTRUM_BAND[1]:g} cycles/px (wavelengths "
        f"{1 / SPECTRUM_BAND[0]:g} to {1 / SPECTRUM_BAND[1]:g} px) of |log10 P_pred(k) − "
        "log10 P_true(k)|, P = radially averaged power spectrum of the Hann-windowed, "
        "mean-free tile, in decades; it needs no pores and is lower for texture of the right "
        "strength at every fine scale (a blurred or flat image has too little). Distortion "
        "(PSNR, SSIM) and texture (S2, chord, spectrum) pull apart: the best estimate in "
        "the mean-squared sense is blurred, and a perfect sample of the posterior has twice "
        "its MSE (Blau & Michaeli 2018), so judge deterministic and mean-of-K rows on the "
        "first and single samples on both. "
        "⚠: worse than the constant mean-grey image (the `mean` baseline) on that metric. "
        "“mean of K”: the per-pixel mean of K DDPM samples; the plain DDPM row is one sample. "
        "A distance infinite (pores in only one of prediction and truth) on more than half of "
        "a row's tiles is not ranked or flagged: its mean is over a few tiles only."
    )


def table1_markdown(
    table: pd.DataFrame,
    porosity_threshold: float | None = None,
    note: str = "",
    pore_mode: dict | None = None,
) -> str:
    """Table 1 as a Markdown table (mean ± std, count) with the findings of
    :func:`rocksr.evaluation.verdicts.table1_findings` (⚠ on flagged cells, sentences under the
    table) and a methods note."""
    no_pores = (
        pore_mode is not None
        and not pore_mode.get("bimodal", True)
        and not pore_mode.get("configured")
    )
    flags, findings = table1_findings(table, rock=not no_pores)
    lines = list(_HEADER)
    for i, r in enumerate(table.itertuples(index=False)):
        lines.append(_table_row(i, r, flags, no_pores))
    if findings:
        lines += [""] + [f"- {f}" for f in findings]
    lines += ["", _methods_note(porosity_threshold)]
    if pore_mode is not None:
        lines += ["", pore_mode_sentence(pore_mode)]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"
