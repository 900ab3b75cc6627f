"""A job outlives neither its shell nor the Snakemake that started it (SIGKILL included)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers_data import pid_alive
from helpers_train import cgan_params, make_store, train_paths

from rocksr.lifecycle import process_alive, process_identity

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


def test_process_identity_tells_a_running_process_from_a_dead_one():
    child = subprocess.Popen(["sleep", "30"])
    ident = process_identity(child.pid)
    assert ident.split(":")[1] == str(child.pid) and process_alive(ident)
    child.kill()
    child.wait()
    assert not process_alive(ident)
    assert process_alive("")  # not watchable: never reported dead
    assert process_alive("another-host:1:1")


def test_training_stops_within_seconds_of_a_killed_workflow_and_publishes_nothing(tmp_path):
    """Snakemake killed by SIGKILL leaves the job's shell running: the training job must notice
    the dead workflow process, write its resumable state and exit without publishing."""
    store, splits = make_store(tmp_path / "tiles")
    paths = train_paths(tmp_path)
    pidfile = tmp_path / "train.pid"
    params = cgan_params(max_steps=400, val_every=1000, ckpt_every=1000)
    code = textwrap.dedent(f"""
        import os, sys, time
        import torch
        torch.set_num_threads(1)
        import rocksr.training.trainer as trainer_mod
        def slow(step):
            if step == 2:  # written whole, then renamed: the test never reads it half-written
                with open({str(pidfile)!r} + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.replace({str(pidfile)!r} + ".tmp", {str(pidfile)!r})
            time.sleep(0.2)
        trainer_mod._after_step = slow
        from rocksr.cli import main
        sys.argv = ["rocksr", "train", "--kind", "cgan", "--store", {str(store)!r},
                    "--splits", {str(splits)!r}, "--best", {str(paths["best_ckpt"])!r},
                    "--history", {str(paths["history_csv"])!r},
                    "--samples-dir", {str(paths["samples_dir"])!r},
                    "--state-dir", {str(paths["state_dir"])!r},
                    "--params", {json.dumps(json.dumps(params))}, "--device", "cpu"]
        sys.exit(main())
        """)
    script = tmp_path / "job.py"
    script.write_text(code)
    workflow = subprocess.Popen(["sleep", "300"])  # stands for the Snakemake process
    env = {
        **os.environ,
        "ROCKSR_DIE_WITH_PARENT": "1",
        "ROCKSR_WORKFLOW_PROCESS": process_identity(workflow.pid),
    }
    # the job's shell is not the workflow's child here: it survives the workflow, as it does
    # a SIGKILLed Snakemake
    shell = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} {script} 2>{tmp_path}/err; echo $? > {tmp_path}/rc"],
        env=env,
    )
    deadline = time.time() + 120
    while not pidfile.exists() and time.time() < deadline and shell.poll() is None:
        time.sleep(0.05)
    assert pidfile.exists(), (tmp_path / "err").read_text()
    job = int(pidfile.read_text())
    workflow.kill()
    workflow.wait()
    t0 = time.time()
    while pid_alive(job) and time.time() - t0 < 20:
        time.sleep(0.05)
    stopped_after = time.time() - t0
    shell.wait(timeout=30)
    err = (tmp_path / "err").read_text()
    assert not pid_alive(job) and stopped_after < 10, err
    assert (tmp_path / "rc").read_text().strip() == str(128 + signal.SIGTERM), err
    assert "workflow process" in err and "has exited" in err
    assert not paths["best_ckpt"].exists()  # nothing published
    assert (paths["state_dir"] / "last.pt").exists()  # the resumable state is kept
