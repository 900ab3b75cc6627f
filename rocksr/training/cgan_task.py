"""The pix2pix cGAN as a training task (seed §3.3): the U-Net generator and PatchGAN
discriminator, one adversarial + lambda·L1 step, validation by L1 of the generator's output."""

from __future__ import annotations

import torch
from torch import nn

from rocksr.config.cgan import CGAN
from rocksr.config.training import resolve_training
from rocksr.models.cgan import build_cgan_models, cgan_arch_signature, d_hinge_loss, g_loss
from rocksr.training.crops import random_crops
from rocksr.training.runtime import Runtime

MIN_CROP = 32  # the PatchGAN's four k4 convolutions leave a 3x3 output of a 32 px input


# --------------------------------------------------------------------------- tasks
class CGANTask:
    """pix2pix-style cGAN: hinge D loss, G = -E[D(fake)] + lambda_L1 * L1 (seed §3.1)."""

    kind = "cgan"
    select_key = "val_l1"  # validation metric for the best checkpoint (lower is better)

    def __init__(self, cfg: dict, rt: Runtime, seed: int) -> None:
        cfg = self.resolve_config(cfg)
        self.cfg, self.rt = cfg, rt
        m = build_cgan_models(cfg)
        self.G, self.D = rt.prepare(m["G"]), rt.prepare(m["D"])
        self.G_fwd, self.D_fwd = rt.wrap(self.G), rt.wrap(self.D)
        # D in the generator's step: frozen, so outside DistributedDataParallel's gradient sync
        self.D_frozen = rt.wrap(self.D, sync=False) if rt.dist.enabled else self.D_fwd
        lr = float(cfg["lr"])
        betas = tuple(float(b) for b in cfg["betas"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.lambda_l1 = float(cfg["lambda_l1"])
        self.crop = None if cfg["crop"] is None else int(cfg["crop"])

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        """The ``cgan`` section (plus ``data``) with every default filled in."""
        return resolve_training(CGAN, cfg, "cgan")

    @property
    def arch(self) -> dict:
        return cgan_arch_signature(self.cfg)

    def check_tiles(self, tile: int, store: object) -> None:
        """``crop``, when set, must fit the tiles and leave the PatchGAN an output (>= 32 px)."""
        crop = self.crop
        if crop is not None and not MIN_CROP <= crop <= tile:
            raise ValueError(
                f"cgan.crop {crop} must be between {MIN_CROP} (the PatchGAN's smallest input) "
                f"and the tile size {tile} of {store}"
            )

    def prepare_validation(self, val_ds: object) -> None:
        pass

    def models(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def train_step(self, mct: torch.Tensor, sem: torch.Tensor, gen: torch.Generator) -> dict:
        self.G.train()
        self.D.train()
        if self.crop is not None:
            mct, sem = random_crops(mct, sem, self.crop, gen, self.rt.dist)
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
                self.D_frozen(mct, fake).float(), fake.float(), sem.float(), self.lambda_l1
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

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """What the trainer's learning-rate schedule (``lr_decay``) sets: both networks'."""
        return [self.opt_g, self.opt_d]

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
