"""Tiling and blending maths for whole-image inference (``rocksr enhance``); no file I/O.

Conventions:

* Model units: a uint8 grey value ``u`` enters a model as ``u / 127.5 - 1`` (float32, the
  mapping of :func:`rocksr.data.values.to_model`); a model output ``y`` in [-1, 1] leaves as
  ``round((y + 1) * 127.5)`` clipped to 0..255 (:func:`unit_to_uint8`).
* The tile grid (:func:`tile_origins`) steps by ``stride = tile - overlap`` and its last tile is
  placed flush with the image end, so every tile lies entirely inside the image and every
  pixel is covered by at least one tile.  Where the length is not a multiple of the stride the
  last two tiles simply overlap by more than ``overlap``.
* Border handling: because the grid is flush, **no padding of any kind is used**: the model never
  sees a fabricated pixel (no zero padding, and no reflection padding is needed either).  An
  image smaller than one tile in either direction is refused (:class:`ValueError` here; the
  caller turns it into a user error).  Pixels at the image border come from the border of one
  tile, exactly as a model trained on tiles sees tile borders.
* Blending: each tile's output is weighted by a window (:func:`blend_window`) and the weighted
  sum is divided by the summed weights of all tiles covering the pixel, so any window gives an
  exact partition of unity.  Windows are products of 1-D windows that fall to a small positive
  floor (``WINDOW_FLOOR``) at the tile border, never to 0, so the division is always defined.
* Seams (:func:`seam_ratio`): the "handover line" between two neighbouring tiles is the tile
  boundary for overlap 0 and the middle of their overlap otherwise (where the blending weights of
  the two tiles are equal for a symmetric window); the ratio compares the error in a band around
  the interior handover lines with the error everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from rocksr.config.choices import WINDOWS
from rocksr.data.values import uint8_to_unit, unit_to_uint8

# the smallest weight a window takes (MONAI clamps its importance map the same way)
WINDOW_FLOOR = 1e-3
DEFAULT_SIGMA_SCALE = 0.125

__all__ = [
    "WINDOWS",
    "WINDOW_FLOOR",
    "tile_origins",
    "tile_grid",
    "window_1d",
    "blend_window",
    "weight_sum",
    "iter_blended_rows",
    "blend_deterministic",
    "blend_float",
    "handover_lines",
    "seam_mask",
    "seam_ratio",
    "step_ratio",
]


def tile_origins(length: int, tile: int, overlap: int) -> np.ndarray:
    """Start coordinates (int64, ascending) of the tiles along one axis of ``length`` pixels.

    Stride ``tile - overlap``; the last tile ends exactly at ``length``; one tile (origin 0)
    when ``length == tile``.  Raises ValueError for ``length < tile`` or a bad overlap.
    """
    length, tile, overlap = int(length), int(tile), int(overlap)
    if tile < 1:
        raise ValueError(f"tile size must be >= 1, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in 0..{tile - 1} for a {tile} px tile, got {overlap}")
    if length < tile:
        raise ValueError(f"length {length} is smaller than one tile ({tile} px)")
    stride = tile - overlap
    n = 1 + -(-(length - tile) // stride)  # ceil
    origins = np.arange(n, dtype=np.int64) * stride
    origins[-1] = length - tile
    return origins


def tile_grid(height: int, width: int, tile: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """(row origins, column origins) of the tile grid of an image."""
    return tile_origins(height, tile, overlap), tile_origins(width, tile, overlap)


def window_1d(
    tile: int, kind: str = "gaussian", sigma_scale: float = DEFAULT_SIGMA_SCALE
) -> np.ndarray:
    """1-D blending weights (float32, max 1, >= ``WINDOW_FLOOR``), symmetric about the centre.

    ``gaussian``: exp(-d^2 / (2 sigma^2)), sigma = sigma_scale * tile, d the distance from the
    tile centre (MONAI ``sliding_window_inference`` with ``mode="gaussian"``); ``cosine``:
    sin^2(pi (i + 0.5) / tile) (a Hann window; for a half-tile overlap the weights of two
    neighbours sum to 1); ``constant``: ones (plain averaging, for overlap-0 comparisons).
    """
    tile = int(tile)
    if tile < 1:
        raise ValueError(f"tile size must be >= 1, got {tile}")
    i = np.arange(tile, dtype=np.float64)
    if kind == "gaussian":
        if sigma_scale <= 0:
            raise ValueError(f"sigma_scale must be > 0, got {sigma_scale}")
        sigma = float(sigma_scale) * tile
        w = np.exp(-((i - (tile - 1) / 2.0) ** 2) / (2.0 * sigma**2))
    elif kind == "cosine":
        w = np.sin(np.pi * (i + 0.5) / tile) ** 2
    elif kind == "constant":
        w = np.ones(tile)
    else:
        raise ValueError(f"unknown blend window {kind!r} (one of {WINDOWS})")
    w = w / w.max()
    return np.maximum(w, WINDOW_FLOOR).astype(np.float32)


def blend_window(
    tile: int, kind: str = "gaussian", sigma_scale: float = DEFAULT_SIGMA_SCALE
) -> np.ndarray:
    """(tile, tile) float32 blending weights: the outer product of :func:`window_1d`."""
    w = window_1d(tile, kind, sigma_scale)
    return np.outer(w, w).astype(np.float32)


def weight_sum(
    origins_y: np.ndarray, origins_x: np.ndarray, window: np.ndarray, height: int, width: int
) -> np.ndarray:
    """(height, width) float32 sum of the window over all tiles of the grid (for the fused
    sampler, which needs the normalization of the whole image at once)."""
    t = window.shape[0]
    s = np.zeros((height, width), dtype=np.float32)
    for y0 in origins_y:
        for x0 in origins_x:
            s[y0 : y0 + t, x0 : x0 + t] += window
    return s


PredictBatch = Callable[[torch.Tensor], torch.Tensor]


def iter_blended_rows(
    image: np.ndarray,
    predict_batch: PredictBatch,
    tile: int,
    overlap: int,
    batch_size: int = 8,
    window: str = "gaussian",
    *,
    sigma_scale: float = DEFAULT_SIGMA_SCALE,
    device: str | torch.device = "cpu",
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Blend a deterministic tile model over ``image`` one row of tiles at a time.

    ``image``: (H, W) uint8 (mapped to model units) or float (already in model units).
    ``predict_batch``: (B, 1, tile, tile) float32 tensor on ``device`` -> tensor of the same
    shape (model units).  Tiles go through it in row-major order, ``batch_size`` at a time
    (batches may span tile rows).  Yields ``(y0, rows)``: float32 ``(n, W)`` blended output rows
    ``y0 .. y0 + n - 1``, in order, each as soon as no later tile touches it.  Memory: two
    ``(tile, W)`` float32 accumulators plus one batch of tiles, whatever the image height.
    ``on_batch(n)`` is called after each batch of ``n`` tiles (progress).
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    h, w = image.shape
    ys, xs = tile_grid(h, w, tile, overlap)
    win = blend_window(tile, window, sigma_scale)
    acc = np.zeros((tile, w), dtype=np.float32)  # weighted sum, rows base .. base + tile - 1
    wsum = np.zeros((tile, w), dtype=np.float32)
    base = 0  # image row of acc[0]; every tile of the current tile row starts there
    positions = [(int(y0), int(x0)) for y0 in ys for x0 in xs]

    def run(batch_pos: list[tuple[int, int]]) -> np.ndarray:
        tiles = np.stack([uint8_to_unit(image[y : y + tile, x : x + tile]) for y, x in batch_pos])
        with torch.no_grad():
            out = predict_batch(torch.from_numpy(tiles)[:, None].to(device))
        if tuple(out.shape) != (len(batch_pos), 1, tile, tile):
            raise ValueError(
                f"the model returned shape {tuple(out.shape)} for tiles "
                f"{(len(batch_pos), 1, tile, tile)}"
            )
        if on_batch is not None:
            on_batch(len(batch_pos))
        return out.detach().float().cpu().numpy()[:, 0]

    for start in range(0, len(positions), int(batch_size)):
        batch_pos = positions[start : start + int(batch_size)]
        out = run(batch_pos)
        for (y, x), o in zip(batch_pos, out, strict=True):
            if y > base:
                # tiles arrive row-major: no later tile touches the rows above this one's start
                shift = y - base
                yield base, acc[:shift] / wsum[:shift]
                acc = np.concatenate([acc[shift:], np.zeros((shift, w), np.float32)])
                wsum = np.concatenate([wsum[shift:], np.zeros((shift, w), np.float32)])
                base = y
            acc[:, x : x + tile] += win * o
            wsum[:, x : x + tile] += win
    yield base, acc[: h - base] / wsum[: h - base]


def blend_float(
    image: np.ndarray,
    predict_batch: PredictBatch,
    tile: int,
    overlap: int,
    batch_size: int = 8,
    window: str = "gaussian",
    **kw,
) -> np.ndarray:
    """:func:`iter_blended_rows` collected into one (H, W) float32 array (model units)."""
    out = np.empty(image.shape, dtype=np.float32)
    for y0, rows in iter_blended_rows(
        image, predict_batch, tile, overlap, batch_size, window, **kw
    ):
        out[y0 : y0 + rows.shape[0]] = rows
    return out


def blend_deterministic(
    image: np.ndarray,
    predict_batch: PredictBatch,
    tile: int,
    overlap: int,
    batch_size: int = 8,
    window: str = "gaussian",
    *,
    out: np.ndarray | None = None,
    **kw,
) -> np.ndarray:
    """Blended uint8 output (same shape as ``image``) of a deterministic tile model.

    Streams :func:`iter_blended_rows`: only the uint8 output (``out``, allocated when None; any
    array-like supporting row-slice assignment, e.g. a memmap) is full-size.
    """
    if out is None:
        out = np.empty(image.shape, dtype=np.uint8)
    for y0, rows in iter_blended_rows(
        image, predict_batch, tile, overlap, batch_size, window, **kw
    ):
        out[y0 : y0 + rows.shape[0]] = unit_to_uint8(rows)
    return out


# ------------------------------------------------------------------------------ seam metric


def handover_lines(length: int, tile: int, overlap: int) -> np.ndarray:
    """Interior handover lines along one axis (int64; the line lies between pixel ``c - 1``
    and ``c``): the middle of the overlap of each pair of consecutive tiles, rounded down.
    For overlap 0 that is the tile boundary (the next tile's origin), except before the flush
    last tile when the length is not a multiple of the tile, which overlaps its neighbour."""
    o = tile_origins(length, tile, overlap)
    return (o[1:] + o[:-1] + tile) // 2


def seam_mask(shape: tuple[int, int], tile: int, overlap: int, band: int = 3) -> np.ndarray:
    """bool (H, W): pixels within ``band`` px of an interior handover line (rows ``c - band``
    .. ``c + band - 1`` around line ``c``, the same for columns)."""
    h, w = shape
    m = np.zeros((h, w), dtype=bool)
    for c in handover_lines(h, tile, overlap):
        m[max(c - band, 0) : c + band, :] = True
    for c in handover_lines(w, tile, overlap):
        m[:, max(c - band, 0) : c + band] = True
    return m


def seam_ratio(
    pred: np.ndarray, truth: np.ndarray, tile: int, overlap: int, band: int = 3
) -> float:
    """MAE of ``pred`` vs ``truth`` in the seam band (:func:`seam_mask`) divided by the MAE in
    the tile interiors (every other pixel).  1.0 = no seams; NaN when the image is one tile
    (no interior handover line) or the interior error is 0."""
    if pred.shape != truth.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must be equal 2-D shapes")
    m = seam_mask(pred.shape, tile, overlap, band)
    if not m.any() or m.all():
        return float("nan")
    err = np.abs(pred.astype(np.float64) - truth.astype(np.float64))
    interior = float(err[~m].mean())
    if interior == 0:
        return float("nan")
    return float(err[m].mean()) / interior


def step_ratio(pred: np.ndarray, tile: int, overlap: int, period: int = 8) -> float:
    """Truth-free seam measure: mean |difference between neighbouring pixels| across the
    interior handover lines (pixel ``c - 1`` vs ``c``, both directions) divided by the same
    across the other neighbour pairs at the same phase modulo ``period`` (a U-Net with
    ``log2(period)`` down-sampling levels leaves a period-``period`` pattern on every tile,
    aligned with the tile grid; comparing like phases keeps that pattern out of the ratio).
    1.0 = a handover line looks like any other place; a visible tile border gives > 1.
    NaN for a one-tile image."""
    if pred.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {pred.shape}")
    p = pred.astype(np.float64)
    dy, dx = np.abs(np.diff(p, axis=0)), np.abs(np.diff(p, axis=1))  # dy[i]: rows i, i + 1
    on_parts, off_parts = [], []
    for d, length, axis in ((dy, p.shape[0], 0), (dx, p.shape[1], 1)):
        lines = handover_lines(length, tile, overlap) - 1  # index into d
        on = np.zeros(length - 1, bool)
        on[lines] = True
        ref = np.isin(np.arange(length - 1) % period, lines % period) & ~on
        on_parts.append(np.compress(on, d, axis=axis).ravel())
        off_parts.append(np.compress(ref, d, axis=axis).ravel())
    on_all, off_all = np.concatenate(on_parts), np.concatenate(off_parts)
    if not on_all.size or not off_all.size or off_all.mean() == 0:
        return float("nan")
    return float(on_all.mean() / off_all.mean())
