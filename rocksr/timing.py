"""Timings apart from results: what a run measures of its machine is never in a result file.

A result (a checkpoint, ``history.csv``, a prediction store, an enhanced image, a study's CSV)
depends on the config, the code and the inputs alone, so the same config run in two folders
writes it byte for byte. What depends on the machine's speed or load (seconds, images or
megapixels per second, GPU memory) or on where the run happened (the working directory) goes
to a file of its own, named in ``docs/outputs.md`` (section "Timings and locations"): a table's
timing columns to ``<name>_timing.csv`` beside it (:func:`timing_path`, :func:`write_with_timing`),
the trainer's wall time to ``state/<kind>/timing.json`` and ``models/<kind>/history_timing.csv``,
``rocksr enhance``'s to its JSON report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TIMING_SUFFIX = "_timing"


def timing_path(path: str | os.PathLike) -> Path:
    """``<stem>_timing<suffix>`` beside ``path``: where the timing columns of a table go."""
    p = Path(path)
    return p.with_name(f"{p.stem}{TIMING_SUFFIX}{p.suffix}")


def split_timing(df: Any, columns: Sequence[str], keys: Sequence[str]) -> tuple[Any, Any]:
    """``(results, timing)`` of a DataFrame: ``df`` without ``columns``, and the ``keys`` that
    identify a row followed by the ``columns`` present."""
    timed = [c for c in columns if c in df.columns]
    return df.drop(columns=timed), df[[*keys, *timed]]


def write_with_timing(
    df: Any,
    path: str | os.PathLike,
    columns: Sequence[str],
    keys: Sequence[str],
    timing: str | os.PathLike | None = None,
) -> None:
    """Write ``df`` without its timing ``columns`` to ``path`` and ``keys`` + ``columns`` to
    ``timing`` (default :func:`timing_path` of ``path``), both as CSV, atomically."""
    from rocksr.files import write_table

    results, timed = split_timing(df, columns, keys)
    write_table(results, path)
    write_table(timed, timing if timing is not None else timing_path(path))
