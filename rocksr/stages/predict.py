"""Stage `predict`: run a checkpoint (any model kind) on every test tile -> prediction store."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from rocksr.data.predstore import (
    _SEEDING,
    _STD_UNITS,
    SHARD_ATTR,
    RunningMoments,
    iter_tiles,
    prediction_store,
    shard_batches,
)
from rocksr.data.splits import split_tile_ids
from rocksr.data.tilestore import open_tiles
from rocksr.devices import resolve_device
from rocksr.stages.args import json_arg, positive_int, shard_arg


def write_predictions(
    run: Callable[[Any, Any], Any],
    group: Any,
    ids: np.ndarray,
    out_zarr: str | os.PathLike,
    attrs: dict,
    *,
    n_samples: int = 1,
    stochastic: bool = True,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = False,
    shard: tuple[int, int] | None = None,
) -> None:
    """Predict the micro-CT tiles ``ids`` of ``group`` with ``run(mct, generator)`` and write a
    prediction store at ``out_zarr``.

    ``stochastic`` (a DDPM): draw ``n_samples`` samples per tile with :func:`sample_generator`
    and write ``pred`` (sample 0), ``mean``, ``std`` and, for K > 1, ``samples``.  Otherwise
    (a deterministic model) ``run`` is called once per batch and only ``pred`` is written.
    ``shard = (i, n)``: only the whole batches of shard ``i`` of ``n`` (:func:`shard_batches`),
    seeded by their batch index in the whole split; the store records ``shard``.
    """
    import torch

    from rocksr.data.values import to_model, unit_to_uint8
    from rocksr.inference import sample_generator
    from rocksr.progress import progress as progress_bar

    k_total = int(n_samples) if stochastic else 1
    if k_total < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    size = int(group["mct"].shape[-1])
    first, stop = shard_batches(len(ids), batch_size, *(shard or (1, 1)))
    part = ids[first * batch_size : stop * batch_size]
    extra = {"std_units": _STD_UNITS, "sample_seeding": _SEEDING} if stochastic else {}
    if shard is not None:
        index, count = shard
        extra[SHARD_ATTR] = {
            "index": index,
            "count": count,
            "first_batch": first,
            "split_tiles": len(ids),
        }
    with prediction_store(
        out_zarr, part, size, {**attrs, **extra}, n_samples=k_total, uncertainty=stochastic
    ) as writer:
        it = iter_tiles(group, "mct", part, batch_size)
        bar = progress_bar(stop - first, "predict", unit="batch", disable=not progress)
        for b, sel, tiles in it:
            x = to_model(tiles, device)
            moments = RunningMoments()
            for k in range(k_total):
                with torch.inference_mode():
                    y = run(x, sample_generator(seed, first + b, k, device))
                y = y.detach().float().cpu().numpy()[:, 0]
                u8 = unit_to_uint8(y)
                if k == 0:
                    writer.write("pred", sel, u8)
                if k_total > 1:
                    writer.write("samples", sel, u8, sample=k)
                if stochastic:
                    moments.add(y)
                del y, u8
            if stochastic and moments.mean is not None:
                writer.write("mean", sel, unit_to_uint8(moments.mean))
                writer.write("std", sel, (moments.std() * 127.5).astype(np.float16))
            bar.update(1)
        bar.close()


def predict(
    ckpt: str | os.PathLike,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_zarr: str | os.PathLike,
    sampler: str = "ddim",
    steps: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
    *,
    split: str = "test",
    progress: bool = False,
    n_samples: int = 1,
    shard: tuple[int, int] | None = None,
) -> None:
    """Predict every ``split`` tile with the checkpoint; write a prediction store at ``out_zarr``.

    ``sampler``/``steps`` apply to a DDPM checkpoint (ancestral requires steps None or T) and
    are recorded but unused for a cGAN.  ``n_samples``: samples per tile for a DDPM (the cGAN
    is deterministic: it writes K = 1 and records the request).  See the module docstring for
    seeding and layout. ``shard = (i, n)``: only shard ``i`` of ``n`` (whole batches); gather
    the ``n`` shard stores with :func:`rocksr.data.predstore.gather_predictions`.
    """
    from rocksr.files import recorded_path, sha256_file
    from rocksr.inference import load_for_inference, make_predictor
    from rocksr.models.registry import get_kind

    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from rocksr.outputs import check_store_target

    check_store_target(out_zarr)  # refuse a foreign output before any work
    dev = resolve_device(device)
    kind, model, cfg = load_for_inference(ckpt, device=dev)
    group = open_tiles(store)
    ids = split_tile_ids(splits, split)
    run = make_predictor(kind, model, cfg, sampler=sampler, steps=steps)
    stochastic = get_kind(kind).stochastic
    attrs = {
        "model": kind,
        "kind": kind,
        "sampler": sampler if stochastic else None,
        "steps": (None if steps is None else int(steps)) if stochastic else None,
        "seed": int(seed),
        "batch_size": int(batch_size),
        "checkpoint": recorded_path(ckpt),
        "checkpoint_sha256": sha256_file(ckpt),
        "dataset": recorded_path(store),
        "split": split,
        "device": dev,
    }
    if not stochastic:
        attrs["n_samples_requested"] = int(n_samples)
    write_predictions(
        run,
        group,
        ids,
        out_zarr,
        attrs,
        n_samples=int(n_samples),
        stochastic=stochastic,
        seed=seed,
        batch_size=int(batch_size),
        device=dev,
        progress=progress,
        shard=shard,
    )


COMMAND = "predict"
HELP = "predict every test tile with a checkpoint"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--sampler", default="ddim", choices=["ancestral", "ddim", "dpmsolver"])
    s.add_argument("--steps", type=json_arg, default=None, help="int, or null for all T")
    s.add_argument("--batch-size", type=positive_int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument(
        "--n-samples",
        type=positive_int,
        default=1,
        metavar="K",
        help="samples per tile of a stochastic model (the DDPM: pred = sample 0; adds mean, "
        "std and, for K > 1, samples); ignored (K = 1) for deterministic models",
    )
    s.add_argument(
        "--shard",
        type=shard_arg,
        default=None,
        metavar="I/N",
        help="predict only shard I of N (whole batches, seeded as in one run); "
        "`rocksr gather-predictions` assembles the N shard stores",
    )


def run(a: argparse.Namespace) -> None:
    predict(
        a.checkpoint,
        a.store,
        a.splits,
        a.out,
        sampler=a.sampler,
        steps=a.steps,
        batch_size=a.batch_size,
        seed=a.seed,
        device=a.device,
        progress=True,
        n_samples=a.n_samples,
        shard=a.shard,
    )
