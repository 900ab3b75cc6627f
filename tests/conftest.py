import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def scale_out_local_run(tmp_path_factory):
    """The scale-out run (helpers_workflow.scale_out_config) on the local executor, once per
    session: the DDP and sharding test reads it, the SLURM test compares its own run with it
    (both in the xdist group "slurm_cluster", so that one worker builds it once)."""
    from helpers_workflow import SCALE_OUT_TARGETS, snakemake, write_scale_out

    workdir = write_scale_out(tmp_path_factory.mktemp("scale_out_local"))
    snakemake(workdir, "--workflow-profile", "none", *SCALE_OUT_TARGETS, timeout=600)
    return workdir


# the test SLURM cluster (tests/slurm/cluster.sh): where it keeps its state, and the mark that
# the SLURM tests started it, so that the session's end stops it
STATE_DIR = Path(os.environ.get("ROCKSR_SLURM_STATE", "/var/lib/rocksr-slurm"))
SLURM_STOP_MARK = STATE_DIR / "stop-after-tests"


def pytest_sessionfinish(session, exitstatus):
    """Stop the test SLURM cluster that a SLURM test started, once the whole run is done (on the
    xdist controller, or in a run without xdist)."""
    if hasattr(session.config, "workerinput") or not SLURM_STOP_MARK.exists():
        return
    cluster_sh = Path(__file__).parent / "slurm" / "cluster.sh"
    res = subprocess.run(
        ["bash", str(cluster_sh), "stop"], capture_output=True, text=True, timeout=120
    )
    print(res.stdout[-2000:])
    SLURM_STOP_MARK.unlink(missing_ok=True)
