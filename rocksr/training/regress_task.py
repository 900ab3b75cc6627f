"""rocksr.training.regress_task: the regression U-Net's training task (L1, optional FFT L1)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rocksr.config.regress import Regress
from rocksr.config.training import resolve_training
from rocksr.data.values import tensor_to_uint8
from rocksr.models.regress import build_regress_models, regress_arch_signature
from rocksr.training.crops import check_unet_tiles, random_crops
from rocksr.training.ema import EMA
from rocksr.training.runtime import Runtime

SELECT_ON = {"val_l1": "min", "val_psnr": "max", "val_ssim": "max"}


def frequency_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the 2-D Fourier transforms (orthonormal, so its scale matches
    the pixel L1's): the frequency-domain loss of ResDiff, which weighs fine texture that a
    pixel L1 lets the network blur."""
    diff = torch.fft.rfft2(pred.float(), norm="ortho") - torch.fft.rfft2(
        target.float(), norm="ortho"
    )
    return diff.abs().mean()


def regress_config(cfg: dict) -> dict:
    """The ``regress`` section (plus ``data``) with every default filled in and checked."""
    out = resolve_training(Regress, cfg, "regress")
    if out["select_on"] not in SELECT_ON:
        raise ValueError(
            f"regress.select_on must be one of {sorted(SELECT_ON)}, got {out['select_on']!r}"
        )
    if float(out["fft_weight"]) < 0:
        raise ValueError(f"regress.fft_weight must be >= 0, got {out['fft_weight']}")
    return out


class RegressTask:
    """The regression U-Net: AdamW on L1 (+ ``fft_weight`` x frequency L1), gradient clipping,
    weight EMA; validation = L1, PSNR and SSIM of the (EMA) network on the validation split."""

    kind = "regress"

    def __init__(self, cfg: dict, rt: Runtime, seed: int) -> None:
        cfg = regress_config(cfg)
        self.cfg, self.rt, self.seed = cfg, rt, seed
        self.net = rt.prepare(build_regress_models(cfg)["net"])
        self.fwd = rt.wrap(self.net)
        self.fft_weight = float(cfg["fft_weight"])
        self.crop = None if cfg["crop"] is None else int(cfg["crop"])
        self.grad_clip = cfg["grad_clip"]
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
        )
        ema_cfg = cfg["ema"]
        self.ema = EMA(self.net, float(ema_cfg["decay"])) if ema_cfg["enabled"] else None
        self.select_key = cfg["select_on"]
        self.select_mode = SELECT_ON[self.select_key]

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        return regress_config(cfg)

    @property
    def arch(self) -> dict:
        return regress_arch_signature(self.cfg)

    def check_tiles(self, tile: int, store: object) -> None:
        check_unet_tiles("regress", self.cfg, tile, store)

    def prepare_validation(self, val_ds: object) -> None:
        pass

    def models(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def eval_net(self) -> nn.Module:
        return self.ema.module if self.ema else self.net

    def train_step(self, mct: torch.Tensor, sem: torch.Tensor, gen: torch.Generator) -> dict:
        self.net.train()
        if self.crop is not None:
            mct, sem = random_crops(mct, sem, self.crop, gen, self.rt.dist)
        with self.rt.autocast():
            pred = self.fwd(mct).float()
        l1 = torch.abs(pred - sem.float()).mean()
        loss = l1
        out = {"l1": l1.item()}
        if self.fft_weight:
            fft = frequency_l1(pred, sem)
            loss = loss + self.fft_weight * fft
            out["fft_l1"] = fft.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        out["loss"] = loss.item()
        if self.grad_clip:
            out["grad_norm"] = float(
                nn.utils.clip_grad_norm_(self.net.parameters(), float(self.grad_clip))
            )
        self.opt.step()
        if self.ema:
            self.ema.update(self.net)
        return out

    @torch.no_grad()
    def validate(self, loader, max_batches: int | None) -> dict:
        from rocksr.evaluation import metrics as M

        net = self.eval_net().eval()
        l1, psnr, ssim, n = 0.0, [], [], 0
        for i, (mct, sem) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            mct, sem = self.rt.batch(mct), self.rt.batch(sem)
            with self.rt.autocast():
                pred = net(mct).float().clamp(-1.0, 1.0)
            l1 += torch.abs(pred - sem.float()).mean(dim=(1, 2, 3)).sum().item()
            p = M.to_unit(tensor_to_uint8(pred[:, 0].cpu()))
            s = M.to_unit(tensor_to_uint8(sem[:, 0].cpu()))
            psnr += list(np.minimum(np.atleast_1d(M.psnr(p, s)), 99.0))
            ssim += list(np.atleast_1d(M.ssim(p, s)))
            n += mct.shape[0]
        return {
            "val_l1": l1 / max(n, 1),
            "val_psnr": float(np.mean(psnr)) if psnr else float("nan"),
            "val_ssim": float(np.mean(ssim)) if ssim else float("nan"),
        }

    def after_validation(self, metrics: dict) -> None:
        pass

    @torch.no_grad()
    def predict(self, mct: torch.Tensor) -> torch.Tensor:
        net = self.eval_net().eval()
        with self.rt.autocast():
            return net(self.rt.batch(mct)).float().clamp(-1.0, 1.0)

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """What the trainer's learning-rate schedule (``lr_decay``) sets."""
        return [self.opt]

    def state(self) -> dict:
        return {
            "models": {"net": self.net.state_dict()},
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizers": {"net": self.opt.state_dict()},
            "schedulers": {},
        }

    def load(self, ckpt: dict) -> None:
        self.net.load_state_dict(ckpt["models"]["net"])
        self.opt.load_state_dict(ckpt["optimizers"]["net"])
        if self.ema:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:
                self.ema.module.load_state_dict(self.net.state_dict())
