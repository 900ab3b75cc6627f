"""Quality vs. cost of the DDPM samplers: PSNR / SSIM / seconds per image vs. number of steps.

On a fixed subset of test tiles (``n_tiles`` positions drawn with ``default_rng(seed)``, sorted),
each configured (sampler, steps) pair samples every tile with the same per-batch generators
(:func:`rocksr.predict.batch_generator`), and the result is scored against the ground truth with
:mod:`rocksr.metrics` on uint8/255 images, as in the main evaluation.  ``ancestral`` always runs
all T steps (``steps`` null).  Time is wall-clock sampling time (model on ``device``, CUDA
synchronised, after one warm-up call) divided by the number of tiles.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from rocksr import metrics as M
from rocksr.predict import (
    batch_generator,
    from_model,
    make_predictor,
    read_tiles,
    resolve_device,
    split_tile_ids,
    to_model,
)

__all__ = ["DEFAULT_CONFIGS", "expand_configs", "run_sampler_study", "sampler_study"]

DEFAULT_CONFIGS: list[dict] = [
    {"sampler": "ancestral", "steps": None},
    {"sampler": "ddim", "steps": [10, 20, 50, 100]},
    {"sampler": "dpmsolver", "steps": [10, 20, 50]},
]


def expand_configs(configs: list[dict] | None, timesteps: int) -> list[tuple[str, int | None]]:
    """[{sampler, steps: int | list | null}] -> [(sampler, steps)]; ancestral gets (…, None)."""
    out: list[tuple[str, int | None]] = []
    for c in configs if configs is not None else DEFAULT_CONFIGS:
        s = c["sampler"]
        steps = c.get("steps")
        if s == "ancestral":
            if steps not in (None, timesteps) and steps != [timesteps]:
                raise ValueError(f"ancestral sampling runs all T={timesteps} steps; set steps null")
            out.append((s, None))
            continue
        for n in steps if isinstance(steps, list | tuple) else [steps]:
            out.append((s, None if n is None else int(n)))
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_sampler_study(
    model: Any,
    cfg: dict,
    mct: np.ndarray,
    sem: np.ndarray,
    configs: list[dict] | None = None,
    seed: int = 0,
    batch_size: int = 8,
    device: str = "cpu",
) -> pd.DataFrame:
    """Score a loaded DDPM on uint8 tiles ``mct``/``sem`` (N,S,S) for every (sampler, steps)."""
    schedule = cfg.get("schedule") or (cfg.get("ddpm") or {}).get("schedule") or {}
    timesteps = int(schedule.get("timesteps", 1000))
    truth = M.to_unit(sem)
    rows = []
    warm = make_predictor("ddpm", model, cfg, sampler="ddim", steps=1)
    warm(to_model(mct[:1], device), batch_generator(seed, 0, device))
    for sampler, steps in expand_configs(configs, timesteps):
        run = make_predictor("ddpm", model, cfg, sampler=sampler, steps=steps)
        preds = []
        _sync(device)
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, len(mct), batch_size)):
            x = to_model(mct[start : start + batch_size], device)
            preds.append(from_model(run(x, batch_generator(seed, b, device))))
        _sync(device)
        dt = time.perf_counter() - t0
        pred = M.to_unit(np.concatenate(preds))
        ps = M.summarize(np.atleast_1d(M.psnr(pred, truth)))
        ss = M.summarize(np.atleast_1d(M.ssim(pred, truth)))
        rows.append({
            "sampler": sampler,
            "steps": timesteps if steps is None else steps,
            "n_tiles": len(mct),
            "psnr_mean": ps["mean"], "psnr_std": ps["std"], "psnr_n_inf": ps["n_inf"],
            "ssim_mean": ss["mean"], "ssim_std": ss["std"],
            "sec_per_image": dt / len(mct),
            "device": device,
            "batch_size": batch_size,
        })
    return pd.DataFrame(rows)


def sampler_study(
    ckpt: str | os.PathLike,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_csv: str | os.PathLike,
    out_png: str | os.PathLike | None = None,
    configs: list[dict] | None = None,
    n_tiles: int = 8,
    seed: int = 0,
    batch_size: int = 8,
    device: str = "auto",
) -> pd.DataFrame:
    """Run the study for a DDPM checkpoint on ``n_tiles`` seeded test tiles; CSV (+ PNG)."""
    from rocksr.checkpoint import load_for_inference
    from rocksr.figures_eval import plot_sampler_study
    from rocksr.store import open_tiles, write_table

    dev = resolve_device(device)
    kind, model, cfg = load_for_inference(ckpt, device=dev)
    if kind != "ddpm":
        raise ValueError(f"{ckpt}: the sampler study needs a DDPM checkpoint, got {kind!r}")
    group = open_tiles(store)
    ids = split_tile_ids(splits, "test")
    k = min(int(n_tiles), len(ids))
    sel = ids[np.sort(np.random.default_rng(seed).choice(len(ids), size=k, replace=False))]
    mct, sem = read_tiles(group, "mct", sel), read_tiles(group, "sem", sel)
    df = run_sampler_study(model, cfg, mct, sem, configs, seed=seed, batch_size=batch_size,
                           device=dev)
    df.insert(3, "tile_ids", " ".join(str(int(i)) for i in sel))
    write_table(df, out_csv)
    if out_png is not None:
        plot_sampler_study(df, out_png)
    return df
