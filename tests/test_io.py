import subprocess

import numpy as np
import pytest
import tifffile
from helpers_data import smooth_image
from PIL import Image

from rocksr.data.images import ImageError, read_image
from rocksr.files import write_image
from rocksr.stages.build_dataset import build_dataset
from rocksr.stages.normalize import normalize_pair


def _outputs(tmp_path):
    d = tmp_path / "out"
    return [d / "mct.tif", d / "sem.tif", d / "report.json"]


def _normalize(tmp_path, mct, sem):
    normalize_pair(mct, sem, *_outputs(tmp_path), params={})


def _assert_nothing_written(tmp_path):
    assert not any(p.exists() for p in _outputs(tmp_path))


@pytest.fixture
def good(tmp_path):
    img = smooth_image(120, 110)
    p = tmp_path / "good.tif"
    write_image(p, img)
    return p


def test_reads_8_16_bit_tiff_png_and_equal_rgb(tmp_path):
    img = smooth_image(50, 40)
    tifffile.imwrite(tmp_path / "a16.tif", img.astype(np.uint16) * 257)
    Image.fromarray(np.dstack([img] * 3)).save(tmp_path / "rgb.png")
    Image.fromarray(img).save(tmp_path / "g.png")
    assert read_image(tmp_path / "a16.tif").dtype == np.uint16
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), img)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), img)


def test_mismatched_shapes(tmp_path, good):
    other = tmp_path / "other.tif"
    write_image(other, smooth_image(100, 110))
    with pytest.raises(ImageError, match=r"good\.tif and .*other\.tif: shapes differ"):
        _normalize(tmp_path, good, other)
    _assert_nothing_written(tmp_path)


def test_colour_image_is_refused(tmp_path, good):
    rgb = np.dstack([smooth_image(120, 110, s) for s in (1, 2, 3)])
    p = tmp_path / "colour.png"
    Image.fromarray(rgb).save(p)
    with pytest.raises(ImageError, match=r"colour\.png: is a colour image"):
        _normalize(tmp_path, good, p)
    _assert_nothing_written(tmp_path)


def test_other_channel_layout_is_refused(tmp_path, good):
    p = tmp_path / "two.tif"
    tifffile.imwrite(
        p, np.zeros((120, 110, 2), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    with pytest.raises(ImageError, match=r"two\.tif: (unsupported channel layout|is a stack)"):
        _normalize(tmp_path, p, good)
    _assert_nothing_written(tmp_path)


def test_nan_and_inf_are_refused(tmp_path, good):
    arr = smooth_image(120, 110).astype(np.float32)
    arr[3, 4] = np.nan
    arr[5, 6] = np.inf
    p = tmp_path / "nan.tif"
    tifffile.imwrite(p, arr)
    with pytest.raises(ImageError, match=r"nan\.tif: contains 2 NaN/inf"):
        _normalize(tmp_path, p, good)
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("name", ["garbage.tif", "garbage.png"])
def test_unreadable_file(tmp_path, good, name):
    p = tmp_path / name
    p.write_bytes(b"this is not an image" * 10)
    with pytest.raises(
        ImageError, match=rf"{name.replace('.', chr(92) + '.')}: unreadable or truncated"
    ):
        _normalize(tmp_path, good, p)
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_truncated_file(tmp_path, good, suffix):
    full = tmp_path / f"full{suffix}"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 110), dtype=np.uint8)
    if suffix == ".png":
        Image.fromarray(img).save(full)
    else:
        tifffile.imwrite(full, img)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(ImageError, match=r"cut\.(png|tif): unreadable or truncated"):
        _normalize(tmp_path, good, cut)
    _assert_nothing_written(tmp_path)


def test_missing_file_and_unsupported_type(tmp_path, good):
    with pytest.raises(ImageError, match=r"missing\.tif: file does not exist"):
        _normalize(tmp_path, tmp_path / "missing.tif", good)
    p = tmp_path / "img.jpg"
    p.write_bytes(b"x")
    with pytest.raises(ImageError, match=r"img\.jpg: unsupported file type"):
        read_image(p)


def test_stack_needs_a_page(tmp_path):
    p = tmp_path / "stack.tif"
    tifffile.imwrite(
        p, np.stack([smooth_image(40, 40, s) for s in range(3)]), photometric="minisblack"
    )
    with pytest.raises(ImageError, match=r"stack\.tif: is a stack of 3 pages"):
        read_image(p)
    np.testing.assert_array_equal(read_image(p, page=1), smooth_image(40, 40, 1))


def test_image_smaller_than_a_footprint(tmp_path):
    small = tmp_path / "small_mct.tif"
    write_image(small, smooth_image(80, 300))
    sem = tmp_path / "small_sem.tif"
    write_image(sem, smooth_image(80, 300, 1))
    tiling = {"size": 64, "stride": 32, "angles": [0, 45]}
    with pytest.raises(
        ImageError,
        match=r"small_mct\.tif: image 80x300 is smaller than one rotation-safe footprint \(93 px\)",
    ):
        build_dataset(
            [("s", str(small), str(sem))],
            tmp_path / "t.zarr",
            tmp_path / "m.csv",
            tiling,
            progress=False,
        )
    assert not (tmp_path / "t.zarr").exists() and not (tmp_path / "m.csv").exists()


def test_cli_reports_the_file_and_exits_2(tmp_path, good):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    o = _outputs(tmp_path)
    r = subprocess.run(
        [
            "rocksr",
            "normalize",
            "--mct",
            str(good),
            "--sem",
            str(bad),
            "--out-mct",
            str(o[0]),
            "--out-sem",
            str(o[1]),
            "--report",
            str(o[2]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "bad.png: unreadable or truncated" in r.stderr
    _assert_nothing_written(tmp_path)


def test_tifffile_log_lines_of_a_good_read_are_held_back(tmp_path, caplog):
    """tifffile's misleading ERROR lines for files it reads fine become DEBUG; a failed read
    keeps them."""
    import logging

    import tifffile

    from rocksr.data import images

    p = tmp_path / "ok.tif"
    tifffile.imwrite(p, smooth_image(20, 20))
    with caplog.at_level(logging.DEBUG):
        with images._tifffile_log_held(p):
            logging.getLogger("tifffile").error("missing data ByteCounts")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors and "tifffile (read fine): missing data ByteCounts" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG), pytest.raises(ValueError):
        with images._tifffile_log_held(p):
            logging.getLogger("tifffile").error("real trouble")
            raise ValueError("unreadable")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "real trouble"
    ]
