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
