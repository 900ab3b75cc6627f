"""Defaults of the ``split`` section: the location-disjoint train/val/test split."""

from __future__ import annotations

from dataclasses import dataclass, field


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
