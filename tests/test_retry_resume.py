"""A training job stopped by SIGTERM after a checkpoint (as SLURM does at its time limit) fails;
`snakemake --retries 1` runs it again and it resumes from `last.pt` instead of starting over."""

from __future__ import annotations

import os
import shutil
import stat

import pandas as pd
import pytest
import torch
import yaml
from helpers_workflow import REPO, snakemake

SHIM = r"""#!/usr/bin/env bash
# stands in for `rocksr`: the first `train` is sent SIGTERM once it has written a checkpoint
if [ "$1" = "train" ] && [ ! -e "$SHIM_MARKER" ]; then
    touch "$SHIM_MARKER"
    state=""
    prev=""
    for a in "$@"; do [ "$prev" = "--state-dir" ] && state="$a"; prev="$a"; done
    "$REAL_ROCKSR" "$@" &
    pid=$!
    for _ in $(seq 1 600); do
        [ -e "$state/last.pt" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$pid"
    wait "$pid"
    exit $?
fi
exec "$REAL_ROCKSR" "$@"
"""


@pytest.mark.slow
def test_training_killed_after_a_checkpoint_resumes_on_retry(tmp_path):
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["cgan"].update({"max_steps": 24, "ckpt_every": 2, "val_every": 12, "log_every": 2})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "rocksr"
    shim.write_text(SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    marker = tmp_path / "killed_once"
    env = {
        **os.environ,
        "PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
        "REAL_ROCKSR": shutil.which("rocksr"),
        "SHIM_MARKER": str(marker),
        "OMP_NUM_THREADS": "1",
    }
    r = snakemake(
        tmp_path, "--retries", "1", "results/tiny/models/cgan/best.pt", check=False, env=env
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert marker.exists(), "the first attempt was not interrupted"
    log = (tmp_path / "results/tiny/logs/train_cgan.log").read_text()
    assert "resumed from" in log, log[-3000:]
    last = torch.load(tmp_path / "results/tiny/state/cgan/last.pt", weights_only=True)
    assert last["step"] == 24
    steps = [row["step"] for row in last["history"] if row["phase"] == "train"]
    assert steps == sorted(set(steps)) and steps[0] == 2  # one continuous history, no restart
    # and one continuous timing (state/cgan/timing.json carried it over the kill)
    timing = pd.read_csv(tmp_path / "results/tiny/models/cgan/history_timing.csv")
    assert len(timing) == len(last["history"]) and timing["wall_s"].is_monotonic_increasing
