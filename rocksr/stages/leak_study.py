"""Stage `leak_study`: retrain one model on the leaky random split and measure the inflation."""

from __future__ import annotations

import argparse
from pathlib import Path

from rocksr.models.registry import kind_names
from rocksr.stages.args import json_arg, positive_int

COMMAND = "leak-study"
HELP = "train a model on the leaky random split and compare with the leak-free split"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--kind", choices=list(kind_names()), required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--splits", required=True, help="the run's own (leak-free) split table")
    s.add_argument(
        "--own-predictions", required=True, help="the model's predictions on the run's own split"
    )
    s.add_argument("--split-params", type=json_arg, required=True, help="the run's split section")
    s.add_argument("--train-params", type=json_arg, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sampler", default="ddim")
    s.add_argument("--steps", type=json_arg, default=None)
    s.add_argument("--batch-size", type=positive_int, default=16)
    s.add_argument("--device", default="auto")
    s.add_argument("--work-dir", required=True, help="the leaky run's splits, state, predictions")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-png", required=True)


def run(a: argparse.Namespace) -> None:
    import pandas as pd

    from rocksr.evaluation.leak import leak_markdown, leak_table, scores
    from rocksr.evaluation.per_tile import otsu_sem_threshold, per_tile_metrics
    from rocksr.figures.leak_study import leak_figure
    from rocksr.files import write_table, write_text
    from rocksr.stages.predict import predict
    from rocksr.stages.split import split_dataset
    from rocksr.stages.train import train

    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    leaky = {**a.split_params, "strategy": "random"}
    splits = work / "splits_random.csv"
    split_dataset(a.manifest, splits, work / "split_counts_random.csv", leaky)
    shared = int(pd.read_csv(work / "split_counts_random.csv")["shared_footprint_pixels"].iloc[0])
    best = work / a.kind / "best.pt"
    train(
        a.kind,
        a.store,
        splits,
        best_ckpt=best,
        history_csv=work / a.kind / "history.csv",
        samples_dir=work / a.kind / "val_samples",
        state_dir=work / "state" / a.kind,
        params=a.train_params,
        seed=a.seed,
        device=a.device,
    )
    pred = work / f"{a.kind}_random.zarr"
    predict(
        best,
        a.store,
        splits,
        pred,
        sampler=a.sampler,
        steps=a.steps,
        batch_size=a.batch_size,
        seed=a.seed,
        device=a.device,
    )
    # PSNR and SSIM (all the study compares) do not depend on the porosity threshold; each
    # split's own Otsu threshold keeps its per-tile rows those of `evaluate`
    thr = otsu_sem_threshold(a.store, splits)
    leaky_tiles = per_tile_metrics({a.kind: str(pred)}, a.store, splits, a.manifest, thr)
    own_thr = otsu_sem_threshold(a.store, a.splits)
    own = per_tile_metrics({a.kind: a.own_predictions}, a.store, a.splits, a.manifest, own_thr)
    table = leak_table(
        a.kind,
        scores(own, a.kind),
        scores(leaky_tiles, a.kind),
        str(a.split_params.get("strategy", "regions")),
        shared,
    )
    write_table(table, a.out_csv)
    write_text(leak_markdown(table), a.out_md)
    leak_figure(table, a.out_png)
