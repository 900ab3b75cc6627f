"""What each trained model was given: the budget table beside Table 1.

One row per trained model: parameters (the networks inference runs, and all trained networks),
training steps, batch size, pixels per training image (the crop, else the tile), images and
pixels seen, training wall time (the trainer's ``wall_s`` in ``history_timing.csv``, validation
included and summed over resumptions; ``train_seconds_last_job`` is Snakemake's benchmark ``s``
of the training rule, which covers only the last attempt of a resumed training), and
inference seconds per tile and sample (the prediction rule's benchmark ``s`` divided by tiles x
samples; it includes loading the model and the tiles). A comparison of two models means little
unless their budgets are alike: :func:`budget_findings` says in words wherever the models' own
training wall times differ by more than ``BUDGET_TOLERANCE``, and what a DDPM that refines the
regress model's prediction was given in all (its own training plus that model's).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import pandas as pd

BUDGET_TOLERANCE = 1.25


def read_benchmark_seconds(path: str | os.PathLike) -> float:
    """Wall seconds ``s`` of a Snakemake benchmark file (the first row)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: benchmark file does not exist")
    df = pd.read_csv(path, sep="\t")
    if "s" not in df.columns or df.empty:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column)")
    return float(df["s"].iloc[0])


def model_budget(
    name: str,
    checkpoint: str | os.PathLike,
    history: str | os.PathLike,
    train_benchmark: str | os.PathLike | None = None,
    predict_benchmark: str | os.PathLike | None = None,
    predictions: str | os.PathLike | None = None,
    timing: str | os.PathLike | None = None,
) -> dict:
    """The budget row of one trained model (see the module docstring); ``history``: its
    ``history.csv`` (the steps), ``timing``: its ``history_timing.csv`` (the wall time)."""
    from rocksr.checkpoints import load_checkpoint
    from rocksr.data.predstore import open_predictions
    from rocksr.models.registry import get_kind

    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    kind = get_kind(ckpt["kind"])
    cfg = ckpt["config"]

    def n_params(names: list[str]) -> int:
        return int(
            sum(v.numel() for n in names for v in ckpt["models"][n].values() if hasattr(v, "numel"))
        )

    hist = pd.read_csv(history)
    steps = int(hist["step"].max()) if len(hist) else 0
    crop = cfg.get("crop")
    side = int(crop) if crop else int(ckpt.get("tile_size") or 0)
    batch = int(cfg["batch_size"])
    row = {
        "model": name,
        "kind": kind.name,
        "parameters": n_params(list(kind.inference_networks or ckpt["models"])),
        "parameters_trained": n_params(list(ckpt["models"])),
        "steps": steps,
        "batch_size": batch,
        "train_pixels_per_image": side * side,
        "images_seen": steps * batch,
        "pixels_seen": steps * batch * side * side,
        "train_seconds": math.nan,
        "inference_s_per_tile": math.nan,
        "prior": (ckpt.get("prior") or {}).get("kind", "none") if kind.stochastic else None,
    }
    # a DDPM refining a trained model was given that model's training too
    row["builds_on"] = row["prior"] if row["prior"] == "regress" else None
    # the trainer's own count, summed over resumptions; a resumed job's benchmark covers only
    # its last attempt, so it is the fallback (no timing file, or one older than the count)
    wall = pd.read_csv(timing)["wall_s"] if timing is not None else None
    if wall is not None and wall.notna().any():
        row["train_seconds"] = float(wall.max())
    elif train_benchmark is not None:
        row["train_seconds"] = read_benchmark_seconds(train_benchmark)
    row["train_seconds_last_job"] = (
        read_benchmark_seconds(train_benchmark) if train_benchmark is not None else math.nan
    )
    if predict_benchmark is not None and predictions is not None:
        arr, attrs = open_predictions(predictions)
        calls = int(arr.shape[0]) * int(attrs.get("n_samples", 1))
        row["inference_s_per_tile"] = read_benchmark_seconds(predict_benchmark) / max(calls, 1)
    return row


def budget_table(rows: list[dict]) -> pd.DataFrame:
    """The rows, with ``train_seconds_total``: a model's own training wall time plus that of
    the model it builds on (a DDPM refining the regress model's prior)."""
    df = pd.DataFrame(rows)
    own = dict(zip(df["kind"], df["train_seconds"], strict=False))
    df["train_seconds_total"] = [
        t + (own.get(b, math.nan) if isinstance(b, str) else 0.0)
        for t, b in zip(df["train_seconds"], df["builds_on"], strict=True)
    ]
    return df


def budget_findings(table: pd.DataFrame, tolerance: float = BUDGET_TOLERANCE) -> list[str]:
    """Sentences: every pair of models whose own training wall times differ by more than
    ``tolerance`` (or one sentence saying that all are within it), then, for a model that refines
    another's output, its budget with that model's training included."""
    t = table.dropna(subset=["train_seconds"])
    t = t[t["train_seconds"] > 0]
    if len(t) < 2:
        return []
    lines = []
    rows = list(t.itertuples(index=False))
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            hi, lo = (a, b) if a.train_seconds >= b.train_seconds else (b, a)
            ratio = hi.train_seconds / lo.train_seconds
            if ratio > tolerance:
                lines.append(
                    f"⚠ Unequal budgets: {hi.model} trained {ratio:.1f}× as long as {lo.model} "
                    f"({hi.train_seconds:.0f} s vs {lo.train_seconds:.0f} s wall, {hi.steps} vs "
                    f"{lo.steps} steps); their difference in Table 1 is partly one of budget."
                )
    if not lines:
        lo, hi = t["train_seconds"].min(), t["train_seconds"].max()
        lines.append(
            f"Training budgets are alike: wall times {lo:.0f}–{hi:.0f} s (within "
            f"{tolerance:g}× of each other)."
        )
    for r in rows:
        b = getattr(r, "builds_on", None)
        if isinstance(b, str) and not math.isnan(float(r.train_seconds_total)):
            lines.append(
                f"{r.model} refines the {b} model's prediction: with that model's training its "
                f"budget is {r.train_seconds_total:.0f} s wall ({r.train_seconds:.0f} s + "
                f"{r.train_seconds_total - r.train_seconds:.0f} s)."
            )
    return lines


def budget_markdown(table: pd.DataFrame) -> str:
    """The budget table and its findings, as Markdown."""
    lines = [
        "| Model | parameters (inference / trained) | steps × batch | pixels per image "
        "| pixels seen | training wall (s) | inference s / tile / sample |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.itertuples(index=False):
        prior = f", prior {r.prior}" if isinstance(r.prior, str) and r.prior != "none" else ""
        lines.append(
            f"| {r.model}{prior} | {r.parameters:,} / {r.parameters_trained:,} | "
            f"{r.steps:,} × {r.batch_size} | {int(r.train_pixels_per_image):,} | "
            f"{float(r.pixels_seen):.3g} | {_num(r.train_seconds, '.0f')}{_plus(r)} | "
            f"{_num(r.inference_s_per_tile, '.3f')} |"
        )
    lines += [""] + [f"- {f}" for f in budget_findings(table)]
    return "\n".join(lines) + "\n"


def _plus(r) -> str:
    """`` (+ N s regress)`` for a model that refines another's output."""
    b = getattr(r, "builds_on", None)
    if not isinstance(b, str):
        return ""
    extra = float(r.train_seconds_total) - float(r.train_seconds)
    return f" (+ {_num(extra, '.0f')} s {b})"


def _num(v: float, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{fmt}}"


def collect_budget(
    checkpoints: Mapping[str, str],
    histories: Mapping[str, str],
    train_benchmarks: Mapping[str, str] | None = None,
    predict_benchmarks: Mapping[str, str] | None = None,
    predictions: Mapping[str, str] | None = None,
    timings: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The budget table of every model in ``checkpoints`` (the other maps by the same names)."""
    rows = []
    for name, ckpt in checkpoints.items():
        if name not in histories:
            raise ValueError(f"budget: no history given for model {name!r}")
        rows.append(
            model_budget(
                name,
                ckpt,
                histories[name],
                (train_benchmarks or {}).get(name),
                (predict_benchmarks or {}).get(name),
                (predictions or {}).get(name),
                (timings or {}).get(name),
            )
        )
    return budget_table(rows)
