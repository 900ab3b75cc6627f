"""Training curves: each model's losses and validation scores against steps (``loss_curve``,
``training_curves.png``)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rocksr.files import save_figure


def plot_curves(
    history: list[dict],
    path: Path,
    kind: str,
    panels: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...],
    log_loss: bool = False,
) -> None:
    """Loss curves of a model of ``kind``: one panel per ``(title, train columns, validation
    columns)``, training losses thin and validation values with markers, against step;
    ``log_loss``: the panel titled "loss" on a log scale."""

    import matplotlib.pyplot as plt
    import pandas as pd

    from rocksr.files import save_figure

    df = pd.DataFrame(history)
    tr = df[df["phase"] == "train"] if len(df) else df
    va = df[df["phase"] == "val"] if len(df) else df
    if not panels:
        raise ValueError(f"plot_curves: no panels for kind {kind!r}")
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, tcols, vcols) in zip(axes[0], panels, strict=True):
        for c in tcols:
            if c in tr:
                ax.plot(tr["step"], tr[c], lw=1, label=f"train {c}")
        for c in vcols:
            if c in va and va[c].notna().any():
                ax.plot(va["step"], va[c], "o-", ms=3, label=c)
        ax.set_title(f"{kind}: {title}")
        ax.set_xlabel("step")
        if log_loss and title == "loss":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _x_column(df: pd.DataFrame) -> str | None:
    for c in ("step", "epoch"):
        if c in df.columns:
            return c
    return None


_SKIP_COLS = {"step", "epoch", "batch_in_epoch", "time", "wall_s", "seconds", "img_per_s"}


def _is_skipped(col: str) -> bool:
    c = col.lower()
    return c in _SKIP_COLS or c.startswith("gpu_") or c.endswith("_mb") or c.startswith("lr")


def plot_training_curves(
    histories: dict[str, str | os.PathLike], out_png: str | os.PathLike, logy: bool | None = None
) -> None:
    """One panel per model history CSV: every numeric loss-like column against ``step``.

    Columns ``step, epoch, lr*, img_per_s, gpu_*`` are not drawn (the learning rate goes on a
    dashed secondary axis).  With a ``phase`` column (train/val rows) each column is drawn per
    phase, validation rows with markers.  ``logy=None``: log scale when every drawn value > 0.
    """
    items = [(k, Path(v)) for k, v in histories.items() if v is not None]
    if not items:
        raise ValueError("plot_training_curves: no history files given")
    fig, axes = plt.subplots(1, len(items), figsize=(6 * len(items), 4), squeeze=False)
    from rocksr.files import read_table

    for ax, (name, path) in zip(axes[0], items, strict=True):
        df = read_table(path, f"{name} training history")
        xcol = _x_column(df)
        if xcol is None:
            df = df.assign(row=np.arange(len(df)))
            xcol = "row"
        phases = list(dict.fromkeys(df["phase"])) if "phase" in df.columns else [None]
        num = [c for c in df.select_dtypes("number").columns if c != xcol and not _is_skipped(c)]
        drawn: list[np.ndarray] = []
        for ph in phases:
            d = df if ph is None else df[df["phase"] == ph]
            for c in num:
                ok = d[c].notna().to_numpy()
                if not ok.any():
                    continue
                is_val = "val" in c.lower() or (ph is not None and str(ph) == "val")
                label = c if ph is None or c.lower().startswith(str(ph)) else f"{ph} {c}"
                ax.plot(
                    d[xcol][ok],
                    d[c][ok],
                    marker="o" if is_val else None,
                    ms=3,
                    lw=1.5 if is_val else 0.8,
                    label=label,
                )
                drawn.append(d[c][ok].to_numpy(dtype=float))
        lr_cols = [c for c in df.select_dtypes("number").columns if c.lower().startswith("lr")]
        if lr_cols:
            ax2 = ax.twinx()
            for c in lr_cols:
                ok = df[c].notna().to_numpy()
                ax2.plot(df[xcol][ok], df[c][ok], color="0.6", ls="--", lw=0.8, label=c)
            ax2.set_ylabel("learning rate")
            ax2.legend(loc="upper center", fontsize="x-small")
        vals = np.concatenate(drawn) if drawn else np.array([])
        if (logy is None and vals.size and (vals > 0).all()) or logy:
            ax.set_yscale("log")
        ax.set_xlabel(xcol)
        ax.set_ylabel("loss")
        ax.set_title(f"{name} training history")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    save_figure(fig, out_png)
