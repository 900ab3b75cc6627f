"""Quality vs. cost of the DDPM samplers: PSNR / SSIM / seconds per image vs. number of steps.

On a fixed subset of test tiles (``n_tiles`` positions drawn with ``default_rng(seed)``, sorted),
each configured (sampler, steps) pair samples every tile with the same per-batch generators
(:func:`rocksr.inference.batch_generator`), and the result is scored against the ground truth with
:mod:`rocksr.evaluation.metrics` on uint8/255 images, as in the main evaluation.  ``ancestral`` always runs
all T steps (``steps`` null).  Time is wall-clock sampling time (model on ``device``, CUDA
synchronised, after one warm-up call) divided by the number of tiles.  The samplers use the
checkpoint's ``prediction`` and ``threshold`` (via :func:`rocksr.inference.make_predictor`).

Every row also carries its gap to the ``ancestral`` row, ``psnr_gap_to_ancestral`` (dB) and
``ssim_gap_to_ancestral`` (row minus ancestral: negative = worse than ancestral), and
``speedup_vs_ancestral`` (ancestral seconds per image / the row's); all NaN without an ancestral
row.  :func:`sampler_study_markdown` writes them as a Markdown table and names the cheapest
(sampler, steps) whose mean PSNR is within ``tolerance_db`` (0.3 dB) of ancestral, cost being the
number of network evaluations (= steps for all three samplers), ties going to the higher PSNR.

The timing columns (:data:`TIMING_COLUMNS`) are written apart from the CSV of the results
(:func:`rocksr.timing.write_with_timing`: ``sampler_study_timing.csv``, by ``sampler, steps``),
so that the results CSV is the same byte for byte wherever and whenever the study runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from rocksr.config.evaluate import SamplerStudy
from rocksr.data.predshards import check_shard
from rocksr.data.values import from_model, to_model
from rocksr.evaluation import metrics as M
from rocksr.inference import batch_generator, make_predictor

DEFAULT_CONFIGS: list[dict] = SamplerStudy().configs
# what the study measures of the machine, and the columns that name a row
TIMING_COLUMNS = ("sec_per_image", "speedup_vs_ancestral")
ROW_KEYS = ("sampler", "steps")
# a shard's rows: the position of each configuration in the whole study
CONFIG_POSITION = "config_position"
# the columns of :func:`run_sampler_study`'s rows, in order
ROW_COLUMNS = (
    "sampler",
    "steps",
    "n_tiles",
    "psnr_mean",
    "psnr_std",
    "psnr_n_inf",
    "ssim_mean",
    "ssim_std",
    "sec_per_image",
    "device",
    "batch_size",
)


def expand_configs(configs: list[dict] | None, timesteps: int) -> list[tuple[str, int | None]]:
    """[{sampler, steps: int | list | null}] -> [(sampler, steps)]; ancestral gets (…, None)."""
    out: list[tuple[str, int | None]] = []
    for c in configs if configs is not None else DEFAULT_CONFIGS:
        s = c["sampler"]
        steps = c.get("steps")
        if s == "ancestral":
            if steps not in (None, timesteps) and steps != [timesteps]:
                raise ValueError(f"ancestral sampling runs all T={timesteps} steps; set steps null")
            out.append((s, None))
            continue
        for n in steps if isinstance(steps, list | tuple) else [steps]:
            out.append((s, None if n is None else int(n)))
    return out


def shard_configs(
    configs: list[tuple[str, int | None]], index: int, count: int, timesteps: int
) -> list[int]:
    """The positions in ``configs`` of shard ``index`` (1-based) of ``count``, in order: the
    configurations dealt out by cost, the network evaluations (``timesteps`` for ancestral),
    largest first, each to the shard with the least cost so far (the lower index on a tie), so
    that ancestral sampling gets a shard of its own; a shard may be empty."""
    check_shard(index, count)
    costs = [timesteps if steps is None else int(steps) for _, steps in configs]
    load, owner = [0] * count, [0] * len(configs)
    for pos in sorted(range(len(configs)), key=lambda i: (-costs[i], i)):
        shard = min(range(count), key=lambda j: (load[j], j))
        load[shard] += costs[pos]
        owner[pos] = shard + 1
    return [pos for pos in range(len(configs)) if owner[pos] == index]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_sampler_study(
    model: Any,
    cfg: dict,
    mct: np.ndarray,
    sem: np.ndarray,
    configs: list[dict] | None = None,
    seed: int = 0,
    batch_size: int = 8,
    device: str = "cpu",
    shard: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Score a loaded DDPM on uint8 tiles ``mct``/``sem`` (N,S,S) for every (sampler, steps),
    or for those of ``shard = (i, n)`` only (:func:`shard_configs`; its rows carry their
    ``config_position``). Each configuration is seeded alone (per batch), so a shard's rows are
    those of the whole study."""
    schedule = cfg.get("schedule") or (cfg.get("ddpm") or {}).get("schedule") or {}
    timesteps = int(schedule.get("timesteps", 1000))
    truth = M.to_unit(sem)
    rows = []
    warm = make_predictor("ddpm", model, cfg, sampler="ddim", steps=1)
    warm(to_model(mct[:1], device), batch_generator(seed, 0, device))
    todo = list(enumerate(expand_configs(configs, timesteps)))
    if shard is not None:
        mine = shard_configs([c for _, c in todo], *shard, timesteps)
        todo = [todo[pos] for pos in mine]
    for position, (sampler, steps) in todo:
        run = make_predictor("ddpm", model, cfg, sampler=sampler, steps=steps)
        preds = []
        _sync(device)
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, len(mct), batch_size)):
            x = to_model(mct[start : start + batch_size], device)
            preds.append(from_model(run(x, batch_generator(seed, b, device))))
        _sync(device)
        dt = time.perf_counter() - t0
        pred = M.to_unit(np.concatenate(preds))
        ps = M.summarize(np.atleast_1d(M.psnr(pred, truth)))
        ss = M.summarize(np.atleast_1d(M.ssim(pred, truth)))
        rows.append(
            {
                "sampler": sampler,
                "steps": timesteps if steps is None else steps,
                "n_tiles": len(mct),
                "psnr_mean": ps["mean"],
                "psnr_std": ps["std"],
                "psnr_n_inf": ps["n_inf"],
                "ssim_mean": ss["mean"],
                "ssim_std": ss["std"],
                "sec_per_image": dt / len(mct),
                "device": device,
                "batch_size": batch_size,
                CONFIG_POSITION: position,
            }
        )
    df = pd.DataFrame(rows, columns=[*ROW_COLUMNS, CONFIG_POSITION])
    # a shard's rows keep their positions (the gather puts them back in order)
    return df if shard is not None else df.drop(columns=CONFIG_POSITION)


def add_ancestral_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with ``psnr_gap_to_ancestral``, ``ssim_gap_to_ancestral`` (row minus
    the first ``ancestral`` row) and ``speedup_vs_ancestral`` (ancestral seconds per image /
    row's); NaN in every row when there is no ancestral row."""
    out = df.copy()
    anc = out[out["sampler"] == "ancestral"]
    if anc.empty:
        for c in ("psnr_gap_to_ancestral", "ssim_gap_to_ancestral", "speedup_vs_ancestral"):
            out[c] = math.nan
        return out
    a = anc.iloc[0]
    out["psnr_gap_to_ancestral"] = out["psnr_mean"] - a["psnr_mean"]
    out["ssim_gap_to_ancestral"] = out["ssim_mean"] - a["ssim_mean"]
    sec = out["sec_per_image"].astype(float)
    out["speedup_vs_ancestral"] = float(a["sec_per_image"]) / sec.where(sec > 0)
    return out


def cheapest_within(df: pd.DataFrame, tolerance_db: float = 0.3) -> pd.Series | None:
    """The row with the fewest steps whose PSNR gap to ancestral is >= ``-tolerance_db``
    (ties: higher PSNR, then less time); None without an ancestral row or a finite PSNR."""
    if "psnr_gap_to_ancestral" not in df.columns:
        df = add_ancestral_gaps(df)
    ok = df[
        df["psnr_gap_to_ancestral"].notna() & (df["psnr_gap_to_ancestral"] >= -float(tolerance_db))
    ]
    if ok.empty:
        return None
    order = ok.assign(_neg_psnr=-ok["psnr_mean"]).sort_values(
        ["steps", "_neg_psnr", "sec_per_image"], kind="stable"
    )
    return order.iloc[0].drop("_neg_psnr")


def _f(v: Any, fmt: str, signed: bool = False) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(x):
        return "n/a"
    return f"{x:+{fmt}}" if signed else f"{x:{fmt}}"


def _times(v: Any) -> str:
    text = _f(v, ".1f")
    return text if text == "n/a" else f"{text}×"


def sampler_study_markdown(df: pd.DataFrame, tolerance_db: float = 0.3) -> str:
    """The study as a Markdown table plus one sentence naming the cheapest (sampler, steps)
    within ``tolerance_db`` of ancestral on mean PSNR (or why there is none)."""
    if "psnr_gap_to_ancestral" not in df.columns:
        df = add_ancestral_gaps(df)
    lines = [
        "| Sampler | Steps | PSNR (dB) | SSIM | s / image | PSNR gap to ancestral (dB) | "
        "SSIM gap to ancestral | speed-up vs ancestral |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in df.itertuples(index=False):
        lines.append(
            f"| {r.sampler} | {int(r.steps)} | {_f(r.psnr_mean, '.2f')} ± {_f(r.psnr_std, '.2f')} "
            f"| {_f(r.ssim_mean, '.3f')} ± {_f(r.ssim_std, '.3f')} | {_f(r.sec_per_image, '.3g')} "
            f"| {_f(r.psnr_gap_to_ancestral, '.2f', True)} "
            f"| {_f(r.ssim_gap_to_ancestral, '.3f', True)} "
            f"| {_times(r.speedup_vs_ancestral)} |"
        )
    lines.append("")
    anc = df[df["sampler"] == "ancestral"]
    tol = float(tolerance_db)
    if anc.empty:
        lines.append(
            "No ancestral row: gaps and speed-ups are n/a, and no sampler can be "
            f"checked against ancestral within {tol:g} dB."
        )
    else:
        a = anc.iloc[0]
        best = cheapest_within(df, tol)
        if best is None:
            lines.append(f"No sampler has a finite mean PSNR within {tol:g} dB of ancestral.")
        elif best["sampler"] == "ancestral":
            lines.append(
                f"Cheapest within {tol:g} dB of ancestral (mean PSNR): ancestral "
                f"itself ({int(best['steps'])} steps): no faster sampler comes within "
                f"{tol:g} dB of its {_f(a['psnr_mean'], '.2f')} dB."
            )
        else:
            lines.append(
                f"Cheapest within {tol:g} dB of ancestral (mean PSNR): **{best['sampler']}, "
                f"{int(best['steps'])} steps**: {_f(best['psnr_mean'], '.2f')} dB "
                f"({_f(best['psnr_gap_to_ancestral'], '.2f', True)} dB vs ancestral "
                f"{_f(a['psnr_mean'], '.2f')} dB, {int(a['steps'])} steps; SSIM gap "
                f"{_f(best['ssim_gap_to_ancestral'], '.3f', True)}), "
                f"{_times(best['speedup_vs_ancestral'])} faster."
            )
    n = int(df["n_tiles"].iloc[0]) if len(df) else 0
    dev = str(df["device"].iloc[0]) if "device" in df.columns and len(df) else "?"
    lines += [
        "",
        f"Mean ± std over {n} test tiles; cost = network evaluations (steps), ties to "
        f"the higher PSNR; seconds per image measured on {dev}. Gaps are row minus "
        "ancestral (negative = worse).",
    ]
    return "\n".join(lines) + "\n"
