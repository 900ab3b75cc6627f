"""Predict-and-refine diffusion (ddpm.prior): priors, checkpoints that record them, and every
inference path applying them (predict, sample, rocksr enhance)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from test_enhance import (  # noqa: F401  (one_torch_thread: an autouse fixture)
    SCHEDULE,
    STEPS,
    TILE,
    TINY_UNET,
    make_checkpoint,
    one_torch_thread,
    run,
    smooth_image,
)
from test_predict import make_checkpoint as make_predict_checkpoint
from test_predict import make_dataset

from rocksr.errors import RocksrError
from rocksr.priors import CachedPrior, Prior

GOLDEN = Path(__file__).parent / "data" / "ddpm_prior_none_golden.npz"


@pytest.fixture
def refine(tmp_path: Path) -> dict[str, Path]:
    """A regress checkpoint in models/regress/ and a DDPM refining it in models/ddpm/."""
    from rocksr.files import sha256_file

    reg = tmp_path / "models" / "regress" / "best.pt"
    reg.parent.mkdir(parents=True)
    make_checkpoint(reg, "regress", seed=1, unet=dict(TINY_UNET))
    ddpm = tmp_path / "models" / "ddpm" / "best.pt"
    ddpm.parent.mkdir(parents=True)
    record = {"kind": "regress", "checkpoint": str(reg), "sha256": sha256_file(reg)}
    make_checkpoint(
        ddpm, "ddpm", seed=2, payload={"prior": record}, prior="regress", prediction="sample"
    )
    return {"regress": reg, "ddpm": ddpm}


def test_prior_none_reproduces_the_ddpm_outputs_bit_for_bit(tmp_path: Path) -> None:
    """Predictions of a prior-free DDPM checkpoint equal those stored before priors existed
    (one grey level of float rounding allowed on a different CPU, on under 1 % of pixels)."""
    import zarr

    from rocksr.stages.predict import predict

    store, _, splits = make_dataset(tmp_path)
    ck = make_predict_checkpoint(tmp_path / "ddpm.pt", "ddpm", seed=0)
    predict(ck, store, splits, tmp_path / "p.zarr", sampler="ddim", steps=4, device="cpu",
            n_samples=2)  # fmt: skip
    g = zarr.open_group(str(tmp_path / "p.zarr"), mode="r")
    want = np.load(GOLDEN)
    for key in ("pred", "mean"):
        got = np.asarray(g[key][:]).astype(int)
        diff = np.abs(got - want[key].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, key


def test_histmatch_prior_is_the_baseline_lut(tmp_path: Path) -> None:
    from rocksr.data.predstore import iter_tiles
    from rocksr.data.tilestore import open_tiles
    from rocksr.data.values import to_model, unit_to_uint8
    from rocksr.evaluation.baselines import apply_lut, fit_histmatch_lut
    from rocksr.priors import histmatch_prior, load_prior

    store, _, splits = make_dataset(tmp_path)
    prior = histmatch_prior(store, splits)
    lut, _ = fit_histmatch_lut(store, splits)
    for _, _, tiles in iter_tiles(open_tiles(store), "mct", np.arange(4), 4):
        got = unit_to_uint8(prior(to_model(tiles)).numpy()[:, 0])
        np.testing.assert_array_equal(got, apply_lut(tiles, lut))
    # the record alone rebuilds it (the DDPM checkpoint is self-contained)
    again = load_prior(json.loads(json.dumps(prior.record)))
    x = torch.linspace(-1, 1, 256).view(1, 1, 16, 16)
    assert torch.equal(again(x), prior(x))


def test_regress_prior_enhance_of_one_tile_equals_predict(tmp_path: Path, refine) -> None:
    from rocksr.data.values import from_model, to_model
    from rocksr.inference import load_for_inference, make_predictor

    img = smooth_image(TILE, TILE, seed=3)
    tifffile.imwrite(tmp_path / "in.tif", img)
    kind, model, cfg = load_for_inference(refine["ddpm"])
    assert model.prior is not None and model.prior.kind == "regress"
    predictor = make_predictor(kind, model, cfg, "ddim", STEPS)
    want = from_model(predictor(to_model(img[None]), torch.Generator().manual_seed(5)))[0]
    for fuse in ("step", "end"):
        run(refine["ddpm"], tmp_path / "in.tif", tmp_path / f"o_{fuse}.tif", normalize="none",
            fuse=fuse, seed=5)  # fmt: skip
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"o_{fuse}.tif"), want)
    # and the prior matters: without it (zeros) the output differs
    x = to_model(img[None])
    from rocksr.diffusion.sampling import sample, sampling_options

    plain = sample(model, x, cfg["schedule"], "ddim", STEPS, torch.Generator().manual_seed(5),
                   prior=torch.zeros_like(x), **sampling_options(cfg))  # fmt: skip
    assert not np.array_equal(from_model(plain)[0], want)


def test_a_moved_regress_prior_is_found_beside_the_ddpm(tmp_path: Path, refine) -> None:
    """The recorded path is gone, but ../regress/best.pt beside the DDPM has the right bytes."""
    from rocksr.inference import load_for_inference

    moved = tmp_path / "elsewhere" / "models"
    shutil.copytree(tmp_path / "models", moved)
    shutil.rmtree(tmp_path / "models")
    _, model, _ = load_for_inference(moved / "ddpm" / "best.pt")
    assert model.prior.kind == "regress"


@pytest.mark.parametrize("damage", ["missing", "other"])
def test_a_missing_or_different_prior_is_one_line_and_writes_nothing(
    tmp_path: Path, refine, damage: str
) -> None:
    reg = refine["regress"]
    if damage == "missing":
        reg.unlink()
    else:
        make_checkpoint(reg, "regress", seed=9, unet=dict(TINY_UNET))  # same name, other weights
    img = smooth_image(TILE * 2, TILE * 2, seed=4)
    tifffile.imwrite(tmp_path / "in.tif", img)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RocksrError) as e:
        run(refine["ddpm"], tmp_path / "in.tif", out / "o.tif", normalize="none")
    msg = str(e.value)
    assert "\n" not in msg and "regress checkpoint" in msg and str(reg) in msg, msg
    assert ("missing" if damage == "missing" else "a different file") in msg
    assert list(out.iterdir()) == []


def test_ddpm_with_histmatch_prior_trains_records_and_predicts(tmp_path: Path) -> None:
    import zarr

    from rocksr.checkpoints import load_checkpoint
    from rocksr.stages.predict import predict
    from rocksr.stages.train import train

    store, _, splits = make_dataset(tmp_path)
    params = {
        "max_steps": 3, "val_every": 3, "ckpt_every": 3, "batch_size": 2, "n_val_samples": 1,
        "val_sample_tiles": 2, "val_sampler_steps": 2, "prior": "histmatch",
        "unet": dict(TINY_UNET), "schedule": dict(SCHEDULE),
    }  # fmt: skip
    best = tmp_path / "ddpm" / "best.pt"
    train("ddpm", store, splits, best_ckpt=best, history_csv=tmp_path / "h.csv",
          samples_dir=tmp_path / "val", state_dir=tmp_path / "state", params=params, seed=0,
          device="cpu")  # fmt: skip
    ck = load_checkpoint(best)
    assert ck["prior"]["kind"] == "histmatch" and len(ck["prior"]["lut"]) == 256
    assert ck["arch"]["prior"] == "histmatch"
    assert ck["models"]["unet"]["unet.conv_in.weight"].shape[1] == 3  # [x_t, mct, prior]
    predict(best, store, splits, tmp_path / "p.zarr", steps=2, device="cpu")
    assert np.asarray(zarr.open_group(str(tmp_path / "p.zarr"), mode="r")["pred"][:]).shape[0] == 5


def test_prior_regress_without_its_checkpoint_is_refused_before_training(tmp_path: Path) -> None:
    from rocksr.training.ddpm_task import ddpm_config

    with pytest.raises(ValueError, match="set ddpm.prior_checkpoint"):
        ddpm_config({"prior": "regress"})
    with pytest.raises(ValueError, match="nothere.pt: ddpm.prior is 'regress'"):
        ddpm_config({"prior": "regress", "prior_checkpoint": str(tmp_path / "nothere.pt")})
    with pytest.raises(ValueError, match="ddpm.prior must be one of"):
        ddpm_config({"prior": "lut"})


class _CountingPrior(Prior):
    """A prior whose output for a tile depends on the whole batch's mean, as a batched network's
    rounding may: only a prior computed tile by tile gives batch-independent values."""

    def __init__(self) -> None:
        super().__init__("regress", {"kind": "regress"})
        self.tiles_seen = 0

    def __call__(self, mct: torch.Tensor) -> torch.Tensor:
        self.tiles_seen += mct.shape[0]
        return torch.tanh(mct * 2.0) + 1e-3 * mct.mean()


def test_cached_prior_computes_each_tile_once_and_alone() -> None:
    g = torch.Generator().manual_seed(0)
    tiles = torch.rand((6, 1, 8, 8), generator=g) * 2 - 1
    inner = _CountingPrior()
    cached = CachedPrior(inner)
    first = cached(tiles[[0, 1, 2, 3]])
    again = cached(tiles[[3, 4, 0, 5]])  # tiles 0 and 3 again, in other company
    assert inner.tiles_seen == 6 and (cached.hits, cached.misses) == (2, 6)
    alone = torch.cat([inner(tiles[i : i + 1]) for i in range(6)])
    assert torch.equal(first, alone[[0, 1, 2, 3]]) and torch.equal(again, alone[[3, 4, 0, 5]])
    assert cached.record == inner.record and cached.kind == "regress"


def test_cached_prior_over_its_cap_still_computes_tile_by_tile() -> None:
    tiles = torch.linspace(-1, 1, 2 * 64).reshape(2, 1, 8, 8)
    inner = _CountingPrior()
    cached = CachedPrior(inner, max_bytes=8 * 8 * 4)  # room for one tile
    a, b = cached(tiles), cached(tiles)
    assert torch.equal(a, b) and inner.tiles_seen == 3 and cached.nbytes == 8 * 8 * 4
