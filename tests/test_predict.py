"""Prediction stores: order/count, determinism, atomicity; baselines (identity, histmatch LUT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

import rocksr.data.predstore as predstore_mod
import rocksr.data.values as values_mod
import rocksr.evaluation.baselines as baselines_mod
import rocksr.inference as inference_mod
import rocksr.stages.baseline as stage_baseline
import rocksr.stages.predict as stage_predict
from rocksr.data.tilestore import certify_store

SIZE = 32
TINY_UNET = {
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "attention_levels": [False, False],
    "norm_num_groups": 4,
    "attention_head_dim": 8,
}
SCHEDULE = {"timesteps": 20, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.2}
# tiles 0-5 train, 6-7 val, 8 excluded, 9-13 test (deliberately not the last rows: 14 excluded)
SPLIT = ["train"] * 6 + ["val"] * 2 + ["excluded"] + ["test"] * 5 + ["excluded"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; many threads spin-wait on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_dataset(root: Path, seed: int = 0) -> tuple[Path, Path, Path]:
    """A finished tile store (complete=True), manifest CSV and splits CSV in ``root``."""
    rng = np.random.default_rng(seed)
    n = len(SPLIT)
    coarse = rng.random((n, 4, 4))
    base = np.kron(coarse, np.ones((SIZE // 4, SIZE // 4)))
    mct = np.clip(base * 200 + 20 * rng.random((n, SIZE, SIZE)), 0, 255).astype(np.uint8)
    sem = np.clip(np.where(base > 0.4, 230 * base, 15.0) + 5 * rng.random(base.shape), 0, 255)
    sem = sem.astype(np.uint8)
    store = root / "tiles.zarr"
    write_store(store, mct, sem)
    man = pd.DataFrame(
        {
            "tile_id": np.arange(n),
            "sample": "s0",
            "grid_row": np.arange(n) // 4,
            "grid_col": np.arange(n) % 4,
            "y0": 0,
            "x0": 0,
            "angle": 0.0,
            "footprint_y0": 0,
            "footprint_x0": 0,
            "footprint_size": SIZE,
            "view": 0,
            "image_height": 256,
            "image_width": 256,
        }
    )
    manifest = root / "manifest.csv"
    man.to_csv(manifest, index=False)
    splits = root / "splits.csv"
    pd.DataFrame({"tile_id": np.arange(n), "split": SPLIT}).to_csv(splits, index=False)
    return store, manifest, splits


def write_store(path: Path, mct: np.ndarray, sem: np.ndarray) -> None:
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    for name, arr in (("mct", mct), ("sem", sem)):
        a = g.create_array(name, shape=arr.shape, dtype="uint8", chunks=(1, SIZE, SIZE))
        a[:] = arr
    g.attrs.update({"tile_size": SIZE, "complete": True})
    certify_store(path)  # record the digest manifest that rocksr's readers verify


def make_checkpoint(path: Path, kind: str, seed: int = 0) -> Path:
    """A checkpoint file in the format of rocksr.checkpoint with random tiny weights."""
    from rocksr.checkpoints import FORMAT
    from rocksr.models.registry import arch_signature, build_models

    torch.manual_seed(seed)
    cfg = {"unet": dict(TINY_UNET), "schedule": dict(SCHEDULE)} if kind == "ddpm" else {}
    models = build_models(kind, cfg)
    payload = {
        "format": FORMAT,
        "kind": kind,
        "config": cfg,
        "arch": arch_signature(kind, cfg),
        "models": {k: m.state_dict() for k, m in models.items()},
        "ema": None,
        "step": 0,
        "epoch": 0,
    }
    torch.save(payload, path)
    return path


def test_ids() -> np.ndarray:
    return np.array([i for i, s in enumerate(SPLIT) if s == "test"])


test_ids.__test__ = False  # a helper, not a test


# ------------------------------------------------------------------------- baselines


def test_identity_baseline_equals_mct_in_split_order(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    out = tmp_path / "pred" / "identity.zarr"
    stage_baseline.predict_baseline("identity", store, splits, out, batch_size=2)
    pred, attrs = predstore_mod.open_predictions(out, expect_tile_ids=test_ids())
    g = zarr.open_group(str(store), mode="r")
    np.testing.assert_array_equal(np.asarray(pred[:]), np.asarray(g["mct"][:])[test_ids()])
    assert attrs["tile_ids"] == test_ids().tolist()
    assert attrs["model"] == "identity" and attrs["kind"] == "baseline"
    assert pred.dtype == np.uint8 and pred.chunks == (1, SIZE, SIZE)
    assert not list((tmp_path / "pred").glob(".*partial"))


def test_histmatch_lut_is_monotone_and_fitted_on_train_only(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    out, lut_path = tmp_path / "hm.zarr", tmp_path / "hm_lut.json"
    stage_baseline.predict_baseline("histmatch", store, splits, out, lut_path=lut_path)
    lut = baselines_mod.load_lut(lut_path)
    assert lut.shape == (256,) and lut.dtype == np.uint8
    assert np.all(np.diff(lut.astype(int)) >= 0), "LUT must be monotone non-decreasing"
    pred, attrs = predstore_mod.open_predictions(out, expect_tile_ids=test_ids())
    g = zarr.open_group(str(store), mode="r")
    np.testing.assert_array_equal(np.asarray(pred[:]), lut[np.asarray(g["mct"][:])[test_ids()]])

    # change every non-train tile (val, test, excluded): the LUT must not change
    mct, sem = np.asarray(g["mct"][:]), np.asarray(g["sem"][:])
    not_train = np.array([s != "train" for s in SPLIT])
    rng = np.random.default_rng(9)
    mct2, sem2 = mct.copy(), sem.copy()
    mct2[not_train] = rng.integers(0, 256, mct2[not_train].shape, dtype=np.uint8)
    sem2[not_train] = 255 - sem2[not_train]
    store2 = tmp_path / "tiles2.zarr"
    write_store(store2, mct2, sem2)
    stage_baseline.predict_baseline(
        "histmatch", store2, splits, tmp_path / "hm2.zarr", lut_path=tmp_path / "lut2.json"
    )
    np.testing.assert_array_equal(baselines_mod.load_lut(tmp_path / "lut2.json"), lut)
    # ...while changing a train tile does change it
    sem3 = sem.copy()
    sem3[~not_train] = 255 - sem3[~not_train]
    store3 = tmp_path / "tiles3.zarr"
    write_store(store3, mct, sem3)
    lut3, meta = baselines_mod.fit_histmatch_lut(store3, splits)
    assert not np.array_equal(lut3, lut)
    assert meta["fitted_on"] == "train" and meta["n_tiles"] == SPLIT.count("train")


def test_histogram_matching_lut_maps_distribution() -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(0, 128, 20000)
    ref = 2 * src + 1  # the reference distribution is an exact monotone remap
    lut = baselines_mod.histogram_matching_lut(
        np.bincount(src, minlength=256), np.bincount(ref, minlength=256)
    )
    assert np.all(np.diff(lut.astype(int)) >= 0)
    np.testing.assert_array_equal(lut[:128], 2 * np.arange(128) + 1)


def test_mean_baseline_is_the_train_mean_grey(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    out = tmp_path / "mean.zarr"
    stage_baseline.predict_baseline("mean", store, splits, out, batch_size=4)
    pred, attrs = predstore_mod.open_predictions(out, expect_tile_ids=test_ids())
    g = zarr.open_group(str(store), mode="r")
    sem = np.asarray(g["sem"][:])
    train = np.array([s == "train" for s in SPLIT])
    exact = sem[train].astype(np.float64).mean()
    value = int(np.floor(exact + 0.5))
    assert not np.isclose(exact, sem.astype(np.float64).mean(), atol=0.5)  # the split matters
    p = np.asarray(pred[:])
    assert p.dtype == np.uint8 and p.shape == (len(test_ids()), SIZE, SIZE)
    assert (p == value).all()
    assert attrs["kind"] == "baseline" and attrs["model"] == "mean"
    assert attrs["mean_grey"] == value
    assert attrs["fit"]["fitted_on"] == "train" and attrs["fit"]["n_tiles"] == train.sum()
    assert attrs["fit"]["mean_grey_exact"] == pytest.approx(exact, abs=1e-12)
    assert attrs["fit"]["n_pixels"] == train.sum() * SIZE * SIZE
    # changing every non-train tile leaves it unchanged; a train tile changes it
    sem2 = sem.copy()
    sem2[~train] = 255
    write_store(tmp_path / "t2.zarr", np.asarray(g["mct"][:]), sem2)
    assert baselines_mod.fit_mean_grey(tmp_path / "t2.zarr", splits)[0] == value
    sem2[train] = 255 - sem[train]
    write_store(tmp_path / "t3.zarr", np.asarray(g["mct"][:]), sem2)
    assert baselines_mod.fit_mean_grey(tmp_path / "t3.zarr", splits)[0] == int(
        np.floor(255 - exact + 0.5)
    )


def test_unknown_baseline(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    with pytest.raises(ValueError, match="unknown baseline"):
        stage_baseline.predict_baseline("bicubic", store, splits, tmp_path / "x.zarr")


# ------------------------------------------------------------------------- model prediction


def test_predict_ddpm_count_order_and_determinism(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "ddpm.pt", "ddpm")
    outs = {}
    for name, seed, bs in (("a", 7, 2), ("b", 7, 2), ("c", 8, 2)):
        outs[name] = tmp_path / f"{name}.zarr"
        stage_predict.predict(
            ckpt,
            store,
            splits,
            outs[name],
            sampler="ddim",
            steps=2,
            batch_size=bs,
            seed=seed,
            device="cpu",
        )
    pa, attrs = predstore_mod.open_predictions(outs["a"], expect_tile_ids=test_ids())
    assert pa.shape == (len(test_ids()), SIZE, SIZE) and pa.dtype == np.uint8
    assert attrs["tile_ids"] == test_ids().tolist()
    assert attrs["sampler"] == "ddim" and attrs["steps"] == 2 and attrs["seed"] == 7
    assert attrs["kind"] == "ddpm" and len(attrs["checkpoint_sha256"]) == 64
    grp = zarr.open_group(str(outs["a"]), mode="r")
    np.testing.assert_array_equal(np.asarray(grp["tile_ids"][:]), test_ids())
    a = np.asarray(pa[:])
    b = np.asarray(predstore_mod.open_predictions(outs["b"])[0][:])
    c = np.asarray(predstore_mod.open_predictions(outs["c"])[0][:])
    np.testing.assert_array_equal(a, b)  # same seed -> identical samples
    assert not np.array_equal(a, c)  # another seed -> other samples


def test_predict_cgan_order_matches_direct_model_call(tmp_path: Path) -> None:
    from rocksr.inference import load_for_inference

    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "cgan.pt", "cgan")
    out = tmp_path / "cgan.zarr"
    stage_predict.predict(ckpt, store, splits, out, batch_size=3, seed=0, device="cpu")
    pred, attrs = predstore_mod.open_predictions(out, expect_tile_ids=test_ids())
    assert attrs["kind"] == "cgan" and attrs["sampler"] is None
    _, model, _ = load_for_inference(ckpt)
    g = zarr.open_group(str(store), mode="r")
    with torch.no_grad():
        direct = values_mod.from_model(
            model(values_mod.to_model(np.asarray(g["mct"][:])[test_ids()]))
        )
    np.testing.assert_array_equal(np.asarray(pred[:]), direct)


@pytest.mark.parametrize("sampler,steps", [("ancestral", None), ("ddim", 4), ("dpmsolver", 4)])
def test_sampler_output_in_range(sampler: str, steps: int | None) -> None:
    from rocksr.diffusion.sampling import sample
    from rocksr.evaluation.metrics import to_unit
    from rocksr.models.unet import build_ddpm_unet

    torch.manual_seed(0)
    model = build_ddpm_unet(TINY_UNET).eval()
    mct = values_mod.to_model(
        np.random.default_rng(0).integers(0, 256, (2, 16, 16), dtype=np.uint8)
    )
    y = sample(
        model,
        mct,
        SCHEDULE,
        sampler=sampler,
        steps=steps,
        generator=inference_mod.batch_generator(0, 0),
        prediction="epsilon",
    )
    assert y.shape == mct.shape and float(y.min()) >= -1.0 and float(y.max()) <= 1.0
    u = to_unit(values_mod.from_model(y))
    assert u.min() >= 0.0 and u.max() <= 1.0


def test_value_mapping_roundtrip() -> None:
    u8 = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    x = values_mod.to_model(u8)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(values_mod.from_model(x), u8)


def test_batch_generator_is_a_function_of_seed_and_batch() -> None:
    def draw(s: int, b: int) -> torch.Tensor:
        return torch.randn(4, generator=inference_mod.batch_generator(s, b))

    assert torch.equal(draw(0, 3), draw(0, 3))
    assert not torch.equal(draw(0, 3), draw(0, 4))
    assert not torch.equal(draw(0, 3), draw(1, 3))


def test_interrupted_write_leaves_no_store(tmp_path: Path) -> None:
    out = tmp_path / "p.zarr"
    ids = np.array([3, 5, 9])

    def batches():
        yield ids[:2], np.zeros((2, 8, 8), np.uint8)
        raise KeyboardInterrupt  # killed half-way

    with pytest.raises(KeyboardInterrupt):
        predstore_mod.write_prediction_store(out, ids, 8, batches(), {})
    assert not out.exists() and not list(tmp_path.iterdir())
    # a store without the `complete` flag is refused
    g = zarr.open_group(str(out), mode="w", zarr_format=3)
    g.create_array("pred", shape=(3, 8, 8), dtype="uint8")
    with pytest.raises(predstore_mod.PredictionStoreError, match="incomplete"):
        predstore_mod.open_predictions(out)
    # batches out of order are refused
    with pytest.raises(predstore_mod.PredictionStoreError, match="order"):
        predstore_mod.write_prediction_store(
            tmp_path / "q.zarr", ids, 8, iter([(ids[::-1], np.zeros((3, 8, 8), np.uint8))]), {}
        )


def test_open_predictions_checks_split(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    out = tmp_path / "identity.zarr"
    stage_baseline.predict_baseline("identity", store, splits, out)
    with pytest.raises(predstore_mod.PredictionStoreError, match="differ"):
        predstore_mod.open_predictions(out, expect_tile_ids=test_ids()[:-1])
