"""rocksr on SLURM, tested against a real one-node SLURM (tests/slurm/cluster.sh).

- ``test_profile_resources_dry_run``: no cluster needed. ``snakemake -n --profile profiles/slurm``
  on the real workflow with a config that sets custom per-rule resources; every job that would
  be submitted must carry what the config says.
- ``@pytest.mark.slurm`` tests need root (they install and start SLURM + munge through
  tests/slurm/cluster.sh); as non-root they are skipped, as root any failure fails.

Every wait has a hard limit so that a hang (e.g. the plugin polling a status command that never
answers) fails within minutes instead of eating the CI job's time.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml
from conftest import STATE_DIR, join_slurm_cluster

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
TEST_SNAKEFILE = REPO / "tests" / "slurm" / "Snakefile"
TEST_PROFILE = REPO / "profiles" / "slurm-test"
FAST_STATUS_SNAKEMAKE = REPO / "tests" / "slurm" / "snakemake_fast_status.py"
SLURM_PROFILE = REPO / "profiles" / "slurm"
SNAKEFILE = REPO / "Snakefile"
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"

# one xdist worker runs this module (`make test`: --dist loadgroup), so that the session
# fixture (slurm_cluster) starts the cluster once
pytestmark = pytest.mark.xdist_group("slurm_cluster")

# Hard limits (seconds).
CLUSTER_START_TIMEOUT = 600  # includes apt-get on a fresh machine (~10-20 s normally)
SNAKEMAKE_SLURM_TIMEOUT = 420
DRY_RUN_TIMEOUT = 120


def _run(cmd, *, cwd=None, timeout, env=None, check=False):
    """Run ``cmd`` in its own process group; on timeout kill the whole group and fail."""
    cmd = [str(c) for c in cmd]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(
            f"timed out after {timeout}s: {' '.join(cmd)}\n--- output (tail) ---\n{out[-6000:]}"
        )
    dt = time.monotonic() - t0
    print(f"[{dt:6.1f} s] {' '.join(cmd)} -> rc={proc.returncode}")
    if check and proc.returncode != 0:
        pytest.fail(f"rc={proc.returncode}: {' '.join(cmd)}\n--- output (tail) ---\n{out[-8000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None), dt


def _snakemake(*args):
    return [sys.executable, "-m", "snakemake", *args]


def _snakemake_on_slurm(*args):
    """Snakemake with the SLURM plugin's status checks every second, not its growing back-off
    (tests/slurm/snakemake_fast_status.py)."""
    return [sys.executable, FAST_STATUS_SNAKEMAKE, *args]


# --------------------------------------------------------------------------- cluster fixture
@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the one-node cluster (idempotent); conftest's ``pytest_sessionfinish`` stops it once
    every xdist worker is done, if the tests started it and no other live test session uses it
    (not at this worker's end: with `scontrol` installed and no controller, every `snakemake`
    start waits 9 s, because the SLURM plugin runs `scontrol show config` when Snakemake imports
    it)."""
    if os.geteuid() != 0:
        reason = "SLURM tests need root (tests/slurm/cluster.sh installs and starts slurm+munge)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    status, _ = _run(["bash", CLUSTER_SH, "status"], timeout=60)
    was_running = status.returncode == 0
    res, dt = _run(["bash", CLUSTER_SH, "start"], timeout=CLUSTER_START_TIMEOUT)
    print(res.stdout)
    if res.returncode != 0:
        if not was_running:
            _run(["bash", CLUSTER_SH, "stop"], timeout=120)
        pytest.fail(f"cluster.sh start failed (rc={res.returncode}, {dt:.1f} s):\n{res.stdout}")
    join_slurm_cluster(started=not was_running)


def test_the_last_live_session_stops_the_cluster_the_tests_started(tmp_path, monkeypatch):
    """conftest's bookkeeping, without a cluster: a session leaving while another live session
    uses the cluster stops nothing; the last one stops it (a dead session's file is dropped); a
    cluster the tests did not start is never stopped."""
    import conftest

    monkeypatch.setattr(conftest, "SLURM_SESSIONS", tmp_path / "sessions")
    monkeypatch.setattr(conftest, "SLURM_STARTED_MARK", tmp_path / "started")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this process is the session
    stops = []
    monkeypatch.setattr(conftest.subprocess, "run", lambda cmd, **kw: stops.append(cmd) or _Done())
    session = type("Session", (), {"config": object()})()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        conftest.join_slurm_cluster(started=True)
        (tmp_path / "sessions" / str(other.pid)).write_text("another session\n")
        conftest.pytest_sessionfinish(session, 0)
        assert stops == [] and (tmp_path / "started").exists()  # the other one still uses it
        conftest.join_slurm_cluster(started=False)
        other.kill()
        other.wait()
        (tmp_path / "sessions" / str(dead.pid)).write_text("a session killed long ago\n")
        conftest.pytest_sessionfinish(session, 0)
        assert len(stops) == 1 and stops[0][-1] == "stop" and not (tmp_path / "started").exists()
        assert list((tmp_path / "sessions").iterdir()) == []
        conftest.join_slurm_cluster(started=False)  # someone else's cluster
        conftest.pytest_sessionfinish(session, 0)
        assert len(stops) == 1
    finally:
        other.kill()


class _Done:
    stdout = ""


def _jobcomp_states() -> dict[str, str]:
    """JobId -> JobState of finished jobs, from the jobcomp/filetxt log cluster.sh configures."""
    path = STATE_DIR / "jobcomp.log"
    states = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.search(r"JobId=(\d+) .*?JobState=(\S+)", line)
            if m:
                states[m.group(1)] = m.group(2)
    return states


def _slurm_jobs_of_run(workdir: Path) -> dict[str, list[str]]:
    """rule -> SLURM job ids, from the plugin's per-job logs (.snakemake/slurm_logs/rule_<rule>/)."""
    jobs: dict[str, list[str]] = {}
    root = workdir / ".snakemake" / "slurm_logs"
    for log in root.rglob("*.log"):
        rule_dir = next(p for p in log.relative_to(root).parts if p.startswith("rule_"))
        jobs.setdefault(rule_dir.removeprefix("rule_"), []).append(log.stem)
    return jobs


def _assert_through_slurm(workdir: Path, expected_rules: set[str]) -> dict[str, list[str]]:
    jobs = _slurm_jobs_of_run(workdir)
    assert expected_rules <= set(jobs), (
        f"rules without a SLURM job log: {expected_rules - set(jobs)}"
    )
    states = _jobcomp_states()
    for rule, ids in jobs.items():
        for jid in ids:
            assert states.get(jid) == "COMPLETED", (
                f"{rule}: SLURM job {jid} state {states.get(jid)}"
            )
    return jobs


# --------------------------------------------------------------------------- b. GPU request path
@pytest.mark.slurm
def test_gpu_request_reaches_slurm(slurm_cluster, tmp_path):
    """`resources: gpu=1` -> `sbatch --gpus=1` -> SLURM allocates a (fake) GRES GPU and the job
    sees CUDA_VISIBLE_DEVICES; a job without `gpu` sees none."""
    res, dt = _run(
        _snakemake_on_slurm(
            "-s", TEST_SNAKEFILE, "-d", tmp_path, "--workflow-profile", TEST_PROFILE
        ),
        timeout=SNAKEMAKE_SLURM_TIMEOUT,
    )
    assert res.returncode == 0, res.stdout[-8000:]
    gpu = (tmp_path / "out" / "gpu.txt").read_text()
    cpu = (tmp_path / "out" / "cpu.txt").read_text()
    assert re.search(r"job=\d+ ", gpu) and re.search(r"job=\d+ ", cpu), (gpu, cpu)
    assert re.search(r"cvd=[01]$", gpu.strip()), gpu
    assert cpu.strip().endswith("cvd=unset"), cpu
    jobs = _assert_through_slurm(tmp_path, {"cpu_job", "gpu_job"})
    # The controller still knows the job (MinJobAge=300 s): it was submitted asking for one GPU.
    show, _ = _run(["scontrol", "show", "job", jobs["gpu_job"][0]], timeout=30, check=True)
    assert re.search(r"TresPerJob=\S*gres:gpu:1", show.stdout), show.stdout
    print(f"GPU test workflow through SLURM: {dt:.1f} s")


# --------------------------------------------------------------------------- a. real workflow
# Used only while tests/data/tiny.yaml does not exist yet: a 256x256 synthetic sample, 64 px tiles.
FALLBACK_TINY = {
    "run": "tiny",
    "samples": [{"name": "synth0", "synthetic": {"height": 256, "width": 256, "seed": 1}}],
    "tiling": {"size": 64, "stride": 32, "angles": [0, 90]},
}


def _require_real_workflow():
    if not SNAKEFILE.exists():
        pytest.fail(f"the real workflow is missing: {SNAKEFILE}")


def _configfiles(tmp_path: Path) -> list[Path]:
    """The repository's config.yaml with the tiny test config on top (Snakemake merges them;
    `configfile: "config.yaml"` in the Snakefile is relative to the working directory, so with
    `-d <tmp>` it has to be given explicitly)."""
    if TINY_CONFIG.exists():
        return [REPO / "config.yaml", TINY_CONFIG]
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(FALLBACK_TINY))
    return [REPO / "config.yaml", tiny]


def _localrules() -> set[str]:
    """Rule names listed in `localrules:` directives of the Snakefile and workflow/rules/*.smk."""
    names: set[str] = set()
    for f in [SNAKEFILE, *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for block in re.findall(
            r"^localrules:[ \t]*((?:.*\n?)(?:[ \t]+.*\n?)*)", f.read_text(), re.M
        ):
            names |= set(re.findall(r"\b([A-Za-z_]\w*)\b", block))
    return names


def _zarr_roots(root: Path) -> list[Path]:
    roots: list[Path] = []
    for p in sorted(root.rglob("*.zarr")):
        if p.is_dir() and not any(r in p.parents for r in roots):
            roots.append(p)
    return roots


def _plain_files(root: Path) -> dict[str, Path]:
    """Files under ``root`` (``results/``) outside Zarr stores, less the documented timing files."""
    from rocksr.run_diff import timing_file

    zroots = _zarr_roots(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or timing_file(Path(*rel.parts[1:])):
            continue
        if any(z in p.parents for z in zroots):
            continue
        out[str(rel)] = p
    return out


def _zarr_arrays(group, prefix="") -> dict:
    import zarr

    if isinstance(group, zarr.Array):
        return {prefix or ".": group}
    arrays = {f"{prefix}{name}": arr for name, arr in group.arrays()}
    for name, sub in group.groups():
        arrays.update(_zarr_arrays(sub, f"{prefix}{name}/"))
    return arrays


def _compare_results(a: Path, b: Path):
    """Every output of run ``a`` is in run ``b`` with the same bytes; Zarr stores compared by
    array values and attributes (figures are only required to exist: PNG metadata may differ).
    Run ``b`` may hold more (outputs of targets that ``a`` did not ask for)."""
    import numpy as np
    import zarr

    fa, fb = _plain_files(a), _plain_files(b)
    assert fa.keys() <= fb.keys(), f"outputs missing in {b}: {sorted(fa.keys() - fb.keys())}"
    for k in fa:
        if k.endswith((".png", ".pdf", ".svg")):
            continue
        assert fa[k].read_bytes() == fb[k].read_bytes(), f"{k} differs between SLURM and local run"
    za = [z.relative_to(a) for z in _zarr_roots(a)]
    missing = set(za) - {z.relative_to(b) for z in _zarr_roots(b)}
    assert not missing, f"Zarr stores missing in {b}: {sorted(map(str, missing))}"
    # Snakemake leaves a .snakemake_timestamp file inside directory outputs: zarr warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in za:
            ga, gb = zarr.open(a / z, mode="r"), zarr.open(b / z, mode="r")
            assert dict(ga.attrs) == dict(gb.attrs), f"{z}: attributes differ"
            arrays_a, arrays_b = _zarr_arrays(ga), _zarr_arrays(gb)
            assert arrays_a.keys() == arrays_b.keys(), f"{z}: different arrays"
            assert arrays_a, f"{z}: no arrays"
            for name, arr in arrays_a.items():
                xa, xb = arr[...], arrays_b[name][...]
                assert xa.dtype == xb.dtype and xa.shape == xb.shape, f"{z}/{name}"
                assert np.array_equal(xa, xb), f"{z}/{name} differs between SLURM and local run"
    return za, list(fa)


# --------------------------------------------------------------------------- d. scale-out
def _job_times() -> dict[str, tuple[str, str]]:
    """JobId -> (StartTime, EndTime) of finished jobs (ISO text, second resolution)."""
    path = STATE_DIR / "jobcomp.log"
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        m = re.search(r"JobId=(\d+) .*?StartTime=(\S+) EndTime=(\S+)", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


@pytest.mark.slurm
def test_two_process_training_and_shards_on_slurm_equal_local(
    slurm_cluster, scale_out_run, tmp_path
):
    """The real workflow from the synthetic sample through the SLURM plugin: the dataset stage,
    the regression U-Net trained by 2 processes inside one SLURM job (torchrun), its predictions
    as SCALE_OUT_SHARDS SLURM jobs, some at once, and a stack enhanced as as many SLURM part
    jobs, each gathered.
    Every output (files byte for byte, Zarr stores by values and attributes) is that of the
    same config on the local executor (conftest's ``scale_out_run``, which holds the other
    models' outputs too), and every non-local job really went through SLURM."""
    from helpers_workflow import SCALE_OUT_SHARDS, SCALE_OUT_TARGETS, write_scale_out

    _require_real_workflow()
    runs = {"slurm": write_scale_out(tmp_path / "slurm")}
    res, dt_slurm = _run(
        _snakemake_on_slurm(
            "-s",
            SNAKEFILE,
            "-d",
            runs["slurm"],
            "--workflow-profile",
            TEST_PROFILE,
            "--",
            *SCALE_OUT_TARGETS,
        ),  # fmt: skip
        timeout=SNAKEMAKE_SLURM_TIMEOUT,
    )
    assert res.returncode == 0, res.stdout[-10000:]
    print(f"scale-out run on SLURM: {dt_slurm:.1f} s")

    local = _localrules()
    remote = {"synthesize", "normalize", "build_dataset", "train_regress", "predict"}
    remote |= {"gather_predictions", "stack_enhance", "gather_enhance"}
    jobs = _assert_through_slurm(runs["slurm"], remote - local)
    assert not set(jobs) & local, f"localrules were submitted to SLURM: {set(jobs) & local}"
    assert len(jobs["train_regress"]) == 1 and len(jobs["predict"]) == SCALE_OUT_SHARDS, jobs
    assert len(jobs["stack_enhance"]) == SCALE_OUT_SHARDS, jobs
    # at least two of the shard and part jobs ran at once on the 2-CPU node (which two is
    # up to SLURM: the `predict` and `stack_enhance` jobs are ready together)
    times = _job_times()
    spans = sorted(times[j] for j in jobs["predict"] + jobs["stack_enhance"])
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), spans
    log = (runs["slurm"] / "results" / "tiny" / "logs" / "train_regress.log").read_text()
    assert "over 2 process(es)" in log, log[-2000:]
    runs["local"] = scale_out_run()  # built meanwhile by another worker, or now
    zarr_roots, plain = _compare_results(runs["slurm"] / "results", runs["local"] / "results")
    stores = {str(z) for z in zarr_roots}
    assert {"tiny/dataset/tiles.zarr", "tiny/predictions/regress.zarr"} <= stores, stores
    compared = {"tiny/models/regress/best.pt", "tiny/models/regress/history.csv"}
    compared |= {"tiny/splits/splits.csv", "tiny/enhanced_stacks/core/regress.tif"}
    assert compared <= set(plain), sorted(plain)
    a = runs["slurm"] / "results" / "tiny"
    assert not (a / "predictions" / "regress.shards").exists()
    print(f"identical: {len(zarr_roots)} Zarr store(s) and {len(plain)} files")


# --------------------------------------------------------------------------- c. dry-run resources
DRY_RUN_CORES = "256"  # a dry run caps threads at --cores (1 if not given); a SLURM run does not


def _parse_dry_run(text: str) -> dict[str, dict]:
    """rule -> {'threads': int, 'resources': {...}} from `snakemake -n` output (one entry per
    rule: the last job printed; jobs of one rule share their resource settings here)."""
    jobs: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", s)
        if m:
            current = jobs[m.group(1)] = {"threads": 1, "resources": {}}
        elif current is None:
            continue
        elif s.startswith("threads:"):
            current["threads"] = int(s.split(":", 1)[1])
        elif s.startswith("resources:"):
            for item in s.split(":", 1)[1].split(","):
                if "=" in item:
                    k, v = item.strip().split("=", 1)
                    current["resources"][k] = v
        elif not s or s.startswith("["):
            current = None
    return jobs


def _dry_run(configfiles, workdir: Path, target="all") -> dict[str, dict]:
    res, _ = _run(
        _snakemake(
            "-s",
            SNAKEFILE,
            "-d",
            workdir,
            "--workflow-profile",
            SLURM_PROFILE,
            "--cores",
            DRY_RUN_CORES,
            "-n",
            "--forceall",
            "--configfile",
            *configfiles,
            "--",
            target,
        ),
        timeout=DRY_RUN_TIMEOUT,
    )
    assert res.returncode == 0, res.stdout[-8000:]
    return _parse_dry_run(res.stdout)


def test_profile_resources_dry_run(tmp_path):
    """Every job that `--workflow-profile profiles/slurm` would submit carries the threads /
    mem_mb / runtime / gpu (+ gpu_model) that `resources.<rule>` of the config says, and
    `resources.default` applies to rules without their own entry. No cluster needed."""
    _require_real_workflow()
    base = _configfiles(tmp_path)
    local = _localrules()
    # Pass 1: which rules run, and which of them are GPU rules (declare `gpu`).
    jobs = _dry_run(base, tmp_path / "wd0")
    remote = sorted(set(jobs) - local)
    assert {"synthesize", "normalize", "build_dataset"} <= set(remote), (remote, local)
    gpu_rules = {r for r in remote if "gpu" in jobs[r]["resources"]}

    # Pass 2: distinct values for every remote rule except one, which must get the default.
    fallback_rule = remote[0]
    custom = {"default": {"threads": 3, "mem_mb": 1111, "runtime": 11}}
    for i, rule in enumerate(remote):
        if rule == fallback_rule:
            continue
        custom[rule] = {"threads": 1 + i % 4, "mem_mb": 2000 + i, "runtime": 100 + i}
        if rule in gpu_rules:
            custom[rule].update(gpu=2, gpu_model="testgpu")
    cfg = tmp_path / "resources.yaml"
    cfg.write_text(yaml.safe_dump({"resources": custom}))
    jobs = _dry_run([*base, cfg], tmp_path / "wd1")

    for rule in remote:
        want = {**custom["default"], **custom.get(rule, {})}
        job = jobs[rule]
        got = job["resources"]
        assert job["threads"] == want["threads"], (rule, job)
        assert int(got.get("mem_mb", -1)) == want["mem_mb"], (rule, got)
        assert int(got.get("runtime", -1)) == want["runtime"], (rule, got)
        if rule in gpu_rules and rule != fallback_rule:
            assert int(got.get("gpu", 0)) == 2 and got.get("gpu_model") == "testgpu", (rule, got)
        elif rule not in gpu_rules:
            assert int(got.get("gpu", 0)) == 0, (rule, got)
    print(f"checked {len(remote)} SLURM rules ({len(gpu_rules)} GPU rules); local: {sorted(local)}")
