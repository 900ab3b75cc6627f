"""Built-in synthetic paired sample: an SEM-like sandstone image and its micro-CT partner.

:func:`generate_pair` is the entry point. Its parts live next to it:
:mod:`rocksr.data.synthetic_rock` (``generate_sem``: touching, irregular grains of several
minerals with pores, clay, cement, feldspar textures and cracks), :mod:`rocksr.data.forward_model`
(``simulate_mct`` turns any SEM image, synthetic or real, into a micro-CT-like image:
phase -> attenuation (not a monotone remap of SEM brightness), PSF blur, partial-volume
averaging, signal-dependent noise, optional cupping / rings / misregistration; ``segment_sem``)
and :mod:`rocksr.data.synthetic_common` (the phases, their grey levels and the defaults,
``ROCK_DEFAULTS`` and ``FORWARD_DEFAULTS``). This module re-exports their public names.
Everything is numpy + scipy + OpenCV, float32, and deterministic by seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rocksr.config.merge import merge_known
from rocksr.data.forward_model import segment_sem, simulate_mct
from rocksr.data.synthetic_common import (
    CALC,
    CLAY,
    CT_LEVELS,
    DOL,
    FORWARD_DEFAULTS,
    HEAVY,
    KFS,
    PHASES,
    PLAG,
    PORE,
    QUARTZ,
    ROCK_DEFAULTS,
    SEM_LEVELS,
)
from rocksr.data.synthetic_rock import generate_sem

__all__ = [
    "CALC",
    "CLAY",
    "CT_LEVELS",
    "DOL",
    "FORWARD_DEFAULTS",
    "HEAVY",
    "KFS",
    "PHASES",
    "PLAG",
    "PORE",
    "QUARTZ",
    "ROCK_DEFAULTS",
    "SEM_LEVELS",
    "generate_pair",
    "generate_sem",
    "segment_sem",
    "simulate_mct",
]


def generate_pair(
    height: int,
    width: int,
    seed: int,
    rock: dict[str, Any] | None = None,
    forward: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Registered synthetic pair ``(mct, sem)``, uint8 (height, width), deterministic by seed."""
    rock = dict(rock or {})
    forward = dict(forward or {})
    merge_known(FORWARD_DEFAULTS, forward, "forward")  # fail fast, before the costly SEM
    sem, phases = generate_sem(height, width, seed, **rock)
    mct = simulate_mct(sem, seed + 7919, phases=phases, **forward)
    return mct, sem
