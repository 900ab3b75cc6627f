"""A micro-CT at a coarser pixel size is brought onto the SEM grid (rocksr.data.registration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from rocksr.config.pair_settings import PairSettings
from rocksr.data.images import ImageError
from rocksr.data.registration import crop, register, scale_factor, upsample
from rocksr.data.synthetic import generate_pair


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape
    return a[: h - h % f, : w - w % f].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def test_a_4x_coarser_micro_ct_lands_on_the_original_grid() -> None:
    """Block-mean 4x down-sampling then rocksr's 4x up-sampling: same shape, no shift (phase
    correlation to 1/20 px), and close to the original where the image is smooth."""
    from skimage.registration import phase_cross_correlation

    mct, _ = generate_pair(256, 256, 2, rock={"grain_radius_px": 16})
    coarse = _block_mean(mct.astype(np.float64), 4).astype(np.float32)
    back = upsample(coarse, 4)
    assert back.shape == mct.shape and back.dtype == np.float32
    shift, _, _ = phase_cross_correlation(
        mct.astype(np.float64), back.astype(np.float64), upsample_factor=20
    )
    assert np.all(np.abs(shift) <= 0.1), shift  # registration within 0.1 px
    assert np.corrcoef(mct.ravel(), back.ravel())[0, 1] > 0.9


def test_integer_images_keep_their_dtype_and_range() -> None:
    a = np.array([[0, 65535], [65535, 0]], dtype=np.uint16)
    out = upsample(a, 3)
    assert out.dtype == np.uint16 and out.shape == (6, 6) and out.min() >= 0


def test_auto_finds_the_factor_and_refuses_non_integer_ratios() -> None:
    assert scale_factor("auto", (100, 80), (400, 320), "p") == 4
    assert scale_factor("auto", (100, 80), (100, 80), "p") == 1
    assert scale_factor(None, (1, 1), (9, 9), "p") == 1
    with pytest.raises(
        ImageError,
        match=r"p: mct_scale auto: the micro-CT is 100x80 and the SEM"
        r" 300x320, which is not one integer factor on both axes \(3 x 4\)",
    ):
        scale_factor("auto", (100, 80), (300, 320), "p")
    with pytest.raises(ImageError, match="not one integer factor"):
        scale_factor("auto", (100, 100), (333, 333), "p")
    with pytest.raises(ImageError, match="mct_scale must be a positive integer or 'auto'"):
        scale_factor(0, (1, 1), (1, 1), "p")


def test_crop_cuts_both_and_refuses_a_window_outside() -> None:
    a = np.arange(100).reshape(10, 10)
    np.testing.assert_array_equal(crop(a, [2, 3, 4, 5], "p"), a[2:6, 3:8])
    with pytest.raises(ImageError, match=r"crop \[8, 0, 4, 4\] .* does not lie inside the 10x10"):
        crop(a, [8, 0, 4, 4], "p")
    m, s, f = register(np.ones((5, 5)), np.zeros((10, 10)), "auto", [0, 0, 8, 8], "p")
    assert m.shape == s.shape == (8, 8) and f == 2


def test_normalize_accepts_a_coarser_micro_ct_with_mct_scale(tmp_path) -> None:
    from rocksr.stages.normalize import normalize_pair

    mct, sem = generate_pair(160, 160, 3, rock={"grain_radius_px": 12})
    tifffile.imwrite(tmp_path / "mct.tif", _block_mean(mct.astype(np.float64), 4).astype(np.uint8))
    tifffile.imwrite(tmp_path / "sem.tif", sem)
    outs = [tmp_path / n for n in ("m.tif", "s.tif", "r.json")]
    with pytest.raises(ImageError, match="shape"):  # refused without it, as before
        normalize_pair(tmp_path / "mct.tif", tmp_path / "sem.tif", *outs, {})
    normalize_pair(
        tmp_path / "mct.tif",
        tmp_path / "sem.tif",
        *outs,
        {},
        settings=PairSettings(mct_scale="auto"),
    )
    assert tifffile.imread(outs[0]).shape == sem.shape
    reg = json.loads(outs[2].read_text())["registration"]
    assert reg["mct_scale"] == 4 and reg["interpolation"].startswith("cubic spline")
