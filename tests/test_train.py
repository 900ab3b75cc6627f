"""Data loading, learning, checkpoints and exact resume of the training loops (all CPU)."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal

import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from helpers_train import (  # noqa: F401 (single_thread is an autouse fixture)
    cgan_params,
    ddpm_params,
    make_store,
    single_thread,
    train_paths,
)

import rocksr.checkpoints as checkpoints_mod
import rocksr.files as files_mod
import rocksr.training.ddpm_task as ddpm_task_mod
import rocksr.training.trainer as trainer_mod
from rocksr.checkpoints import IncompatibleCheckpointError, load_checkpoint, save_atomic
from rocksr.data.torchdata import EpochSampler, TileDataset, dihedral, make_loader
from rocksr.diffusion.sampling import sample
from rocksr.inference import load_for_inference
from rocksr.models.cgan import UNet1
from rocksr.models.unet import ConditionalUNet
from rocksr.stages.train import train
from rocksr.training.cgan_task import CGANTask
from rocksr.training.ddpm_task import DDPMTask
from rocksr.training.runtime import Runtime


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("tiles"))


# --------------------------------------------------------------------------- data
def test_dataset_reads_only_its_split(tiles):
    store, splits = tiles
    ds = TileDataset(store, splits, "val")
    ids = pd.read_csv(splits).query("split == 'val'")["tile_id"].to_numpy()
    assert len(ds) == len(ids) and ds._group is None  # opened lazily
    g = zarr.open_group(str(store), mode="r")
    for i, tid in enumerate(ids):
        mct, sem = ds[i]
        assert mct.shape == sem.shape == (1, 32, 32) and mct.dtype == torch.float32
        ref = torch.from_numpy(g["mct"][int(tid)] / 127.5 - 1).float()
        assert torch.allclose(mct[0], ref, atol=1e-6)  # the split's own row
        assert mct.min() >= -1 and mct.max() <= 1
    assert pickle.loads(pickle.dumps(ds))._group is None  # cheap to send to workers
    m0, s0 = ds[0]
    m5, s5 = ds[(0, 5)]  # same transform applied to both images
    assert torch.equal(m5[0], torch.from_numpy(dihedral(m0[0].numpy(), 5).copy()))
    assert torch.equal(s5[0], torch.from_numpy(dihedral(s0[0].numpy(), 5).copy()))


def test_in_memory_split_gives_the_same_values_and_is_not_pickled(tiles, monkeypatch):
    """``in_memory``: the split is read once; every view (and transform) equals the tile-by-tile
    read; workers get the dataset without the cached arrays; ``auto`` caches up to the limit."""
    import rocksr.data.torchdata as td

    store, splits = tiles
    plain = TileDataset(store, splits, "train")
    cached = TileDataset(store, splits, "train", in_memory=True)
    for index in (0, 3, (2, 6), len(plain) - 1):
        for a, b in zip(plain[index], cached[index], strict=True):
            assert torch.equal(a, b)
    assert cached._tiles is not None and plain._tiles is None
    assert pickle.loads(pickle.dumps(cached))._tiles is None
    tile_bytes = 2 * 32 * 32 * len(plain)
    monkeypatch.setattr(td, "IN_MEMORY_AUTO_BYTES", tile_bytes)
    assert TileDataset(store, splits, "train", in_memory="auto").cached()
    monkeypatch.setattr(td, "IN_MEMORY_AUTO_BYTES", tile_bytes - 1)
    assert not TileDataset(store, splits, "train", in_memory="auto").cached()
    with pytest.raises(ValueError, match="in_memory"):
        TileDataset(store, splits, "train", in_memory="yes")


def test_epoch_order_is_a_function_of_seed_and_epoch():
    a, b = EpochSampler(20, seed=1, augment=True), EpochSampler(20, seed=1, augment=True)
    assert a.order(3) == b.order(3) and a.order(3) != a.order(4)
    a.set_epoch(3, start=7)
    assert list(a) == b.order(3)[7:] and len(a) == 13
    assert sorted(i for i, _ in b.order(0)) == list(range(20))


def test_loader_workers_match_single_process(tiles):
    store, splits = tiles
    ds = TileDataset(store, splits, "train")
    batches = []
    for nw in (0, 2):
        dl = make_loader(ds, 4, {"num_workers": nw, "train_flips": True}, "cpu", 0, train=True)
        assert dl.pin_memory is False  # auto: off without CUDA
        dl.sampler.set_epoch(2)
        batches.append([m for m, _ in dl])
    assert len(batches[0]) == len(ds) // 4
    assert all(torch.equal(x, y) for x, y in zip(*batches, strict=True))


# --------------------------------------------------------------------------- learning
def _fixed_batch(n=4, size=32):
    g = torch.Generator().manual_seed(0)
    mct = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size, size, generator=g) * 2 - 1, 5, 1, 2)
    sem = torch.tanh(3 * mct)
    return mct, sem


def test_cgan_overfits_tiny_batch():
    """Generator L1 drops by >= 3x within 30 steps on one fixed batch of 2 (lr 1e-3 for speed)."""
    torch.manual_seed(0)
    task = CGANTask({"lr": 1e-3}, Runtime({}, torch.device("cpu")), seed=0)
    mct, sem = _fixed_batch(n=2)
    g = torch.Generator()
    first = task.train_step(mct, sem, g)["g_l1"]
    for _ in range(29):
        last = task.train_step(mct, sem, g)["g_l1"]
    assert last < first / 3, (first, last)


def test_ddpm_overfits_tiny_batch():
    """eps-L1 at a fixed (t, noise) drops by >= 3x within 80 steps on one batch (lr 2e-3)."""
    torch.manual_seed(0)
    p = ddpm_params(
        lr=2e-3, weight_decay=0.0, grad_clip=None, ema={"enabled": False}, prediction="epsilon"
    )
    task = DDPMTask(p, Runtime({}, torch.device("cpu")), seed=0)
    mct, sem = _fixed_batch()
    g = torch.Generator().manual_seed(0)
    t0 = torch.randint(0, 50, (4,), generator=g)
    n0 = torch.randn(sem.shape, generator=g)
    from rocksr.diffusion.schedule import training_loss

    def fixed_loss():
        return training_loss(
            task.net, task.schedule, sem, mct, t=t0, noise=n0, prediction="epsilon"
        ).item()

    first = fixed_loss()
    orig = ddpm_task_mod.training_loss
    try:  # train on the same (t, noise) every step
        ddpm_task_mod.training_loss = lambda m, s, x, c, generator=None, kind="l1", **kw: orig(
            m, s, x, c, kind=kind, t=t0, noise=n0, **kw
        )
        for _ in range(80):
            task.train_step(mct, sem, g)
    finally:
        ddpm_task_mod.training_loss = orig
    assert fixed_loss() < first / 3, (first, fixed_loss())


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("kind", ["cgan", "ddpm"])
def test_train_writes_outputs_and_inference_loads(tmp_path, tiles, kind):
    store, splits = tiles
    params = cgan_params() if kind == "cgan" else ddpm_params()
    paths = train_paths(tmp_path)
    train(kind, store, splits, **paths, params=params, seed=0, device="cpu")
    hist = pd.read_csv(paths["history_csv"])
    assert set(hist["phase"]) == {"train", "val"}
    assert hist.loc[hist["phase"] == "val", "step"].tolist() == [4, 8]
    # no wall-clock value in the history or a checkpoint: they are in history_timing.csv
    assert not {"wall_s", "img_per_s"} & set(hist.columns)
    assert "train_wall_s" not in load_checkpoint(paths["best_ckpt"])
    assert not any("wall_s" in row for row in load_checkpoint(paths["best_ckpt"])["history"])
    timing = pd.read_csv(paths["history_csv"].with_name("history_timing.csv"))
    assert list(timing.columns[:4]) == ["phase", "step", "img_per_s", "wall_s"]
    assert len(timing) == len(hist) and (timing["wall_s"] > 0).all()
    # the loss curve is its own stage (rule loss_curve), drawn from the history
    from rocksr.cli import main

    curve = tmp_path / "curve.png"
    argv = ["loss-curve", "--kind", kind, "--history", str(paths["history_csv"])]
    assert main([*argv, "--out", str(curve)]) == 0
    assert curve.stat().st_size > 0
    assert sorted(p.name for p in paths["samples_dir"].iterdir()) == [
        "step_0000004.png",
        "step_0000008.png",
    ]
    k, model, cfg = load_for_inference(paths["best_ckpt"])
    assert k == kind and not model.training
    mct = torch.zeros(1, 1, 32, 32)
    if kind == "cgan":
        assert isinstance(model, UNet1) and model(mct).shape == mct.shape
    else:
        assert isinstance(model, ConditionalUNet) and cfg["schedule"]["timesteps"] == 50
        best = load_checkpoint(paths["best_ckpt"])
        assert torch.equal(
            model.state_dict()["unet.conv_in.weight"], best["ema"]["module"]["unet.conv_in.weight"]
        )  # EMA weights
        out = sample(
            model,
            mct,
            cfg["schedule"],
            "ddim",
            3,
            torch.Generator().manual_seed(0),
            prediction="epsilon",
        )
        assert out.shape == mct.shape


def _assert_same_state(a: dict, b: dict, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("variant", ["cgan", "ddpm", "ddpm-eps-minsnr-crop-warmup"])
def test_resume_after_sigterm_is_exact(tmp_path, tiles, monkeypatch, variant):
    """8 steps straight vs. SIGTERM after step 3 (mid-epoch, between checkpoints) or after step
    4 (a validation step: checkpointed first, validated on resume) + resume to 8: bit-identical
    weights, EMA, optimizer/scheduler state, RNG and history (CPU is deterministic; the
    wall-clock values are in timing.json and history_timing.csv, never in a checkpoint). The
    third variant covers random crops (offsets from the checkpointed training generator),
    warm-up, Min-SNR and validation on val_loss. One straight run is the reference of both."""
    store, splits = tiles
    kind = variant[:4]
    params = {
        "cgan": cgan_params(lr_decay="cosine"),  # the trainer's schedule on two optimizers
        "ddpm": ddpm_params(),
        "ddpm-eps-minsnr-crop-warmup": ddpm_params(
            prediction="epsilon",
            min_snr_gamma=5.0,
            crop=16,
            warmup_steps=3,
            select_on="val_loss",
            threshold={"mode": "dynamic"},
        ),
    }[variant]
    ref = train_paths(tmp_path / "ref")
    train(kind, store, splits, **ref, params=params, seed=3, device="cpu")
    for kill_step in (3, 4):
        cut = train_paths(tmp_path / f"cut{kill_step}")

        def kill_at(step, kill_step=kill_step):
            if step == kill_step:
                os.kill(os.getpid(), signal.SIGTERM)

        monkeypatch.setattr(trainer_mod, "_after_step", kill_at)
        with pytest.raises(SystemExit) as exc:
            train(kind, store, splits, **cut, params=params, seed=3, device="cpu")
        assert exc.value.code == 128 + signal.SIGTERM
        assert load_checkpoint(cut["state_dir"] / "last.pt")["step"] == kill_step
        assert not cut["best_ckpt"].exists()
        monkeypatch.setattr(trainer_mod, "_after_step", None)
        train(kind, store, splits, **cut, params=params, seed=3, device="cpu")

        for name in ("last.pt", "best.pt"):
            a = load_checkpoint(ref["state_dir"] / name)
            b = load_checkpoint(cut["state_dir"] / name)
            _assert_same_state(a, b, f"kill after {kill_step}: {name}")
        assert a["step"] == 8
        # the timings go on over the resumption: one row per history row, wall time growing
        hist = pd.read_csv(cut["history_csv"])
        timing = pd.read_csv(cut["history_csv"].with_name("history_timing.csv"))
        assert timing[["phase", "step"]].equals(hist[["phase", "step"]])
        assert timing["wall_s"].is_monotonic_increasing and timing["wall_s"].iloc[0] > 0
        saved = json.loads((cut["state_dir"] / "timing.json").read_text())
        assert saved["train_wall_s"] >= timing["wall_s"].max() and len(saved["rows"]) == len(hist)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    good = {"format": checkpoints_mod.FORMAT, "step": 1, "w": torch.arange(5)}
    save_atomic(good, path)

    def crash_mid_write(obj, f):
        f.write(b"partial garbage")
        raise OSError("disk died")

    monkeypatch.setattr(checkpoints_mod.torch, "save", crash_mid_write)
    with pytest.raises(OSError):
        save_atomic({**good, "step": 2}, path)
    monkeypatch.undo()

    def crash_replace(src, dst):
        raise OSError("killed before rename")

    monkeypatch.setattr(files_mod.os, "replace", crash_replace)
    with pytest.raises(OSError):
        save_atomic({**good, "step": 3}, path)
    monkeypatch.undo()
    back = load_checkpoint(path)
    assert back["step"] == 1 and torch.equal(back["w"], good["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp files left


def test_incompatible_resume_raises_clear_error(tmp_path, tiles):
    store, splits = tiles
    paths = train_paths(tmp_path)
    train("ddpm", store, splits, **paths, params=ddpm_params(max_steps=2), seed=0, device="cpu")
    wider = ddpm_params(max_steps=4)
    wider["unet"] = {**wider["unet"], "block_out_channels": [8, 32]}
    with pytest.raises(IncompatibleCheckpointError) as exc:
        train("ddpm", store, splits, **paths, params=wider, seed=0, device="cpu")
    msg = str(exc.value)
    assert "unet.block_out_channels: [8, 16] -> [8, 32]" in msg
    assert "shape" in msg and "last.pt" in msg
    # a compatible change (longer budget) resumes
    train("ddpm", store, splits, **paths, params=ddpm_params(max_steps=4), seed=0, device="cpu")
    assert load_checkpoint(paths["state_dir"] / "last.pt")["step"] == 4


def test_kind_mismatch_and_budget_errors(tmp_path, tiles):
    store, splits = tiles
    with pytest.raises(ValueError, match="kind"):
        train("vae", store, splits, **train_paths(tmp_path), params={}, seed=0, device="cpu")
    with pytest.raises(ValueError, match="max_steps"):
        train(
            "cgan",
            store,
            splits,
            **train_paths(tmp_path),
            params=cgan_params(max_steps=None),
            seed=0,
            device="cpu",
        )


def test_epochs_budget(tmp_path, tiles):
    store, splits = tiles
    paths = train_paths(tmp_path)
    # 11 train tiles, batch 4, drop_last -> 2 steps/epoch; 3 epochs -> 6 steps
    train(
        "cgan",
        store,
        splits,
        **paths,
        params=cgan_params(max_steps=None, epochs=3, val_every=100),
        seed=0,
        device="cpu",
    )
    last = load_checkpoint(paths["state_dir"] / "last.pt")
    assert last["step"] == 6 and last["epoch"] == 3 and last["batch_in_epoch"] == 0
    assert np.isfinite(last["best_val"])


def test_rerun_with_other_hyperparameters_trains_from_scratch(tmp_path, tiles):
    """A finished run's state must not be reused when the config (not the budget) changes."""
    store, splits = tiles
    first = train_paths(tmp_path / "a")
    train("cgan", store, splits, **first, params=cgan_params(), seed=3, device="cpu")
    new = cgan_params(lr=1e-3, lambda_l1=10.0)
    train("cgan", store, splits, **first, params=new, seed=3, device="cpu")
    fresh = train_paths(tmp_path / "fresh")
    train("cgan", store, splits, **fresh, params=new, seed=3, device="cpu")
    a, b = load_checkpoint(first["best_ckpt"]), load_checkpoint(fresh["best_ckpt"])
    assert a["config"]["lr"] == 1e-3
    for name in a["models"]:
        for k, v in a["models"][name].items():
            assert torch.equal(v, b["models"][name][k]), (name, k)
    assert len(list((tmp_path / "a").glob("state.previous-*/last.pt"))) == 1
    # a longer budget only (same experiment) resumes instead
    more = train_paths(tmp_path / "a")
    train("cgan", store, splits, **more, params={**new, "max_steps": 10}, seed=3, device="cpu")
    assert load_checkpoint(more["state_dir"] / "last.pt")["history"][0]["step"] <= 2
    assert load_checkpoint(more["state_dir"] / "last.pt")["step"] == 10


def test_resume_from_a_state_with_timings_inside_moves_them_out(tmp_path, tiles):
    """A state written before timings left the checkpoint (``train_wall_s``, ``wall_s`` and
    ``img_per_s`` in its history, no timing.json) resumes: the timings go on in
    history_timing.csv, and neither the new checkpoints nor history.csv hold one."""
    store, splits = tiles
    paths = train_paths(tmp_path)
    train("cgan", store, splits, **paths, params=cgan_params(max_steps=4), seed=3, device="cpu")
    last = paths["state_dir"] / "last.pt"
    old = load_checkpoint(last)
    old["train_wall_s"] = 100.0
    old["history"] = [{**r, "wall_s": 50.0 + r["step"], "img_per_s": 9.0} for r in old["history"]]
    save_atomic(old, last)
    (paths["state_dir"] / "timing.json").unlink()
    train("cgan", store, splits, **paths, params=cgan_params(max_steps=6), seed=3, device="cpu")
    new = load_checkpoint(last)
    assert new["step"] == 6 and "train_wall_s" not in new
    assert not any({"wall_s", "img_per_s"} & set(r) for r in new["history"])
    assert not {"wall_s", "img_per_s"} & set(pd.read_csv(paths["history_csv"]).columns)
    timing = pd.read_csv(paths["history_csv"].with_name("history_timing.csv"))
    assert timing.loc[timing["step"] <= 4, "wall_s"].tolist() == [
        r["wall_s"] for r in old["history"]
    ]
    assert (timing.loc[timing["step"] > 4, "wall_s"] > 100.0).all()


def test_rerun_on_other_splits_trains_from_scratch(tmp_path, tiles):
    store, splits = tiles
    paths = train_paths(tmp_path / "a")
    train("cgan", store, splits, **paths, params=cgan_params(), seed=3, device="cpu")
    other = tmp_path / "splits2.csv"
    df = pd.read_csv(splits)
    df.loc[df.index[:2], "split"] = "excluded"
    df.to_csv(other, index=False)
    train("cgan", store, other, **paths, params=cgan_params(), seed=3, device="cpu")
    assert len(list((tmp_path / "a").glob("state.previous-*"))) == 1


def test_a_config_changed_and_changed_back_resumes_its_kept_state(tmp_path, tiles, caplog):
    """lr A -> B -> A: A's state is kept (with a user's file in it), never deleted, and A's run
    resumes from it instead of retraining; every set-aside state is named in the log."""
    store, splits = tiles
    paths = train_paths(tmp_path)
    a, b = cgan_params(lr=2e-4), cgan_params(lr=1e-3)
    train("cgan", store, splits, **paths, params=a, seed=3, device="cpu")
    a_last = (paths["state_dir"] / "last.pt").read_bytes()
    (paths["state_dir"] / "notes.txt").write_text("mine")
    train("cgan", store, splits, **paths, params=b, seed=3, device="cpu")
    kept = list(tmp_path.glob("state.previous-*"))
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "mine"
    assert str(kept[0]) in caplog.text
    caplog.clear()
    train("cgan", store, splits, **paths, params=a, seed=3, device="cpu")
    assert "restored" in caplog.text
    # A resumed (nothing trained: its budget was done), B's state kept beside it
    assert (paths["state_dir"] / "last.pt").read_bytes() == a_last
    assert (paths["state_dir"] / "notes.txt").read_text() == "mine"
    assert load_checkpoint(paths["best_ckpt"])["config"]["lr"] == 2e-4
    kept = list(tmp_path.glob("state.previous-*"))
    assert len(kept) == 1 and load_checkpoint(kept[0] / "last.pt")["config"]["lr"] == 1e-3


def test_a_diverging_run_stops_naming_the_step_and_publishes_nothing(tmp_path, tiles):
    store, splits = tiles
    paths = train_paths(tmp_path)
    with pytest.raises(trainer_mod.NonFiniteLossError, match=r"cgan training diverged at step 1: "):
        train(
            "cgan",
            store,
            splits,
            **paths,
            params=cgan_params(lr=float("inf")),
            seed=3,
            device="cpu",
        )
    assert not paths["best_ckpt"].exists() and not paths["history_csv"].exists()


def test_ddpm_checkpoint_records_the_recipe_and_refuses_another_prediction(tmp_path, tiles):
    store, splits = tiles
    paths = train_paths(tmp_path)
    train("ddpm", store, splits, **paths, params=ddpm_params(max_steps=4), seed=0, device="cpu")
    ck = load_checkpoint(paths["best_ckpt"])
    # defaults are written into the checkpoint: the recipe is readable without the config
    assert ck["config"]["prediction"] == "sample" and ck["arch"]["prediction"] == "sample"
    assert ck["config"]["threshold"]["mode"] == "clip"
    hist = pd.read_csv(paths["history_csv"])
    val = hist[hist["phase"] == "val"]
    assert val["val_psnr"].notna().all() and val["val_ssim"].between(-1, 1).all()
    best = val.loc[val["val_psnr"].idxmax(), "step"]
    assert ck["best_step"] == best  # select_on val_psnr: higher is better
    kind, _, cfg = load_for_inference(paths["best_ckpt"])
    assert kind == "ddpm" and cfg["prediction"] == "sample"
    with pytest.raises(IncompatibleCheckpointError, match="trained to predict 'sample'.*epsilon"):
        train(
            "ddpm",
            store,
            splits,
            **paths,
            params=ddpm_params(max_steps=6, prediction="epsilon"),
            seed=0,
            device="cpu",
        )


def test_lr_factor_warms_up_then_stays_or_follows_a_half_cosine():
    from rocksr.training.lr_schedule import lr_factor

    assert [lr_factor(s, 10, warmup=4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, None]
    assert [lr_factor(s, 10) for s in (0, 5, 9)] == [None, None, None]
    cos = [lr_factor(s, 10, decay="cosine") for s in range(10)]
    assert cos[0] == 1.0 and cos[5] == pytest.approx(0.5) and 0 < cos[9] < 0.03
    assert all(a > b for a, b in zip(cos, cos[1:], strict=False))
    warm = [lr_factor(s, 12, warmup=2, decay="cosine") for s in range(12)]
    assert warm[:3] == [0.5, 1.0, 1.0] and warm[7] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lr_decay"):
        lr_factor(0, 10, decay="linear")


def test_cosine_decay_reaches_the_optimizer_and_refuses_a_plateau(tmp_path, tiles):
    """The regress task's rate at the last step is the configured one times the half cosine;
    the DDPM refuses ``lr_decay`` beside its plateau scheduler, and an unknown decay."""
    store, splits = tiles
    params = {"batch_size": 4, "max_steps": 4, "val_every": 4, "ckpt_every": 4, "lr": 1e-3,
              "lr_decay": "cosine", "unet": dict(ddpm_params()["unet"]), "n_val_samples": 0}  # fmt: skip
    paths = train_paths(tmp_path / "regress")
    train("regress", store, splits, **paths, params=params, seed=0, device="cpu")
    last = load_checkpoint(paths["state_dir"] / "last.pt")
    lr = last["optimizers"]["net"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))
    with pytest.raises(ValueError, match="plateau"):
        train("ddpm", store, splits, **train_paths(tmp_path / "ddpm"),
              params=ddpm_params(lr_decay="cosine", plateau={"enabled": True}), seed=0,
              device="cpu")  # fmt: skip
    with pytest.raises(ValueError, match="regress.lr_decay must be one of"):
        train("regress", store, splits, **train_paths(tmp_path / "bad"),
              params={**params, "lr_decay": "linear"}, seed=0, device="cpu")  # fmt: skip


def test_random_crops_are_aligned_and_seeded():
    from rocksr.training.crops import random_crops

    mct = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    sem = mct + 0.5
    a = random_crops(mct, sem, 8, torch.Generator().manual_seed(1))
    b = random_crops(mct, sem, 8, torch.Generator().manual_seed(1))
    assert a[0].shape == (2, 1, 8, 8) and torch.equal(a[0], b[0])
    assert torch.equal(a[1], a[0] + 0.5)  # the same window of both images
    assert random_crops(mct, sem, 16, torch.Generator())[0] is mct


def test_cgan_trains_on_crops_and_refuses_a_crop_too_small(tmp_path):
    """``cgan.crop``: both networks see the crops (the budget's pixels per image is the crop);
    a crop below the PatchGAN's 32 px, or above the tile, is refused before any step."""
    from rocksr.evaluation.budget import model_budget

    store, splits = make_store(tmp_path / "data", n=8, size=64)
    paths = train_paths(tmp_path / "run")
    train("cgan", store, splits, **paths, params=cgan_params(crop=32, max_steps=2), seed=0,
          device="cpu")  # fmt: skip
    ckpt = load_checkpoint(paths["best_ckpt"])
    assert ckpt["config"]["crop"] == 32
    row = model_budget("cgan", paths["best_ckpt"], paths["history_csv"])
    assert row["train_pixels_per_image"] == 32 * 32
    for crop in (16, 96):
        with pytest.raises(ValueError, match=f"cgan.crop {crop} must be between 32"):
            train("cgan", store, splits, **train_paths(tmp_path / f"bad{crop}"),
                  params=cgan_params(crop=crop), seed=0, device="cpu")  # fmt: skip


def test_bad_crop_is_refused_before_training(tmp_path, tiles):
    store, splits = tiles
    with pytest.raises(ValueError, match="ddpm.crop 15 .*divisible"):
        train(
            "ddpm",
            store,
            splits,
            **train_paths(tmp_path),
            params=ddpm_params(crop=15),
            seed=0,
            device="cpu",
        )
