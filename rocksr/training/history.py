"""The trainer's history: metric rows, timing rows, training wall time and the logging window.

:class:`TrainerHistory` is the part of :class:`rocksr.training.trainer.Trainer` that records
what a run did: each history row's metrics (validation metrics, or the mean losses of a logging
window, and the learning rate) go to ``history`` (in every checkpoint and ``history.csv``); its
wall time, images per second and GPU memory (:data:`TIMING_COLUMNS`) go to ``timing``
(``history_timing.csv`` and ``state_dir/timing.json``), never into a checkpoint, so the same
config trained in two folders writes its checkpoints and ``history.csv`` byte for byte.
:func:`write_history` writes either list as a CSV.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from rocksr.training.distributed import Dist
from rocksr.training.runtime import gpu_memory

# the trainer's log, under the name it always had
log = logging.getLogger("rocksr.training.trainer")


# what a history row measures of the machine: in history_timing.csv, never in history.csv
TIMING_COLUMNS = ("img_per_s", "wall_s", "gpu_mem_mb", "gpu_peak_mb")


def write_history(history: list[dict], path: Path) -> None:
    """Write history rows (training metrics, or the timing rows) as a CSV, atomically."""
    import pandas as pd

    from rocksr.files import write_table

    write_table(pd.DataFrame(history), path)


class TrainerHistory:
    """History, timings and the logging window of a :class:`~rocksr.training.trainer.Trainer`
    (a mixin: the trainer sets the attributes annotated here)."""

    device: torch.device
    dist: Dist
    task: Any
    progress: dict[str, Any]
    history_csv: Path
    timing_csv: Path
    batch_size: int
    log_every: int
    total: int
    history: list[dict]
    timing: list[dict]
    train_wall_s: float
    _t_wall: float
    _t_log: float

    def _init_history(self) -> None:
        """Empty history and timings, and the wall clock of this attempt started."""
        # wall seconds of training so far, validation included, summed over resumptions (the
        # budget table's training time; a resumed job's benchmark counts one attempt): kept in
        # timing.json beside the state, never in a checkpoint
        self.train_wall_s = 0.0
        self._t_wall = time.perf_counter()
        self.history = []  # metrics: in every checkpoint and history.csv
        self.timing = []  # TIMING_COLUMNS per row: timing.json, history_timing.csv

    def wall_s(self) -> float:
        """Training wall seconds so far, over every attempt (updates ``train_wall_s``)."""
        now = time.perf_counter()
        self.train_wall_s += now - self._t_wall
        self._t_wall = now
        return self.train_wall_s

    def record(self, phase: str, step: int, values: dict, **timing: float) -> None:
        """One history row: ``values`` (losses or validation metrics) and the learning rate
        to ``history``; the wall time so far, GPU memory and ``timing`` to ``timing``."""
        key = {"phase": phase, "step": step}
        self.history.append(
            {**key, "epoch": self.progress["epoch"], **values, "lr": self.task.lr()}
        )
        self.timing.append({**key, **timing, "wall_s": self.wall_s(), **gpu_memory(self.device)})

    def write_histories(self) -> None:
        """``history.csv`` (metrics) and ``history_timing.csv`` (timings); rank 0 only."""
        if not self.dist.is_main:
            return
        write_history(self.history, self.history_csv)
        write_history(self.timing, self.timing_csv)

    def _log_window(self, step: int, out: dict, bar: Any) -> None:
        """Add one step's losses to the logging window; at its end, write a history row."""
        progress = self.progress
        sums = progress["log_sums"]
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v
        progress["log_n"] += 1
        if step % self.log_every == 0 or step == self.total:
            n = progress["log_n"]
            row = {k: v / n for k, v in sums.items()}
            ips = n * self.batch_size / (time.perf_counter() - self._t_log)
            self.record("train", step, row, img_per_s=ips)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()})
            log.debug("step %d %s", step, row)
            progress["log_sums"], progress["log_n"] = {}, 0
            self._t_log = time.perf_counter()
