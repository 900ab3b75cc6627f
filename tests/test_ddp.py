"""Multi-process training (torchrun, gloo on CPU) is the same experiment as one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers_train import (  # noqa: F401 (single_thread is an autouse fixture)
    cgan_params,
    ddpm_params,
    make_store,
    single_thread,
    train_paths,
)
from helpers_workflow import REPO, snakemake

from rocksr.checkpoints import load_checkpoint
from rocksr.data.torchdata import EpochSampler
from rocksr.stages.train import train

# All-reduce sums the ranks' gradients in another order than one process sums the batch's, so
# values agree to float32 rounding: the history (losses, validation metrics: what the networks
# compute) within RTOL/ATOL. A weight whose exact gradient is 0 (a bias followed by a norm layer)
# gets rounding noise as gradient, which Adam scales to a step of up to lr: weights are compared
# within 2 * lr * steps (+ ATOL), and through the validation metrics they produce.
ATOL, RTOL = 1e-5, 1e-4


pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("tiles"))


def torchrun(kind: str, tiles, root: Path, params: dict, n: int = 2) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node n --no-python rocksr train ...` (CPU, gloo)."""
    store, splits = tiles
    p = train_paths(root)
    cmd = ["torchrun", "--standalone", "--nproc_per_node", str(n), "--no-python", "rocksr"]
    cmd += ["train", "--kind", kind, "--store", str(store), "--splits", str(splits)]
    cmd += ["--best", str(p["best_ckpt"]), "--history", str(p["history_csv"])]
    cmd += ["--samples-dir", str(p["samples_dir"]), "--state-dir", str(p["state_dir"])]
    cmd += ["--params", json.dumps(params), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ROCKSR_DIE_WITH_PARENT", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def one_process(kind: str, tiles, root: Path, params: dict) -> None:
    store, splits = tiles
    train(kind, store, splits, **train_paths(root), params=params, seed=0, device="cpu")


def assert_same_run(a: Path, b: Path) -> None:
    """The last states of two runs: same step, fingerprint, history rows; weights within tol."""
    ca, cb = (load_checkpoint(train_paths(r)["state_dir"] / "last.pt") for r in (a, b))
    assert [ca[k] for k in ("step", "epoch", "fingerprint")] == [
        cb[k] for k in ("step", "epoch", "fingerprint")
    ]
    adam = 2 * float(ca["config"]["lr"]) * ca["step"] + ATOL
    for name, sd in ca["models"].items():
        for k, v in sd.items():
            torch.testing.assert_close(cb["models"][name][k], v, atol=adam, rtol=0, msg=k)
    ha, hb = (pd.read_csv(train_paths(r)["history_csv"]) for r in (a, b))
    pd.testing.assert_frame_equal(ha, hb, check_exact=False, atol=ATOL, rtol=RTOL)


def test_sampler_ranks_split_each_global_batch():
    one = EpochSampler(11, seed=3, augment=True, batch_size=4)
    one.set_epoch(2, 4)
    ranks = [EpochSampler(11, 3, augment=True, batch_size=4, rank=r, world=2) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2, 4)
    parts = [list(s) for s in ranks]
    assert [len(p) for p in parts] == [len(s) for s in ranks] == [2, 2]  # 7 left: one batch
    assert parts[0] + parts[1] == list(one)[:4]


def test_cgan_two_processes_equal_one(tmp_path, tiles):
    params = cgan_params(max_steps=4, val_every=2, ckpt_every=2, log_every=1)
    r = torchrun("cgan", tiles, tmp_path / "two", params)
    assert r.returncode == 0, r.stderr[-4000:]
    one_process("cgan", tiles, tmp_path / "one", params)
    assert_same_run(tmp_path / "one", tmp_path / "two")
    out = train_paths(tmp_path / "two")
    assert out["best_ckpt"].is_file() and any(out["samples_dir"].glob("step_*.png"))


def test_ddpm_two_processes_then_one_continue_the_same_run(tmp_path, tiles):
    """Noise, crops and flips of the global batch are split over the ranks; a 2-process state
    resumed by one process ends where an uninterrupted 1-process run ends."""
    params = ddpm_params(max_steps=3, val_every=3, ckpt_every=3, log_every=1, crop=16)
    r = torchrun("ddpm", tiles, tmp_path / "two", params)
    assert r.returncode == 0, r.stderr[-4000:]
    one_process("ddpm", tiles, tmp_path / "one", params)
    assert_same_run(tmp_path / "one", tmp_path / "two")
    longer = {**params, "max_steps": 5}  # the budget: not part of the experiment
    for root in ("one", "two"):
        one_process("ddpm", tiles, tmp_path / root, longer)
    assert load_checkpoint(train_paths(tmp_path / "two")["state_dir"] / "last.pt")["step"] == 5
    assert_same_run(tmp_path / "one", tmp_path / "two")


def test_batch_not_divisible_by_processes_is_a_one_line_error(tmp_path, tiles):
    r = torchrun("cgan", tiles, tmp_path, cgan_params(batch_size=3))
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("rocksr train: error:")]
    assert errors and "batch_size 3 is not divisible by the 2 training processes" in errors[0]
    assert not train_paths(tmp_path)["state_dir"].exists() or not any(
        train_paths(tmp_path)["state_dir"].iterdir()
    )


@pytest.mark.parametrize("resources", [{"nprocs": 2}, {"gpu": 2}])
def test_dry_run_prints_the_torchrun_command(tmp_path, resources):
    schema = (REPO / "workflow/schemas/config.schema.yaml").read_text()
    if "nprocs" in resources and "nprocs:" not in schema:
        pytest.skip("the config schema has no resources.<rule>.nprocs yet")
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["resources"] = {**cfg.get("resources", {}), "train_cgan": resources}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = snakemake(tmp_path, "-n", "-p", "--forcerun", "train_cgan", timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if "train --kind cgan" in ln]
    assert lines, r.stdout[-3000:]
    assert "torchrun --standalone --nproc_per_node 2 --no-python rocksr train" in lines[0]
