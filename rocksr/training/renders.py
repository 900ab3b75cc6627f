"""rocksr.training.renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rocksr.data.values import tensor_to_uint8
from rocksr.files import atomic_file


def save_sample_grid(
    path: Path, mct: torch.Tensor, pred: torch.Tensor, truth: torch.Tensor, gap: int = 4
) -> None:
    """One row per sample: micro-CT | prediction | truth (8-bit PNG, white gaps)."""
    from PIL import Image

    rows = []
    for i in range(mct.shape[0]):
        tiles = [tensor_to_uint8(a[i, 0]) for a in (mct, pred, truth)]
        h = tiles[0].shape[0]
        sep = np.full((h, gap), 255, np.uint8)
        rows.append(np.concatenate([tiles[0], sep, tiles[1], sep, tiles[2]], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1]), 255, np.uint8))
    img = np.concatenate(rows[:-1], axis=0)
    with atomic_file(path) as tmp:
        Image.fromarray(img).save(tmp)
