import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# pytest-xdist runs one worker per core: each worker's torch (and every process it starts that
# does not set its own, as the workflow's jobs do) gets one thread. Two threads per worker would
# oversubscribe the cores, and OpenMP's waiting threads spin on the other worker's core.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402

from rocksr.cli import collect_garbage_less_often  # noqa: E402

# the test processes import torch, diffusers and Snakemake's API too: the same garbage collector
# setting as a `rocksr` process
collect_garbage_less_often()


def build_once(shared: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``shared/name``, made by ``build(shared/name)`` once per test session: by the first xdist
    worker that asks for it, while the others wait (a file lock); a build that failed fails every
    later request with its error instead of running again."""
    workdir, done, failed = (shared / f"{name}{end}" for end in ("", ".done", ".failed"))
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(
                f"building {name} failed (see the first test that asked):\n{failed.read_text()}"
            )
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)  # what a killed build left
            try:
                build(workdir)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}"[-8000:])
                raise
            done.touch()
    return workdir


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder of this test session that every xdist worker sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _require_torchrun() -> None:
    """The tiny run trains the regression U-Net with 2 processes (torchrun)."""
    if shutil.which("torchrun") is None:
        pytest.skip("the tiny run needs torchrun (2 training processes)")


def _build_tiny_run(workdir: Path) -> None:
    from helpers_workflow import TINY_RUN, snakemake, write_config

    workdir.mkdir()
    write_config(workdir, TINY_RUN)
    snakemake(workdir)


def _build_scale_out_run(shared: Path) -> Callable[[Path], None]:
    def build(workdir: Path) -> None:
        """The tiny run's models, predicted again with `evaluate.shards: SCALE_OUT_SHARDS` (that
        many `predict` jobs per model and a gather, as many `sampler_study` jobs and a gather),
        and a stack enhanced by the regression U-Net as as many part jobs and a gather (the
        DDPM's seeded parts are compared with one job in tests/test_enhance_shards.py)."""
        from helpers_workflow import SCALE_OUT_TARGETS, snakemake, write_scale_out

        first = build_once(shared, "tiny_run", _build_tiny_run)
        shutil.copytree(first, workdir, ignore=shutil.ignore_patterns(".snakemake"))
        # the models' stores and Table 1 go (a missing store alone does not make Snakemake
        # rebuild an up-to-date Table 1); the trained models, the dataset and the baselines stay
        res = workdir / "results" / "tiny"
        for kind in ("cgan", "regress", "ddpm"):
            shutil.rmtree(res / "predictions" / f"{kind}.zarr")
        for rel in ("table1.csv", "per_tile_metrics.csv", "sampler_study.csv"):
            (res / "evaluation" / rel).unlink()
        write_scale_out(workdir)
        targets = [f"results/tiny/evaluation/{n}.csv" for n in ("table1", "sampler_study")]
        snakemake(workdir, *targets, *SCALE_OUT_TARGETS, "--rerun-triggers", "mtime")

    return build


@pytest.fixture(scope="session")
def tiny_run(shared_dir) -> Path:
    """The tiny run (helpers_workflow.TINY_RUN: the whole study, the regression U-Net trained by
    2 processes) on the local executor, once per test session."""
    _require_torchrun()
    return build_once(shared_dir, "tiny_run", _build_tiny_run)


@pytest.fixture(scope="session")
def scale_out_run(shared_dir) -> Callable[[], Path]:
    """A function that returns the scale-out run (helpers_workflow.scale_out_config) on the
    local executor, made once per test session from the tiny run (a function, so that the SLURM
    test can run its own scale-out first and wait for this one only then)."""
    _require_torchrun()
    return lambda: build_once(shared_dir, "scale_out_run", _build_scale_out_run(shared_dir))


# the test SLURM cluster (tests/slurm/cluster.sh): where it keeps its state; the mark that the
# tests started it (so that they stop it, never a cluster someone else runs); and one file per
# test session that uses it, named by the session's pid, so that the last session to leave stops
# it: never under another session's tests, and a session that died (killed, out of time) does not
# keep it running for ever
STATE_DIR = Path(os.environ.get("ROCKSR_SLURM_STATE", "/var/lib/rocksr-slurm"))
SLURM_STARTED_MARK = STATE_DIR / "started-by-tests"
SLURM_SESSIONS = STATE_DIR / "test-sessions"


def _session_pid() -> int:
    """The pid of this test session's main process (the xdist controller starts its workers)."""
    return os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def join_slurm_cluster(started: bool) -> None:
    """Record that this test session uses the test cluster (and started it, if ``started``)."""
    SLURM_SESSIONS.mkdir(parents=True, exist_ok=True)
    (SLURM_SESSIONS / str(_session_pid())).touch()
    if started:
        SLURM_STARTED_MARK.write_text("tests/slurm/cluster.sh stop when the last session leaves\n")


def pytest_sessionfinish(session, exitstatus):
    """Leave the test SLURM cluster once the whole run is done (on the xdist controller, or in a
    run without xdist); the last session using it stops it if the tests started it."""
    mine = SLURM_SESSIONS / str(os.getpid())
    if hasattr(session.config, "workerinput") or not mine.exists():
        return
    mine.unlink(missing_ok=True)
    live = False
    for other in (p for p in SLURM_SESSIONS.iterdir() if p.name.isdigit()):
        if _alive(int(other.name)):
            live = True
        else:
            other.unlink(missing_ok=True)  # a session that died without leaving
    if live or not SLURM_STARTED_MARK.exists():
        return
    cluster_sh = Path(__file__).parent / "slurm" / "cluster.sh"
    res = subprocess.run(
        ["bash", str(cluster_sh), "stop"], capture_output=True, text=True, timeout=120
    )
    print(res.stdout[-2000:])
    SLURM_STARTED_MARK.unlink(missing_ok=True)
