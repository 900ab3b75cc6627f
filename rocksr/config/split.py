"""Defaults of the ``split`` section: the location-disjoint train/val/test split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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


# the keys of the section that a strategy reads besides strategy, fractions and seed
STRATEGY_KEYS: dict[str, tuple[str, ...]] = {"blocks": ("blocks",), "holdout_sample": ("holdout",)}


def strategy_params(split: Mapping[str, Any], strategy: str) -> dict[str, Any]:
    """The ``split`` section as ``strategy`` reads it (the leak study's split with another
    strategy): a key only another strategy reads is left out, so changing it re-runs nothing."""
    keep = ("fractions", "seed", *STRATEGY_KEYS.get(strategy, ()))
    return {"strategy": strategy, **{k: split[k] for k in keep if k in split}}
