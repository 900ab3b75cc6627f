# The run itself: jobs tied to this process, and the WARNING lines of its logs collected.
import os
import sys
import time
from pathlib import Path

from rocksr.lifecycle import process_identity

WORKFLOW_START = time.time()
# rocksr jobs die with the shell that runs them (rocksr.lifecycle), so that a killed job never
# publishes later; a rocksr started by hand outside Snakemake is not tied to its terminal.
# A Snakemake killed by SIGKILL leaves its job shells running: jobs also watch this process.
# (Set here for the jobs, not read: no `envvars:` assertion applies. Cluster jobs re-parse this.)
os.environ.update(
    ROCKSR_DIE_WITH_PARENT="1", ROCKSR_WORKFLOW_PROCESS=process_identity()
)


def collect_warnings():
    """Print every WARNING line of the rule logs written by this invocation and write them to
    results/<run>/warnings.txt (Snakemake shows a rule's stderr only when it fails). Never fails
    the run itself."""
    try:
        _collect_warnings()
    except OSError as exc:
        print(
            f"rocksr: could not collect warnings from {R}/logs ({exc})", file=sys.stderr
        )


def _collect_warnings():
    lines = []
    for log_file in sorted(Path(R, "logs").rglob("*.log")):
        if log_file.stat().st_mtime < WORKFLOW_START:
            continue  # an earlier invocation's log
        for line in log_file.read_text(errors="replace").splitlines():
            if " WARNING " in line:
                name = log_file.relative_to(Path(R, "logs"))
                lines.append(f"{name}: {line.split(' WARNING ', 1)[1]}")
    out = Path(R, "warnings.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{line}\n" for line in lines))
    if lines:
        print(f"rocksr: {len(lines)} warning(s), also in {out}:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
