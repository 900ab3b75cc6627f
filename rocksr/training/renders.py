"""Validation renders: a PNG grid of micro-CT, prediction and SEM tiles at a training step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rocksr.data.values import tensor_to_uint8
from rocksr.files import atomic_file

# validation renders are enlarged (nearest neighbour) until a tile is at least this wide
MIN_RENDER_PX = 256
HEADER_PX = 18


def save_sample_grid(
    path: Path,
    mct: torch.Tensor,
    pred: torch.Tensor,
    truth: torch.Tensor,
    gap: int = 4,
    title: str = "",
) -> None:
    """One row per sample: micro-CT | prediction | truth (8-bit PNG, white gaps), each tile
    enlarged by an integer factor to at least :data:`MIN_RENDER_PX` px, under a labelled header
    (the column names and ``title``, e.g. the step)."""
    from PIL import Image, ImageDraw

    rows = []
    scale = 1
    for i in range(mct.shape[0]):
        tiles = [tensor_to_uint8(a[i, 0]) for a in (mct, pred, truth)]
        scale = max(1, -(-MIN_RENDER_PX // tiles[0].shape[1]))
        tiles = [np.kron(x, np.ones((scale, scale), np.uint8)) for x in tiles]
        h = tiles[0].shape[0]
        sep = np.full((h, gap), 255, np.uint8)
        rows.append(np.concatenate([tiles[0], sep, tiles[1], sep, tiles[2]], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1]), 255, np.uint8))
    body = np.concatenate(rows[:-1], axis=0)
    img = Image.new("L", (body.shape[1], body.shape[0] + HEADER_PX), 255)
    img.paste(Image.fromarray(body), (0, HEADER_PX))
    draw = ImageDraw.Draw(img)
    width = (body.shape[1] - 2 * gap) // 3
    for j, label in enumerate(("micro-CT (input)", "prediction", "SEM (truth)")):
        text = f"{label}, {title}" if title and j == 1 else label
        draw.text((j * (width + gap) + 4, 3), text, fill=0)
    with atomic_file(path) as tmp:
        img.save(tmp)
