import numpy as np
import pytest
from helpers_data import smooth_image

from rocksr.data.tiling import (
    extract_view,
    extract_view_naive,
    footprint_offset,
    footprint_size,
    grid_origins,
    plan_views,
    rotation_matrix,
)


def test_study_grid_is_44_by_44_with_725_px_footprint():
    assert len(grid_origins(6100, 512, 128)) == 44
    assert footprint_size(512) == 725
    views = plan_views(6100, 6100, 512, 128, [0.0], "skip")
    assert len(views) == 42 * 42  # the outer ring's footprints leave the image


@pytest.mark.parametrize(
    ("length", "size", "stride", "n"),
    [(6100, 512, 128, 44), (512, 512, 128, 1), (511, 512, 1, 0), (320, 64, 32, 9)],
)
def test_grid_counts(length, size, stride, n):
    assert len(grid_origins(length, size, stride)) == n == max(0, (length - size) // stride + 1)


def test_edge_policy_counts_and_footprints():
    angles = [0.0, 20.0, 40.0]
    rot = plan_views(6100, 6100, 512, 128, angles, "unrotated")
    edge = [v for v in rot if v.view == "edge_unrotated"]
    assert len(edge) == 44 * 44 - 42 * 42
    assert all(v.angle == 0 and v.footprint_size == 512 for v in edge)
    assert len(rot) == 42 * 42 * 3 + len(edge)
    for v in rot:
        assert v.footprint_y0 >= 0 and v.footprint_x0 >= 0
        assert (
            v.footprint_y0 + v.footprint_size <= 6100 and v.footprint_x0 + v.footprint_size <= 6100
        )


def test_angle_zero_is_the_plain_crop():
    img = smooth_image(300, 280)
    np.testing.assert_array_equal(extract_view(img, 100, 90, 64, 0.0), img[100:164, 90:154])


def test_angle_90_matches_rot90_of_the_footprint():
    img = smooth_image(300, 300, seed=1)
    size, y0, x0 = 64, 110, 120
    off, f = footprint_offset(size), footprint_size(size)
    fp = img[y0 - off : y0 - off + f, x0 - off : x0 - off + f]
    rot = np.rot90(fp)
    expected = rot[f - off - size : f - off, off : off + size]
    np.testing.assert_array_equal(extract_view(img, y0, x0, size, 90.0), expected)
    # the general (interpolating) path agrees just off 90 degrees, up to interpolation
    near = extract_view(img, y0, x0, size, 90.0001)
    assert np.abs(near.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("angle", [20.0, 45.0, 137.0, 340.0])
def test_fast_path_matches_skimage_rotate(angle):
    img = smooth_image(400, 400, seed=2)
    fast = extract_view(img, 150, 140, 96, angle).astype(int)
    naive = extract_view_naive(img, 150, 140, 96, angle).astype(int)
    assert np.abs(fast - naive).max() <= 1


@pytest.mark.parametrize("size", list(range(8, 130)) + [255, 256, 257, 511, 512, 513, 1000])
def test_every_bilinear_sample_lies_inside_the_footprint(size):
    """Corner samples of every rotation (and their +1 bilinear neighbours) stay in [0, F-1]."""
    off, f = footprint_offset(size), footprint_size(size)
    c = off + (size - 1) / 2.0
    corners = np.array(
        [[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], float
    )
    for angle in np.arange(0.0, 360.0, 2.5):
        src = corners @ rotation_matrix(size, angle, (c, c)).T
        assert src.min() >= -1e-9, (size, angle)
        assert np.floor(src.max() + 1e-9) + 1 <= f - 1, (size, angle)


def test_footprint_matches_the_study_and_cannot_be_smaller():
    assert (footprint_offset(512), footprint_size(512)) == (106, 725)
    for size in range(8, 600):
        assert footprint_size(size) >= int(np.ceil(size * np.sqrt(2)))


def test_edge_tile_rotation_is_refused():
    img = smooth_image(200, 200)
    with pytest.raises(ValueError, match="no padding"):
        extract_view(img, 0, 0, 64, 30.0)


def test_modalities_stay_registered_under_augmentation():
    mct = smooth_image(300, 300, seed=4)
    sem = (255 - mct).astype(np.uint8)  # SEM a known function of micro-CT
    for angle in (0.0, 20.0, 90.0, 200.0, 333.0):
        m = extract_view(mct, 110, 100, 64, angle).astype(int)
        s = extract_view(sem, 110, 100, 64, angle).astype(int)
        assert np.abs(s - (255 - m)).max() <= 1
    # the check can fail: a one-pixel misregistration is caught
    shifted = np.roll(sem, 1, axis=1)
    m = extract_view(mct, 110, 100, 64, 20.0).astype(int)
    s = extract_view(shifted, 110, 100, 64, 20.0).astype(int)
    assert np.abs(s - (255 - m)).max() > 1
