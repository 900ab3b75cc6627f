"""What the synthetic rock and the micro-CT forward model share.

The phase ids (``PHASES``) and each phase's grey level in BSE-SEM (``SEM_LEVELS``) and in
micro-CT (``CT_LEVELS``); the defaults of the rock's and the forward model's keyword parameters
(``ROCK_DEFAULTS``, ``FORWARD_DEFAULTS``: their one home, read by
:mod:`rocksr.data.synthetic_rock`, :mod:`rocksr.data.forward_model` and
:func:`rocksr.data.synthetic.generate_pair`); and the seeded random helpers both draw from.
numpy + OpenCV, float32, deterministic by seed.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

#: Phase ids of the label map returned by :func:`rocksr.data.synthetic_rock.generate_sem`.
PHASES: tuple[str, ...] = (
    "pore",  # 0 epoxy-filled pore (also cracks, dissolution pits, grain-contact gaps)
    "quartz",  # 1
    "k_feldspar",  # 2 perthitic, partly dissolved
    "plagioclase",  # 3 partly dissolved along cleavage
    "dolomite",  # 4 SEM-grey like quartz but CT-bright
    "clay",  # 5 micro-porous, speckled, in pore throats and as coatings
    "calcite",  # 6 pore-filling cement
    "heavy",  # 7 pyrite / zircon / Fe-Ti oxides
)


PORE, QUARTZ, KFS, PLAG, DOL, CLAY, CALC, HEAVY = range(len(PHASES))


#: BSE grey level per phase (mean atomic number), tuned to the North Sea SEM (pore 22, quartz 206).
SEM_LEVELS = np.array([22, 206, 226, 197, 200, 150, 236, 252], dtype=np.float32)


#: micro-CT grey level per phase (density x effective Z); order differs from SEM_LEVELS:
#: dolomite and calcite swap, plagioclase/dolomite straddle quartz differently.
CT_LEVELS = np.array([38, 120, 146, 113, 168, 86, 156, 245], dtype=np.float32)


#: Keyword parameters of :func:`rocksr.data.synthetic_rock.generate_sem` and their defaults.
ROCK_DEFAULTS: dict[str, Any] = {
    "grain_radius_px": 40.0,  # median grain radius (px); 40 matches the real SEM at 0.95 um/px
    "radius_log_sd": 0.35,  # log-normal spread of grain radii
    "porosity": 0.15,  # area fraction of open pore (phase 0), incl. cracks and pits
    "grain_overlap": 0.15,  # allowed disc overlap when placing grains (fraction of r1 + r2)
    "size_jitter": 0.15,  # per-grain random shrink (opens pores around some grains)
    "elongation": 0.3,  # max ellipse term of the grain outline
    "angularity": 0.07,  # amplitude of angular harmonics 3..6 of the grain outline
    "boundary_roughness": 0.03,  # relative amplitude of smooth outline noise
    "feldspar_fraction": 0.14,  # fraction of grains that are feldspar
    "k_feldspar_share": 0.5,  # share of feldspar grains that are K-feldspar (rest plagioclase)
    "altered_feldspar_share": 0.45,  # share of feldspar grains with dissolution pits
    "dolomite_fraction": 0.05,  # fraction of grains that are dolomite
    "heavy_fraction": 0.03,  # fraction of (small) grains that are heavy minerals
    "clay_fraction": 0.07,  # area fraction of pore-filling / coating clay
    "cement_fraction": 0.015,  # area fraction of calcite cement patches in pores
    "crack_density": 1.0,  # relative amount of thin intragranular cracks (0 = none)
    "contact_lines": 1.0,  # 1: dark 1-px gaps along grain contacts, 0: none
    "sem_blur": 0.6,  # Gaussian blur sigma of the SEM finish (px)
    "sem_noise": 2.0,  # Gaussian noise sigma of the SEM finish (grey levels)
}


#: Keyword parameters of :func:`rocksr.data.forward_model.simulate_mct` and their defaults.
FORWARD_DEFAULTS: dict[str, Any] = {
    "psf_sigma": 1.5,  # Gaussian PSF sigma in SEM pixels
    "partial_volume_factor": 4,  # block-average factor (CT voxel / SEM pixel), int >= 1
    "upsample": "cubic",  # back to the SEM grid: "cubic" | "linear"
    "noise_sigma": 0.025,  # noise std at quartz level on the CT grid, fraction of 255
    "noise_signal_power": 0.5,  # noise std ~ (signal / quartz level) ** power
    "cupping": 0.03,  # relative darkening of the centre (beam hardening); 0 = off
    "rings": 0.008,  # ring-artifact amplitude, fraction of 255; 0 = off
    "misregistration_px": 0.0,  # max smooth displacement of the CT vs the SEM (SEM px)
    "texture_gain": 0.5,  # share of within-phase SEM texture carried into attenuation
}


def spawn_rngs(seed: int, n: int, salt: int) -> list[np.random.Generator]:
    """``n`` independent generators from ``seed`` and a per-model ``salt`` (one per step)."""
    ss = np.random.SeedSequence([int(seed) % 2**64, salt])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Unit-std float32 Gaussian random field with correlation length ~scale px."""
    s = max(1, int(round(scale)))
    hl, wl = -(-h // s) + 4, -(-w // s) + 4
    a = rng.standard_normal((hl, wl), dtype=np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    if s > 1:
        a = cv2.resize(a, (wl * s, hl * s), interpolation=cv2.INTER_CUBIC)
    a = np.ascontiguousarray(a[s : s + h, s : s + w])
    a *= np.float32(1.0 / max(float(a[::4, ::4].std()), 1e-6))
    return a
