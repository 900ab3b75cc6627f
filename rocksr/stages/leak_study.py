"""Stage `leak_study`: the inflation of one model's test scores by a leaky split.

The leak run's split, training and predictions are the workflow's own rules (`leak_split`,
`leak_train_<kind>`, `leak_predict`) on the leaky strategy; this stage compares their
predictions with the run's, each on its own split's test tiles.
"""

from __future__ import annotations

import argparse

from rocksr.models.registry import kind_names

COMMAND = "leak-study"
HELP = "compare a model trained on the leaky random split with the same model on the run's split"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--kind", choices=list(kind_names()), required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--splits", required=True, help="the run's own (leak-free) split table")
    s.add_argument(
        "--own-predictions", required=True, help="the model's predictions on the run's own split"
    )
    s.add_argument("--strategy", required=True, help="the run's own split strategy")
    s.add_argument("--counts", required=True, help="the run's own split_counts.csv")
    s.add_argument("--leaky-splits", required=True, help="the leak run's split table")
    s.add_argument("--leaky-counts", required=True, help="the leak run's split_counts.csv")
    s.add_argument("--leaky-predictions", required=True, help="the leak run's model's predictions")
    s.add_argument("--leaky-strategy", required=True, help="the leak run's split strategy")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-png", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.evaluation.leak_study import leak_markdown, leak_table, scores, shared_pixels
    from rocksr.evaluation.per_tile import otsu_sem_threshold, per_tile_metrics
    from rocksr.figures.leak_study import leak_figure
    from rocksr.files import write_table, write_text

    def test_scores(predictions: str, splits: str) -> dict:
        # PSNR and SSIM (all the study compares) do not depend on the porosity threshold; each
        # split's own Otsu threshold keeps its per-tile rows those of `evaluate`
        threshold = otsu_sem_threshold(a.store, splits)
        rows = per_tile_metrics({a.kind: predictions}, a.store, splits, a.manifest, threshold)
        return scores(rows, a.kind)

    table = leak_table(
        a.kind,
        test_scores(a.own_predictions, a.splits),
        test_scores(a.leaky_predictions, a.leaky_splits),
        a.strategy,
        shared_pixels(a.leaky_counts),
        leaky_strategy=a.leaky_strategy,
        leak_free_shared_pixels=shared_pixels(a.counts),
    )
    write_table(table, a.out_csv)
    write_text(leak_markdown(table), a.out_md)
    leak_figure(table, a.out_png)
