"""Command `train --kind cgan|ddpm`: dispatches to the stages `train_cgan` and `train_ddpm`.

The rules' code hashes are those of :mod:`rocksr.stages.train_cgan` and
:mod:`rocksr.stages.train_ddpm`, so that a change to one model retrains only that model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rocksr.stages.args import json_arg

COMMAND = "train"
HELP = "train the cGAN or the DDPM (resumes from state-dir/last.pt)"
KINDS = ("cgan", "ddpm")
# the Trainer settings in the order of the positional form of :func:`train`
SETTINGS = ("best_ckpt", "history_csv", "samples_dir", "state_dir", "params", "seed", "device")


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--kind", choices=list(KINDS), required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--best", required=True, help="best-validation checkpoint (output)")
    s.add_argument("--history", required=True)
    s.add_argument("--samples-dir", required=True)
    s.add_argument("--state-dir", required=True, help="resumable state (last.pt); not an output")
    s.add_argument("--params", type=json_arg, default={})
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")


def train(kind: str, store: str | Path, splits: str | Path, *args: Any, **kw: Any) -> None:
    """Train ``kind`` in {"cgan","ddpm"}: the stage ``train_<kind>`` with the settings of
    :class:`~rocksr.training.trainer.Trainer`, by keyword or in the order ``best_ckpt,
    history_csv, samples_dir, state_dir, params, seed, device``."""
    if kind == "cgan":
        from rocksr.stages.train_cgan import train_cgan as run_stage
    elif kind == "ddpm":
        from rocksr.stages.train_ddpm import train_ddpm as run_stage
    else:
        raise ValueError(f"unknown model kind {kind!r} (one of {sorted(KINDS)})")
    run_stage(store, splits, **dict(zip(SETTINGS, args, strict=False)), **kw)


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
    )
