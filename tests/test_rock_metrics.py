"""Rock metrics against known answers: stripes, checkerboards, a disc; bimodality check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from rocksr.data.synthetic import generate_pair
from rocksr.evaluation import rock_metrics as RM
from rocksr.evaluation.metrics import otsu_threshold_from_histogram, porosity, to_unit

# --------------------------------------------------------------------------- shapes


def _stripes(h: int, w: int, p: int) -> np.ndarray:
    """Vertical pore stripes: columns x with (x mod 2p) < p are pore."""
    row = (np.arange(w) % (2 * p)) < p
    return np.broadcast_to(row, (h, w)).copy()


def _checker(h: int, w: int, s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy // s + xx // s) % 2) == 0


def _disc(n: int, radius: int, cy: int | None = None, cx: int | None = None) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    cy = n // 2 if cy is None else cy
    cx = n // 2 if cx is None else cx
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def _s2_brute(mask: np.ndarray, max_r: int) -> np.ndarray:
    """Reference S2 by explicit pair loops (x and y axes, non-periodic, averaged)."""
    m = mask.astype(int)
    h, w = m.shape
    out = []
    for r in range(max_r + 1):
        nx = sum(m[i, j] * m[i, j + r] for i in range(h) for j in range(w - r))
        ny = sum(m[i, j] * m[i + r, j] for i in range(h - r) for j in range(w))
        out.append(0.5 * (nx / (h * (w - r)) + ny / ((h - r) * w)))
    return np.array(out)


def _stripe_s2x(r: np.ndarray, p: int) -> np.ndarray:
    """Periodic S2 across stripes of period 2p and width p: |p - (r mod 2p)| / (2p)."""
    return np.abs(p - (r % (2 * p))) / (2 * p)


# --------------------------------------------------------------------------- S2


def test_s2_matches_brute_force_on_random_mask() -> None:
    rng = np.random.default_rng(0)
    m = rng.random((13, 17)) < 0.4
    np.testing.assert_allclose(RM.two_point_correlation(m, 9), _s2_brute(m, 9), rtol=0, atol=1e-15)


def test_s2_stripes_known_answer() -> None:
    h, w, p, max_r = 40, 48, 4, 30
    m = _stripes(h, w, p)
    s2 = RM.two_point_correlation(m, max_r)
    r = np.arange(max_r + 1)
    assert s2[0] == 0.5
    # along y (parallel to the stripes) S2_y = porosity = 1/2 for every r; along x the periodic
    # triangle holds exactly where the W - r pair starts cover whole periods
    whole = (w - r) % (2 * p) == 0
    expected = 0.5 * (_stripe_s2x(r, p) + 0.5)
    np.testing.assert_allclose(s2[whole], expected[whole], rtol=0, atol=1e-15)
    assert whole.sum() >= 3
    np.testing.assert_allclose(s2, _s2_brute(m, max_r), rtol=0, atol=1e-15)
    # S2 of the transposed stripes is the same (direction average)
    np.testing.assert_allclose(RM.two_point_correlation(m.T.copy(), max_r), s2, atol=1e-15)


@pytest.mark.parametrize("s", [1, 3])
def test_s2_checkerboard_known_answer(s: int) -> None:
    n, max_r = 36, 20
    m = _checker(n, n, s)
    s2 = RM.two_point_correlation(m, max_r)
    r = np.arange(max_r + 1)
    whole = (n - r) % (2 * s) == 0
    np.testing.assert_allclose(s2[whole], _stripe_s2x(r, s)[whole], rtol=0, atol=1e-15)
    if s == 1:  # pixel checkerboard: exactly 1/2 at even lags, 0 at odd lags, for every r
        np.testing.assert_array_equal(s2, np.where(r % 2 == 0, 0.5, 0.0))


def test_s2_disc() -> None:
    n, radius = 64, 10
    m = _disc(n, radius)
    s2 = RM.two_point_correlation(m, 30)
    assert s2[0] == m.sum() / n**2
    assert np.all(np.diff(s2[: 2 * radius + 1]) < 0)  # strictly decreasing up to the diameter
    assert np.all(s2[2 * radius + 1 :] == 0)  # no pair along an axis spans more than 2R
    assert np.all(s2 <= s2[0])


def test_s2_batch_and_validation() -> None:
    a, b = _disc(32, 6), _checker(32, 32, 2)
    batch = RM.two_point_correlation(np.stack([a, b]), 8)
    assert batch.shape == (2, 9)
    np.testing.assert_array_equal(batch[0], RM.two_point_correlation(a, 8))
    np.testing.assert_array_equal(batch[1], RM.two_point_correlation(b.astype(np.uint8), 8))
    with pytest.raises(ValueError, match="max_r"):
        RM.two_point_correlation(a, 32)
    with pytest.raises(ValueError, match="0/1"):
        RM.two_point_correlation(a * 2.0, 4)


# --------------------------------------------------------------------------- chords


def test_chords_stripes() -> None:
    h, w, p = 30, 40, 5
    m = _stripes(h, w, p)
    across = RM.chord_lengths(m, "x")
    along = RM.chord_lengths(m, "y")
    np.testing.assert_array_equal(across, np.full(h * w // (2 * p), p))
    np.testing.assert_array_equal(along, np.full(w // 2, h))
    np.testing.assert_array_equal(RM.chord_lengths(m), np.concatenate([across, along]))


def test_chords_disc() -> None:
    radius = 9
    m = _disc(48, radius)
    for direction in ("x", "y"):
        c = RM.chord_lengths(m, direction)
        assert c.max() == 2 * radius + 1
        assert c.size == 2 * radius + 1  # one chord per row / column the disc touches
        assert c.sum() == m.sum()
    assert RM.chord_lengths(m).max() == 2 * radius + 1


@pytest.mark.parametrize("s", [1, 4])
def test_chords_checkerboard(s: int) -> None:
    m = _checker(32, 24, s)
    c = RM.chord_lengths(m)
    assert np.all(c == s)
    assert c.sum() == 2 * m.sum()


def test_chords_edges_and_batch() -> None:
    assert RM.chord_lengths(np.zeros((5, 7), bool)).size == 0
    full = np.ones((5, 7), bool)
    np.testing.assert_array_equal(np.sort(RM.chord_lengths(full)), [5] * 7 + [7] * 5)
    # runs do not continue across row ends
    m = np.zeros((2, 4), bool)
    m[0, 3] = m[1, 0] = True
    np.testing.assert_array_equal(RM.chord_lengths(m, "x"), [1, 1])
    stack = np.stack([_disc(20, 4), _checker(20, 20, 2)])
    np.testing.assert_array_equal(
        RM.chord_lengths(stack), np.concatenate([RM.chord_lengths(stack[0], "x"),
                                                 RM.chord_lengths(stack[1], "x"),
                                                 RM.chord_lengths(stack[0], "y"),
                                                 RM.chord_lengths(stack[1], "y")])
    )  # fmt: skip


# --------------------------------------------------------------------------- distances


def test_distances_zero_for_identical_and_shifted_disc() -> None:
    m = _disc(64, 10)
    shifted = _disc(64, 10, cy=25, cx=40)  # fully inside: S2 and chords are translation-invariant
    assert RM.s2_distance(m, m, 20) == 0.0
    assert RM.chord_distance(m, m) == 0.0
    assert RM.s2_distance(shifted, m, 20) == 0.0
    assert RM.chord_distance(shifted, m) == 0.0


def test_distances_positive_for_eroded_mask() -> None:
    m = _disc(64, 10)
    eroded = ndi.binary_erosion(m, iterations=2)
    d_s2 = RM.s2_distance(eroded, m, 20)
    d_ch = RM.chord_distance(eroded, m)
    assert d_s2 > 0 and d_ch > 0
    # the chords of the eroded disc are 4 px shorter on average at the centre rows; W1 sees it
    assert 2.0 <= d_ch <= 5.0
    # normalisation by the true porosity: S2(0) term alone is |phi_e - phi| / phi / (max_r + 1)
    phi, phi_e = m.mean(), eroded.mean()
    assert d_s2 >= abs(phi - phi_e) / phi / 21


def test_distances_empty_and_batch() -> None:
    empty = np.zeros((16, 16), bool)
    m = _disc(16, 4)
    assert RM.s2_distance(empty, empty, 5) == 0.0
    assert RM.chord_distance(empty, empty) == 0.0
    assert RM.s2_distance(m, empty, 5) == np.inf
    assert RM.chord_distance(m, empty) == np.inf
    d = RM.s2_distance(np.stack([m, empty]), np.stack([m, m]), 5)
    assert d.shape == (2,) and d[0] == 0.0 and d[1] > 0
    c = RM.chord_distance(np.stack([m, empty]), np.stack([m, m]))
    assert c.shape == (2,) and c[0] == 0.0 and c[1] == np.inf
    with pytest.raises(ValueError, match="shape mismatch"):
        RM.s2_distance(m, m[:8], 3)


# --------------------------------------------------------------------------- threshold


def test_pore_mask_agrees_with_porosity_and_threshold_choice() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (3, 20, 20), dtype=np.uint8)
    for t in (0.0, 22 / 255, 0.3137, 0.5, 1.0):
        np.testing.assert_array_equal(
            RM.pore_mask(img, t).mean(axis=(1, 2)), porosity(to_unit(img), t)
        )
    hist = RM.grey_histogram(img)
    assert hist.sum() == img.size
    assert RM.pore_threshold(hist) == otsu_threshold_from_histogram(hist)
    assert RM.pore_threshold(fixed=0.2) == 0.2
    with pytest.raises(ValueError, match="threshold"):
        RM.pore_threshold(hist, fixed=1.5)
    with pytest.raises(ValueError, match="hist_counts"):
        RM.pore_threshold()
    with pytest.raises(ValueError, match="uint8"):
        RM.pore_mask(img.astype(np.float32), 0.5)


# --------------------------------------------------------------------------- bimodality


def test_bimodality_rejects_unimodal_noise() -> None:
    rng = np.random.default_rng(0)
    for sd in (5, 20, 40):
        img = np.clip(np.rint(128 + sd * rng.standard_normal((256, 256))), 0, 255)
        res = RM.bimodality(RM.grey_histogram(img.astype(np.uint8)))
        assert res["bimodal"] is False
        assert res["reason"].startswith("no pore mode")
        assert res["valley_ratio"] > 0.5


def test_bimodality_accepts_synthetic_sem() -> None:
    _, sem = generate_pair(256, 256, 1, rock={"grain_radius_px": 12})
    assert sem.dtype == np.uint8 and sem.shape == (256, 256)
    res = RM.bimodality(RM.grey_histogram(sem))
    assert res["bimodal"] is True, res["reason"]
    assert res["dark_peak"] < 40 < 180 < res["bright_peak"]  # pore ~22, quartz ~206
    assert res["valley_ratio"] < 0.2
    assert 0.05 < res["pore_mode_fraction"] < 0.3
    assert res["dark_peak"] < res["valley"] < res["bright_peak"]


def test_bimodality_other_refusals() -> None:
    single = np.zeros(256, np.int64)
    single[100] = 50
    res = RM.bimodality(single)
    assert res["bimodal"] is False and "single grey level" in res["reason"]
    # two well separated modes, but the dark one holds only 0.2% of the pixels
    rng = np.random.default_rng(1)
    grey = np.where(rng.random(100_000) < 0.002, 20, 200) + rng.normal(0, 4, 100_000)
    hist = RM.grey_histogram(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    res = RM.bimodality(hist)
    assert res["bimodal"] is False and "holds" in res["reason"]
    assert RM.bimodality(hist, min_pore_fraction=0.001)["bimodal"] is True
    with pytest.raises(ValueError, match="256"):
        RM.bimodality(np.ones(10))


# --------------------------------------------------------------------------- convenience


def test_rock_statistics_and_comparison() -> None:
    tiles = np.where(np.stack([_disc(32, 8), _checker(32, 32, 4)]), 20, 200).astype(np.uint8)
    st = RM.rock_statistics(tiles, 0.3, max_r=6)
    assert st["s2"].shape == (2, 7) and st["r"].tolist() == list(range(7))
    np.testing.assert_array_equal(st["porosity"], porosity(to_unit(tiles), 0.3))
    np.testing.assert_array_equal(st["chords"][1], RM.chord_lengths(_checker(32, 32, 4)))
    single = RM.rock_statistics(tiles[0], 0.3, max_r=6)
    np.testing.assert_array_equal(single["s2"][0], st["s2"][0])
    cmp = RM.compare_rock_statistics(tiles, tiles[::-1].copy(), 0.3, max_r=6)
    assert set(cmp) == {"porosity_pred", "porosity_true", "s2_distance", "chord_distance"}
    assert np.all(cmp["s2_distance"] > 0) and np.all(cmp["chord_distance"] > 0)
    same = RM.compare_rock_statistics(tiles, tiles, 0.3, max_r=6)
    assert np.all(same["s2_distance"] == 0) and np.all(same["chord_distance"] == 0)
