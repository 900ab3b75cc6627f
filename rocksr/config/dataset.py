"""Defaults of the data sections: normalize (per modality), tiling, store, split."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NormalizeModality:
    """Percentile stretch to 8 bits, optionally followed by CLAHE."""

    p_low: float = 0.5
    p_high: float = 99.5
    clahe: bool = False
    clahe_clip: float = 0.01
    clahe_kernel: int = 64


@dataclass
class Normalize:
    mct: NormalizeModality = field(default_factory=NormalizeModality)
    sem: NormalizeModality = field(default_factory=NormalizeModality)


@dataclass
class Tiling:
    """The study's tiles: 512 px, stride 128, 18 angles (seed §2)."""

    size: int = 512
    stride: int = 128
    angles: list[float] = field(default_factory=lambda: [float(a) for a in range(0, 360, 20)])
    edge_tiles: str = "unrotated"
    interpolation: str = "linear"


@dataclass
class Store:
    compressor: str = "lz4"
    level: int = 1
    shard_tiles: int = 64


@dataclass
class Blocks:
    rows: int = 3
    cols: int = 3


@dataclass
class Holdout:
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)


@dataclass
class Split:
    strategy: str = "regions"
    fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.65, "val": 0.13, "test": 0.22}
    )
    blocks: Blocks = field(default_factory=Blocks)
    holdout: Holdout = field(default_factory=Holdout)
    seed: int = 0
