"""The conditional DDPM as a training task (seed §3.2): the noise schedule, x0 / epsilon /
v prediction, an optional prior (predict-and-refine: the DDPM learns SEM minus the prior),
EMA weights, and validation by loss or by sampling."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from rocksr.config.ddpm import DDPM
from rocksr.config.training import resolve_training
from rocksr.data.values import tensor_to_uint8
from rocksr.diffusion.sampling import sample, threshold_config
from rocksr.diffusion.schedule import (
    as_schedule,
    check_prediction,
    pixel_loss,
    q_sample,
    schedule_config,
    training_loss,
    training_target,
)
from rocksr.models.unet import build_ddpm_models, ddpm_arch_signature
from rocksr.priors import CachedPrior, Prior, check_prior, histmatch_prior, regress_prior
from rocksr.training.crops import check_unet_tiles, random_crops
from rocksr.training.ema import EMA
from rocksr.training.runtime import Runtime

VAL_SEED_OFFSET = 7919  # validation noise generator seed = seed + offset, fresh each pass


SELECT_ON = {"val_loss": "min", "val_psnr": "max", "val_ssim": "max"}


def ddpm_config(cfg: dict) -> dict:
    """The ``ddpm`` section (plus ``data``) with every default of :class:`rocksr.config.ddpm.DDPM`
    filled in and checked, so that the checkpoint records them (and a config that spells out a
    default trains the same experiment as one that leaves it out)."""
    cfg = {k: v for k, v in cfg.items() if k != "prior_sha256"}  # derived below, never given
    out = resolve_training(DDPM, cfg, "ddpm")
    out["prediction"] = check_prediction(str(out["prediction"]))
    out["threshold"] = threshold_config(out["threshold"])
    out["prior"] = check_prior(out["prior"])
    if out["prior"] == "regress":
        if not out["prior_checkpoint"]:
            raise ValueError(
                "ddpm.prior is 'regress': set ddpm.prior_checkpoint to the regress model's "
                "best.pt (the workflow sets it)"
            )
        if not os.path.isfile(out["prior_checkpoint"]):
            raise ValueError(
                f"{out['prior_checkpoint']}: ddpm.prior is 'regress' but this checkpoint does "
                "not exist; train the regress model first"
            )
        from rocksr.files import sha256_file

        # the prior's bytes are part of the experiment (the fingerprint); its path is not
        out["prior_sha256"] = sha256_file(out["prior_checkpoint"])
    if out["select_on"] not in SELECT_ON:
        raise ValueError(
            f"ddpm.select_on must be one of {sorted(SELECT_ON)}, got {out['select_on']!r}"
        )
    if out["lr_decay"] != "none" and out["plateau"]["enabled"]:
        raise ValueError(
            f"ddpm.lr_decay {out['lr_decay']!r} and ddpm.plateau both set the learning rate: "
            "turn one off (plateau: {enabled: false})"
        )
    return out


class DDPMTask:
    """Conditional DDPM (seed §3.2): the network on [x_t^sem, x^mct] predicts eps, v or x0
    (``prediction``); AdamW, gradient clipping, optional warm-up, plateau LR on the validation
    loss; validation = the deterministic loss plus PSNR/SSIM of sampled validation tiles."""

    kind = "ddpm"

    def __init__(self, cfg: dict, rt: Runtime, seed: int) -> None:
        cfg = ddpm_config(cfg)
        self.cfg, self.rt, self.seed = cfg, rt, seed
        self.net = rt.prepare(build_ddpm_models(cfg)["unet"])
        self.fwd = rt.wrap(self.net)
        self.schedule = as_schedule(schedule_config(cfg["schedule"]))
        self.loss_kind = str(cfg["loss"])
        self.prediction = cfg["prediction"]
        self.threshold = cfg["threshold"]
        gamma = cfg["min_snr_gamma"]
        self.min_snr_gamma = None if gamma is None else float(gamma)
        crop = cfg["crop"]
        self.crop = None if crop is None else int(crop)
        self.grad_clip = cfg["grad_clip"]
        self.base_lr = float(cfg["lr"])
        self.warmup = int(cfg["warmup_steps"])
        self.opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=self.base_lr,
            weight_decay=float(cfg["weight_decay"]),
        )
        pl = cfg["plateau"]
        self.use_plateau = bool(pl["enabled"])
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt,
            mode="min",
            factor=float(pl["factor"]),
            patience=int(pl["patience"]),
            min_lr=float(pl["min_lr"]),
        )
        ema_cfg = cfg["ema"]
        self.ema = EMA(self.net, float(ema_cfg["decay"])) if ema_cfg["enabled"] else None
        self.select_on = cfg["select_on"]
        self.select_mode = SELECT_ON[self.select_on]
        self.select_key = (
            ("val_loss_ema" if self.ema else "val_loss")
            if self.select_on == "val_loss"
            else self.select_on
        )
        self.sampler = str(cfg["val_sampler"])
        self.sampler_steps = cfg["val_sampler_steps"]
        self.steps_done = 0
        self.val_subset: tuple[torch.Tensor, torch.Tensor] | None = None
        self.prior: Prior | None = None

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        return ddpm_config(cfg)

    @property
    def arch(self) -> dict:
        return ddpm_arch_signature(self.cfg)

    def check_tiles(self, tile: int, store: object) -> None:
        """The tiles (and crops) must fit the U-Net's down-sampling factor."""
        check_unet_tiles("ddpm", self.cfg, tile, store)

    def prepare_data(self, store: object, splits: object) -> None:
        """Fit or load the prior (``ddpm.prior``) once the tile store is known."""
        kind = self.cfg["prior"]
        if kind == "histmatch":
            self.prior = histmatch_prior(store, splits)
        elif kind == "regress":
            # computed once per tile (a frozen network on tiles drawn again and again)
            self.prior = CachedPrior(regress_prior(self.cfg["prior_checkpoint"], self.rt.device))

    def condition(self, mct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the network's condition, the prior): the micro-CT, and [micro-CT, prior] with a
        prior."""
        if self.prior is None:
            return mct, None
        p = self.prior(mct).to(mct.dtype)
        return torch.cat([mct, p], dim=1), p

    def prepare_validation(self, val_ds) -> None:
        """Tiles spread evenly over the validation split, sampled and scored at every validation."""
        n_scored = int(self.cfg["val_sample_tiles"])
        if len(val_ds) and n_scored > 0:
            idx = np.unique(np.linspace(0, len(val_ds) - 1, min(n_scored, len(val_ds))).round())
            pairs = [val_ds[int(i)] for i in idx]
            self.set_val_subset(*(torch.stack([p[k] for p in pairs]) for k in (0, 1)))

    def models(self) -> dict[str, nn.Module]:
        return {"unet": self.net}

    def eval_net(self) -> nn.Module:
        return self.ema.module if self.ema else self.net

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """What the trainer's learning-rate schedule (warm-up, ``lr_decay``) sets; after the
        warm-up, without ``lr_decay``, the plateau scheduler owns the rate."""
        return [self.opt]

    def train_step(self, mct: torch.Tensor, sem: torch.Tensor, gen: torch.Generator) -> dict:
        self.net.train()
        if self.prior is not None:  # the prior of the whole tile, then the residual's crop
            mct, p = self.condition(mct)
            sem = sem - p
        dist = self.rt.dist
        if self.crop is not None:
            mct, sem = random_crops(mct, sem, self.crop, gen, dist)
        # one process: training_loss draws these itself, the same numbers
        drawn = self._global_draws(sem, gen) if dist.enabled else {}
        with self.rt.autocast():
            loss = training_loss(
                self.fwd,
                self.schedule,
                sem,
                mct,
                generator=gen,
                kind=self.loss_kind,
                **drawn,
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

    def _global_draws(self, sem: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """This process's part of the t and noise that ``training_loss`` draws from ``gen`` for
        the global batch in one process (the same calls, for ``world`` times the batch)."""
        dist = self.rt.dist
        n = sem.shape[0] * dist.world
        t = torch.randint(0, self.schedule.timesteps, (n,), generator=gen, device=gen.device)
        noise = torch.randn(
            (n, *sem.shape[1:]), generator=gen, device=gen.device, dtype=torch.float32
        )
        return {"t": dist.local(t), "noise": dist.local(noise)}

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
            mct, p = self.condition(mct)
            if p is not None:
                sem = sem - p
            x = q_sample(self.schedule, sem, mct, t, noise)
            target = training_target(self.schedule, sem, noise, t, self.prediction)
            for k, m in nets.items():
                with self.rt.autocast():
                    pred = m(x, t)
                tot[k] += pixel_loss(pred, target, self.loss_kind).item() * b
            n += b
        out = {k: v / max(n, 1) for k, v in tot.items()}
        if self.val_subset is not None:
            from rocksr.evaluation import metrics as M

            mct, sem = self.val_subset
            pred = self.predict(mct).cpu()
            p = M.to_unit(tensor_to_uint8(pred[:, 0]))
            s = M.to_unit(tensor_to_uint8(sem[:, 0]))
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
        mct = self.rt.batch(mct)
        return sample(
            self.eval_net(),
            mct,
            self.schedule,
            self.sampler,
            steps,
            g,
            prediction=self.prediction,
            threshold=self.threshold,
            amp=self.rt.precision == "bf16",
            prior=None if self.prior is None else self.prior(mct),
        )

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def state(self) -> dict:
        return {
            "models": {"unet": self.net.state_dict()},
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizers": {"unet": self.opt.state_dict()},
            "schedulers": {"plateau": self.plateau.state_dict()},
            "prior": None if self.prior is None else self.prior.record,
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
