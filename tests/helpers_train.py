"""Shared fixtures for the training tests: tiny Zarr tile stores + splits CSVs in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

from rocksr.data.tilestore import certify_store

TINY_UNET = {
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "attention_levels": [False, True],
    "norm_num_groups": 4,
    "attention_head_dim": 8,
}


def smooth_field(rng: np.random.Generator, n: int, size: int, k: int = 4) -> np.ndarray:
    """(n, size, size) smooth random images in [0, 1] (low-pass noise via a coarse grid)."""
    coarse = rng.random((n, k, k))
    rep = -(-size // k)
    up = np.kron(coarse, np.ones((rep, rep)))[:, :size, :size]
    return up


def make_store(
    root: Path,
    n: int = 16,
    size: int = 32,
    seed: int = 0,
    fractions: tuple[float, float] = (0.75, 0.25),
) -> tuple[Path, Path]:
    """Write ``root/tiles.zarr`` (mct, sem uint8 (n,size,size), chunks (1,size,size)) and
    ``root/splits.csv`` (first part train, then val, last tile 'excluded').  SEM is a sharpened,
    deterministic function of the micro-CT so that there is something to learn."""
    rng = np.random.default_rng(seed)
    base = smooth_field(rng, n, size)
    detail = rng.random((n, size, size))
    mct = np.clip(base * 255, 0, 255).astype(np.uint8)
    sem = np.clip((0.7 * base + 0.3 * (base > 0.5) + 0.05 * detail) * 220, 0, 255).astype(np.uint8)
    store = root / "tiles.zarr"
    g = zarr.open_group(str(store), mode="w")
    g.attrs["tile_size"] = size
    g.attrs["complete"] = True
    for name, arr in (("mct", mct), ("sem", sem)):
        a = g.create_array(name, shape=arr.shape, dtype="uint8", chunks=(1, size, size))
        a[:] = arr
    certify_store(store)  # record the digest manifest that rocksr's readers verify
    n_train = int(round(fractions[0] * (n - 1)))
    split = ["train"] * n_train + ["val"] * (n - 1 - n_train) + ["excluded"]
    splits = root / "splits.csv"
    pd.DataFrame({"tile_id": np.arange(n), "split": split}).to_csv(splits, index=False)
    return store, splits


def cgan_params(**kw) -> dict:
    p = {
        "batch_size": 4,
        "max_steps": 8,
        "lr": 2e-4,
        "betas": [0.5, 0.999],
        "lambda_l1": 100.0,
        "val_every": 4,
        "ckpt_every": 4,
        "log_every": 2,
        "n_val_samples": 2,
        "data": {"num_workers": 0, "pin_memory": "auto", "train_flips": False},
    }
    p.update(kw)
    return p


def ddpm_params(**kw) -> dict:
    p = {
        "batch_size": 4,
        "max_steps": 8,
        "lr": 5e-5,
        "weight_decay": 5e-4,
        "grad_clip": 0.7,
        "loss": "l1",
        "schedule": {
            "timesteps": 50,
            "beta_schedule": "linear",
            "beta_start": 1e-4,
            "beta_end": 0.2,
        },
        "unet": dict(TINY_UNET),
        "ema": {"enabled": True, "decay": 0.9},
        "plateau": {"factor": 0.5, "patience": 1},
        "val_every": 4,
        "ckpt_every": 4,
        "log_every": 2,
        "n_val_samples": 2,
        "val_sampler": "ddim",
        "val_sampler_steps": 3,
        "data": {"num_workers": 0, "pin_memory": "auto", "train_flips": True},
    }
    p.update(kw)
    return p


def train_paths(root: Path) -> dict:
    return {
        "best_ckpt": root / "out" / "best.pt",
        "history_csv": root / "out" / "history.csv",
        "samples_dir": root / "out" / "samples",
        "state_dir": root / "state",
    }


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: on a small, shared CPU, torch's default pool oversubscribes and these
    tiny models run >10x slower; results do not depend on it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
