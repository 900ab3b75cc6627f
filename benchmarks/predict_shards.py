"""Wall time of `rocksr predict` as one job against the same prediction split into N shard jobs
(`evaluate.shards: N`), measured in one run, with the gathered store compared with the one
job's.

    python benchmarks/predict_shards.py --checkpoint results/demo/models/ddpm/best.pt \
        --store results/demo/dataset/tiles.zarr --splits results/demo/splits/splits.csv \
        --shards 2 --threads 1 --cores 2 --n-samples 2 --steps 10

As in the workflow, every job gets the same `--threads` (`resources.predict.threads`), and at
most `--cores / --threads` jobs run at once (Snakemake's `--cores`; on a cluster each shard is a
job with resources of its own). N shards therefore finish about N times sooner only where N of
them fit at once: on this 2-core machine with `--threads 1`, not with `--threads 2`. The speed-up
is printed, not asserted. With the same threads per job, the gathered store equals the one
job's array for array (exit status 1 otherwise); jobs with other thread counts or on another
CPU may round a float differently and so move a pixel by one grey level. The stores are written
under --work (kept) or a temporary folder (removed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROCKSR = [sys.executable, "-m", "rocksr.cli"]


def array_differences(a: Path, b: Path) -> dict[str, float]:
    """Each array of store ``a`` -> the largest absolute difference to the same array of ``b``
    (0.0: equal values; inf: missing or another shape)."""
    import warnings

    import numpy as np
    import zarr

    out = {}
    with warnings.catch_warnings():  # rocksr-digests.json beside the arrays: not Zarr's
        warnings.simplefilter("ignore")
        za, zb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
        for name, arr in za.arrays():
            other = zb.get(name)
            if other is None or other.shape != arr.shape:
                out[name] = float("inf")
                continue
            x, y = arr[...].astype(np.float64), other[...].astype(np.float64)
            out[name] = float(np.abs(x - y).max()) if x.size else 0.0
    return out


def predict_command(a: argparse.Namespace, out: Path, shard: str | None = None) -> list[str]:
    cmd = [*ROCKSR, "predict", "--checkpoint", a.checkpoint, "--store", a.store]
    cmd += ["--splits", a.splits, "--out", str(out), "--batch-size", str(a.batch_size)]
    cmd += ["--seed", str(a.seed), "--device", a.device, "--n-samples", str(a.n_samples)]
    cmd += ["--sampler", a.sampler] + (["--steps", str(a.steps)] if a.steps else [])
    return cmd + (["--shard", shard] if shard else [])


def run_jobs(commands: list[list[str]], threads: int, at_once: int) -> float:
    """Run the commands with ``threads`` threads each, ``at_once`` at a time (in waves, as
    Snakemake fills its cores with equal jobs); the wall seconds of all of them."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    for first in range(0, len(commands), at_once):
        wave = commands[first : first + at_once]
        procs = [
            subprocess.Popen(
                c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )  # fmt: skip
            for c in wave
        ]
        for p, c in zip(procs, wave, strict=True):
            _, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"failed ({p.returncode}): {' '.join(c)}\n{err[-3000:]}")
    return time.perf_counter() - t0


def at_once(a: argparse.Namespace) -> int:
    """How many shard jobs run at a time: as many as ``--cores`` holds, at most ``--shards``."""
    return max(1, min(a.shards, a.cores // a.threads))


def measure(a: argparse.Namespace, work: Path) -> dict:
    """Wall seconds of the one job and of the N shard jobs (+ the gather), and whether the
    gathered store equals the one job's."""
    # the same store name: a store records its model's name, taken from it
    one = work / "one" / "pred.zarr"
    t_one = run_jobs([predict_command(a, one)], a.threads, 1)
    n = a.shards
    parts = [work / "shards" / f"{i}-of-{n}.zarr" for i in range(1, n + 1)]
    shard_cmds = [predict_command(a, p, f"{i}/{n}") for i, p in enumerate(parts, 1)]
    t_shards = run_jobs(shard_cmds, a.threads, at_once(a))
    gathered = work / "gathered" / "pred.zarr"
    t_gather = run_jobs(
        [[*ROCKSR, "gather-predictions", "--shards", *map(str, parts), "--out", str(gathered)]],
        1,
        1,
    )
    return {
        "one_s": t_one,
        "shards_s": t_shards,
        "gather_s": t_gather,
        "differences": array_differences(one, gathered),
    }


def report(a: argparse.Namespace, m: dict) -> str:
    sharded = m["shards_s"] + m["gather_s"]
    return "\n".join(
        [
            f"predict of {a.checkpoint} on {a.cores} core(s), {a.threads} thread(s) per job: "
            f"1 job vs {a.shards} shard jobs, {at_once(a)} at a time",
            "| run | jobs at once | wall s | speed-up |",
            "|---|---:|---:|---:|",
            f"| 1 job | 1 | {m['one_s']:.1f} | 1.00 |",
            f"| {a.shards} shards + gather | {at_once(a)} | "
            f"{m['shards_s']:.1f} + {m['gather_s']:.1f} | {m['one_s'] / sharded:.2f} |",
            "gathered store against the one job's, largest |difference| per array: "
            + ", ".join(f"{k} {v:.1e}" for k, v in sorted(m["differences"].items())),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--splits", required=True)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threads", type=int, default=1, help="threads of every job")
    p.add_argument("--n-samples", type=int, default=1)
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", default=None, help="a folder for the stores (default: temporary)")
    a = p.parse_args(argv)
    if a.shards < 2:
        p.error("--shards must be at least 2")
    if a.work:
        Path(a.work).mkdir(parents=True, exist_ok=True)
        m = measure(a, Path(a.work))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            m = measure(a, Path(tmp))
    print(report(a, m))
    return 0 if all(v == 0 for v in m["differences"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
