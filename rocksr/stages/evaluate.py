"""Stage `evaluate`: per-tile metrics and Table 1."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import pandas as pd

from rocksr.data.predstore import StoreSpec, expand_sample_means, open_predictions, store_spec
from rocksr.evaluation import metrics as M
from rocksr.evaluation.per_tile import per_tile_metrics, train_sem_histogram
from rocksr.evaluation.table1 import table1
from rocksr.evaluation.table1_markdown import table1_markdown
from rocksr.stages.args import json_arg, named_paths


def evaluate(
    pred_stores: Mapping[str, StoreSpec],
    store: str | os.PathLike,
    splits: str | os.PathLike,
    manifest: str | os.PathLike | pd.DataFrame,
    out_per_tile_csv: str | os.PathLike,
    out_table_csv: str | os.PathLike,
    out_table_md: str | os.PathLike,
    porosity_threshold: float | None = None,
    *,
    ssim_opts: dict | None = None,
    crop_border: int = 0,
    batch_size: int = 32,
    sample_means: bool = True,
    budget_csv: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Evaluate every prediction store (models and baselines) on the test split.

    Writes the per-tile CSV, Table 1 (CSV and Markdown) and returns Table 1.  See the module
    docstring for columns, PSNR-inf handling, the porosity threshold and the ``(mean of K)``
    rows added for stores with several samples (``sample_means``).  ``budget_csv`` (the
    `budget` stage's table): its table and its sentences on unequal budgets go under Table 1.
    """
    from rocksr.files import write_table, write_text

    if not pred_stores:
        raise ValueError("evaluate: no prediction stores given")
    specs = (
        expand_sample_means(pred_stores)
        if sample_means
        else {n: store_spec(v) for n, v in pred_stores.items()}
    )
    from rocksr.evaluation.rock_metrics import bimodality

    hist = train_sem_histogram(store, splits)  # one pass: the pore-mode check and Otsu
    pore_mode = bimodality(hist)
    if porosity_threshold is None:
        thr = M.otsu_threshold_from_histogram(hist)
        source = "Otsu on the train-split ground-truth SEM"
    else:
        thr = float(porosity_threshold)
        source = "from the config"
        pore_mode = {**pore_mode, "configured": True}
    per_tile = per_tile_metrics(
        specs,
        store,
        splits,
        manifest,
        thr,
        ssim_opts=ssim_opts,
        crop_border=crop_border,
        batch_size=batch_size,
    )
    attrs = {name: open_predictions(path)[1] for name, (path, _) in specs.items()}
    table = table1(per_tile, thr, attrs, {name: arr for name, (_, arr) in specs.items()})
    table["pore_mode"] = bool(pore_mode["bimodal"])
    write_table(per_tile, out_per_tile_csv)
    write_table(table, out_table_csv)
    note = f"Porosity threshold {thr:.4f} ({source})."
    if crop_border:
        note += f" {crop_border} border pixels cropped before every metric."
    if ssim_opts:
        note += f" SSIM settings overridden (these replace the ones above): {dict(ssim_opts)}."
    text = table1_markdown(table, thr, note, pore_mode=pore_mode)
    if budget_csv is not None:
        from rocksr.evaluation.budget import budget_markdown

        text += "\n### What each model was given\n\n" + budget_markdown(pd.read_csv(budget_csv))
    write_text(text, out_table_md)
    return table


COMMAND = "evaluate"
HELP = "per-tile metrics and Table 1"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--predictions", nargs="+", required=True, metavar="NAME=STORE")
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--porosity-threshold", type=json_arg, default=None)
    s.add_argument("--out-per-tile", required=True)
    s.add_argument("--out-table", required=True)
    s.add_argument("--out-markdown", required=True)
    s.add_argument("--budget", default=None, help="the budget stage's CSV, shown under Table 1")
    s.add_argument(
        "--no-sample-means",
        action="store_true",
        help="do not add a 'NAME (mean of K)' row for stores with K > 1 samples per tile",
    )


def run(a: argparse.Namespace) -> None:
    evaluate(
        named_paths(a.predictions),
        a.store,
        a.splits,
        a.manifest,
        a.out_per_tile,
        a.out_table,
        a.out_markdown,
        porosity_threshold=a.porosity_threshold,
        sample_means=not a.no_sample_means,
        budget_csv=a.budget,
    )
