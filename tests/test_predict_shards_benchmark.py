"""benchmarks/predict_shards.py prints the wall time of one `predict` job and of N shard jobs at
(as many at once as the cores hold, + the gather) with the speed-up, and compares the gathered
store with the one job's."""

from __future__ import annotations

import subprocess
import sys

from helpers_workflow import REPO
from test_predict import make_checkpoint, make_dataset


def test_prints_one_job_against_shards_and_the_identity(tmp_path) -> None:
    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "ddpm.pt", "ddpm")
    cmd = [sys.executable, str(REPO / "benchmarks" / "predict_shards.py")]
    cmd += ["--checkpoint", str(ckpt), "--store", str(store), "--splits", str(splits)]
    cmd += ["--shards", "2", "--cores", "2", "--threads", "1", "--n-samples", "2", "--steps", "2"]
    cmd += ["--batch-size", "2", "--work", str(tmp_path / "work")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in r.stdout.splitlines() if line.startswith("| ")]
    one = [c.strip() for c in rows[1]]
    assert one[:2] == ["1 job", "1"] and float(one[2]) > 0 and one[3] == "1.00"
    shards = [c.strip() for c in rows[2]]
    assert shards[:2] == ["2 shards + gather", "2"] and float(shards[3]) > 0
    # the same threads per job: every array equal
    diffs = dict(
        item.rsplit(" ", 1) for item in r.stdout.strip().splitlines()[-1].split(": ")[1].split(", ")
    )
    assert set(diffs) == {"pred", "mean", "std", "samples", "tile_ids"}
    assert set(diffs.values()) == {"0.0e+00"}
    assert sorted(p.name for p in (tmp_path / "work" / "shards").iterdir()) == [
        "1-of-2.zarr",
        "2-of-2.zarr",
    ]
