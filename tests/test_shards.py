"""Sharded prediction: `predict --shard i/n` + `gather-predictions` == one unsharded `predict`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers_workflow import REPO, snakemake, write_stack
from test_predict import (  # noqa: F401 (one_torch_thread is an autouse fixture)
    make_checkpoint,
    make_dataset,
    one_torch_thread,
)

from rocksr.cli import main

TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
# 5 test tiles in batches of 2: 3 batches, so 3 shards of one batch each (4 shards: one empty)
BATCH = 2


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def predict(ckpt: Path, store: Path, splits: Path, out: Path, *extra: str) -> None:
    argv = ["predict", "--checkpoint", str(ckpt), "--store", str(store), "--splits", str(splits)]
    argv += ["--out", str(out), "--batch-size", str(BATCH), "--device", "cpu", *extra]
    assert main(argv) == 0


def sharded(tmp: Path, kind: str, n: int, *extra: str) -> tuple[Path, list[Path]]:
    """(the unsharded store, the n shard stores) of a random-weight ``kind`` checkpoint."""
    store, _, splits = make_dataset(tmp)
    ckpt = make_checkpoint(tmp / f"{kind}.pt", kind)
    one = tmp / "one" / f"{kind}.zarr"
    predict(ckpt, store, splits, one, *extra)
    parts = [tmp / f"{kind}.shards" / f"{i}-of-{n}.zarr" for i in range(1, n + 1)]
    for i, part in enumerate(parts, 1):
        predict(ckpt, store, splits, part, "--shard", f"{i}/{n}", *extra)
    return one, parts


def gather(parts: list[Path], out: Path) -> int:
    return main(["gather-predictions", "--shards", *map(str, parts), "--out", str(out)])


@pytest.mark.parametrize(
    ("kind", "n", "extra"),
    [
        ("regress", 3, ()),
        ("ddpm", 3, ("--n-samples", "2", "--sampler", "ddim", "--steps", "2")),
        ("ddpm", 4, ("--n-samples", "2", "--sampler", "ddim", "--steps", "2")),
    ],
)
def test_gathered_shards_are_byte_identical(tmp_path: Path, kind, n, extra) -> None:
    one, parts = sharded(tmp_path, kind, n, *extra)
    out = tmp_path / "gathered" / f"{kind}.zarr"
    assert gather(list(reversed(parts)), out) == 0  # any order
    want, got = files(one), files(out)
    assert sorted(got) == sorted(want)
    assert [f for f in want if got[f] != want[f]] == []
    if kind == "ddpm":
        assert any(f.startswith("samples/") for f in want)  # K = 2: every sample compared


def test_shards_through_onnx_runtime_are_byte_identical(tmp_path: Path, monkeypatch) -> None:
    """The same with every U-Net call through ONNX Runtime (the tests' networks are under its
    size limits, lowered here): whether a call goes through it depends on the call alone."""
    from rocksr.models import cpu_runtime

    monkeypatch.delenv(cpu_runtime.ENV, raising=False)
    monkeypatch.setattr(cpu_runtime, "ORT_MIN_PIXELS", 1)
    monkeypatch.setattr(cpu_runtime, "ORT_MIN_PARAMETERS", 0)
    calls = []
    real = cpu_runtime.OrtUNet.__call__
    monkeypatch.setattr(
        cpu_runtime.OrtUNet, "__call__", lambda self, x, t: calls.append(1) or real(self, x, t)
    )
    one, parts = sharded(
        tmp_path, "ddpm", 3, "--n-samples", "2", "--sampler", "ddim", "--steps", "2"
    )
    assert calls, "no U-Net call went through ONNX Runtime"
    out = tmp_path / "gathered" / "ddpm.zarr"
    assert gather(parts, out) == 0
    want, got = files(one), files(out)
    assert sorted(got) == sorted(want) and any(f.startswith("samples/") for f in want)
    assert [f for f in want if got[f] != want[f]] == []


def test_gather_refuses_missing_or_twice_given_shards(tmp_path: Path, capsys) -> None:
    _, parts = sharded(tmp_path, "regress", 3)
    out = tmp_path / "gathered.zarr"
    for given, words in (
        (parts[:2], "shard 3/3 missing"),
        ([parts[0], parts[1], parts[1]], "shard 2/3 given twice, shard 3/3 missing"),
        ([parts[0], parts[0], parts[1], parts[2]], "shard 1/3 given twice"),
    ):
        assert gather(given, out) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
        assert not out.exists() and list(tmp_path.glob(".gathered*")) == []
    unsharded = tmp_path / "one" / "regress.zarr"
    assert gather([unsharded], out) == 2
    assert "not a shard" in capsys.readouterr().err and not out.exists()


def test_shard_argument_is_checked(capsys) -> None:
    for bad in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(SystemExit):
            main(
                ["predict", "--checkpoint", "c", "--store", "s", "--splits", "p"]
                + ["--out", "o", "--shard", bad]
            )
    assert "expected i/n" in capsys.readouterr().err


def dry_run(tmp_path: Path, shards: int) -> dict[str, int]:
    """{rule: jobs} that `snakemake -n` plans for the tiny config with ``evaluate.shards``."""
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    cfg["evaluate"]["shards"] = shards
    workdir = tmp_path / f"shards{shards}"
    workdir.mkdir()
    write_stack(workdir / "core.tif")
    cfg["enhance"] = {
        **cfg["enhance"],
        "stacks": [{"name": "core", "path": "core.tif", "pages": "1-3"}],
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = snakemake(workdir, "-n", "--quiet", "rules")
    counts: dict[str, int] = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def test_dry_run_plans_one_predict_job_per_shard(tmp_path: Path) -> None:
    """shards: 1 (the default) plans today's jobs; shards: 3 three `predict` jobs per model
    and one `gather_predictions` each (the same for the leak study's model), three
    `sampler_study` jobs and a `gather_sampler_study`, three `stack_enhance` jobs per model
    and stack and a `gather_enhance` each, and nothing else changes."""
    from rocksr.models.registry import kind_names

    one, three = (dry_run(tmp_path, s) for s in (1, 3))
    n_models = len(kind_names())
    assert one["predict"] == n_models and "gather_predictions" not in one
    assert three["predict"] == 3 * n_models and three["gather_predictions"] == n_models
    # the tiny config runs the leak study: its one model's predictions are sharded too; and the
    # sampler study: 3 jobs of its configurations and a gather
    assert one["leak_predict"] == 1 and "leak_gather_predictions" not in one
    assert three["leak_predict"] == 3 and three["leak_gather_predictions"] == 1
    assert one["sampler_study"] == 1 and "gather_sampler_study" not in one
    assert three["sampler_study"] == 3 and three["gather_sampler_study"] == 1
    assert one["stack_enhance"] == n_models and "gather_enhance" not in one
    assert three["stack_enhance"] == 3 * n_models and three["gather_enhance"] == n_models
    sharded = ("predict", "gather_predictions", "leak_predict", "leak_gather_predictions")
    sharded += ("sampler_study", "gather_sampler_study", "stack_enhance", "gather_enhance")
    rest = {r: c for r, c in three.items() if r not in sharded}
    assert rest == {r: c for r, c in one.items() if r not in sharded}


def test_gathered_benchmark_adds_up_the_shard_jobs(tmp_path: Path) -> None:
    from rocksr.evaluation.budget import read_benchmark_seconds
    from rocksr.stages.gather_predictions import sum_benchmarks

    shards = []
    for i, s in enumerate((1.5, 2.25, 4.0)):
        shards.append(tmp_path / f"{i}.tsv")
        shards[-1].write_text(f"s\th:m:s\tmax_rss\n{s}\t0:00:01\t10.0\n")
    sum_benchmarks(shards, tmp_path / "all.tsv")
    assert read_benchmark_seconds(tmp_path / "all.tsv") == 7.75


# the sampler study: 4 configurations (ancestral, DDIM 2 and 4, DPM-Solver 3)
STUDY_CONFIGS = [
    {"sampler": "ancestral", "steps": None},
    {"sampler": "ddim", "steps": [2, 4]},
    {"sampler": "dpmsolver", "steps": 3},
]


def study(tmp: Path, out: Path | None, **shard) -> None:
    from rocksr.stages.sampler_study import sampler_study

    store, _, splits = make_dataset(tmp)
    ckpt = tmp / "ddpm.pt"
    if not ckpt.exists():
        make_checkpoint(ckpt, "ddpm")
    outs = {} if out is None else {"out_png": out / "s.png", "out_md": out / "s.md"}
    sampler_study(ckpt, store, splits, None if out is None else out / "s.csv",
                  configs=STUDY_CONFIGS, n_tiles=2, batch_size=BATCH, device="cpu",
                  **outs, **shard)  # fmt: skip


@pytest.mark.parametrize("n", [3, 5])
def test_sampler_study_parts_gather_to_the_one_jobs_study(tmp_path: Path, n: int) -> None:
    """n shards of the 4 configurations (5: one empty part) gather into the study of one job:
    the results CSV byte for byte, the timing CSV with the same rows, the same sections."""
    import pandas as pd

    one = tmp_path / "one"
    study(tmp_path, one)
    parts = [tmp_path / "parts" / f"{i}-of-{n}.csv" for i in range(1, n + 1)]
    for i, part in enumerate(parts, 1):
        study(tmp_path, None, shard=(i, n), out_part=part)
    assert sum(len(pd.read_csv(p)) for p in parts) == 4
    out = tmp_path / "gathered"
    argv = ["gather-sampler-study", "--parts", *map(str, reversed(parts))]
    argv += ["--out-csv", str(out / "s.csv"), "--out-png", str(out / "s.png")]
    assert main([*argv, "--out-md", str(out / "s.md")]) == 0
    assert (out / "s.csv").read_bytes() == (one / "s.csv").read_bytes()
    timing = [pd.read_csv(d / "s_timing.csv")[["sampler", "steps"]] for d in (one, out)]
    pd.testing.assert_frame_equal(*timing)
    assert (out / "s.png").stat().st_size > 0 and "| ancestral |" in (out / "s.md").read_text()


def test_sampler_study_gather_refuses_missing_or_twice_given_parts(tmp_path: Path, capsys):
    parts = [tmp_path / "parts" / f"{i}-of-2.csv" for i in (1, 2)]
    for i, part in enumerate(parts, 1):
        study(tmp_path, None, shard=(i, 2), out_part=part)
    out = tmp_path / "s.csv"
    for given, words in (
        ([parts[0]], "shard 2/2 missing"),
        (parts + parts[:1], "shard 1/2 given twice"),
    ):
        argv = ["gather-sampler-study", "--parts", *map(str, given), "--out-csv", str(out)]
        assert main([*argv, "--out-png", str(tmp_path / "s.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
        assert not out.exists()


def test_sampler_study_shards_deal_configurations_by_cost() -> None:
    from rocksr.evaluation.sampler_study import shard_configs

    c = [("ancestral", None), ("ddim", 10), ("ddim", 20), ("ddim", 50), ("dpmsolver", 10)]
    deal = {n: [shard_configs(c, i, n, 1000) for i in range(1, n + 1)] for n in (1, 2, 3, 6)}
    assert deal[1] == [[0, 1, 2, 3, 4]]
    assert deal[2] == [[0], [1, 2, 3, 4]]  # ancestral (1000 evaluations) alone
    assert deal[3] == [[0], [3], [1, 2, 4]]
    assert deal[6][-1] == [] and sorted(sum(deal[6], [])) == list(range(5))
    with pytest.raises(ValueError, match="shard 3/2"):
        shard_configs(c, 3, 2, 1000)
