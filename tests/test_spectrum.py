"""The power-spectrum distance of Table 1's texture columns (rocksr.evaluation.spectrum)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from rocksr.evaluation.spectrum import radial_power_spectrum, spectrum_distance


def texture(n: int = 3, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size))


def test_identical_images_have_distance_zero() -> None:
    t = texture()
    assert np.all(spectrum_distance(t, t) == 0.0)
    assert spectrum_distance(t[0], t[0]) == 0.0


def test_a_sinusoid_puts_its_power_in_its_ring() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    f = 0.25  # cycles/px: 16 periods across 64 px
    freqs, p = radial_power_spectrum(0.5 + 0.4 * np.sin(2 * np.pi * f * xx + 0 * yy))
    assert freqs[np.argmax(p)] == pytest.approx(f)


def test_more_blur_means_a_larger_distance() -> None:
    t = texture()
    d = [
        spectrum_distance(np.stack([gaussian_filter(x, s) for x in t]), t).mean()
        for s in (0.5, 1.0, 2.0)
    ]
    assert 0 < d[0] < d[1] < d[2]


def test_white_noise_has_a_flat_spectrum_and_a_flat_image_a_huge_distance() -> None:
    t = texture(n=8, size=128, seed=1)
    freqs, p = radial_power_spectrum(t)
    band = p.mean(axis=0)[(freqs >= 0.125) & (freqs <= 0.5)]
    assert band.max() / band.min() < 1.5  # white: the same power at every fine scale
    flat = spectrum_distance(np.full_like(t, 0.5), t)
    assert np.all(np.isfinite(flat)) and np.all(flat > 5)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        spectrum_distance(np.zeros((8, 8)), np.zeros((8, 9)))
