"""The workflow as the user meets it: config mistakes stop `snakemake` with one line naming the
key, and a damaged tile store stops the next stage with a message naming the shard."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from helpers_workflow import REPO, snakemake

TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())


def write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _run(cfg, v):
    cfg["run"] = v


def _both(cfg, v):
    cfg["samples"][0]["mct"] = "a.tif"


def _dup(cfg, v):
    cfg["samples"].append(copy.deepcopy(cfg["samples"][0]))


def _typo(cfg, v):
    cfg["tilling"] = cfg.pop("tiling")


def _fractions(cfg, v):
    cfg["split"]["fractions"] = {"train": 0.7, "val": 0.3, "test": 0.3}


def _angles(cfg, v):
    cfg["tiling"]["angles"] = [0, 45, 45]


@pytest.mark.parametrize(
    ("edit", "value", "message"),
    [
        (_run, "..", "config: run: '..' is not a safe folder name"),
        (_run, ".", "config: run: '.' is not a safe folder name"),
        (_run, "../elsewhere", "config: run: '../elsewhere' is not a safe folder name"),
        (_both, None, "config: sample 'tiny0' has both 'synthetic' and 'mct'"),
        (_dup, None, "config: duplicate sample name(s) 'tiny0'"),
        (_typo, None, "config: unknown top-level key 'tilling' (did you mean 'tiling'?)"),
        (_fractions, None, "sum to 1.3; they must sum to 1"),
        (_angles, None, "config: tiling.angles repeats [45.0]"),
    ],
)
def test_config_mistakes_stop_the_run_with_one_line(tmp_path, edit, value, message):
    work = tmp_path / "work"
    work.mkdir()
    cfg = copy.deepcopy(TINY)
    edit(cfg, value)
    write_config(work, cfg)
    r = snakemake(work, check=False, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and message in out, out[-3000:]
    assert len(out) < 3000, out  # a short message, not the schema
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing written beside it
    assert not (work / "results").exists()


@pytest.mark.slow
def test_damaged_tile_store_stops_training(tmp_path):
    cfg = copy.deepcopy(TINY)
    write_config(tmp_path, cfg)
    res = tmp_path / "results" / "tiny"
    snakemake(tmp_path, "results/tiny/dataset/tiles.zarr", "results/tiny/splits/splits.csv")
    store = res / "dataset" / "tiles.zarr"
    backup = tmp_path / "backup.zarr"
    shutil.copytree(store, backup)
    log = res / "logs" / "train_cgan.log"

    shard = store / "sem" / "c" / "1" / "0" / "0"
    shard.unlink()
    r = snakemake(tmp_path, "results/tiny/models/cgan/best.pt", check=False)
    assert r.returncode != 0
    text = log.read_text()
    assert (
        f"rocksr train: error: {Path('results/tiny/dataset/tiles.zarr')}: damaged tile store: "
        "array 'sem', data file c/1/0/0 (tiles 16-31) is missing" in text
    ), text[-2000:]
    assert not (res / "models" / "cgan" / "best.pt").exists()

    shutil.rmtree(store)
    shutil.copytree(backup, store)
    shard = store / "mct" / "c" / "2" / "0" / "0"
    shard.write_bytes(shard.read_bytes()[:100])
    r = snakemake(tmp_path, "results/tiny/models/cgan/best.pt", check=False)
    assert r.returncode != 0
    text = log.read_text()
    assert "array 'mct', data file c/2/0/0 (tiles 32-47) has 100 bytes" in text, text[-2000:]
    assert not (res / "models" / "cgan" / "best.pt").exists()


@pytest.mark.slow
def test_warnings_reach_the_console_and_warnings_txt(tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["split"]["blocks"] = {"rows": 8, "cols": 8}  # most views straddle block borders
    write_config(tmp_path, cfg)
    r = snakemake(tmp_path, "results/tiny/splits/splits.csv")
    assert "rocksr: 1 warning(s), also in results/tiny/warnings.txt:" in r.stderr, r.stderr[-3000:]
    assert "split.log: rocksr.stages.split: split keeps only" in r.stderr
    text = (tmp_path / "results" / "tiny" / "warnings.txt").read_text()
    assert text.startswith("split.log: rocksr.stages.split: split keeps only")
