"""Tile grid, blending windows, streamed blending and the seam metric (rocksr.enhance.blending)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rocksr.enhance.blending as blending_mod


def identity(batch: torch.Tensor) -> torch.Tensor:
    return batch.clone()


class CountingModel:
    """Adds ``a * k`` to tile number ``k`` (tiles are counted in the order they arrive, i.e.
    row-major): a model whose output depends on the tile's position."""

    def __init__(self, a: float) -> None:
        self.a, self.k = a, 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        n = batch.shape[0]
        ks = torch.arange(self.k, self.k + n, dtype=torch.float32).view(n, 1, 1, 1)
        self.k += n
        return batch + self.a * ks


# ------------------------------------------------------------------------------ grid


@pytest.mark.parametrize(
    "length,tile,overlap",
    [(32, 32, 0), (32, 32, 16), (33, 32, 16), (100, 32, 16), (100, 32, 0), (64, 32, 0)]
    + [(n, t, o) for n in (17, 40, 97) for t in (8, 16, 17) for o in (0, 3, t // 2, t - 1)],
)
def test_tile_origins_cover_flush_and_step_at_most_stride(length, tile, overlap) -> None:
    o = blending_mod.tile_origins(length, tile, overlap)
    assert o[0] == 0 and o[-1] == length - tile
    assert np.all(np.diff(o) > 0) and np.all(np.diff(o) <= tile - overlap)
    covered = np.zeros(length, bool)
    for s in o:
        covered[s : s + tile] = True
    assert covered.all()
    if (length - tile) % (tile - overlap) == 0:  # aligned: exactly the regular grid
        np.testing.assert_array_equal(o, np.arange(0, length - tile + 1, tile - overlap))


def test_tile_origins_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="smaller than one tile"):
        blending_mod.tile_origins(15, 16, 0)
    with pytest.raises(ValueError, match="overlap"):
        blending_mod.tile_origins(64, 16, 16)
    with pytest.raises(ValueError, match="overlap"):
        blending_mod.tile_origins(64, 16, -1)


@pytest.mark.parametrize("kind", blending_mod.WINDOWS)
@pytest.mark.parametrize("tile", [1, 8, 17, 128])
def test_windows_are_symmetric_positive_and_peak_at_one(kind, tile) -> None:
    w = blending_mod.blend_window(tile, kind)
    assert w.shape == (tile, tile) and w.dtype == np.float32
    assert w.min() >= blending_mod.WINDOW_FLOOR**2 and w.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    np.testing.assert_array_equal(w, w.T)


def test_gaussian_window_is_monai_like() -> None:
    t = 64
    w = blending_mod.window_1d(t, "gaussian")
    d = np.arange(t) - (t - 1) / 2
    want = np.exp(-(d**2) / (2 * (0.125 * t) ** 2))
    want = np.maximum(want / want.max(), blending_mod.WINDOW_FLOOR)
    np.testing.assert_allclose(w, want, rtol=1e-6)
    assert w[0] == pytest.approx(
        blending_mod.WINDOW_FLOOR
    )  # falls to the floor at the border, not to 0
    with pytest.raises(ValueError, match="unknown blend window"):
        blending_mod.window_1d(8, "triangle")


# ------------------------------------------------------------------------------ blending


CASES = [
    (16, 16, 16, 8),  # exactly one tile
    (16, 40, 16, 8),  # one tile high
    (40, 16, 16, 0),
    (37, 53, 16, 8),  # not multiples of the stride
    (37, 53, 16, 0),
    (50, 50, 16, 5),
    (50, 50, 16, 15),
    (64, 64, 32, 16),  # aligned
    (65, 97, 17, 9),  # odd tile
]


@pytest.mark.parametrize("h,w,tile,overlap", CASES)
@pytest.mark.parametrize("window", blending_mod.WINDOWS)
def test_identity_model_reproduces_the_input_exactly(h, w, tile, overlap, window) -> None:
    rng = np.random.default_rng(h * 1000 + w + tile)
    img = rng.integers(0, 256, (h, w), dtype=np.uint8)
    img[0, 0], img[-1, -1] = 0, 255
    for bs in (1, 3, 1000):
        out = blending_mod.blend_deterministic(img, identity, tile, overlap, bs, window)
        assert out.dtype == np.uint8 and out.shape == img.shape
        np.testing.assert_array_equal(out, img)


def test_rows_are_streamed_in_order_a_tile_row_at_a_time() -> None:
    img = np.random.default_rng(0).integers(0, 256, (100, 30), dtype=np.uint8)
    chunks = list(blending_mod.iter_blended_rows(img, identity, 16, 6, 4))
    starts = [y for y, _ in chunks]
    assert starts == sorted(starts) and starts[0] == 0
    assert sum(r.shape[0] for _, r in chunks) == 100
    assert all(r.shape[0] <= 16 and r.shape[1] == 30 for _, r in chunks)
    assert len(chunks) == len(blending_mod.tile_origins(100, 16, 6))  # one chunk per tile row


def test_float_input_is_in_model_units_and_blend_float_matches() -> None:
    img = np.random.default_rng(1).uniform(-1, 1, (40, 45)).astype(np.float32)
    out = blending_mod.blend_float(img, identity, 16, 8, 5)
    np.testing.assert_allclose(out, img, atol=1e-6)
    u8 = np.random.default_rng(2).integers(0, 256, (40, 45), dtype=np.uint8)
    np.testing.assert_array_equal(
        blending_mod.unit_to_uint8(blending_mod.blend_float(u8, identity, 16, 8, 5)),
        blending_mod.blend_deterministic(u8, identity, 16, 8, 5),
    )


def test_model_with_wrong_output_shape_is_refused() -> None:
    img = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match="returned shape"):
        blending_mod.blend_deterministic(img, lambda b: b[:, :, :8], 16, 8)


def _max_blended_step(origins: np.ndarray, tile: int, length: int, window: str) -> float:
    """Largest change between neighbouring pixels of the blended tile index along one axis
    (what the blending allows for a model whose output jumps by 1 from tile to tile)."""
    w1 = blending_mod.window_1d(tile, window).astype(np.float64)
    num, den = np.zeros(length), np.zeros(length)
    for i, o in enumerate(origins):
        num[o : o + tile] += w1 * i
        den[o : o + tile] += w1
    return float(np.abs(np.diff(num / den)).max())


@pytest.mark.parametrize("window", ["gaussian", "cosine"])
def test_position_dependent_model_has_no_steps_beyond_what_blending_allows(window) -> None:
    h = w = 96
    tile, overlap, grey = 32, 16, 4.0  # each tile adds 4 grey levels more than the previous
    rng = np.random.default_rng(3)
    img = rng.integers(40, 120, (h, w), dtype=np.uint8)

    def steps(overlap: int, window: str) -> tuple[float, float, int]:
        out = blending_mod.blend_deterministic(
            img, CountingModel(grey / 127.5), tile, overlap, 7, window
        )
        d = out.astype(np.int64) - img.astype(np.int64)  # what the model added
        ncols = len(blending_mod.tile_origins(w, tile, overlap))
        return np.abs(np.diff(d, axis=1)).max(), np.abs(np.diff(d, axis=0)).max(), ncols

    sx, sy, ncols = steps(overlap, window)
    allowed = _max_blended_step(blending_mod.tile_origins(w, tile, overlap), tile, w, window)
    assert allowed < 0.35  # a half-tile overlap spreads a jump over several pixels
    assert sx <= grey * allowed + 1  # +1: rounding to uint8
    assert sy <= grey * ncols * allowed + 1
    # without overlap the full jump appears at the tile borders: the test can fail
    sx0, sy0, ncols0 = steps(0, "constant")
    assert sx0 == grey and sy0 == grey * ncols0
    assert sx0 > grey * allowed + 1 and sy0 > grey * ncols * allowed + 1


# ------------------------------------------------------------------------------ seam metric


def test_handover_lines() -> None:
    np.testing.assert_array_equal(blending_mod.handover_lines(96, 32, 0), [32, 64])
    np.testing.assert_array_equal(blending_mod.handover_lines(96, 32, 16), [24, 40, 56, 72])
    np.testing.assert_array_equal(blending_mod.handover_lines(32, 32, 16), [])
    # flush last tile: 0, 32, 38 -> middle of the overlap 38..64
    np.testing.assert_array_equal(blending_mod.handover_lines(70, 32, 0), [32, 51])
    m = blending_mod.seam_mask((96, 96), 32, 0, band=3)
    assert m[29:35, 50].all() and not m[28, 50] and not m[35, 50]


def test_seam_ratio_is_one_without_seams_and_large_with_them() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 256, (256, 256)).astype(np.uint8)
    noisy = np.clip(truth + rng.normal(0, 5, truth.shape), 0, 255).astype(np.uint8)
    assert blending_mod.seam_ratio(noisy, truth, 64, 32) == pytest.approx(1.0, abs=0.08)
    seamy = noisy.astype(np.int64)
    m = blending_mod.seam_mask(truth.shape, 64, 0, band=2)
    seamy[m] = np.clip(seamy[m] + 20, 0, 255)
    assert blending_mod.seam_ratio(seamy.astype(np.uint8), truth, 64, 0) > 2.0
    assert np.isnan(blending_mod.seam_ratio(truth, truth, 256, 0))  # one tile: no handover lines


def test_step_ratio_sees_tile_borders_without_ground_truth() -> None:
    rng = np.random.default_rng(5)
    img = rng.integers(90, 100, (96, 96), dtype=np.uint8)  # texture of ~3 grey levels
    assert blending_mod.step_ratio(img, 32, 16) == pytest.approx(1.0, abs=0.1)
    seams = blending_mod.blend_deterministic(img, CountingModel(8 / 127.5), 32, 0, 4, "constant")
    hard = blending_mod.step_ratio(seams, 32, 0)
    assert hard > 3.0
    # blending spreads the same jumps over the overlap: the Gaussian window over ~4 px around
    # the handover line, the cosine window over the whole overlap
    soft = {
        w: blending_mod.step_ratio(
            blending_mod.blend_deterministic(img, CountingModel(8 / 127.5), 32, 16, 4, w), 32, 16
        )
        for w in ("gaussian", "cosine")
    }
    assert soft["gaussian"] < hard / 2 and soft["cosine"] < soft["gaussian"]
