"""Texture as a power spectrum: the radially averaged power spectrum (RAPS) of an image and the
power-spectrum distance between a prediction and its truth.

* :func:`radial_power_spectrum`: subtract each image's mean, multiply by a 2-D Hann window (so
  that the tile's edges do not leak a cross of false high frequencies), take ``|FFT|^2 /
  sum(window^2)`` and average it over rings of radius ``k = sqrt(fx^2 + fy^2)`` (cycles per
  pixel), one ring per ``1 / min(H, W)``, up to the Nyquist frequency 0.5.
* :func:`spectrum_distance`: the mean over the rings of the high-frequency band ``band``
  (default wavelengths of 8 px down to 2 px: ``k`` in [1/8, 1/2]) of ``|log10(P_pred + eps) -
  log10(P_true + eps)|``, in decades (0 = the same texture energy at every scale; 1 = ten times
  too much or too little). A blurred prediction loses high-frequency power and its distance
  grows with the blur; a constant image has none, and ``eps = 1e-10`` (on [0, 1] images, far
  below any real texture's power) keeps its distance finite.

Pure numpy; images are float in [0, 1], one ``(H, W)`` or a batch ``(N, H, W)``.
"""

from __future__ import annotations

import numpy as np

SPECTRUM_BAND = (0.125, 0.5)  # cycles/px: wavelengths 8 px .. 2 px
SPECTRUM_EPS = 1e-10


def radial_power_spectrum(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ring centre frequencies ``(R,)`` in cycles/px, power ``(N, R)`` or ``(R,)``)."""
    a = np.asarray(images, dtype=np.float64)
    single = a.ndim == 2
    if single:
        a = a[None]
    if a.ndim != 3 or min(a.shape[-2:]) < 4:
        raise ValueError(f"radial_power_spectrum: need (H, W) or (N, H, W) images, got {a.shape}")
    n, h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    x = (a - a.mean(axis=(1, 2), keepdims=True)) * win
    power = np.abs(np.fft.fft2(x)) ** 2 / float((win**2).sum())
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    width = 1.0 / min(h, w)
    ring = np.floor(k / width + 0.5).astype(np.int64)  # ring 0 holds k = 0
    n_rings = int(np.floor(0.5 / width + 0.5)) + 1
    keep = ring < n_rings
    counts = np.bincount(ring[keep], minlength=n_rings).astype(np.float64)
    out = np.empty((n, n_rings))
    for i in range(n):
        out[i] = np.bincount(ring[keep], weights=power[i][keep], minlength=n_rings) / np.maximum(
            counts, 1
        )
    freqs = np.arange(n_rings) * width
    return freqs, (out[0] if single else out)


def spectrum_distance(
    pred: np.ndarray,
    truth: np.ndarray,
    band: tuple[float, float] = SPECTRUM_BAND,
    eps: float = SPECTRUM_EPS,
) -> float | np.ndarray:
    """Mean |log10 power difference| over the rings in ``band`` (decades); one value per image."""
    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"spectrum_distance: shapes differ, {p.shape} vs {t.shape}")
    freqs, pp = radial_power_spectrum(p)
    _, pt = radial_power_spectrum(t)
    sel = (freqs >= band[0]) & (freqs <= band[1])
    if not sel.any():
        raise ValueError(f"spectrum_distance: no frequency ring in {band} for {p.shape[-2:]}")
    d = np.abs(np.log10(pp[..., sel] + eps) - np.log10(pt[..., sel] + eps)).mean(axis=-1)
    return float(d) if np.ndim(d) == 0 else d
