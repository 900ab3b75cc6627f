"""Metrics: PSNR exactly as the seed, SSIM equal to scikit-image, refusals, porosity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rocksr.evaluation import metrics as M


def _sk_ssim(a: np.ndarray, b: np.ndarray, **kw) -> float:
    opts = dict(
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        K1=0.01,
        K2=0.03,
    )
    opts.update(kw)
    return structural_similarity(a, b, **opts)


def _structured_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    cam = skdata.camera()[::4, ::4].astype(np.float64) / 255.0  # 128x128 photo
    yy, xx = np.mgrid[0:96, 0:80]
    checker = (((yy // 8) + (xx // 8)) % 2).astype(np.float64)
    grad = (yy + xx) / (yy + xx).max()
    blocky = np.kron(rng.random((6, 5)), np.ones((16, 16)))
    return [
        (cam, np.clip(cam + 0.05 * rng.standard_normal(cam.shape), 0, 1)),
        (cam, cam[::-1].copy()),
        (checker, np.clip(checker * 0.8 + 0.1, 0, 1)),
        (grad, checker),
        (blocky, grad),
        (np.zeros((40, 40)), np.zeros((40, 40))),  # constant: SSIM 1 via C1, C2
        (np.ones((40, 40)), np.zeros((40, 40))),
    ]


# ----------------------------------------------------------------------------------- PSNR


def test_psnr_identical_images_is_inf() -> None:
    a = np.random.default_rng(0).random((3, 16, 16))
    assert M.psnr(a[0], a[0]) == math.inf
    v = M.psnr(a, a)
    assert v.shape == (3,) and np.all(np.isposinf(v))


def test_psnr_known_mse_is_exact() -> None:
    t = np.full((8, 8), 0.25)
    p = np.full((8, 8), 0.5)  # |diff| = 0.25 exactly -> MSE 1/16 -> PSNR 10 log10 16
    assert M.psnr(p, t) == pytest.approx(10 * math.log10(16), abs=1e-12)
    # a mixed image: half the pixels off by 0.5 -> MSE 0.125
    p2 = t.copy()
    p2[:4] = 0.75
    assert M.mse(p2, t) == pytest.approx(0.125, abs=1e-15)
    assert M.psnr(p2, t) == pytest.approx(10 * math.log10(8), abs=1e-12)
    # data_range enters as L^2
    assert M.psnr(p, t, data_range=1.0) == pytest.approx(12.041199826559248, abs=1e-12)


def test_psnr_matches_skimage_and_batch() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random((4, 20, 24)), rng.random((4, 20, 24))
    ours = M.psnr(a, b)
    ref = [peak_signal_noise_ratio(y, x, data_range=1.0) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    assert M.psnr(a[1], b[1]) == pytest.approx(ours[1], abs=0)


def test_crop_border() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((30, 30)), rng.random((30, 30))
    assert M.psnr(a, b, crop_border=4) == pytest.approx(M.psnr(a[4:-4, 4:-4], b[4:-4, 4:-4]))
    assert M.ssim(a, b, crop_border=4) == pytest.approx(M.ssim(a[4:-4, 4:-4], b[4:-4, 4:-4]))
    with pytest.raises(ValueError, match="crop_border"):
        M.psnr(a, b, crop_border=15)


# ----------------------------------------------------------------------------------- SSIM


def test_ssim_matches_skimage_on_random_images() -> None:
    rng = np.random.default_rng(0)
    for shape in [(11, 11), (32, 32), (37, 53), (64, 48)]:
        a = rng.random(shape)
        b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1)
        assert abs(M.ssim(a, b) - _sk_ssim(a, b)) < 1e-6
        c = rng.random(shape)
        assert abs(M.ssim(a, c) - _sk_ssim(a, c)) < 1e-6


def test_ssim_matches_skimage_on_structured_images() -> None:
    for a, b in _structured_pairs():
        assert abs(M.ssim(a, b) - _sk_ssim(a, b)) < 1e-6
        assert abs(M.ssim(b, a) - _sk_ssim(b, a)) < 1e-6


def test_ssim_batch_equals_per_image_and_other_settings() -> None:
    rng = np.random.default_rng(4)
    a = rng.random((200, 40, 36))  # > one internal slice (2^18 px)
    b = np.clip(a * 0.7 + 0.3 * rng.random(a.shape), 0, 1)
    ref = np.array([_sk_ssim(x, y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(M.ssim(a, b), ref, rtol=0, atol=1e-6)
    # the other explicit choices also agree with scikit-image
    for kw in (
        dict(gaussian_weights=False, win_size=7, use_sample_covariance=True),
        dict(gaussian_weights=False, win_size=7, use_sample_covariance=False),
        dict(use_sample_covariance=True),
        dict(sigma=1.0),
        dict(K1=0.02, K2=0.05),
    ):
        ours = M.ssim(a[0], b[0], **kw)
        assert abs(ours - _sk_ssim(a[0], b[0], **kw)) < 1e-6, kw


def test_ssim_identical_is_one_and_map_shape() -> None:
    a = np.random.default_rng(5).random((24, 24))
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim_map(a, a).shape == (24, 24)


def test_ssim_float32_inputs_computed_in_float64() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    ref = _sk_ssim(a32.astype(np.float64), b32.astype(np.float64))
    assert abs(M.ssim(a32, b32) - ref) < 1e-6


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(11, 30),
    w=st.integers(11, 30),
    seed=st.integers(0, 2**16),
    noise=st.floats(0.0, 1.0),
)
def test_ssim_matches_skimage_property(h: int, w: int, seed: int, noise: float) -> None:
    rng = np.random.default_rng(seed)
    a = rng.random((h, w))
    b = np.clip(a + noise * rng.standard_normal((h, w)), 0, 1)
    assert abs(M.ssim(a, b) - _sk_ssim(a, b)) < 1e-6


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("fn", [M.psnr, M.ssim, M.mse])
def test_metrics_refuse_bad_inputs(fn) -> None:
    good = np.random.default_rng(0).random((16, 16))
    with pytest.raises(ValueError, match="dtype"):
        fn((good * 255).astype(np.uint8), (good * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="outside"):
        fn(good * 2.0, good)
    with pytest.raises(ValueError, match="outside"):
        fn(good, good - 0.5)
    with pytest.raises(ValueError, match="NaN"):
        fn(np.where(good > 0.5, np.nan, good), good)
    with pytest.raises(ValueError, match="shape mismatch"):
        fn(good, good[:15])
    with pytest.raises(ValueError, match="expected"):
        fn(good.ravel(), good.ravel())
    with pytest.raises(ValueError, match="expected"):
        fn(good[None, None], good[None, None])
    with pytest.raises(ValueError, match="data_range"):
        fn(good, good, data_range=0)


def test_ssim_refuses_images_smaller_than_window() -> None:
    a = np.zeros((10, 40))
    with pytest.raises(ValueError, match="window"):
        M.ssim(a, a)
    with pytest.raises(ValueError, match="odd"):
        M.ssim(np.zeros((20, 20)), np.zeros((20, 20)), win_size=8)


# ------------------------------------------------------------------------------ porosity


def test_porosity_and_otsu() -> None:
    img = np.zeros((10, 10))
    img[:3] = 0.8  # 70 % dark pixels
    assert M.porosity(img, 0.5) == pytest.approx(0.7)
    np.testing.assert_allclose(M.porosity(np.stack([img, 1 - img]), 0.5), [0.7, 0.3])
    hist = np.zeros(256, dtype=np.int64)
    hist[20:40] = 100
    hist[180:220] = 50
    t = M.otsu_threshold_from_histogram(hist)
    assert 39 / 255 <= t < 180 / 255  # dark class 20..39 is <= t, bright class > t
    with pytest.raises(ValueError):
        M.porosity(img, 1.5)
    with pytest.raises(ValueError):
        M.porosity((img * 255).astype(np.uint8), 0.5)


def test_summarize_excludes_inf() -> None:
    s = M.summarize(np.array([10.0, 20.0, np.inf]))
    assert s == {"mean": 15.0, "std": pytest.approx(math.sqrt(50.0)), "count": 3, "n_inf": 1}
    with pytest.raises(ValueError):
        M.summarize(np.array([1.0, np.nan]))
