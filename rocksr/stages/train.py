"""Stage `train` (rules `train_<kind>`, one per model kind): train one kind of the registry.

A rule's code hash is that of this stage and of the kind's module (:func:`rocksr.codehash.kind_hash`),
so that a change to one model retrains only that model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rocksr.models.registry import get_kind, kind_names
from rocksr.stages.args import json_arg

COMMAND = "train"
HELP = "train one model kind (resumes from state-dir/last.pt)"
# the Trainer settings in the order of the positional form of :func:`train`
SETTINGS = ("best_ckpt", "history_csv", "samples_dir", "state_dir", "params", "seed", "device")


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--kind", choices=list(kind_names()), required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--best", required=True, help="best-validation checkpoint (output)")
    s.add_argument("--history", required=True, help="training metrics per logged step (CSV)")
    s.add_argument(
        "--timing",
        default=None,
        help="wall time, images/s and GPU memory of each history row (CSV; default "
        "<history>_timing.csv beside --history)",
    )
    s.add_argument("--samples-dir", required=True)
    s.add_argument("--state-dir", required=True, help="resumable state (last.pt); not an output")
    s.add_argument("--params", type=json_arg, default={})
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")


def train(kind: str, store: str | Path, splits: str | Path, *args: Any, **kw: Any) -> None:
    """Train ``kind`` (a registry kind: its training task) with the settings of
    :class:`~rocksr.training.trainer.Trainer`, by keyword or in the order ``best_ckpt,
    history_csv, samples_dir, state_dir, params, seed, device``."""
    from rocksr.training.distributed import shutdown_distributed
    from rocksr.training.trainer import Trainer

    task = get_kind(kind).task()
    settings = dict(zip(SETTINGS, args, strict=False))
    try:  # under torchrun, one of several processes (rocksr.training.distributed)
        Trainer(task, store=store, splits=splits, **settings, **kw).fit()
    finally:
        shutdown_distributed()


def run(a: argparse.Namespace) -> None:
    train(
        a.kind,
        a.store,
        a.splits,
        a.best,
        a.history,
        a.samples_dir,
        a.state_dir,
        a.params,
        a.seed,
        device=a.device,
        timing_csv=a.timing,
    )
