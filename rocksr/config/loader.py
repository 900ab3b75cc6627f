"""Defaults of the ``data`` section: DataLoader settings and training-time augmentation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Data:
    num_workers: int = 0
    pin_memory: bool | str = "auto"
    persistent_workers: bool = False
    prefetch_factor: int = 2
    train_flips: bool = False
    in_memory: bool | str = "auto"  # read a split's tiles once (auto: when they fit 512 MiB)


# loader settings change how batches are fetched, never which ones: not part of an experiment
LOADER_KEYS = frozenset(
    {"num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "in_memory"}
)
