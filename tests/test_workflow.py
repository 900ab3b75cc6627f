"""End to end: the real `snakemake` on the tiny config, then rerun detection with `-n`; the
scale-out run (sharded predictions and stack, 2 training processes) against the tiny run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from helpers_workflow import (
    REPO,
    SCALE_OUT_SHARDS,
    TINY,
    TINY_RUN,
    planned_rules,
    scale_out_config,
    snakemake,
    write_config,
)

from rocksr.run_diff import timing_file

# one xdist worker runs this module (`make test`: --dist loadgroup); the session fixtures
# tiny_run and scale_out_run (conftest) are built once, by the first worker that asks
pytestmark = pytest.mark.xdist_group("tiny_run")


@pytest.mark.slow
def test_tiny_workflow_builds_everything(tiny_run):
    workdir = tiny_run
    res = workdir / "results" / "tiny"
    for rel in [
        "dataset/tiles.zarr/zarr.json",
        "dataset/manifest.csv",
        "splits/splits.csv",
        "splits/split_counts.csv",
        "splits/split_map.png",
        "figures/figure1.png",
        "normalized/tiny0/histograms.png",
        "normalized/tiny0/normalize.json",
        "normalized/tiny0/mask.png",
        "dataset/dropped_tiles.csv",
        "models/cgan/best.pt",
        "models/ddpm/best.pt",
        "models/ddpm/history.csv",
        "predictions/ddpm.zarr/zarr.json",
        "predictions/histmatch.zarr/zarr.json",
        "evaluation/per_tile_metrics.csv",
        "evaluation/table1.csv",
        "evaluation/table1.md",
        "evaluation/sampler_study.csv",
        "evaluation/sampler_study.md",
        "evaluation/sampler_study_timing.csv",
        "predictions/mean.zarr/zarr.json",
        "figures/uncertainty.png",
        "figures/figure2.png",
        "figures/figure3.png",
        "figures/training_curves.png",
        "figures/sampler_study.png",
        "enhanced/tiny0/cgan.tif",
        "enhanced/tiny0/ddpm.tif",
        "enhanced/tiny0/ddpm.json",
        "evaluation/seam_study.csv",
        "evaluation/seam_study.md",
        "evaluation/seam_study_timing.csv",
        "models/cgan/history_timing.csv",
        "figures/enhance_tiny0.png",
        "figures/rock_statistics.png",
        "evaluation/leak_study.md",
        "models/cgan/loss_curve.png",
        "models/ddpm/loss_curve.png",
        "models/regress/best.pt",
        "models/regress/loss_curve.png",
        "predictions/regress.zarr/zarr.json",
        "enhanced/tiny0/regress.tif",
        "evaluation/budget.csv",
        "evaluation/budget.md",
        "figures/perception_distortion.png",
    ]:
        assert (res / rel).exists(), rel
    for rule in (
        "synthesize",
        "normalize",
        "build_dataset",
        "split",
        "figure1",
        "train_cgan",
        "train_regress",
        "train_ddpm",
        "predict",
        "evaluate",
        "figures",
    ):
        assert [p for p in (res / "logs").rglob("*.log") if rule in str(p)], rule
        assert [p for p in (res / "benchmarks").rglob("*.tsv") if rule in str(p)], rule
    import pandas as pd

    counts = pd.read_csv(res / "splits" / "split_counts.csv").set_index("split")
    assert (counts.loc[["train", "val", "test"], "views"] > 0).all()
    assert (counts["shared_footprint_pixels"] == 0).all()
    table = pd.read_csv(res / "evaluation" / "table1.csv")
    n_test = int(counts.loc["test", "views"])
    k = TINY["evaluate"]["n_samples"]
    assert table["model"].tolist() == [
        "cgan",
        "regress",
        "ddpm",
        f"ddpm (mean of {k})",
        "identity",
        "histmatch",
        "mean",
    ]
    assert (table["count"] == n_test).all()
    per_tile = pd.read_csv(res / "evaluation" / "per_tile_metrics.csv")
    assert len(per_tile) == 7 * n_test
    assert table["spectrum_distance_mean"].notna().all()
    assert "Distortion: best PSNR:" in (res / "evaluation" / "table1.md").read_text()
    study = pd.read_csv(res / "evaluation" / "sampler_study.csv")
    assert "psnr_gap_to_ancestral" in set(study.columns)
    study_timing = pd.read_csv(res / "evaluation" / "sampler_study_timing.csv")
    assert "speedup_vs_ancestral" in set(study_timing.columns)
    assert "of ancestral" in (res / "evaluation" / "sampler_study.md").read_text()
    leak = pd.read_csv(res / "evaluation" / "leak_study.csv")
    assert leak["split"].tolist()[:2] == ["blocks", "random"]
    assert leak["split"].iloc[2].startswith("inflation") and leak["psnr_mean"].notna().all()
    # the leak run's jobs write the run's layout under leak_study/random/; its split leaks
    leak_run = res / "leak_study" / "random"
    assert (leak_run / "models" / "cgan" / "best.pt").is_file()
    assert (leak_run / "predictions" / "cgan.zarr").is_dir()
    assert leak["shared_pixels"].tolist()[:2][0] == 0 and leak["shared_pixels"].iloc[1] > 0
    assert (res / "figures" / "leak_study.png").stat().st_size > 0
    assert (res / "config.resolved.yaml").read_text().count("# ") > 10
    seams = pd.read_csv(res / "evaluation" / "seam_study.csv")
    assert len(seams) == 7 and seams["seam_ratio"].notna().all()
    bands = pd.read_csv(res / "evaluation" / "banding.csv")
    assert list(bands["model"]) == ["cgan", "regress", "ddpm"]
    assert "Banding of the whole-slice outputs" in (res / "evaluation/seam_study.md").read_text()
    # the normalization recorded in the checkpoint, applied to the raw training micro-CT,
    # reproduces the normalized training image bit for bit (what `rocksr enhance` relies on)
    import numpy as np
    import tifffile
    import torch

    from rocksr.data.normalize import normalize_image

    ckpt = torch.load(res / "models" / "ddpm" / "best.pt", weights_only=False)
    assert ckpt["tile_size"] == TINY["tiling"]["size"]
    raw = tifffile.imread(res / "raw" / "tiny0" / "mct.tif")
    np.testing.assert_array_equal(
        normalize_image(raw, **ckpt["normalization"]["mct"]),
        tifffile.imread(res / "normalized" / "tiny0" / "mct.tif"),
    )
    enhanced = tifffile.imread(res / "enhanced" / "tiny0" / "ddpm.tif")
    assert enhanced.shape == raw.shape and enhanced.dtype == np.uint8
    # the tiny DDPM refines the regress model's prediction (ddpm.prior: regress)
    assert ckpt["prior"]["kind"] == "regress" and ckpt["arch"]["prior"] == "regress"


@pytest.mark.slow
def test_budget_table_agrees_with_checkpoints_and_benchmarks(tiny_run):
    """Every number of the budget table comes from the run's own files."""
    import pandas as pd
    import torch
    import zarr

    workdir = tiny_run
    res = workdir / "results" / "tiny"
    budget = pd.read_csv(res / "evaluation" / "budget.csv").set_index("model")
    assert list(budget.index) == ["cgan", "regress", "ddpm"]
    for kind, row in budget.iterrows():
        ckpt = torch.load(res / "models" / kind / "best.pt", weights_only=False)
        section = TINY[kind]
        assert row["steps"] == section["max_steps"]
        assert row["batch_size"] == section["batch_size"]
        side = ckpt["config"].get("crop") or ckpt["tile_size"]
        assert row["pixels_seen"] == section["max_steps"] * section["batch_size"] * side**2
        trained = sum(v.numel() for m in ckpt["models"].values() for v in m.values())
        assert row["parameters_trained"] == trained
        bench = pd.read_csv(res / "benchmarks" / f"train_{kind}.tsv", sep="\t")
        assert row["train_seconds_last_job"] == pytest.approx(float(bench["s"].iloc[0]))
        # the trainer's own count (validation included), within the job's wall time
        timing = pd.read_csv(res / "models" / kind / "history_timing.csv")
        assert row["train_seconds"] == pytest.approx(float(timing["wall_s"].max()))
        assert 0 < row["train_seconds"] <= row["train_seconds_last_job"]
        pred = pd.read_csv(res / "benchmarks" / "predict" / f"{kind}.tsv", sep="\t")
        store = zarr.open_group(str(res / "predictions" / f"{kind}.zarr"), mode="r")
        calls = store["pred"].shape[0] * int(store.attrs.get("n_samples", 1))
        assert row["inference_s_per_tile"] == pytest.approx(float(pred["s"].iloc[0]) / calls)
    ddpm = budget.loc["ddpm"]
    assert ddpm["builds_on"] == "regress"
    total = ddpm["train_seconds"] + budget.loc["regress", "train_seconds"]
    assert ddpm["train_seconds_total"] == pytest.approx(total)
    md = (res / "evaluation" / "table1.md").read_text()
    assert "### What each model was given" in md and "ddpm, prior regress" in md


def in_two_folders(first: Path, second: Path, tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """`enhance`, `predict`, the sampler and seam studies run in-process in folders x and y on
    the checkpoints and data of the runs ``first`` and ``second``; {name: folder}."""
    import tifffile

    from rocksr.cli import main
    from rocksr.enhance.run import enhance
    from rocksr.stages.predict import predict
    from rocksr.stages.sampler_study import sampler_study

    outs = {}
    for name, res in (("x", first), ("y", second)):
        here = tmp_path / name
        (here / "in").mkdir(parents=True)
        monkeypatch.chdir(here)
        ckpt = here / "in" / "cgan.pt"
        shutil.copyfile(res / "models/cgan/best.pt", ckpt)
        shutil.copytree(res / "dataset/tiles.zarr", here / "in" / "tiles.zarr")
        shutil.copyfile(res / "splits/splits.csv", here / "in" / "splits.csv")
        crop = tifffile.imread(res / "normalized/tiny0/mct.tif")[:128, :128]
        tifffile.imwrite(here / "in" / "mct.tif", crop)
        report = enhance(
            ckpt, here / "in/mct.tif", here / "out.tif", normalize="none", progress=False
        )
        assert report["working_directory"] == str(Path.cwd()) and report["seconds"] > 0
        assert report["checkpoint"] == "in/cgan.pt" and report["outputs"]["pred"] == "out.tif"
        predict(
            ckpt, here / "in/tiles.zarr", here / "in/splits.csv", here / "pred.zarr", device="cpu"
        )
        sampler_study(
            first / "models/ddpm/best.pt",
            first / "dataset/tiles.zarr",
            first / "splits/splits.csv",
            here / "sampler.csv",
            configs=[{"sampler": "ddim", "steps": [2]}],
            n_tiles=1,
            device="cpu",
        )
        argv = ["seam-study", "--checkpoints", f"cgan={ckpt}", "--crop", "128"]
        argv += ["--mct", str(res / "normalized/tiny0/mct.tif")]
        argv += ["--sem", str(res / "normalized/tiny0/sem.tif")]
        argv += ["--device", "cpu", "--out-csv", "seams.csv", "--out-md", "seams.md"]
        assert main(argv) == 0
        outs[name] = here
    return outs


@pytest.mark.slow
def test_results_are_byte_identical_across_folders(tiny_run, tmp_path, monkeypatch):
    """The same config in a second folder writes every result byte for byte as the first: the
    checkpoints (state and published), history.csv, the stores with their attributes, the
    enhanced TIFF; only the documented timing files differ. The second folder builds one model
    (dataset, train_cgan, predict, enhance: ~45 s); the studies and `enhance` / `predict` with
    absolute paths run in-process in two folders (~10 s)."""
    import pandas as pd

    first = tiny_run / "results" / "tiny"
    workdir = tmp_path / "second"
    workdir.mkdir()
    write_config(workdir, TINY_RUN)
    targets = ["models/cgan/best.pt", "predictions/cgan.zarr", "enhanced/tiny0/cgan.tif"]
    snakemake(workdir, *[f"results/tiny/{t}" for t in targets])
    second = workdir / "results" / "tiny"
    compared, timed = [], []
    for path in sorted(p for p in second.rglob("*") if p.is_file()):
        rel = path.relative_to(second)
        (timed if timing_file(rel) else compared).append(rel)
        if not timing_file(rel):
            assert path.read_bytes() == (first / rel).read_bytes(), f"{rel} differs"
    for rel in [
        "models/cgan/best.pt",
        "models/cgan/history.csv",
        "state/cgan/last.pt",
        "predictions/cgan.zarr/zarr.json",
        "enhanced/tiny0/cgan.tif",
        "dataset/tiles.zarr/zarr.json",
    ]:
        assert Path(rel) in compared, rel
    for rel in ["models/cgan/history_timing.csv", "state/cgan/timing.json"]:
        assert Path(rel) in timed and (first / rel).is_file(), rel
    # the timings are where the docs say, and nowhere else
    assert not {"wall_s", "img_per_s"} & set(pd.read_csv(second / "models/cgan/history.csv"))
    assert "wall_s" in pd.read_csv(second / "models/cgan/history_timing.csv").columns

    # in two folders: the studies (timings apart), enhance and predict given absolute paths;
    # on one torch thread, as the workflow's jobs here: with two, torch's CPU kernels vary
    # between runs by a grey level at a few pixels (docs/outputs.md#timings-and-locations)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outs = in_two_folders(first, second, tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    x, y = outs["x"], outs["y"]
    for rel in [
        "out.tif",
        "pred.zarr/zarr.json",
        "pred.zarr/rocksr-digests.json",
        "sampler.csv",
        "seams.csv",
        "seams.md",
    ]:
        assert (x / rel).read_bytes() == (y / rel).read_bytes(), f"{rel} differs"
    for rel in ("sampler_timing.csv", "seams_timing.csv"):
        assert (x / rel).is_file() and (y / rel).is_file(), rel


@pytest.mark.slow
def test_report_contains_tables_and_figures(tiny_run):
    workdir = tiny_run
    report = workdir / "report.html"
    snakemake(workdir, "--report", str(report))
    html = report.read_text(errors="ignore")
    for name in (
        "figure1.png",
        "figure2.png",
        "figure3.png",
        "training_curves.png",
        "table1.csv",
        "split_map.png",
        "uncertainty.png",
    ):
        assert name in html, name


@pytest.mark.slow
def test_nothing_to_do_after_a_complete_run(tiny_run):
    workdir = tiny_run
    r = snakemake(workdir, "-n")
    assert "Nothing to be done" in r.stdout + r.stderr


@pytest.mark.slow
def test_changing_a_split_parameter_reruns_only_split_and_downstream(tiny_run):
    workdir = tiny_run
    cfg = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    cfg["split"]["fractions"] = {"train": 0.4, "val": 0.3, "test": 0.3}
    write_config(workdir, cfg)
    try:
        rules = planned_rules(snakemake(workdir, "-n").stdout)
    finally:
        write_config(workdir, TINY_RUN)
    assert {
        "split",
        "train_cgan",
        "train_ddpm",
        "predict",
        "baseline",
        "evaluate",
        "figures",
        # the leak run's split takes the same fractions
        "leak_split",
        "leak_train_cgan",
    } <= rules
    assert not rules & {"synthesize", "normalize", "build_dataset", "figure1"}


@pytest.mark.slow
def test_changing_the_runs_split_strategy_keeps_the_leak_runs_jobs(tiny_run):
    """The leak run's split is the leaky strategy whatever the run's own: a new strategy for the
    run re-runs its split and models and the comparison, not the leak run's jobs."""
    workdir = tiny_run
    cfg = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    cfg["split"]["strategy"] = "regions"
    write_config(workdir, cfg)
    try:
        rules = planned_rules(snakemake(workdir, "-n").stdout)
    finally:
        write_config(workdir, TINY_RUN)
    assert {"split", "train_cgan", "predict", "leak_study"} <= rules, rules
    assert not rules & {"leak_split", "leak_train_cgan", "leak_predict"}, rules


@pytest.mark.slow
def test_changing_a_ddpm_parameter_reruns_only_ddpm_and_downstream(tiny_run):
    workdir = tiny_run
    cfg = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    cfg["ddpm"]["lr"] = 5.0e-4
    write_config(workdir, cfg)
    try:
        rules = planned_rules(snakemake(workdir, "-n").stdout)
    finally:
        write_config(workdir, TINY_RUN)
    assert {"train_ddpm", "predict", "evaluate", "figures", "sampler_study"} <= rules
    # the leak study's jobs retrain the cGAN: a DDPM change must not re-run them
    assert not rules & {"train_cgan", "baseline", "split", "build_dataset", "normalize"}
    assert not rules & {"leak_study", "leak_split", "leak_train_cgan", "leak_predict"}


@pytest.mark.slow
def test_limiting_the_test_views_reruns_evaluation_only(tiny_run):
    """`evaluate.test_views`: the test_views table (with the limit) and every evaluation rule
    re-run; the split and the training do not."""
    workdir = tiny_run
    cfg = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    cfg["evaluate"]["test_views"] = 5
    write_config(workdir, cfg)
    try:
        r = snakemake(workdir, "-n", "-p")
    finally:
        write_config(workdir, TINY_RUN)
    rules = planned_rules(r.stdout)
    assert {"test_views", "predict", "baseline", "evaluate", "figures", "leak_study"} <= rules
    assert not rules & {"split", "train_cgan", "train_regress", "train_ddpm", "leak_split"}
    assert "--limit 5 --out" in r.stdout


@pytest.mark.slow
def test_changing_the_angles_reruns_the_dataset_but_not_normalization(tiny_run):
    workdir = tiny_run
    cfg = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    cfg["tiling"]["angles"] = [0, 60]
    write_config(workdir, cfg)
    try:
        rules = planned_rules(snakemake(workdir, "-n").stdout)
    finally:
        write_config(workdir, TINY_RUN)
    assert {"build_dataset", "split", "figure1"} <= rules
    assert not rules & {"synthesize", "normalize"}


def planned_after_touching(workdir: Path, tmp_path: Path, rel: str) -> set[str]:
    """Rules a dry run plans after appending a comment to ``rocksr/<rel>`` in a copy of the
    project (its Snakefile imports its own rocksr; a byte-identical copy has the same hashes)."""
    copy = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "results", ".snakemake", ".git", "*.egg-info")
    shutil.copytree(REPO, copy, ignore=ignore, dirs_exist_ok=True)
    path = copy / "rocksr" / rel
    path.write_text(path.read_text() + "\n# touched by a test\n")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    # run from the copy: `python -m` puts the working directory first on sys.path
    r = snakemake(workdir, "-n", env=env, snakefile=copy / "Snakefile", cwd=copy)
    return planned_rules(r.stdout) - {"all"}


FIGURE_RULES = {"figures", "uncertainty_figure", "split_map", "histograms", "loss_curve", "figure1"}


@pytest.mark.slow
def test_touching_a_figure_module_reruns_only_figure_rules(tiny_run, tmp_path):
    workdir = tiny_run
    rules = planned_after_touching(workdir, tmp_path, "figures/figures.py")
    assert rules and rules <= FIGURE_RULES, rules
    rules = planned_after_touching(workdir, tmp_path / "b", "figures/split_map.py")
    assert "split_map" in rules and rules <= FIGURE_RULES, rules


@pytest.mark.slow
def test_touching_splits_reruns_split_and_downstream_only(tiny_run, tmp_path):
    workdir = tiny_run
    rules = planned_after_touching(workdir, tmp_path, "data/splits.py")
    assert {"split", "train_cgan", "train_ddpm", "predict", "evaluate"} <= rules, rules
    assert not rules & {"synthesize", "normalize", "build_dataset", "histograms"}


@pytest.mark.slow
def test_touching_the_unet_retrains_only_the_ddpm(tiny_run, tmp_path):
    workdir = tiny_run
    rules = planned_after_touching(workdir, tmp_path, "models/unet.py")
    assert {"train_ddpm", "predict", "sampler_study"} <= rules, rules
    assert not rules & {"train_cgan", "split", "build_dataset", "normalize", "baseline"}


@pytest.mark.slow
def test_spelling_out_a_default_reruns_nothing(tiny_run):
    workdir = tiny_run
    cfg = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    cfg["ddpm"]["weight_decay"] = 5.0e-4  # the typed default (rocksr.config.ddpm.DDPM)
    cfg["cgan"]["lambda_l1"] = 100.0
    cfg["split"]["seed"] = 0
    write_config(workdir, cfg)
    try:
        r = snakemake(workdir, "-n")
    finally:
        write_config(workdir, TINY_RUN)
    assert "Nothing to be done" in r.stdout + r.stderr, planned_rules(r.stdout)


@pytest.mark.slow
def test_sharded_prediction_gives_the_same_stores_and_table_1(tiny_run, scale_out_run, tmp_path):
    """`evaluate.shards: SCALE_OUT_SHARDS` on the tiny run's trained models (conftest's
    scale_out_run): that many `predict` jobs per model and a gather give prediction stores,
    per-tile metrics and Table 1 byte for byte those of one job, as many `sampler_study` jobs and
    a gather its results CSV; the shard stores and parts are temporary (gone after the gather)."""
    n = SCALE_OUT_SHARDS
    first, sharded = tiny_run, scale_out_run()
    res_one, res_sharded = first / "results" / "tiny", sharded / "results" / "tiny"
    stores = sorted(p.name for p in (res_one / "predictions").glob("*.zarr"))
    assert stores == sorted(p.name for p in (res_sharded / "predictions").glob("*.zarr"))
    for name in stores:
        files = sorted(
            p.relative_to(res_one)
            for p in (res_one / "predictions" / name).rglob("*")
            if p.is_file()
        )
        assert files, name
        for rel in files:
            assert (res_sharded / rel).read_bytes() == (res_one / rel).read_bytes(), rel
    for rel in ("evaluation/table1.csv", "evaluation/per_tile_metrics.csv"):
        assert (res_sharded / rel).read_bytes() == (res_one / rel).read_bytes(), rel
    assert not list((res_sharded / "predictions").glob("*.shards/*.zarr"))
    assert len(list((res_sharded / "benchmarks" / "predict").glob("*.shards/*.tsv"))) == 3 * n
    # the sampler study: n jobs of its configurations, gathered into one job's study
    rel = "evaluation/sampler_study.csv"
    assert (res_sharded / rel).read_bytes() == (res_one / rel).read_bytes()
    assert not (res_sharded / "evaluation" / "sampler_study.shards").exists()
    assert len(list((res_sharded / "benchmarks").glob(f"sampler_study.*-of-{n}.tsv"))) == n
    # a stack of `enhance.stacks`: n `stack_enhance` parts and a gather write the bytes one
    # `stack_enhance` job writes (run next, with shards: 1, in a copy of the scale-out run)
    # (the DDPM's seeded parts: tests/test_enhance_shards.py)
    stack_outputs = ["results/tiny/enhanced_stacks/core/regress.tif"]
    gathered = {p: (sharded / p).read_bytes() for p in stack_outputs}
    assert not list((res_sharded / "enhanced_stacks" / "core").glob("*.shards/*"))
    workdir = tmp_path / "one_job"
    shutil.copytree(sharded, workdir, ignore=shutil.ignore_patterns(".snakemake"))
    write_config(workdir, TINY_RUN | {"enhance": scale_out_config()["enhance"]})
    snakemake(workdir, *stack_outputs, "--forcerun", "stack_enhance", "--rerun-triggers", "mtime")
    for path, data in gathered.items():
        assert (workdir / path).read_bytes() == data, f"{path}: gathered != one job's"
    report = json.loads((res_sharded / "enhanced_stacks" / "core" / "regress.json").read_text())
    assert report["pages"] == [1, 3] and report["shape"] == [3, 96, 96]
    assert report["normalization"]["mode"] == "from-checkpoint"


@pytest.mark.slow
def test_two_training_processes_and_shards_through_the_workflow(scale_out_run):
    """The training rule launches torchrun with 2 processes (gloo on this CPU); the regression
    U-Net's predictions are SCALE_OUT_SHARDS `predict` jobs gathered into one store, and a stack
    as many `stack_enhance` parts gathered into one TIFF; the shards and parts are deleted."""
    n = SCALE_OUT_SHARDS
    res = scale_out_run() / "results" / "tiny"
    log = (res / "logs" / "train_regress.log").read_text()
    assert "over 2 process(es)" in log, log[-2000:]
    shards = sorted((res / "benchmarks" / "predict" / "regress.shards").glob("*.tsv"))
    assert [p.name for p in shards] == [f"{i}-of-{n}.tsv" for i in range(1, n + 1)]
    assert not (res / "predictions" / "regress.shards").exists()
    import pandas as pd
    import tifffile
    import zarr

    store = zarr.open(res / "predictions" / "regress.zarr", mode="r")
    n_test = int((pd.read_csv(res / "splits" / "splits.csv")["split"] == "test").sum())
    assert store["pred"].shape[0] == n_test > 0
    stack = res / "enhanced_stacks" / "core"
    parts = sorted((res / "benchmarks" / "stack_enhance" / "core").glob("regress.shards/*.tsv"))
    assert [p.name for p in parts] == [f"{i}-of-{n}.tsv" for i in range(1, n + 1)]
    assert not (stack / "regress.shards").exists()
    assert tifffile.imread(stack / "regress.tif").shape == (3, 96, 96)
