"""The demo's work budget: the rule benchmark seconds of two runs, side by side.

    python benchmarks/demo_budget.py OLD_RESULTS NEW_RESULTS [--target 0.27]

OLD_RESULTS and NEW_RESULTS are run folders (``results/demo``) or their ``benchmarks``
folders. Every Snakemake benchmark file (``benchmarks/**/*.tsv``, one per job; its ``s``
column is the job's wall time, the mean over repeats) is one row of the table, named by its
path (``predict/ddpm``, ``train_ddpm``); a job that only one run has shows ``-`` in the other.
The last lines give both sums and their ratio, NEW / OLD, which is what a CPU's speed cancels
out of when both runs are measured on one machine. With ``--target`` the exit status is 1
when the ratio is above it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def benchmark_seconds(folder: str | Path) -> dict[str, float]:
    """{job name: wall seconds} of every benchmark file under ``folder`` (a run folder or its
    ``benchmarks`` folder); the name is the file's path without ``.tsv``."""
    root = Path(folder)
    if (root / "benchmarks").is_dir():
        root = root / "benchmarks"
    if not root.is_dir():
        raise ValueError(f"{folder}: no such folder (give results/<run> or its benchmarks/)")
    out = {}
    for path in sorted(root.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if "s" not in table.columns or table.empty:
            raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column or no row)")
        out[path.relative_to(root).with_suffix("").as_posix()] = float(table["s"].mean())
    if not out:
        raise ValueError(f"{root}: no benchmark files (*.tsv)")
    return out


def budget_table(old: dict[str, float], new: dict[str, float]) -> pd.DataFrame:
    """One row per job of either run (by the old run's seconds, then the new's, descending),
    with the seconds of each and new / old; NaN where a run lacks the job."""
    names = sorted(set(old) | set(new), key=lambda n: (-old.get(n, -1.0), -new.get(n, -1.0), n))
    df = pd.DataFrame(
        {
            "job": names,
            "old_s": [old.get(n, float("nan")) for n in names],
            "new_s": [new.get(n, float("nan")) for n in names],
        }
    )
    df["ratio"] = df["new_s"] / df["old_s"]
    return df


def render(df: pd.DataFrame, old_sum: float, new_sum: float) -> str:
    def cell(v: float, fmt: str) -> str:
        return "-" if pd.isna(v) else format(v, fmt)

    lines = ["| job | old s | new s | new / old |", "|---|---:|---:|---:|"]
    for r in df.itertuples():
        lines.append(
            f"| {r.job} | {cell(r.old_s, '.1f')} | {cell(r.new_s, '.1f')} | "
            f"{cell(r.ratio, '.2f')} |"
        )
    lines.append(
        f"| **sum** | **{old_sum:.1f}** | **{new_sum:.1f}** | **{new_sum / old_sum:.3f}** |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="the earlier run: results/<run> or its benchmarks/ folder")
    ap.add_argument("new", help="the run to compare: results/<run> or its benchmarks/ folder")
    ap.add_argument("--target", type=float, default=None, help="fail (exit 1) above this ratio")
    a = ap.parse_args(argv)
    try:
        old, new = benchmark_seconds(a.old), benchmark_seconds(a.new)
    except ValueError as e:
        print(f"demo_budget: {e}", file=sys.stderr)
        return 2
    old_sum, new_sum = sum(old.values()), sum(new.values())
    print(render(budget_table(old, new), old_sum, new_sum))
    ratio = new_sum / old_sum
    print(
        f"\nsum of rule benchmark seconds: old {old_sum:.1f} s ({len(old)} jobs), "
        f"new {new_sum:.1f} s ({len(new)} jobs); new / old = {ratio:.3f}"
    )
    if a.target is not None:
        verdict = "within" if ratio <= a.target else "ABOVE"
        print(f"target {a.target:.2f}: {verdict}")
        return 0 if ratio <= a.target else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
