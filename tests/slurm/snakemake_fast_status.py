"""Snakemake whose SLURM executor checks its jobs' status every second, for the SLURM tests only.

`python tests/slurm/snakemake_fast_status.py <snakemake arguments>` is `python -m snakemake
<arguments>` except for one thing: the SLURM plugin (2.8.0) waits 10 s longer before each status
check that finds no job finished (up to 180 s), which on a real cluster spares its controller.
On the test cluster's one node, where the jobs take seconds, that back-off left the node idle
for most of the scale-out run. Here every check follows the last after
``STATUS_CHECK_SECONDS``; what is submitted and how the status is read stay the plugin's own.
"""

from __future__ import annotations

import snakemake_executor_plugin_slurm
from snakemake.cli import main

STATUS_CHECK_SECONDS = 1.0

# The plugin sets `next_seconds_between_status_checks` after every check (the back-off) and the
# executor sleeps for it before the next one: a fixed value that ignores the plugin's settings.
snakemake_executor_plugin_slurm.Executor.next_seconds_between_status_checks = property(
    lambda self: STATUS_CHECK_SECONDS, lambda self, value: None
)

if __name__ == "__main__":
    main()
