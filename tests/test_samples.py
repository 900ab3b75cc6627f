"""Several DDPM samples per tile: seeding, K = 1 compatibility, mean / std / samples arrays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from test_predict import (  # noqa: F401 (one_torch_thread: autouse fixture)
    SIZE,
    SPLIT,
    make_checkpoint,
    make_dataset,
    one_torch_thread,
)

import rocksr.data.predstore as predstore_mod
import rocksr.data.splits as splits_mod
import rocksr.data.values as values_mod
import rocksr.inference as inference_mod
import rocksr.stages.predict as stage_predict
from rocksr.data.tilestore import certify_store

TEST_IDS = np.array([i for i, s in enumerate(SPLIT) if s == "test"])


def single_sample_store(
    ckpt: Path,
    store: Path,
    splits: Path,
    out: Path,
    sampler: str,
    steps: int | None,
    batch_size: int,
    seed: int,
) -> None:
    """The single-sample prediction loop exactly as ``rocksr.stages.predict.predict`` ran it before
    ``n_samples`` existed (one call per batch with ``batch_generator(seed, b)``)."""
    from rocksr.data.tilestore import open_tiles
    from rocksr.inference import load_for_inference

    kind, model, cfg = load_for_inference(ckpt, device="cpu")
    group = open_tiles(store)
    ids = splits_mod.split_tile_ids(splits, "test")
    run = inference_mod.make_predictor(kind, model, cfg, sampler=sampler, steps=steps)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for b, sel, tiles in predstore_mod.iter_tiles(group, "mct", ids, batch_size):
            with torch.inference_mode():
                y = run(
                    values_mod.to_model(tiles, "cpu"), inference_mod.batch_generator(seed, b, "cpu")
                )
            yield sel, values_mod.from_model(y)

    predstore_mod.write_prediction_store(
        out, ids, int(group["mct"].shape[-1]), batches(), {"kind": kind}
    )


def test_k1_is_bit_identical_to_the_single_sample_code_path(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "ddpm.pt", "ddpm")
    old = tmp_path / "old.zarr"
    single_sample_store(ckpt, store, splits, old, "ddim", 3, 2, 11)
    new = tmp_path / "new.zarr"
    stage_predict.predict(
        ckpt,
        store,
        splits,
        new,
        sampler="ddim",
        steps=3,
        batch_size=2,
        seed=11,
        device="cpu",
        n_samples=1,
    )
    a = np.asarray(predstore_mod.open_predictions(old)[0][:])
    pred, attrs = predstore_mod.open_predictions(new, expect_tile_ids=TEST_IDS)
    np.testing.assert_array_equal(np.asarray(pred[:]), a)
    assert attrs["n_samples"] == 1
    # K = 1: the mean is the sample itself, the spread is zero, and there is no `samples` array
    mean, _ = predstore_mod.open_predictions(new, array="mean")
    np.testing.assert_array_equal(np.asarray(mean[:]), a)
    std, _ = predstore_mod.open_predictions(new, array="std")
    assert std.dtype == np.float16 and not np.asarray(std[:]).any()
    assert "samples" not in zarr.open_group(str(new), mode="r")
    # K = 3: sample 0 is still the single-sample prediction
    k3 = tmp_path / "k3.zarr"
    stage_predict.predict(
        ckpt,
        store,
        splits,
        k3,
        sampler="ddim",
        steps=3,
        batch_size=2,
        seed=11,
        device="cpu",
        n_samples=3,
    )
    np.testing.assert_array_equal(np.asarray(predstore_mod.open_predictions(k3)[0][:]), a)
    samples, attrs3 = predstore_mod.open_predictions(k3, array="samples")
    assert attrs3["n_samples"] == 3 and samples.shape == (len(TEST_IDS), 3, SIZE, SIZE)
    s = np.asarray(samples[:])
    np.testing.assert_array_equal(s[:, 0], a)
    assert not np.array_equal(s[:, 1], s[:, 0]) and not np.array_equal(s[:, 2], s[:, 1])


def test_sample_generator_seeding() -> None:
    def draw(k: int, seed: int = 5, b: int = 2) -> torch.Tensor:
        return torch.randn(6, generator=inference_mod.sample_generator(seed, b, k))

    assert torch.equal(draw(0), torch.randn(6, generator=inference_mod.batch_generator(5, 2)))
    ref = np.random.SeedSequence([5, 2, 1]).generate_state(2, np.uint32)
    g = torch.Generator().manual_seed(int(ref[0]) << 32 | int(ref[1]))
    assert torch.equal(draw(1), torch.randn(6, generator=g))
    draws = [draw(k) for k in range(4)] + [draw(1, b=3), draw(1, seed=6)]
    for i in range(len(draws)):
        for j in range(i):
            assert not torch.equal(draws[i], draws[j]), (i, j)
    with pytest.raises(ValueError, match="sample index"):
        inference_mod.sample_generator(0, 0, -1)


def _noise_predictor(mct: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fake stochastic model: uniform noise in [-1, 1] drawn from the generator."""
    return torch.rand(mct.shape, generator=generator) * 2.0 - 1.0


def _constant_predictor(mct: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fake deterministic model: every sample equals 0.5 * micro-CT - 0.1."""
    return mct * 0.5 - 0.1


def _write(tmp_path: Path, run, k: int, name: str, batch_size: int = 2) -> Path:
    from rocksr.data.tilestore import open_tiles

    store, _, splits = make_dataset(tmp_path)
    out = tmp_path / f"{name}.zarr"
    stage_predict.write_predictions(
        run,
        open_tiles(store),
        splits_mod.split_tile_ids(splits),
        out,
        {"kind": "ddpm"},
        n_samples=k,
        seed=3,
        batch_size=batch_size,
        device="cpu",
    )
    return out


def test_mean_std_samples_shapes_order_and_values(tmp_path: Path) -> None:
    k = 4
    out = _write(tmp_path, _noise_predictor, k, "noise", batch_size=2)
    n = len(TEST_IDS)
    grp = zarr.open_group(str(out), mode="r")
    assert grp["samples"].shape == (n, k, SIZE, SIZE) and grp["samples"].dtype == np.uint8
    assert grp["mean"].shape == (n, SIZE, SIZE) and grp["mean"].dtype == np.uint8
    assert grp["std"].shape == (n, SIZE, SIZE) and grp["std"].dtype == np.float16
    assert grp.attrs["n_samples"] == k and grp.attrs["tile_ids"] == TEST_IDS.tolist()
    s = np.asarray(grp["samples"][:]).astype(np.float64)
    # the samples are exactly the generator draws of (batch b, sample k), in tile order
    for b, start in enumerate(range(0, n, 2)):
        rows = slice(start, min(start + 2, n))
        shape = (rows.stop - rows.start, 1, SIZE, SIZE)
        for j in range(k):
            y = _noise_predictor(torch.zeros(shape), inference_mod.sample_generator(3, b, j))
            np.testing.assert_array_equal(s[rows, j], values_mod.from_model(y))
    np.testing.assert_array_equal(s[:, 0], np.asarray(grp["pred"][:]))
    # mean of K (from the float samples) = mean of the stored uint8 samples within rounding
    mean = np.asarray(grp["mean"][:]).astype(np.float64)
    assert np.abs(mean - s.mean(axis=1)).max() <= 1.0
    # std in grey levels (population, ddof 0) = std of the stored samples within quantization
    std = np.asarray(grp["std"][:]).astype(np.float64)
    assert (std >= 0).all() and std.max() > 20  # uniform noise: about 255 / sqrt(12) = 74
    assert np.abs(std - s.std(axis=1)).max() <= 1.0
    # a mean read through open_predictions is the same array
    np.testing.assert_array_equal(
        np.asarray(predstore_mod.open_predictions(out, array="mean")[0][:]), mean
    )


def test_std_is_zero_when_all_samples_are_equal(tmp_path: Path) -> None:
    out = _write(tmp_path, _constant_predictor, 3, "const")
    grp = zarr.open_group(str(out), mode="r")
    std = np.asarray(grp["std"][:])
    assert std.dtype == np.float16 and (std == 0).all()
    s = np.asarray(grp["samples"][:])
    assert (s == s[:, :1]).all()
    np.testing.assert_array_equal(np.asarray(grp["mean"][:]), s[:, 0])
    np.testing.assert_array_equal(np.asarray(grp["pred"][:]), s[:, 0])


def test_cgan_ignores_n_samples(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "cgan.pt", "cgan")
    out = tmp_path / "cgan.zarr"
    stage_predict.predict(ckpt, store, splits, out, batch_size=4, device="cpu", n_samples=5)
    pred, attrs = predstore_mod.open_predictions(out)
    assert attrs["n_samples"] == 1 and attrs.get("n_samples_requested") == 5
    # a deterministic model's mean is its prediction: reading `mean` falls back to `pred`
    mean, _ = predstore_mod.open_predictions(out, array="mean")
    np.testing.assert_array_equal(np.asarray(mean[:]), np.asarray(pred[:]))
    with pytest.raises(predstore_mod.PredictionStoreError, match="no 'std' array"):
        predstore_mod.open_predictions(out, array="std")


def test_open_predictions_refuses_bad_inputs(tmp_path: Path) -> None:
    out = _write(tmp_path, _noise_predictor, 2, "noise")
    with pytest.raises(predstore_mod.PredictionStoreError, match="unknown array"):
        predstore_mod.open_predictions(out, array="median")
    junk = tmp_path / "junk.zarr"
    junk.mkdir()
    (junk / "zarr.json").write_text("{not json")
    with pytest.raises(predstore_mod.PredictionStoreError, match=r"junk\.zarr: not a readable"):
        predstore_mod.open_predictions(junk)
    with pytest.raises(ValueError, match="n_samples"):
        stage_predict.write_predictions(
            _noise_predictor, None, TEST_IDS, tmp_path / "x.zarr", {}, n_samples=0
        )
    # a `mean` array that does not match `pred` is refused
    g = zarr.open_group(str(out), mode="r+")
    del g["mean"]
    g.create_array("mean", shape=(2, SIZE, SIZE), dtype="uint8")[:] = 7
    with pytest.raises(
        predstore_mod.PredictionStoreError, match="damaged prediction store: array 'mean'"
    ):
        predstore_mod.open_predictions(out, array="mean")  # the digest manifest sees the edit first
    (out / "rocksr-digests.json").unlink()
    certify_store(out)
    with pytest.raises(predstore_mod.PredictionStoreError, match="'mean' has shape"):
        predstore_mod.open_predictions(out, array="mean")
