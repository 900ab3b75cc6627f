"""Small synthetic images and stores for the data-stage tests, and a process probe."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def smooth_image(h: int, w: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """A smooth random 8-bit texture (well-defined under interpolation)."""
    rng = np.random.default_rng(seed)
    f = gaussian_filter(rng.random((h, w)), sigma)
    f = (f - f.min()) / (f.max() - f.min())
    return np.round(f * 255).astype(np.uint8)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (Linux ``/proc``; a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:\tZ") for line in fh)
    except FileNotFoundError:
        return False
