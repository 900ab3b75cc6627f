"""Running the real `snakemake` on this repository's workflow from the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
