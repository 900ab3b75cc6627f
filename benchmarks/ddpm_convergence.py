"""DDPM recipe convergence on CPU: sample PSNR/SSIM/texture against training steps per recipe
and per prior (predict-and-refine), next to the regression U-Net trained the same way.

    snakemake --cores 2 dataset                      # builds results/demo/ (the demo's tiles)
    python benchmarks/ddpm_convergence.py            # eps, v, x0, each with Min-SNR off/on
    python benchmarks/ddpm_convergence.py --recipes sample sample+minsnr --eval-at 100 200 300
    python benchmarks/ddpm_convergence.py --recipes sample --priors none histmatch regress \
        --with-regress --regress-checkpoint results/demo/models/regress/best.pt

Every recipe trains the same tiny U-Net (the demo's ``ddpm.unet``) from the same seed on the same
batches (the demo's train split, random crops) with ``rocksr.training.ddpm_task.DDPMTask`` -- the code the
``train_ddpm`` rule runs -- and at each ``--eval-at`` step samples ``--n-tiles`` fixed test tiles
with DDIM (``--sampler-steps``) from the EMA weights and scores them on uint8/255 images with
``rocksr.evaluation.metrics`` (as Table 1), with the power-spectrum distance of Table 1's texture column.
``--priors``: each recipe again with ``ddpm.prior`` set (``regress`` takes the trained
``--regress-checkpoint``); ``--with-regress``: the regression U-Net (config.yaml's ``regress``
section) trained from the same seed on the same batches, scored at the same steps.  The same
tiles are scored for the identity, train-fitted histogram-matching and train-mean baselines,
printed first.  One table is printed at the end (Markdown, for docs/benchmarks.md) with the wall time of
training to each step.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

RECIPES = {
    "epsilon": {"prediction": "epsilon"},
    "epsilon+minsnr": {"prediction": "epsilon", "min_snr_gamma": 5.0},
    "v": {"prediction": "v"},
    "v+minsnr": {"prediction": "v", "min_snr_gamma": 5.0},
    "sample": {"prediction": "sample"},
    "sample+minsnr": {"prediction": "sample", "min_snr_gamma": 5.0},
}


def load_demo_ddpm_config(config: Path, section: str = "ddpm") -> dict:
    import yaml

    return dict(yaml.safe_load(config.read_text())[section])


def baselines(store: Path, splits: Path, mct_u8: np.ndarray, sem_u8: np.ndarray) -> dict:
    from rocksr.data.splits import split_tile_ids
    from rocksr.data.tilestore import open_tiles
    from rocksr.evaluation import metrics as M
    from rocksr.evaluation.baselines import apply_lut, fit_histmatch_lut, split_histograms

    lut, _ = fit_histmatch_lut(store, splits)
    _, h_sem = split_histograms(open_tiles(store), split_tile_ids(splits, "train"))
    mean_grey = int(round(float((np.arange(256) * h_sem).sum() / h_sem.sum())))
    truth = M.to_unit(sem_u8)
    preds = {
        "identity": mct_u8,
        "histmatch": apply_lut(mct_u8, lut),
        "mean": np.full_like(sem_u8, mean_grey),
    }
    return {k: score(v, truth) for k, v in preds.items()}


def score(pred_u8: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(PSNR, SSIM, power-spectrum distance) means over the tiles."""
    from rocksr.evaluation import metrics as M
    from rocksr.evaluation.spectrum import spectrum_distance

    p = M.to_unit(pred_u8)
    return (
        float(np.mean(np.atleast_1d(M.psnr(p, truth)))),
        float(np.mean(np.atleast_1d(M.ssim(p, truth)))),
        float(np.mean(np.atleast_1d(spectrum_distance(p, truth)))),
    )


def make_task(name: str, cfg: dict, sampler_steps: int, seed: int, store: Path, splits: Path):
    """The task a row trains: ``regress`` (the regression U-Net), else a DDPM recipe with
    an optional prior (``<recipe>, prior <p>``)."""
    from rocksr.training.ddpm_task import DDPMTask
    from rocksr.training.regress_task import RegressTask
    from rocksr.training.runtime import Runtime

    rt = Runtime({"precision": "fp32"}, torch.device("cpu"))
    if name == "regress":
        return RegressTask(cfg, rt, seed)
    recipe, _, prior = name.partition(", prior ")
    extra = {"prior": prior or "none"}  # a bare recipe name: no prior, whatever config.yaml says
    task = DDPMTask(
        {
            **cfg,
            **RECIPES[recipe],
            **extra,
            "val_sampler": "ddim",
            "val_sampler_steps": sampler_steps,
        },
        rt,
        seed,
    )
    task.prepare_data(store, splits)
    return task


def run_recipe(
    name: str,
    cfg: dict,
    store: Path,
    splits: Path,
    mct: torch.Tensor,
    sem_truth: np.ndarray,
    eval_at: list[int],
    sampler_steps: int,
    seed: int,
    batch_size: int,
) -> list[dict]:
    from rocksr.data.torchdata import TileDataset, epoch_seed, make_loader
    from rocksr.data.values import from_model
    from rocksr.training.runtime import seed_everything

    seed_everything(seed)
    task = make_task(name, cfg, sampler_steps, seed, store, splits)
    ds = TileDataset(store, splits, "train")
    loader = make_loader(ds, batch_size, {"num_workers": 0}, "cpu", seed, train=True)
    gen = torch.Generator().manual_seed(seed)
    rows, step, epoch, t_train = [], 0, 0, 0.0
    while step < max(eval_at):
        loader.sampler.set_epoch(epoch)
        loader.generator.manual_seed(epoch_seed(seed, epoch))
        for m, s in loader:
            t0 = time.perf_counter()
            out = task.train_step(m, s, gen)
            t_train += time.perf_counter() - t0
            step += 1
            if step in eval_at:
                t0 = time.perf_counter()
                pred = from_model(task.predict(mct))
                psnr, ssim, spectrum = score(pred, sem_truth)
                rows.append(
                    {
                        "recipe": name,
                        "step": step,
                        "train_s": t_train,
                        "psnr": psnr,
                        "ssim": ssim,
                        "spectrum": spectrum,
                        "loss": out["loss"],
                        "sample_s": time.perf_counter() - t0,
                    }
                )
                print(
                    f"  {name:16s} step {step:5d}  {t_train:7.1f} s  PSNR {psnr:6.2f}  "
                    f"SSIM {ssim:.3f}  spectrum {spectrum:.3f}  (train loss {out['loss']:.4f})",
                    flush=True,
                )
            if step >= max(eval_at):
                break
        epoch += 1
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results/demo"))
    ap.add_argument(
        "--config",
        type=Path,
        default=Path("config.yaml"),
        help="the DDPM section (U-Net, lr, crop, EMA...) comes from here",
    )
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument(
        "--priors",
        nargs="*",
        default=[],
        choices=["none", "histmatch", "regress"],
        help="run each recipe with each ddpm.prior (none = the recipe as it is)",
    )
    ap.add_argument("--regress-checkpoint", type=Path, default=None)
    ap.add_argument("--with-regress", action="store_true", help="also train the regression U-Net")
    ap.add_argument("--eval-at", nargs="+", type=int, default=[50, 100, 200, 300])
    ap.add_argument("--n-tiles", type=int, default=24)
    ap.add_argument("--sampler-steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="override ddpm keys, e.g. lr=1e-3 crop=64",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import json

    from rocksr.data.predstore import read_tiles
    from rocksr.data.splits import split_tile_ids
    from rocksr.data.tilestore import open_tiles
    from rocksr.data.values import to_model

    torch.set_num_threads(a.threads)
    store, splits = a.results / "dataset" / "tiles.zarr", a.results / "splits" / "splits.csv"
    if not store.exists() or not splits.exists():
        raise SystemExit(f"{store} or {splits} missing: run `snakemake --cores 2 dataset` first")
    cfg = load_demo_ddpm_config(a.config)
    regress_cfg = load_demo_ddpm_config(a.config, "regress") if a.with_regress else {}
    if "regress" in a.priors:
        ck = a.regress_checkpoint or a.results / "models" / "regress" / "best.pt"
        if not ck.is_file():
            raise SystemExit(
                f"{ck} missing: train the regress model first or pass --regress-checkpoint"
            )
        cfg["prior_checkpoint"] = str(ck)
    for kv in a.set:
        k, _, v = kv.partition("=")
        cfg[k] = json.loads(v)
    bs = int(a.batch_size or cfg.get("batch_size", 8))
    group = open_tiles(store)
    test = split_tile_ids(splits, "test")
    sel = test[
        np.sort(
            np.random.default_rng(a.seed).choice(
                len(test), min(a.n_tiles, len(test)), replace=False
            )
        )
    ]
    mct_u8, sem_u8 = read_tiles(group, "mct", sel), read_tiles(group, "sem", sel)
    from rocksr.evaluation import metrics as M

    truth = M.to_unit(sem_u8)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {len(sel)} test tiles of {mct_u8.shape[-1]} px; "
        f"DDIM {a.sampler_steps} steps from the EMA weights; batch {bs}; "
        f"ddpm config: { {k: cfg[k] for k in sorted(cfg) if k not in ('unet',)} }"
    )
    base = baselines(store, splits, mct_u8, sem_u8)
    for k, (p, s, d) in base.items():
        print(f"  baseline {k:10s} PSNR {p:6.2f}  SSIM {s:.3f}  spectrum {d:.3f}")
    names = [
        f"{n}, prior {p}" if p != "none" else n for n in a.recipes for p in a.priors or ["none"]
    ]
    if a.with_regress:
        names.append("regress")
    rows = []
    for name in names:
        rows += run_recipe(
            name,
            regress_cfg if name == "regress" else cfg,
            store,
            splits,
            to_model(mct_u8),
            truth,
            sorted(a.eval_at),
            a.sampler_steps,
            a.seed,
            bs,
        )
    print("\n| recipe | " + " | ".join(f"{s} steps" for s in sorted(a.eval_at)) + " |")
    print("|---|" + "---|" * len(a.eval_at))
    for k, (p, s, d) in base.items():
        cell = f"{p:.2f} / {s:.3f} / {d:.2f}"
        print(f"| {k} (baseline) | " + " | ".join(cell for _ in a.eval_at) + " |")
    for name in names:
        r = [x for x in rows if x["recipe"] == name]
        print(
            f"| {name} | "
            + " | ".join(
                f"{x['psnr']:.2f} / {x['ssim']:.3f} / {x['spectrum']:.2f} ({x['train_s']:.0f} s)"
                for x in r
            )
            + " |"
        )
    print(
        "\nCells: PSNR (dB) / SSIM / power-spectrum distance (decades) of one sample per tile "
        "(the regression U-Net: its prediction), and the training wall time to that step."
    )


if __name__ == "__main__":
    main()
