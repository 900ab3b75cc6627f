"""Running the real `snakemake` on this repository's workflow from the tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# the tiny configuration of the end-to-end tests (seconds on a CPU)
TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())


# the tests' tiny run (conftest's `tiny_run`): the tiny config with the regression U-Net trained
# by 2 processes in one job (torchrun, gloo on a CPU); its scale-out run (conftest's
# `scale_out_run`, the reference of the SLURM run) adds SCALE_OUT_SHARDS jobs per model's
# prediction, sampler study and stack

# shard jobs per prediction, sampler study and stack in the scale-out runs: 2, the fewest that
# splits and gathers (every job is a process importing torch and diffusers, 4-5 CPU-s here); the
# in-process shard tests split predictions into 3 and 4 shards, the sampler study into 3 and 5
# (test_shards.py) and stacks into up to 3 parts (test_enhance_shards.py): middle shards
SCALE_OUT_SHARDS = 2


def write_stack(path: Path, n: int = 4, size: int = 96) -> Path:
    """A raw 16-bit micro-CT-like stack of ``n`` pages (for `enhance.stacks`)."""
    import numpy as np
    import tifffile

    yy, xx = np.mgrid[0:size, 0:size]
    pages = [
        (20000 + 8000 * np.sin(yy / (5.0 + z)) * np.cos(xx / 7.0) + 500 * z).astype(np.uint16)
        for z in range(n)
    ]
    tifffile.imwrite(path, np.stack(pages), photometric="minisblack")
    return path


def tiny_run_config() -> dict:
    """The tiny config with 2 training processes for `regress` and resources that fit the test
    SLURM node (2 CPUs; small CPU-only jobs, several of them at once)."""
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    cfg["resources"] = {
        "default": {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 0},
        "train_regress": {"nprocs": 2, "threads": 2, "mem_mb": 2000, "gpu": 0},
    }
    return cfg


TINY_RUN = tiny_run_config()


def scale_out_config() -> dict:
    """The tiny run's config with `evaluate.shards: SCALE_OUT_SHARDS` and a stack of 3 pages to
    enhance (`core.tif`, :func:`write_scale_out`)."""
    cfg = tiny_run_config()
    cfg["evaluate"] = {**cfg["evaluate"], "shards": SCALE_OUT_SHARDS}
    cfg["enhance"] = {
        **cfg["enhance"],
        "stacks": [{"name": "core", "path": "core.tif", "pages": "1-3"}],
    }
    return cfg


# what the SLURM test's scale-out run builds: the regression U-Net (2 processes), its
# predictions (shard jobs and a gather) and the stack enhanced by it (part jobs and a gather)
SCALE_OUT_TARGETS = [
    "results/tiny/predictions/regress.zarr",
    "results/tiny/enhanced_stacks/core/regress.tif",
]


def write_scale_out(workdir: Path) -> Path:
    """The scale-out run's config and stack in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(workdir, scale_out_config())
    write_stack(workdir / "core.tif")
    return workdir


def planned_rules(output: str) -> set[str]:
    """Rule names in the dry-run 'Job stats' table."""
    table = output.split("Job stats:")[1].split("\n\n")[0]
    rules = set()
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+\d+$", line.strip())
        if m and m.group(1) != "total":
            rules.add(m.group(1))
    return rules


def write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    env: dict | None = None,
    timeout: int = 900,
    snakefile: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """`snakemake -s <repo>/Snakefile -d <workdir> --cores 2 <args>`; raise on failure if ``check``."""
    snakefile = snakefile or REPO / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir)]
    cmd += ["--cores", "2", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return r
