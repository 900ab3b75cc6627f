"""The banding statistic of whole-slice outputs: flat on seamless images, a known band found."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from scipy.ndimage import gaussian_filter

from rocksr.evaluation.seam_study import (
    banding,
    banding_markdown,
    banding_table,
    gradient_profile,
)


def texture(seed: int, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return gaussian_filter(rng.normal(size=(size, size)), 1.5)


def test_a_seamless_image_has_no_banding_and_an_injected_band_is_measured():
    x = texture(0)
    # a deterministic, tiling-free mapping of the input (gain): the profile ratio is flat
    assert banding(2.0 * x + 1.0, x, 64) == pytest.approx(1.0, abs=1e-9)
    # an independent texture (the truth's null): near 1, but not exactly
    null = banding(texture(1), x, 64)
    assert 1.0 < null < 1.1
    # contrast 1.5x in two rows of every 64-row period (a band): its vertical gradients rise
    # there only, and the statistic is their known peak over mean (rows; columns stay flat)
    y = 2.0 * x
    for k in range(0, 512, 64):
        y[k + 60 : k + 62] *= 1.5
    r = gradient_profile(y, 64, 0) / gradient_profile(x, 64, 0)
    assert banding(y, x, 64) == pytest.approx(r.max() / r.mean(), rel=1e-9)
    assert banding(y, x, 64) > 1.2
    assert gradient_profile(y, 64, 1).std() / gradient_profile(y, 64, 1).mean() < 0.1
    with pytest.raises(ValueError, match="fewer than two periods"):
        banding(x[:100], x[:100], 64)


def test_banding_table_reads_the_period_from_the_enhance_report(tmp_path):
    x = (np.clip(texture(0) * 40 + 128, 0, 255)).astype(np.uint8)
    truth = (np.clip(texture(1) * 40 + 128, 0, 255)).astype(np.uint8)
    for name, p in (("mct", x), ("sem", truth), ("m", x)):
        tifffile.imwrite(tmp_path / f"{name}.tif", p)
    (tmp_path / "m.json").write_text(json.dumps({"tile": 128, "overlap": 64, "window": "g"}))
    df = banding_table({"m": tmp_path / "m.tif"}, tmp_path / "mct.tif", tmp_path / "sem.tif")
    row = df.iloc[0]
    assert row["banding"] == pytest.approx(1.0) and row["excess"] < 0
    assert row["banding_null"] == pytest.approx(banding(truth.astype(float), x.astype(float), 64))
    assert "within 0.05 of the null" in banding_markdown(df)
    df.loc[0, "excess"] = 0.2
    assert "m (+0.200)" in banding_markdown(df)


def test_banding_of_a_cropped_enhancement_compares_the_same_square(tmp_path):
    """An `enhance --crop` output (its report's ``crop``) is profiled against the slice's same
    square of micro-CT and truth: the identity output has no banding at all."""
    x = (np.clip(texture(0) * 40 + 128, 0, 255)).astype(np.uint8)
    truth = (np.clip(texture(1) * 40 + 128, 0, 255)).astype(np.uint8)
    y0, x0, size = 96, 64, 320
    square = x[y0 : y0 + size, x0 : x0 + size]
    for name, p in (("mct", x), ("sem", truth), ("m", square)):
        tifffile.imwrite(tmp_path / f"{name}.tif", p)
    report = {"tile": 128, "overlap": 64, "crop": {"size": size, "origin": [y0, x0]}}
    (tmp_path / "m.json").write_text(json.dumps(report))
    row = banding_table({"m": tmp_path / "m.tif"}, tmp_path / "mct.tif", tmp_path / "sem.tif").iloc[
        0
    ]
    assert row["banding"] == pytest.approx(1.0)
    crop_truth = truth[y0 : y0 + size, x0 : x0 + size].astype(float)
    assert row["banding_null"] == pytest.approx(banding(crop_truth, square.astype(float), 64))
