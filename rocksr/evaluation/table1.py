"""Table 1: the per-tile metrics aggregated per model and baseline.

:func:`table1` gives one row per model/baseline, in order of first appearance in the per-tile
table (:mod:`rocksr.evaluation.per_tile`): ``model, kind, count, psnr_mean, psnr_std,
psnr_n_inf, ssim_mean, ssim_std, porosity_abs_err_mean, porosity_abs_err_std,
porosity_pred_mean, porosity_true_mean, porosity_threshold``, mean and std of
``s2_distance``, ``chord_distance`` and ``spectrum_distance``, ``s2_distance_n_inf,
chord_distance_n_inf``, then the store's ``sampler, steps, n_samples`` and the ``array`` each
row was read from. ``std`` is the sample standard deviation (ddof 1). A PSNR of ``inf``
(prediction identical to the truth) is counted in ``psnr_n_inf`` and left out of the PSNR
mean/std; so are infinite S2 and chord distances (tiles where only one of prediction and truth
has pores), counted in their ``_n_inf``.

Several DDPM samples: :func:`rocksr.stages.evaluate.evaluate` evaluates a store with
``n_samples = K > 1`` (``rocksr predict --n-samples K``) twice, automatically
(:func:`rocksr.data.predstore.expand_sample_means`): as ``<name>`` from its ``pred`` array
(sample 0, the single-sample metrics) and as ``<name> (mean of K)`` from its ``mean`` array (the
per-pixel mean of the K samples), with the same kind; the extra row follows its store's row in
every table (``sample_means=False`` turns this off). The stage writes the table as
``evaluation/table1.csv`` (with a ``pore_mode`` column added) and as Markdown
(:mod:`rocksr.evaluation.table1_markdown`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from rocksr.evaluation import metrics as M


def table1(
    per_tile: pd.DataFrame,
    porosity_threshold: float | None = None,
    store_attrs: Mapping[str, dict] | None = None,
    arrays: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """mean / std / count per model (order of first appearance in ``per_tile``); ``arrays``
    says which store array each row was read from (``pred`` unless given)."""
    rows = []
    for name in dict.fromkeys(per_tile["model"]):
        d = per_tile[per_tile["model"] == name]
        ps, ss = M.summarize(d["psnr"].to_numpy()), M.summarize(d["ssim"].to_numpy())
        pe = M.summarize(d["porosity_abs_err"].to_numpy())
        s2 = M.summarize(d["s2_distance"].to_numpy()) if "s2_distance" in d else {}
        ch = M.summarize(d["chord_distance"].to_numpy()) if "chord_distance" in d else {}
        sp = M.summarize(d["spectrum_distance"].to_numpy()) if "spectrum_distance" in d else {}
        attrs = (store_attrs or {}).get(name, {})
        rows.append(
            {
                "model": name,
                "kind": d["kind"].iloc[0],
                "count": ps["count"],
                "psnr_mean": ps["mean"],
                "psnr_std": ps["std"],
                "psnr_n_inf": ps["n_inf"],
                "ssim_mean": ss["mean"],
                "ssim_std": ss["std"],
                "porosity_abs_err_mean": pe["mean"],
                "porosity_abs_err_std": pe["std"],
                "porosity_pred_mean": float(d["porosity_pred"].mean()),
                "porosity_true_mean": float(d["porosity_true"].mean()),
                "porosity_threshold": porosity_threshold,
                "s2_distance_mean": s2.get("mean", math.nan),
                "s2_distance_std": s2.get("std", math.nan),
                "chord_distance_mean": ch.get("mean", math.nan),
                "chord_distance_std": ch.get("std", math.nan),
                "spectrum_distance_mean": sp.get("mean", math.nan),
                "spectrum_distance_std": sp.get("std", math.nan),
                # tiles where only one of prediction and truth has pores (distance inf)
                "s2_distance_n_inf": s2.get("n_inf", 0),
                "chord_distance_n_inf": ch.get("n_inf", 0),
                "sampler": attrs.get("sampler"),
                "steps": attrs.get("steps"),
                "n_samples": int(attrs.get("n_samples", 1)),
                "array": (arrays or {}).get(name, "pred"),
            }
        )
    return pd.DataFrame(rows)
