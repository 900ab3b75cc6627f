"""Defaults of the ``normalize`` section: the per-modality contrast normalization."""

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
