"""The micro-CT forward model: :func:`simulate_mct` turns an SEM image into its micro-CT partner.

Any SEM image, synthetic (with its phase map) or real (segmented by grey level,
:func:`segment_sem`): phase -> attenuation (``CT_LEVELS``, not a monotone remap of SEM
brightness), PSF blur, partial-volume averaging onto the coarser CT grid, optional smooth
misregistration, cupping and rings, signal-dependent noise, and up-sampling back to the SEM
grid; one function per step. Keyword parameters and defaults: :data:`FORWARD_DEFAULTS`
(:mod:`rocksr.data.synthetic_common`). numpy + OpenCV, float32, deterministic by seed.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from rocksr.config.merge import merge_known
from rocksr.data.synthetic_common import (
    CLAY,
    CT_LEVELS,
    FORWARD_DEFAULTS,
    HEAVY,
    KFS,
    PHASES,
    PORE,
    QUARTZ,
    smooth_noise,
    spawn_rngs,
)


def segment_sem(sem: np.ndarray) -> np.ndarray:
    """Phase map of an SEM image from its grey levels (for real SEM images).

    Otsu splits pore from solid; the histogram modes of the two classes give the pore and
    the quartz (dominant grain) level; grey levels relative to those two anchors are cut into
    pore / clay / quartz / K-feldspar-like bright / heavy. Within-phase texture is kept by
    ``simulate_mct`` through ``texture_gain``.
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(sem)
    u8 = img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)
    sm = cv2.GaussianBlur(u8, (0, 0), 1.0)
    hist = np.bincount(sm[::2, ::2].ravel(), minlength=256).astype(np.float64)
    hist = np.convolve(hist, np.ones(5) / 5, mode="same")
    try:
        t = int(threshold_otsu(hist=hist))
    except (ValueError, TypeError):
        t = 128
    t = min(max(t, 1), 254)
    lo = int(np.argmax(hist[:t]))
    hi = t + int(np.argmax(hist[t:]))
    span = max(hi - lo, 20)
    x = (sm.astype(np.float32) - lo) / np.float32(span)
    cuts = np.array([0.35, 0.85, 1.07, 1.2], dtype=np.float32)
    cls = np.digitize(x, cuts).astype(np.uint8)
    lut = np.array([PORE, CLAY, QUARTZ, KFS, HEAVY], dtype=np.uint8)
    return lut[cls]


def _checked_inputs(
    sem: np.ndarray, phases: np.ndarray | None, p: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(the SEM as an array, its uint8 phase map, the partial-volume factor), after checking
    the image, the factor, the up-sampling and the phase map (segmented when None)."""
    img = np.asarray(sem)
    if img.ndim != 2:
        raise ValueError(f"sem must be a 2-D grey image, got shape {img.shape}")
    f = int(p["partial_volume_factor"])
    if f != p["partial_volume_factor"] or f < 1:
        raise ValueError("partial_volume_factor must be an integer >= 1")
    if p["upsample"] not in ("cubic", "linear"):
        raise ValueError("upsample must be 'cubic' or 'linear'")
    if phases is None:
        phases = segment_sem(img)
    phases = np.asarray(phases)
    if phases.shape != img.shape:
        raise ValueError(f"phases shape {phases.shape} != sem shape {img.shape}")
    if phases.size and int(phases.max()) >= len(PHASES):
        raise ValueError(f"phase ids must be < {len(PHASES)}")
    return img, phases.astype(np.uint8, copy=False), f


def _attenuation(img: np.ndarray, phases: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Attenuation on the SEM grid: ``CT_LEVELS[phase]`` plus ``texture_gain`` x the SEM's
    within-phase texture, blurred by the PSF (float32)."""
    s = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    step = max(1, int(np.sqrt(s.size / 4e6)))
    ps, ss = phases[::step, ::step].ravel(), s[::step, ::step].ravel()
    cnt = np.bincount(ps, minlength=len(PHASES))
    mean = np.bincount(ps, weights=ss, minlength=len(PHASES)) / np.maximum(cnt, 1)
    mu = s
    mu -= mean.astype(np.float32)[phases]
    mu *= np.float32(p["texture_gain"])
    mu += CT_LEVELS[phases]
    if float(p["psf_sigma"]) > 0:
        mu = cv2.GaussianBlur(mu, (0, 0), float(p["psf_sigma"]), borderType=cv2.BORDER_REFLECT)
    return mu


def _partial_volume(mu: np.ndarray, f: int) -> np.ndarray:
    """Block average by ``f`` onto the CT grid (edge-padded to a multiple of ``f``)."""
    h, w = mu.shape
    hp, wp = -(-h // f) * f, -(-w // f) * f
    if (hp, wp) != (h, w):
        mu = np.pad(mu, ((0, hp - h), (0, wp - w)), mode="edge")
    return mu.reshape(hp // f, f, wp // f, f).mean(axis=(1, 3), dtype=np.float32)


def _misregister(r_mis: np.random.Generator, low: np.ndarray, mis: float, f: int) -> np.ndarray:
    """A smooth displacement of at most ``mis`` SEM pixels (``mis / f`` CT pixels)."""
    hl, wl = low.shape
    sc = max(2.0, min(hl, wl) / 4)
    dy = smooth_noise(r_mis, hl, wl, sc)
    dx = smooth_noise(r_mis, hl, wl, sc)
    amp = np.float32(mis / f / max(float(np.abs(dy).max()), float(np.abs(dx).max()), 1e-6))
    gy, gx = np.mgrid[0:hl, 0:wl].astype(np.float32)
    return cv2.remap(
        low, gx + amp * dx, gy + amp * dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


def _cupping_and_rings(
    r_ring: np.random.Generator, low: np.ndarray, cup: float, ring: float
) -> None:
    """Beam-hardening cupping (relative darkening ``cup`` at the centre) and ring artifacts
    (amplitude ``ring`` x 255) about the image centre, on ``low`` in place."""
    hl, wl = low.shape
    yc = (np.arange(hl, dtype=np.float32) - (hl - 1) / 2)[:, None]
    xc = (np.arange(wl, dtype=np.float32) - (wl - 1) / 2)[None, :]
    rr = np.sqrt(yc * yc + xc * xc)
    rmax = float(rr.max()) or 1.0
    if cup > 0:
        low *= 1.0 - np.float32(cup) * (1.0 - (rr / np.float32(rmax)) ** 2)
    if ring > 0:
        nr = int(rmax) + 2
        prof = np.zeros(nr, dtype=np.float32)
        k = max(1, nr // 12)
        pos = r_ring.integers(0, nr, k)
        prof[pos] = r_ring.standard_normal(k).astype(np.float32)
        prof += 0.25 * r_ring.standard_normal(nr).astype(np.float32)
        prof = cv2.GaussianBlur(prof[None, :], (0, 0), 0.7)[0]
        prof *= np.float32(ring * 255 / max(float(np.abs(prof).max()), 1e-6))
        low += prof[np.minimum(rr.astype(np.int32), nr - 1)]


def _add_noise(r_noise: np.random.Generator, low: np.ndarray, p: dict[str, Any]) -> None:
    """Signal-dependent noise, slightly correlated like a reconstruction's, on ``low`` in place."""
    hl, wl = low.shape
    nz = r_noise.standard_normal((hl, wl), dtype=np.float32)
    nz = cv2.GaussianBlur(nz, (0, 0), 0.5)  # reconstruction-filter correlation
    nz *= np.float32(1.0 / max(float(nz.std()), 1e-6))
    amp = np.maximum(low, 1.0) / CT_LEVELS[QUARTZ]
    amp **= np.float32(p["noise_signal_power"])
    amp *= np.float32(float(p["noise_sigma"]) * 255)
    nz *= amp
    low += nz


def _to_sem_grid(low: np.ndarray, f: int, shape: tuple[int, int], upsample: str) -> np.ndarray:
    """The CT grid up-sampled by ``f`` (cubic or linear) and cut to the SEM's ``shape``, as
    uint8."""
    h, w = shape
    if f > 1:
        interp = cv2.INTER_CUBIC if upsample == "cubic" else cv2.INTER_LINEAR
        up = cv2.resize(low, (low.shape[1] * f, low.shape[0] * f), interpolation=interp)[:h, :w]
    else:
        up = low
    np.clip(up, 0, 255, out=up)
    np.rint(up, out=up)
    return up.astype(np.uint8)


def simulate_mct(
    sem: np.ndarray, seed: int, phases: np.ndarray | None = None, **forward: Any
) -> np.ndarray:
    """Micro-CT partner (uint8, same shape) of an SEM image by a forward model.

    Phase -> attenuation (``CT_LEVELS`` plus ``texture_gain`` x within-phase SEM texture),
    Gaussian PSF, block-average by ``partial_volume_factor`` (the CT grid), cupping, rings,
    optional smooth misregistration and signal-dependent noise on the CT grid, then cubic or
    linear up-sampling back to the SEM grid. Without ``phases`` the SEM is segmented by
    :func:`segment_sem`. Keyword parameters and defaults: ``FORWARD_DEFAULTS``.
    """
    p = merge_known(FORWARD_DEFAULTS, forward, "forward")
    img, phases, f = _checked_inputs(sem, phases, p)
    r_mis, r_ring, r_noise = spawn_rngs(seed, 3, 0xC7)
    low = _partial_volume(_attenuation(img, phases, p), f)
    mis = float(p["misregistration_px"])
    if mis > 0:
        low = _misregister(r_mis, low, mis, f)
    cup, ring = float(p["cupping"]), float(p["rings"])
    if cup > 0 or ring > 0:
        _cupping_and_rings(r_ring, low, cup, ring)
    if float(p["noise_sigma"]) > 0:
        _add_noise(r_noise, low, p)
    return _to_sem_grid(low, f, img.shape, p["upsample"])
