"""Stage `budget`: what each trained model was given (parameters, steps, pixels, wall time)."""

from __future__ import annotations

import argparse

from rocksr.stages.args import named_paths

COMMAND = "budget"
HELP = "the training and inference budget of every trained model (beside Table 1)"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--checkpoints", nargs="+", required=True, metavar="NAME=BEST_PT")
    s.add_argument("--histories", nargs="+", required=True, metavar="NAME=HISTORY_CSV")
    s.add_argument(
        "--timings", nargs="*", default=[], metavar="NAME=HISTORY_TIMING_CSV", help="wall time"
    )
    s.add_argument("--train-benchmarks", nargs="*", default=[], metavar="NAME=TSV")
    s.add_argument("--predict-benchmarks", nargs="*", default=[], metavar="NAME=TSV")
    s.add_argument("--predictions", nargs="*", default=[], metavar="NAME=STORE")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.evaluation.budget import budget_markdown, collect_budget
    from rocksr.files import write_table, write_text

    table = collect_budget(
        named_paths(a.checkpoints),
        named_paths(a.histories),
        named_paths(a.train_benchmarks),
        named_paths(a.predict_benchmarks),
        named_paths(a.predictions),
        named_paths(a.timings),
    )
    write_table(table, a.out_csv)
    write_text(budget_markdown(table), a.out_md)
