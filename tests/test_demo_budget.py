"""benchmarks/demo_budget.py: the sum of two runs' rule benchmark seconds and their ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers_workflow import REPO

SCRIPT = REPO / "benchmarks" / "demo_budget.py"
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_run(root: Path, seconds: dict[str, list[float]]) -> Path:
    """A run folder with Snakemake benchmark files (one row per repeat)."""
    for name, values in seconds.items():
        path = root / "benchmarks" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(f"{v}\t0:00:01\t1\t1\t1\t1\t0\t0\t100\t{v}\n" for v in values)
        path.write_text(HEADER + rows)
    return root


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True
    )


def test_prints_the_per_job_table_and_the_ratio_of_the_sums(tmp_path):
    old = write_run(
        tmp_path / "old",
        {"train_ddpm": [600.0], "predict/ddpm": [300.0], "sampler_study": [100.0]},
    )
    # repeats are averaged; a job only the new run has is listed with "-" for the old run
    new = write_run(
        tmp_path / "new", {"train_ddpm": [190.0, 210.0], "predict/ddpm": [60.0], "budget": [2.0]}
    )
    r = run(old, new / "benchmarks")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "| train_ddpm | 600.0 | 200.0 | 0.33 |" in lines
    assert "| predict/ddpm | 300.0 | 60.0 | 0.20 |" in lines
    assert "| sampler_study | 100.0 | - | - |" in lines
    assert "| budget | - | 2.0 | - |" in lines
    assert "| **sum** | **1000.0** | **262.0** | **0.262** |" in lines
    assert "new / old = 0.262" in r.stdout
    # the table lists the old run's biggest jobs first
    assert lines.index("| train_ddpm | 600.0 | 200.0 | 0.33 |") < lines.index(
        "| predict/ddpm | 300.0 | 60.0 | 0.20 |"
    )


def test_target_sets_the_exit_status(tmp_path):
    old = write_run(tmp_path / "old", {"a": [100.0]})
    new = write_run(tmp_path / "new", {"a": [30.0]})
    ok, over = run(old, new, "--target", "0.3"), run(old, new, "--target", "0.27")
    assert ok.returncode == 0 and "target 0.30: within" in ok.stdout
    assert over.returncode == 1 and "target 0.27: ABOVE" in over.stdout


def test_a_missing_folder_or_a_foreign_file_is_one_line_naming_it(tmp_path):
    good = write_run(tmp_path / "good", {"a": [1.0]})
    r = run(tmp_path / "nowhere", good)
    assert r.returncode == 2 and "nowhere: no such folder" in r.stderr
    bad = tmp_path / "bad" / "benchmarks"
    bad.mkdir(parents=True)
    (bad / "x.tsv").write_text("col\n1\n")
    r = run(good, tmp_path / "bad")
    assert r.returncode == 2 and "x.tsv: not a Snakemake benchmark file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
