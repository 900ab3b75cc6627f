"""The one value mapping between 8-bit images and the networks' [-1, 1] range.

uint8 ``u`` -> ``u / 127.5 - 1`` (float32); ``y`` in [-1, 1] -> ``round((y + 1) * 127.5)`` in
float32 (half to even), clipped to 0..255.  Every model input and output goes through here.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def uint8_to_unit(a: np.ndarray) -> np.ndarray:
    """uint8 -> float32 array in [-1, 1]; a float array is taken to be in model units already
    and returned as float32."""
    if a.dtype == np.uint8:
        out = a.astype(np.float32)
        out /= np.float32(127.5)
        out -= np.float32(1.0)
        return out
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32, copy=False)
    raise ValueError(f"expected a uint8 or float image, got {a.dtype}")


def to_unit_range(a: np.ndarray) -> Any:
    """uint8 (S,S) -> float32 tensor (1,S,S) in [-1,1]."""
    return to_model(a[None])[0]


def to_model(tiles: np.ndarray, device: Any = "cpu") -> Any:
    """uint8 (B,S,S) -> float32 tensor (B,1,S,S) in [-1, 1] on ``device``."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)).div_(127.5).sub_(1.0)
    return t[:, None].to(device)


def unit_to_uint8(a: np.ndarray) -> np.ndarray:
    """Array in [-1, 1] -> uint8: ``round((a + 1) * 127.5)`` in float32, clipped to 0..255."""
    a = np.asarray(a, dtype=np.float32)
    return np.clip(np.rint((a + 1.0) * 127.5), 0, 255).astype(np.uint8)


def tensor_to_uint8(x: Any) -> np.ndarray:
    """A tensor of any shape in [-1, 1] -> uint8 array of that shape (:func:`unit_to_uint8`)."""
    return unit_to_uint8(x.detach().float().cpu().numpy())


def from_model(x: Any) -> np.ndarray:
    """Tensor (B,1,S,S) in [-1, 1] -> uint8 (B,S,S)."""
    return tensor_to_uint8(x[:, 0])
