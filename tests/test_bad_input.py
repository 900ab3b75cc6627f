"""Nonsense inputs are never accepted in silence: each is an error naming the file and the
problem (nothing written), or a warning in the log, the stage's report and warnings.txt."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from helpers_data import smooth_image
from PIL import Image

from rocksr.cli import main
from rocksr.data.images import read_image
from rocksr.files import write_image
from rocksr.stages.build_dataset import build_dataset
from rocksr.stages.split import split_dataset


def outputs(tmp_path: Path) -> list[Path]:
    d = tmp_path / "out"
    return [d / "mct.tif", d / "sem.tif", d / "report.json"]


def normalize_cli(capsys, tmp_path, mct, sem, pages=None) -> tuple[int, str]:
    o = outputs(tmp_path)
    argv = [
        "normalize",
        "--mct",
        mct,
        "--sem",
        sem,
        "--out-mct",
        o[0],
        "--out-sem",
        o[1],
        "--report",
        o[2],
    ]
    if pages:
        argv += ["--pair-settings", json.dumps(pages)]
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    p = tmp_path / "good.tif"
    write_image(p, smooth_image(120, 110))
    return p


@pytest.mark.parametrize("case", ["zeros", "transparent"])
def test_blank_images_are_errors(tmp_path, capsys, good, case):
    if case == "zeros":
        bad = tmp_path / "zeros.tif"
        write_image(bad, np.zeros((120, 110), np.uint8))
        message = "zeros.tif: is constant (every pixel = 0)"
    else:
        bad = tmp_path / "clear.png"
        rgba = np.zeros((120, 110, 4), np.uint8)
        rgba[..., :3] = smooth_image(120, 110)[..., None]
        Image.fromarray(rgba, "RGBA").save(bad)
        message = "clear.png: is fully transparent (alpha 0 everywhere)"
    rc, err = normalize_cli(capsys, tmp_path, good, bad)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not any(p.exists() for p in outputs(tmp_path))


def test_nearly_constant_image_is_an_error(tmp_path, capsys, good):
    img = np.zeros((120, 110), np.uint8)
    img[0, :3] = 255  # 3 of 13,200 pixels: both percentiles are 0
    bad = tmp_path / "spots.tif"
    write_image(bad, img)
    rc, err = normalize_cli(capsys, tmp_path, good, bad)
    assert rc == 2 and "spots.tif: percentiles 0.5 and 99.5 are both 0" in err
    assert "normalize.sem.p_low/p_high" in err and not outputs(tmp_path)[0].exists()


def test_few_grey_levels_warn_in_log_and_report(tmp_path, capsys, good, caplog):
    rng = np.random.default_rng(0)
    narrow = (1000 + rng.integers(0, 11, (120, 110))).astype(np.uint16)
    p = tmp_path / "narrow.tif"
    write_image(p, narrow)
    with caplog.at_level(logging.WARNING):
        rc, _ = normalize_cli(capsys, tmp_path, good, p)
    assert rc == 0
    assert "narrow.tif: the normalized image has only 11 grey levels (fewer than 32" in caplog.text
    report = json.loads(outputs(tmp_path)[2].read_text())
    assert len(report["warnings"]) == 1 and "only 11 grey levels" in report["warnings"][0]


def test_tiny_float_values_keep_their_contrast(tmp_path):
    img = smooth_image(60, 50).astype(np.float64) * 1e-50
    p = tmp_path / "tiny.tif"
    tifffile.imwrite(p, img)
    from rocksr.data.normalize import grey_levels, normalize_image

    out = normalize_image(read_image(p))
    assert out.max() == 255 and grey_levels(out) > 200


def test_multi_series_tiff_names_the_series_option(tmp_path, capsys, good):
    p = tmp_path / "two.tif"
    with tifffile.TiffWriter(p) as tif:
        tif.write(smooth_image(30, 30, 1))  # a thumbnail first
        tif.write(smooth_image(120, 110, 2))
    rc, err = normalize_cli(capsys, tmp_path, good, p)
    assert rc == 2 and "two.tif: holds 2 image series (0: (30, 30), 1: (120, 110))" in err
    assert "set `mct_series`/`sem_series`" in err
    rc, err = normalize_cli(capsys, tmp_path, good, p, pages={"sem_series": 1})
    assert rc == 0, err


def test_planar_rgb_tiff_is_read_as_grey(tmp_path):
    grey = smooth_image(40, 30)
    p = tmp_path / "planar.tif"
    tifffile.imwrite(p, np.stack([grey] * 3), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(p), grey)
    colour = np.stack([grey, grey, 255 - grey])
    tifffile.imwrite(p, colour, photometric="rgb", planarconfig="separate")
    with pytest.raises(Exception, match=r"planar\.tif: is a colour image"):
        read_image(p)


def _manifest(tmp_path) -> Path:
    img = smooth_image(320, 320)
    pm, ps = tmp_path / "m.tif", tmp_path / "s.tif"
    write_image(pm, img)
    write_image(ps, (255 - img).astype(np.uint8))
    build_dataset(
        [("a", str(pm), str(ps))],
        tmp_path / "t.zarr",
        tmp_path / "man.csv",
        {"size": 64, "stride": 32, "angles": [0, 45, 90]},
        progress=False,
    )
    return tmp_path / "man.csv"


def test_split_fractions_must_sum_to_one_and_tiny_kept_share_warns(tmp_path, caplog):
    man = _manifest(tmp_path)
    outs = [tmp_path / "s.csv", tmp_path / "c.csv"]
    with pytest.raises(ValueError, match=r"sum to 1\.3; they must sum to 1"):
        split_dataset(man, *outs, {"fractions": {"train": 0.7, "val": 0.3, "test": 0.3}})
    assert not outs[0].exists()
    with caplog.at_level(logging.WARNING):
        split_dataset(
            man,
            *outs,
            {
                "strategy": "blocks",
                "blocks": {"rows": 8, "cols": 8},
                "fractions": {"train": 0.5, "val": 0.25, "test": 0.25},
            },
        )
    counts = pd.read_csv(outs[1]).set_index("split")["views"]
    kept = int(counts[["train", "val", "test"]].sum())
    assert kept < 0.5 * int(counts.sum())
    assert f"split keeps only {kept} of {int(counts.sum())} views (train " in caplog.text
    assert "use fewer split blocks" in caplog.text


def test_duplicate_angles_are_an_error(tmp_path):
    img = smooth_image(200, 200)
    write_image(tmp_path / "m.tif", img)
    with pytest.raises(ValueError, match=r"tiling\.angles repeats \[90\.0\]"):
        build_dataset(
            [("a", str(tmp_path / "m.tif"), str(tmp_path / "m.tif"))],
            tmp_path / "t.zarr",
            tmp_path / "man.csv",
            {"size": 48, "stride": 24, "angles": [0, 90, 450]},
            progress=False,
        )
    assert not (tmp_path / "t.zarr").exists()


def test_normalization_arithmetic_is_unchanged_for_integer_and_float32_images():
    """Normalized images feed the tile store, the training fingerprint and every model: integer
    and float32 inputs keep the arithmetic of earlier versions bit for bit."""
    from rocksr.data.normalize import normalize_image, stretch_limits

    rng = np.random.default_rng(0)
    for arr in (
        rng.integers(0, 256, (64, 64)).astype(np.uint8),
        rng.integers(0, 65536, (64, 64)).astype(np.uint16),
        rng.random((64, 64), dtype=np.float32) * 7.3,
    ):
        lo, hi = stretch_limits(arr, 0.5, 99.5)
        old = (arr.astype(np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
        old = np.round(np.clip(old, 0.0, 1.0) * 255.0).astype(np.uint8)
        np.testing.assert_array_equal(normalize_image(arr, 0.5, 99.5), old)
