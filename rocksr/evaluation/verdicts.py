"""Table 1's verdicts in words: which row is best, how each model compares with the baselines,
and which model cells are no better than a constant image.

:func:`table1_findings` returns the flagged cells and the sentences that go under Table 1
(:mod:`rocksr.evaluation.table1_markdown`): a "⚠" flag on every model cell whose SSIM or PSNR
mean is below the ``mean`` baseline's (the constant mean-grey image,
:mod:`rocksr.evaluation.baselines`), or whose pore-phase error is above it, with a sentence
naming the model, the metric and both numbers; then which row is best on PSNR and on SSIM
(distortion) and on the texture columns, and how every model compares with the best baseline.
:func:`pore_mode_sentence` says whether the pore-phase columns mean anything.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rocksr.config.choices import is_baseline

#: Name of the constant mean-grey baseline that Table 1 flags models against.
MEAN_BASELINE = "mean"

_METRICS = (("psnr", "PSNR"), ("ssim", "SSIM"))
# the pore-phase columns, where lower is better: (column stem, label, number format)
ROCK_ERRORS = (
    ("porosity_abs_err", "abs. porosity error", ".4f"),
    ("s2_distance", "S2 distance", ".3f"),
    ("chord_distance", "chord W1", ".2f"),
)


def as_number(value: Any, default: float = math.nan) -> float:
    """``value`` as a float; ``default`` when it is None, not a number or NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(v) else v


def mostly_infinite(row: Any, stem: str) -> bool:
    """Whether a row's distance column was infinite (pores in only one of prediction and truth)
    on more than half of its tiles: its mean is then over a few tiles that other rows' means are
    not (a constant image has no pores: its chord W1 is 0 on the few pore-free tiles and inf
    elsewhere), so it is neither ranked nor used to flag other rows."""
    n_inf = as_number(getattr(row, f"{stem}_n_inf", 0), 0.0)
    count = as_number(getattr(row, "count", math.nan))
    return bool(n_inf) and not math.isnan(count) and n_inf > count / 2


def column_mean(row: Any, stem: str) -> float:
    """A row's mean of a lower-is-better column for ranking and flags: NaN (not comparable) when
    unknown or :func:`mostly_infinite`."""
    return (
        math.nan
        if mostly_infinite(row, stem)
        else as_number(getattr(row, f"{stem}_mean", math.nan))
    )


def _label(row: Any) -> str:
    """A Table 1 row's name as the sentences write it: ``histmatch (baseline)``."""
    return str(row.model) + (" (baseline)" if is_baseline(row) else "")


def _score(row: Any, metric: str) -> float:
    """A row's mean for ranking: NaN when unknown, +inf for a PSNR that is inf on every tile."""
    v = as_number(getattr(row, f"{metric}_mean"))
    if metric == "psnr" and math.isnan(v) and as_number(getattr(row, "psnr_n_inf", 0), 0.0) > 0:
        return math.inf
    return v


def _fmt(metric: str, v: float) -> str:
    if metric == "psnr":
        return "∞ dB" if math.isinf(v) else f"{v:.2f} dB"
    return f"{v:.3f}"


def _constant_image_findings(
    rows: list, models: list[int], bases: list[int], rock: bool = True
) -> tuple[set[tuple[int, str]], list[str]]:
    """Model cells worse than the constant ``mean`` baseline: (flags, one sentence per flag);
    ``rock``: also the pore-phase columns (lower is better)."""
    flags: set[tuple[int, str]] = set()
    lines: list[str] = []
    ref = next((rows[i] for i in bases if rows[i].model == MEAN_BASELINE), None)
    if ref is None:
        if models:
            lines.append(
                f"No `{MEAN_BASELINE}` baseline in this table: the models are not checked "
                "against a constant image."
            )
        return flags, lines
    for i in models:
        for metric, label in _METRICS:
            v, c = _score(rows[i], metric), _score(ref, metric)
            if not (math.isnan(v) or math.isnan(c)) and v < c:
                flags.add((i, metric))
                lines.append(
                    f"⚠ {rows[i].model}: {label} {_fmt(metric, v)} is below the constant "
                    f"mean-grey image ({_fmt(metric, c)}) — no better than predicting a "
                    "constant."
                )
        for metric, label, fmt in ROCK_ERRORS if rock else ():
            v, c = column_mean(rows[i], metric), column_mean(ref, metric)
            if not (math.isnan(v) or math.isnan(c)) and v > c:
                flags.add((i, metric))
                lines.append(
                    f"⚠ {rows[i].model}: {label} {v:{fmt}} is worse than the constant "
                    f"mean-grey image's ({c:{fmt}})."
                )
    return flags, lines


def table1_findings(
    table: pd.DataFrame, rock: bool = True
) -> tuple[set[tuple[int, str]], list[str]]:
    """(flagged cells, sentences) for Table 1.

    A cell ``(row position, "psnr" | "ssim")`` is flagged when a model row (``kind !=
    "baseline"``) has a mean below the ``mean`` baseline's, and with ``rock`` a pore-phase cell
    (``porosity_abs_err``, ``s2_distance``, ``chord_distance``) when its mean is above it.  The sentences say, in this order:
    one per flagged cell (model, metric, both numbers), which row is best on PSNR and on SSIM,
    whether a model or a baseline is best on each, and for every model how it compares with the
    best baseline on each metric.  Rows whose metric is unknown (NaN) are left out of the
    comparisons; a PSNR that is infinite on every tile ranks as +inf.
    """
    rows = list(table.itertuples(index=False))
    models = [i for i, r in enumerate(rows) if not is_baseline(r)]
    bases = [i for i, r in enumerate(rows) if is_baseline(r)]
    flags, lines = _constant_image_findings(rows, models, bases, rock)

    def best_of(idx: list[int], metric: str) -> int | None:
        cand = [(i, _score(rows[i], metric)) for i in idx]
        cand = [(i, v) for i, v in cand if not math.isnan(v)]
        return max(cand, key=lambda t: t[1])[0] if cand else None  # first row wins a tie

    best_parts = []
    for metric, label in _METRICS:
        b = best_of(list(range(len(rows))), metric)
        if b is None:
            best_parts.append(f"best {label}: n/a")
            continue
        who = _label(rows[b])
        best_parts.append(f"best {label}: {who} {_fmt(metric, _score(rows[b], metric))}")
    if rows:
        text = "; ".join(best_parts)
        lines.append("Distortion: " + text + ".")
        texture = _texture_sentence(rows, rock)
        if texture:
            lines.append(texture)
    for metric, label in _METRICS:
        bm, bb = best_of(models, metric), best_of(bases, metric)
        if bm is None or bb is None:
            continue
        vm, vb = _score(rows[bm], metric), _score(rows[bb], metric)
        if vm > vb:
            lines.append(
                f"On {label}, {rows[bm].model} beats every baseline (best baseline: "
                f"{rows[bb].model} {_fmt(metric, vb)})."
            )
        else:
            lines.append(
                f"No model beats the baselines on {label}: {rows[bb].model} "
                f"{_fmt(metric, vb)} ≥ the best model, {rows[bm].model} "
                f"{_fmt(metric, vm)}."
            )
    for i in models:
        parts = []
        for metric, label in _METRICS:
            bb = best_of(bases, metric)
            v = _score(rows[i], metric)
            if bb is None or math.isnan(v):
                continue
            vb = _score(rows[bb], metric)
            verdict = "beats" if v > vb else ("ties with" if v == vb else "does not beat")
            parts.append(
                f"{verdict} {rows[bb].model} on {label} ({_fmt(metric, v)} vs {_fmt(metric, vb)})"
            )
        if parts:
            lines.append(f"{rows[i].model}: " + "; ".join(parts) + ".")
    return flags, lines


# texture columns, lower is better: (column stem, label, number format, needs a pore mode)
_TEXTURE = (
    ("spectrum_distance", "power-spectrum distance", ".3f", False),
    ("s2_distance", "S2 distance", ".3f", True),
    ("chord_distance", "chord W1", ".2f", True),
)


def _texture_sentence(rows: list, rock: bool = True) -> str:
    """Which row is best (lowest) on each texture column, baseline or not."""
    parts = []
    for stem, label, fmt, pores in _TEXTURE:
        if pores and not rock:
            continue
        vals = [(i, column_mean(r, stem)) for i, r in enumerate(rows)]
        vals = [(i, v) for i, v in vals if not math.isnan(v)]
        if not vals:
            continue
        i, v = min(vals, key=lambda t: t[1])
        who = _label(rows[i])
        parts.append(f"best {label}: {who} {v:{fmt}}")
    return ("Texture: " + "; ".join(parts) + ".") if parts else ""


def pore_mode_sentence(pore_mode: dict) -> str:
    """What the train-split SEM histogram's pore-mode check (``pore_mode``:
    :func:`rocksr.evaluation.rock_metrics.bimodality`, ``configured`` when the config set the
    threshold) means for the pore-phase columns."""
    if pore_mode.get("configured"):
        return (
            "The pore-phase columns use the porosity threshold set in the config; the "
            "train-split SEM histogram check was not applied "
            f"({'it has a clear pore mode' if pore_mode.get('bimodal') else 'it has no clear pore mode'})."
        )
    if pore_mode.get("bimodal"):
        return (
            "The train-split SEM histogram has a clear pore mode "
            f"({pore_mode.get('reason', '')}), so the pore-phase columns are meaningful."
        )
    return (
        "⚠ The train-split SEM histogram has no clear pore mode "
        f"({pore_mode.get('reason', '')}): a threshold there splits two grey phases, not pores "
        "from grains, so porosity, S2 and chord columns are not shown. Set "
        "`evaluate.porosity_threshold` if you know the pore grey level."
    )
