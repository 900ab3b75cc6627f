"""The evaluation tables, one module per job; this module re-exports their public names.

:func:`rocksr.stages.evaluate.evaluate` (command and rule ``evaluate``) writes them:

* :mod:`rocksr.evaluation.per_tile`: the per-tile metrics of every model and baseline on the
  test split (``evaluation/per_tile_metrics.csv``) and the Otsu porosity threshold of the
  train-split SEM;
* :mod:`rocksr.evaluation.table1`: Table 1, the per-tile metrics aggregated per model
  (``evaluation/table1.csv``);
* :mod:`rocksr.evaluation.verdicts`: Table 1's findings in words (best rows, models against the
  baselines, ⚠ flags against the constant ``mean`` baseline);
* :mod:`rocksr.evaluation.table1_markdown`: Table 1 as Markdown with those findings and a
  methods note (``evaluation/table1.md``).
"""

from __future__ import annotations

from rocksr.evaluation.per_tile import (
    S2_MAX_R,
    otsu_sem_threshold,
    per_tile_metrics,
    train_sem_histogram,
)
from rocksr.evaluation.per_tile import read_csv_file as _read_csv
from rocksr.evaluation.table1 import table1
from rocksr.evaluation.table1_markdown import table1_markdown
from rocksr.evaluation.verdicts import MEAN_BASELINE, table1_findings

__all__ = [
    "MEAN_BASELINE",
    "S2_MAX_R",
    "_read_csv",
    "otsu_sem_threshold",
    "per_tile_metrics",
    "table1",
    "table1_findings",
    "table1_markdown",
    "train_sem_histogram",
]
