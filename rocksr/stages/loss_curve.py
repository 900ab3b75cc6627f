"""Stage `loss_curve`: one model's training and validation curves from its history."""

from __future__ import annotations

import argparse

from rocksr.models.registry import get_kind, kind_names

COMMAND = "loss-curve"
HELP = "training/validation curves of one model from its history CSV"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--kind", choices=list(kind_names()), required=True)
    s.add_argument("--history", required=True)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    import pandas as pd

    from rocksr.figures.loss_curve import plot_curves

    kind = get_kind(a.kind)
    history = pd.read_csv(a.history).to_dict("records")
    plot_curves(history, a.out, a.kind, kind.curves, log_loss=kind.log_loss)
