"""Defaults of the ``tiling`` section: tile size, stride, angles, edge tiles."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tiling:
    """The study's tiles: 512 px, stride 128, 18 angles (seed §2)."""

    size: int = 512
    stride: int = 128
    angles: list[float] = field(default_factory=lambda: [float(a) for a in range(0, 360, 20)])
    edge_tiles: str = "unrotated"
    interpolation: str = "linear"
