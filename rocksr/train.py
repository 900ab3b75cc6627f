"""Training loops for the cGAN and the conditional DDPM, with exact resume.

``train()`` is the entry point (the CLI / Snakemake rule calls it).  A model-specific *task*
(``CGANTask``, ``DDPMTask``) owns the networks, optimizers and the maths of one step, one
validation pass and one batch of validation samples; the shared loop in ``train()`` owns data
order, validation/checkpoint cadence, logging, outputs and SIGTERM.

Exact resume: the data order is a pure function of (seed, epoch) (``rocksr.data.EpochSampler``),
training noise comes from a dedicated generator whose state is checkpointed, validation uses a
fresh fixed-seed generator each pass, and all other RNG states (python, numpy, torch, cuda) are
saved too.  On CPU an interrupted + resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rocksr.checkpoint import (
    FORMAT,
    CorruptCheckpointError,
    arch_signature,
    build_models,
    check_compatible,
    diff_keys,
    load_checkpoint,
    publish_checkpoint,
    save_atomic,
    schedule_config,
)
from rocksr.data import TileDataset, epoch_seed, make_loader
from rocksr.diffusion import (
    THRESHOLD_DEFAULTS,
    as_schedule,
    check_prediction,
    pixel_loss,
    q_sample,
    sample,
    threshold_config,
    training_loss,
    training_target,
)
from rocksr.ema import EMA
from rocksr.models.cgan import d_hinge_loss, g_loss

log = logging.getLogger("rocksr.train")

# Called after every optimizer step with the global step; tests use it to simulate a kill.
_after_step: Callable[[int], None] | None = None

VAL_SEED_OFFSET = 7919  # validation noise generator seed = seed + offset, fresh each pass


# --------------------------------------------------------------------------- runtime settings
def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (global state, for third-party code)
    torch.manual_seed(seed)


class Runtime:
    """Precision / memory format / compile choices from the config, resolved for a device.

    ``precision``: auto (bf16 autocast on CUDA with bf16 support, else fp32) | fp32 | bf16;
    ``channels_last``: auto (on CUDA) | true | false; ``compile``: false | true.
    """

    def __init__(self, cfg: dict, device: torch.device) -> None:
        self.device = device
        cuda = device.type == "cuda"
        prec = str(cfg.get("precision", "auto"))
        if prec == "auto":
            prec = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        if prec not in ("fp32", "bf16"):
            raise ValueError(f"precision must be auto | fp32 | bf16, got {prec!r}")
        self.precision = prec
        cl = cfg.get("channels_last", "auto")
        self.channels_last = cuda if cl == "auto" else bool(cl)
        self.compile = bool(cfg.get("compile", False))
        self.deterministic = bool(cfg.get("deterministic", False))
        if cuda:
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            if self.deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True, warn_only=True)

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def wrap(self, m: nn.Module) -> nn.Module:
        """The callable used for training (compiled when asked); weights stay shared with ``m``."""
        return torch.compile(m) if self.compile else m

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


# --------------------------------------------------------------------------- tasks
class CGANTask:
    """pix2pix-style cGAN: hinge D loss, G = -E[D(fake)] + lambda_L1 * L1 (seed §3.1)."""

    kind = "cgan"
    select_key = "val_l1"  # validation metric for the best checkpoint (lower is better)

    def __init__(self, cfg: dict, rt: Runtime, seed: int) -> None:
        self.cfg, self.rt = cfg, rt
        m = build_models("cgan", cfg)
        self.G, self.D = rt.prepare(m["G"]), rt.prepare(m["D"])
        self.G_fwd, self.D_fwd = rt.wrap(self.G), rt.wrap(self.D)
        lr = float(cfg.get("lr", 2e-4))
        betas = tuple(float(b) for b in cfg.get("betas", (0.5, 0.999)))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.lambda_l1 = float(cfg.get("lambda_l1", 100.0))

    def models(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def train_step(self, mct: torch.Tensor, sem: torch.Tensor, gen: torch.Generator) -> dict:
        self.G.train()
        self.D.train()
        with self.rt.autocast():
            fake = self.G_fwd(mct)
            # discriminator
            self.D.requires_grad_(True)
            loss_d = d_hinge_loss(
                self.D_fwd(mct, sem).float(), self.D_fwd(mct, fake.detach()).float()
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # generator (D frozen, as in pix2pix)
        self.D.requires_grad_(False)
        with self.rt.autocast():
            loss_g, adv, l1 = g_loss(
                self.D_fwd(mct, fake).float(), fake.float(), sem.float(), self.lambda_l1
            )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "g_adv": adv.item(),
            "g_l1": l1.item(),
        }

    @torch.no_grad()
    def validate(self, loader, max_batches: int | None) -> dict:
        self.G.eval()
        tot, n = 0.0, 0
        for i, (mct, sem) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            mct, sem = self.rt.batch(mct), self.rt.batch(sem)
            with self.rt.autocast():
                fake = self.G(mct)
            tot += torch.abs(fake.float() - sem.float()).mean(dim=(1, 2, 3)).sum().item()
            n += mct.shape[0]
        return {"val_l1": tot / max(n, 1)}

    def after_validation(self, metrics: dict) -> None:
        pass

    @torch.no_grad()
    def predict(self, mct: torch.Tensor) -> torch.Tensor:
        self.G.eval()
        with self.rt.autocast():
            return self.G(self.rt.batch(mct)).float()

    def lr(self) -> float:
        return float(self.opt_g.param_groups[0]["lr"])

    def state(self) -> dict:
        return {
            "models": {k: v.state_dict() for k, v in self.models().items()},
            "ema": None,
            "optimizers": {"G": self.opt_g.state_dict(), "D": self.opt_d.state_dict()},
            "schedulers": {},
        }

    def load(self, ckpt: dict) -> None:
        for k, m in self.models().items():
            m.load_state_dict(ckpt["models"][k])
        self.opt_g.load_state_dict(ckpt["optimizers"]["G"])
        self.opt_d.load_state_dict(ckpt["optimizers"]["D"])


# DDPM training defaults: the recipe rocksr recommends (see README, "Which DDPM recipe"); the
# seed's recipe is prediction epsilon, threshold none, select_on val_loss (configs/paper.yaml).
DDPM_DEFAULTS: dict = {
    "prediction": "sample",
    "threshold": dict(THRESHOLD_DEFAULTS),
    "min_snr_gamma": None,
    "select_on": "val_psnr",
    "val_sample_tiles": 8,
    "val_sampler": "ddim",
    "val_sampler_steps": 10,
    "crop": None,
    "warmup_steps": 0,
}
SELECT_ON = {"val_loss": "min", "val_psnr": "max", "val_ssim": "max"}


def ddpm_config(cfg: dict) -> dict:
    """The ``ddpm`` section with the settings that decide what the network predicts and how it
    is sampled filled in, so that the checkpoint records them (and a config that spells out a
    default trains the same experiment as one that leaves it out)."""
    out = {**cfg}
    for k in ("prediction", "threshold", "select_on"):
        out.setdefault(k, DDPM_DEFAULTS[k])
    out["prediction"] = check_prediction(str(out["prediction"]))
    out["threshold"] = threshold_config(out["threshold"])
    if out["select_on"] not in SELECT_ON:
        raise ValueError(
            f"ddpm.select_on must be one of {sorted(SELECT_ON)}, got {out['select_on']!r}"
        )
    return out


def random_crops(
    mct: torch.Tensor, sem: torch.Tensor, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size``x``size`` window of each (mct, sem) pair; offsets from ``gen``."""
    b, _, h, w = mct.shape
    if size >= h and size >= w:
        return mct, sem
    if size > h or size > w:
        raise ValueError(f"ddpm.crop {size} is larger than the {h}x{w} tiles")
    ys = torch.randint(0, h - size + 1, (b,), generator=gen, device=gen.device).tolist()
    xs = torch.randint(0, w - size + 1, (b,), generator=gen, device=gen.device).tolist()
    windows = list(enumerate(zip(ys, xs, strict=True)))
    mc = torch.stack([mct[i, :, y : y + size, x : x + size] for i, (y, x) in windows])
    sc = torch.stack([sem[i, :, y : y + size, x : x + size] for i, (y, x) in windows])
    return mc, sc


class DDPMTask:
    """Conditional DDPM (seed §3.2): the network on [x_t^sem, x^mct] predicts eps, v or x0
    (``prediction``); AdamW, gradient clipping, optional warm-up, plateau LR on the validation
    loss; validation = the deterministic loss plus PSNR/SSIM of sampled validation tiles."""

    kind = "ddpm"

    def __init__(self, cfg: dict, rt: Runtime, seed: int) -> None:
        cfg = ddpm_config(cfg)
        self.cfg, self.rt, self.seed = cfg, rt, seed
        self.net = rt.prepare(build_models("ddpm", cfg)["unet"])
        self.fwd = rt.wrap(self.net)
        self.schedule = as_schedule(schedule_config(cfg.get("schedule")))
        self.loss_kind = str(cfg.get("loss", "l1"))
        self.prediction = cfg["prediction"]
        self.threshold = cfg["threshold"]
        gamma = cfg.get("min_snr_gamma", DDPM_DEFAULTS["min_snr_gamma"])
        self.min_snr_gamma = None if gamma is None else float(gamma)
        crop = cfg.get("crop", DDPM_DEFAULTS["crop"])
        self.crop = None if crop is None else int(crop)
        self.grad_clip = cfg.get("grad_clip", 0.7)
        self.base_lr = float(cfg.get("lr", 5e-5))
        self.warmup = int(cfg.get("warmup_steps", DDPM_DEFAULTS["warmup_steps"]))
        self.opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=self.base_lr,
            weight_decay=float(cfg.get("weight_decay", 5e-4)),
        )
        pl = cfg.get("plateau") or {}
        self.use_plateau = bool(pl.get("enabled", True))
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt,
            mode="min",
            factor=float(pl.get("factor", 0.5)),
            patience=int(pl.get("patience", 5)),
            min_lr=float(pl.get("min_lr", 0.0)),
        )
        ema_cfg = cfg.get("ema") or {}
        self.ema = (
            EMA(self.net, float(ema_cfg.get("decay", 0.999)))
            if ema_cfg.get("enabled", True)
            else None
        )
        self.select_on = cfg["select_on"]
        self.select_mode = SELECT_ON[self.select_on]
        self.select_key = (
            ("val_loss_ema" if self.ema else "val_loss")
            if self.select_on == "val_loss"
            else self.select_on
        )
        self.sampler = str(cfg.get("val_sampler", DDPM_DEFAULTS["val_sampler"]))
        self.sampler_steps = cfg.get("val_sampler_steps", DDPM_DEFAULTS["val_sampler_steps"])
        self.steps_done = 0
        self.val_subset: tuple[torch.Tensor, torch.Tensor] | None = None

    def models(self) -> dict[str, nn.Module]:
        return {"unet": self.net}

    def eval_net(self) -> nn.Module:
        return self.ema.module if self.ema else self.net

    def _set_warmup_lr(self) -> None:
        """Linear warm-up over the first ``warmup_steps`` steps (then the plateau scheduler
        owns the learning rate)."""
        if self.warmup and self.steps_done < self.warmup:
            for g in self.opt.param_groups:
                g["lr"] = self.base_lr * (self.steps_done + 1) / self.warmup
        elif self.warmup and self.steps_done == self.warmup:
            for g in self.opt.param_groups:
                g["lr"] = self.base_lr

    def train_step(self, mct: torch.Tensor, sem: torch.Tensor, gen: torch.Generator) -> dict:
        self.net.train()
        if self.crop is not None:
            mct, sem = random_crops(mct, sem, self.crop, gen)
        self._set_warmup_lr()
        with self.rt.autocast():
            loss = training_loss(
                self.fwd,
                self.schedule,
                sem,
                mct,
                generator=gen,
                kind=self.loss_kind,
                prediction=self.prediction,
                min_snr_gamma=self.min_snr_gamma,
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        out = {"loss": loss.item()}
        if self.grad_clip:
            out["grad_norm"] = float(
                nn.utils.clip_grad_norm_(self.net.parameters(), float(self.grad_clip))
            )
        self.opt.step()
        self.steps_done += 1
        if self.ema:
            self.ema.update(self.net)
        return out

    def set_val_subset(self, mct: torch.Tensor, sem: torch.Tensor) -> None:
        """Fixed validation tiles that every validation pass samples and scores."""
        self.val_subset = (mct, sem)

    @torch.no_grad()
    def validate(self, loader, max_batches: int | None) -> dict:
        """Deterministic loss on the validation split (t and noise from a generator re-seeded
        every pass; unweighted, in the model's parameterization), plus PSNR/SSIM of samples of
        the fixed validation subset drawn with the validation sampler and a fixed seed."""
        nets = {"val_loss": self.net}
        if self.ema:
            nets["val_loss_ema"] = self.ema.module
        for m in nets.values():
            m.eval()
        g = torch.Generator(device="cpu").manual_seed(self.seed + VAL_SEED_OFFSET)
        tot = dict.fromkeys(nets, 0.0)
        n = 0
        for i, (mct, sem) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            b = mct.shape[0]
            t = torch.randint(0, self.schedule.timesteps, (b,), generator=g)
            noise = torch.randn(sem.shape, generator=g)
            mct, sem = self.rt.batch(mct), self.rt.batch(sem)
            t, noise = t.to(self.rt.device), self.rt.batch(noise)
            x = q_sample(self.schedule, sem, mct, t, noise)
            target = training_target(self.schedule, sem, noise, t, self.prediction)
            for k, m in nets.items():
                with self.rt.autocast():
                    pred = m(x, t)
                tot[k] += pixel_loss(pred, target, self.loss_kind).item() * b
            n += b
        out = {k: v / max(n, 1) for k, v in tot.items()}
        if self.val_subset is not None:
            from rocksr import metrics as M

            mct, sem = self.val_subset
            pred = self.predict(mct).cpu()
            p = M.to_unit(_to_u8(pred[:, 0]))
            s = M.to_unit(_to_u8(sem[:, 0]))
            out["val_psnr"] = float(np.mean(np.minimum(np.atleast_1d(M.psnr(p, s)), 99.0)))
            out["val_ssim"] = float(np.mean(np.atleast_1d(M.ssim(p, s))))
        return out

    def after_validation(self, metrics: dict) -> None:
        if self.use_plateau and self.steps_done >= self.warmup:
            self.plateau.step(metrics["val_loss"])

    @torch.no_grad()
    def predict(self, mct: torch.Tensor) -> torch.Tensor:
        g = torch.Generator(device="cpu").manual_seed(self.seed + VAL_SEED_OFFSET)
        steps = None if self.sampler == "ancestral" else self.sampler_steps
        return sample(
            self.eval_net(),
            self.rt.batch(mct),
            self.schedule,
            self.sampler,
            steps,
            g,
            prediction=self.prediction,
            threshold=self.threshold,
            amp=self.rt.precision == "bf16",
        )

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def state(self) -> dict:
        return {
            "models": {"unet": self.net.state_dict()},
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizers": {"unet": self.opt.state_dict()},
            "schedulers": {"plateau": self.plateau.state_dict()},
        }

    def load(self, ckpt: dict) -> None:
        self.net.load_state_dict(ckpt["models"]["unet"])
        self.opt.load_state_dict(ckpt["optimizers"]["unet"])
        self.plateau.load_state_dict(ckpt["schedulers"]["plateau"])
        self.steps_done = int(ckpt.get("step", 0))
        if self.ema:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:  # EMA switched on mid-run: start it from the current weights
                self.ema.module.load_state_dict(self.net.state_dict())


TASKS = {"cgan": CGANTask, "ddpm": DDPMTask}


# --------------------------------------------------------------------------- RNG state
def rng_state(gen: torch.Generator) -> dict:
    npst = np.random.get_state()  # noqa: NPY002
    st = {
        "python": random.getstate(),
        "numpy": {
            "name": npst[0],
            "keys": torch.from_numpy(npst[1].astype(np.int64)),
            "pos": int(npst[2]),
            "has_gauss": int(npst[3]),
            "cached": float(npst[4]),
        },
        "torch": torch.get_rng_state(),
        "train_gen": gen.get_state(),
        "cuda": None,
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict, gen: torch.Generator) -> None:
    random.setstate(st["python"])
    n = st["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached"]))  # noqa: NPY002
    torch.set_rng_state(st["torch"])
    gen.set_state(st["train_gen"])
    if st.get("cuda") is not None and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(st["cuda"])


# --------------------------------------------------------------------------- outputs
def _to_u8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def save_sample_grid(
    path: Path, mct: torch.Tensor, pred: torch.Tensor, truth: torch.Tensor, gap: int = 4
) -> None:
    """One row per sample: micro-CT | prediction | truth (8-bit PNG, white gaps)."""
    from PIL import Image

    rows = []
    for i in range(mct.shape[0]):
        tiles = [_to_u8(a[i, 0]) for a in (mct, pred, truth)]
        h = tiles[0].shape[0]
        sep = np.full((h, gap), 255, np.uint8)
        rows.append(np.concatenate([tiles[0], sep, tiles[1], sep, tiles[2]], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1]), 255, np.uint8))
    img = np.concatenate(rows[:-1], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(img).save(tmp)
    os.replace(tmp, path)


def write_history(history: list[dict], path: Path) -> None:
    import pandas as pd

    from rocksr.store import write_table

    write_table(pd.DataFrame(history), path)


def plot_curves(history: list[dict], path: Path, kind: str) -> None:
    """Loss curves: training losses (thin) and validation losses (markers) against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from rocksr.figures_data import save_figure

    df = pd.DataFrame(history)
    tr = df[df["phase"] == "train"] if len(df) else df
    va = df[df["phase"] == "val"] if len(df) else df
    panels = (
        [("generator L1", ["g_l1"], ["val_l1"]), ("adversarial", ["loss_d", "g_adv"], [])]
        if kind == "cgan"
        else [
            ("loss", ["loss"], ["val_loss", "val_loss_ema"]),
            ("validation samples: PSNR (dB)", [], ["val_psnr"]),
            ("validation samples: SSIM", [], ["val_ssim"]),
        ]
    )
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
        if kind == "ddpm" and title == "loss":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _gpu_mem(device: torch.device) -> dict:
    if device.type != "cuda":
        return {}
    return {
        "gpu_mem_mb": torch.cuda.memory_allocated(device) / 2**20,
        "gpu_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
    }


# --------------------------------------------------------------------------- SIGTERM
class _StopFlag:
    """Sets ``requested`` on SIGTERM; the loop then writes ``last`` and exits non-zero."""

    def __init__(self) -> None:
        self.requested = False
        self._prev: Any = None

    def __enter__(self) -> _StopFlag:
        try:
            self._prev = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not in the main thread: no handler
            self._prev = None
        return self

    def _handle(self, signum, frame) -> None:
        log.warning("SIGTERM received: will write the last checkpoint and exit")
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._prev is not None:
            signal.signal(signal.SIGTERM, self._prev)


# --------------------------------------------------------------------------- main loop
def _total_steps(cfg: dict, steps_per_epoch: int) -> int:
    max_steps, epochs = cfg.get("max_steps"), cfg.get("epochs")
    cands = []
    if max_steps is not None:
        cands.append(int(max_steps))
    if epochs is not None:
        cands.append(int(epochs) * steps_per_epoch)
    if not cands:
        raise ValueError("set max_steps and/or epochs in the model config")
    return min(cands)


# keys that may change between a run and its resumption (budget, logging, data loading)
RESUMABLE_KEYS = {
    "max_steps",
    "epochs",
    "val_every",
    "ckpt_every",
    "log_every",
    "n_val_samples",
    "val_sample_tiles",
    "val_batch_size",
    "val_max_batches",
    "val_sampler",
    "val_sampler_steps",
    "compile",
}
LOADER_KEYS = {"num_workers", "pin_memory", "persistent_workers", "prefetch_factor"}


def run_fingerprint(cfg: dict, seed: int, store: str | Path, splits: str | Path) -> str:
    """Hash of what makes two training runs the same experiment: hyper-parameters (not the
    budget or logging), seed, the split table's bytes and the tile store's provenance."""
    from rocksr.io import sha256_file
    from rocksr.store import open_tiles

    attrs = dict(open_tiles(store).attrs)
    hyper = {k: v for k, v in cfg.items() if k not in RESUMABLE_KEYS and k != "data"}
    hyper["data"] = {k: v for k, v in (cfg.get("data") or {}).items() if k not in LOADER_KEYS}
    blob = json.dumps(
        {
            "hyper": hyper,
            "seed": seed,
            "splits": sha256_file(splits),
            "store": {
                k: attrs.get(k)
                for k in ("sources", "tiling", "tile_size", "stride", "angles", "n_tiles")
            },
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _payload(
    task,
    kind: str,
    cfg: dict,
    seed: int,
    progress: dict,
    gen: torch.Generator,
    history: list[dict],
    fingerprint: str = "",
) -> dict:
    return {
        "format": FORMAT,
        "kind": kind,
        "config": cfg,
        "seed": seed,
        "fingerprint": fingerprint,
        "arch": arch_signature(kind, cfg),
        **task.state(),
        **progress,
        "rng": rng_state(gen),
        "history": history,
    }


def _set_aside(path: Path) -> Path:
    """Rename a broken checkpoint to ``<name>.broken-<n>`` next to it; returns the new path."""
    n = 1
    while (aside := path.with_name(f"{path.name}.broken-{n}")).exists():
        n += 1
    path.rename(aside)
    return aside


def _load_state(path: Path) -> tuple[dict | None, bool]:
    """(checkpoint, broken): a state checkpoint verified by its digest; a truncated or corrupt
    one is set aside (named in the log) and gives ``(None, True)``; an absent one ``(None, False)``."""
    if not path.exists():
        return None, False
    try:
        return load_checkpoint(path, map_location="cpu"), False
    except CorruptCheckpointError as exc:
        aside = _set_aside(path)
        log.warning("%s is broken (%s); set aside as %s", path, str(exc).split("; ")[0], aside)
        return None, True


def train(
    kind: str,
    store: str | Path,
    splits: str | Path,
    best_ckpt: str | Path,
    history_csv: str | Path,
    curve_png: str | Path,
    samples_dir: str | Path,
    state_dir: str | Path,
    params: dict,
    seed: int,
    device: str = "auto",
) -> None:
    """Train ``kind`` in {"cgan","ddpm"}; ``params`` = that model's config section + {"data": ...}.

    Resumes from ``state_dir/last.pt`` when present and compatible (raises
    ``IncompatibleCheckpointError`` when the architecture changed).  Writes ``best_ckpt`` (copy of
    the best-validation checkpoint), the history CSV, the loss-curve PNG and validation sample
    PNGs (``samples_dir/step_XXXXXXX.png``).  On SIGTERM writes ``last`` and raises
    ``SystemExit(143)``.
    """
    if kind not in TASKS:
        raise ValueError(f"unknown model kind {kind!r} (one of {sorted(TASKS)})")
    cfg = dict(params)
    if kind == "ddpm":
        cfg = ddpm_config(cfg)
    data_cfg = dict(cfg.get("data") or {})
    state_dir, samples_dir = Path(state_dir), Path(samples_dir)
    last_path, best_path = state_dir / "last.pt", state_dir / "best.pt"
    dev = resolve_device(device)
    seed_everything(seed)
    rt = Runtime(cfg, dev)
    task = TASKS[kind](cfg, rt, seed)
    log.info(
        "%s on %s (precision %s, channels_last %s, compile %s); %s parameters",
        kind,
        dev,
        rt.precision,
        rt.channels_last,
        rt.compile,
        {k: sum(p.numel() for p in m.parameters()) for k, m in task.models().items()},
    )

    bs = int(cfg.get("batch_size", 8))
    train_ds = TileDataset(store, splits, "train")
    val_ds = TileDataset(store, splits, "val")
    if len(train_ds) == 0:
        raise ValueError(f"{splits}: the train split is empty")
    tile = int(train_ds[0][0].shape[-1])
    if kind == "ddpm":
        levels = len((cfg.get("unet") or {}).get("block_out_channels", [0, 0, 0, 0])) - 1
        crop = cfg.get("crop")
        if crop is not None and (int(crop) % 2**levels or int(crop) > tile):
            raise ValueError(
                f"ddpm.crop {crop} must be at most the tile size {tile} of {store} and divisible "
                f"by 2**{levels} = {2**levels} (the U-Net's down-sampling factor)"
            )
        if tile % 2**levels:
            raise ValueError(
                f"{store}: tile size {tile} is not divisible by 2**{levels} = {2**levels}, "
                f"which the DDPM U-Net with {levels + 1} levels needs; change tiling.size "
                "or ddpm.unet.block_out_channels"
            )
    train_loader = make_loader(train_ds, bs, data_cfg, dev, seed, train=True)
    val_loader = (
        make_loader(val_ds, int(cfg.get("val_batch_size", bs)), data_cfg, dev, seed, train=False)
        if len(val_ds)
        else None
    )
    if val_loader is None:
        log.warning("validation split is empty: 'best' will be the last checkpoint")
    spe = len(train_loader)
    total = _total_steps(cfg, spe)
    val_every = int(cfg.get("val_every", 500))
    ckpt_every = int(cfg.get("ckpt_every", 500))
    log_every = int(cfg.get("log_every", 10))
    val_max_batches = cfg.get("val_max_batches")
    n_samples = int(cfg.get("n_val_samples", 4))
    log.info(
        "train %d tiles (%d steps/epoch, batch %d), val %d tiles; %d steps in total",
        len(train_ds),
        spe,
        bs,
        len(val_ds),
        total,
    )

    fingerprint = run_fingerprint(cfg, seed, store, splits)
    gen = torch.Generator(device=dev).manual_seed(seed)
    # everything the loop carries between steps (checkpointed, so resume is exact), incl. the
    # running sums of the current logging window
    select_mode = getattr(task, "select_mode", "min")
    progress: dict[str, Any] = {
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "best_val": -math.inf if select_mode == "max" else math.inf,
        "best_step": -1,
        "log_sums": {},
        "log_n": 0,
        "pending_val": False,
    }
    history: list[dict] = []
    ckpt, last_broken = _load_state(last_path)
    best_ok = best_path.exists() and _load_state(best_path)[0] is not None
    if ckpt is None and last_broken and best_ok:
        ckpt = load_checkpoint(best_path, map_location="cpu")
        log.warning("resuming from %s (step %d) instead", best_path, ckpt["step"])
        resumed_from = best_path
    else:
        resumed_from = last_path
    if ckpt is not None:
        check_compatible(ckpt, kind, cfg, task.models(), resumed_from)
        if ckpt.get("fingerprint") != fingerprint:
            # same architecture, but other hyper-parameters, seed, splits or tiles: the old
            # state belongs to another experiment; keep it aside and start over
            old = state_dir.with_name(state_dir.name + ".previous")
            log.warning(
                "%s was trained with other hyper-parameters, seed or data (changed: %s);"
                " moving it to %s and training from scratch",
                resumed_from,
                diff_keys(ckpt["config"], cfg) or "data/seed",
                old,
            )
            if old.exists():
                shutil.rmtree(old)
            state_dir.rename(old)
            state_dir.mkdir(parents=True)
            ckpt = None
    if ckpt is not None:
        changed = diff_keys(ckpt["config"], cfg)
        if changed or ckpt.get("seed") != seed:
            log.warning(
                "resuming with a changed (compatible) config: %s%s",
                changed,
                f"; seed {ckpt.get('seed')} -> {seed}" if ckpt.get("seed") != seed else "",
            )
        task.load(ckpt)
        set_rng_state(ckpt["rng"], gen)
        progress = {k: ckpt.get(k, v) for k, v in progress.items()}
        history = list(ckpt["history"])
        if not best_path.exists() and progress["best_step"] >= 0:
            log.warning(
                "%s is gone; the next improving validation (or the last state) becomes "
                "the best checkpoint",
                best_path,
            )
            progress["best_val"] = -math.inf if select_mode == "max" else math.inf
            progress["best_step"] = -1
        log.info(
            "resumed from %s at step %d (epoch %d)",
            resumed_from,
            progress["step"],
            progress["epoch"],
        )
    elif best_path.exists():
        best_path.unlink()  # stale: belongs to a run whose `last` is gone

    fixed_val = None
    n_scored = int(cfg.get("val_sample_tiles", DDPM_DEFAULTS["val_sample_tiles"]))
    if kind == "ddpm" and len(val_ds) and n_scored > 0:
        # tiles spread evenly over the validation split, sampled and scored at every validation
        idx = np.unique(np.linspace(0, len(val_ds) - 1, min(n_scored, len(val_ds))).round())
        pairs = [val_ds[int(i)] for i in idx]
        task.set_val_subset(*(torch.stack([p[k] for p in pairs]) for k in (0, 1)))
    if val_loader is not None and n_samples > 0:
        idx = list(range(min(n_samples, len(val_ds))))
        pairs = [val_ds[i] for i in idx]
        fixed_val = tuple(torch.stack([p[k] for p in pairs]) for k in (0, 1))

    def render(step: int) -> None:
        if fixed_val is not None:
            pred = task.predict(fixed_val[0])
            save_sample_grid(
                samples_dir / f"step_{step:07d}.png", fixed_val[0], pred.cpu(), fixed_val[1]
            )

    def save_last() -> None:
        save_atomic(_payload(task, kind, cfg, seed, progress, gen, history, fingerprint), last_path)

    def validate(step: int) -> None:
        t0 = time.perf_counter()
        if val_loader is None:
            return
        m = task.validate(val_loader, None if val_max_batches is None else int(val_max_batches))
        task.after_validation(m)
        score = m[task.select_key]
        improved = (
            score > progress["best_val"] if select_mode == "max" else score < progress["best_val"]
        )
        if improved:
            progress["best_val"], progress["best_step"] = float(score), step
        history.append(
            {
                "phase": "val",
                "step": step,
                "epoch": progress["epoch"],
                **m,
                "lr": task.lr(),
                **_gpu_mem(dev),
            }
        )
        mem = _gpu_mem(dev)
        log.info(
            "step %d val %s%s (%.1fs)%s",
            step,
            {k: round(v, 5) for k, v in m.items()},
            " *best*" if improved else "",
            time.perf_counter() - t0,
            f"; GPU memory {mem['gpu_mem_mb']:.0f} MiB (peak {mem['gpu_peak_mb']:.0f} MiB)"
            if mem
            else "",
        )
        if improved:
            save_atomic(
                _payload(task, kind, cfg, seed, progress, gen, history, fingerprint), best_path
            )
        render(step)

    t_log = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=progress["step"],
        desc=f"train {kind}",
        file=sys.stderr,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
        dynamic_ncols=True,
    )
    if progress["pending_val"]:
        progress["pending_val"] = False
        validate(progress["step"])
    with _StopFlag() as stop:
        while progress["step"] < total and not stop.requested:
            # data order (and the loader's worker seeds) = f(seed, epoch): exact resume
            train_loader.sampler.set_epoch(progress["epoch"], progress["batch_in_epoch"] * bs)
            train_loader.generator.manual_seed(epoch_seed(seed, progress["epoch"]))
            for mct, sem in train_loader:
                out = task.train_step(rt.batch(mct), rt.batch(sem), gen)
                progress["step"] += 1
                progress["batch_in_epoch"] += 1
                step = progress["step"]
                bar.update(1)
                sums = progress["log_sums"]
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v
                progress["log_n"] += 1
                if step % log_every == 0 or step == total:
                    n = progress["log_n"]
                    row = {k: v / n for k, v in sums.items()}
                    history.append(
                        {
                            "phase": "train",
                            "step": step,
                            "epoch": progress["epoch"],
                            **row,
                            "lr": task.lr(),
                            "img_per_s": n * bs / (time.perf_counter() - t_log),
                            **_gpu_mem(dev),
                        }
                    )
                    bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()})
                    log.debug("step %d %s", step, row)
                    progress["log_sums"], progress["log_n"] = {}, 0
                    t_log = time.perf_counter()
                if progress["batch_in_epoch"] >= spe:
                    progress["epoch"] += 1
                    progress["batch_in_epoch"] = 0
                if step % val_every == 0 or step == total:
                    if stop.requested:  # checkpoint now, validate first thing on resume
                        progress["pending_val"] = True
                    else:
                        validate(step)
                if _after_step is not None:
                    _after_step(step)
                if step % ckpt_every == 0 or step == total or stop.requested:
                    save_last()
                    write_history(history, Path(history_csv))
                if stop.requested or step >= total or progress["batch_in_epoch"] == 0:
                    break
            else:  # the sampler ran dry before the epoch's count: close the epoch
                if progress["batch_in_epoch"]:
                    progress["epoch"] += 1
                    progress["batch_in_epoch"] = 0
        stop_exit = stop.requested and progress["step"] < total
    bar.close()
    if stop_exit:
        log.warning(
            "stopped at step %d on SIGTERM; %s written, rerun to resume",
            progress["step"],
            last_path,
        )
        raise SystemExit(128 + signal.SIGTERM)

    # ---- outputs of a finished run (also rewritten when re-run on a finished `last`)
    if not last_path.exists():
        save_last()
    if best_path.exists() and _load_state(best_path)[0] is None:
        log.warning(
            "publishing the last state (step %d) as the best checkpoint instead", progress["step"]
        )
    if not best_path.exists():
        publish_checkpoint(last_path, best_path)
    publish_checkpoint(best_path, best_ckpt)  # verified before it is copied
    write_history(history, Path(history_csv))
    plot_curves(history, Path(curve_png), kind)
    samples_dir.mkdir(parents=True, exist_ok=True)
    if not any(samples_dir.glob("step_*.png")):
        render(progress["step"])
    log.info(
        "done: %d steps; best %s=%.5g at step %d -> %s",
        progress["step"],
        getattr(task, "select_key", "val"),
        progress["best_val"],
        progress["best_step"],
        best_ckpt,
    )
