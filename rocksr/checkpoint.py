"""Checkpoints: atomic save, load, compatibility check, and models rebuilt for inference.

A checkpoint is one ``torch.save`` file holding a plain dict (loadable with ``weights_only=True``):
``format, kind, config, arch, models{name: state_dict}, ema, optimizers, schedulers, step, epoch,
batch_in_epoch, best_val, rng, history``.  ``arch`` is the part of the config that fixes the
network shapes (and, for the DDPM, the noise schedule); a resume whose ``arch`` or parameter
shapes differ raises ``IncompatibleCheckpointError`` naming the differing keys.

Every checkpoint carries ``digest``: the SHA-256 of its content (keys, values, tensor dtypes,
shapes and bytes; :func:`content_digest`), added by :func:`save_atomic` and checked by
:func:`load_checkpoint` (which removes it from the returned dict). A truncated or altered file
raises :class:`CorruptCheckpointError`; :func:`publish_checkpoint` verifies its source before
copying and the copy's bytes after. Checkpoints written before the digest load unchecked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rocksr.diffusion import as_schedule
from rocksr.errors import RocksrError
from rocksr.models.cgan import build_cgan
from rocksr.models.ddpm_unet import build_ddpm_unet, unet_config

FORMAT = "rocksr-ckpt/1"
KINDS = ("cgan", "ddpm")


class IncompatibleCheckpointError(RocksrError, RuntimeError):
    """A saved checkpoint cannot be resumed with the current configuration."""


class CorruptCheckpointError(IncompatibleCheckpointError):
    """A checkpoint file is truncated, unreadable or does not match its digest."""


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, list | tuple):
        h.update(f"L{len(obj)};".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"S{type(obj).__name__}:{obj!r};".encode())


def content_digest(ckpt: dict) -> str:
    """SHA-256 of a checkpoint dict's content (its ``digest`` key excluded), stable across
    save/load: keys in order, scalars by repr, tensors by dtype, shape and bytes."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in ckpt.items() if k != "digest"})
    return h.hexdigest()


def schedule_config(cfg: dict | None) -> dict:
    """``ddpm.schedule`` with defaults filled (T=1000, linear 1e-4 -> 0.02)."""
    c = {
        "timesteps": 1000,
        "beta_schedule": "linear",
        "beta_start": 1e-4,
        "beta_end": 0.02,
        **(cfg or {}),
    }
    c["timesteps"] = int(c["timesteps"])
    c["beta_start"], c["beta_end"] = float(c["beta_start"]), float(c["beta_end"])
    as_schedule(c)  # validates
    return c


def arch_signature(kind: str, cfg: dict) -> dict:
    """Config values that fix the network (and sampling maths); must match to resume."""
    if kind == "cgan":
        return {"generator": "UNet1(1,64)", "discriminator": "PatchGAN-SN(2,64,128,256,512)"}
    if kind == "ddpm":
        # what the network outputs is part of the model: a checkpoint trained to predict x0
        # cannot be resumed or sampled as an eps model (older checkpoints: epsilon)
        return {
            "unet": unet_config(cfg.get("unet")),
            "schedule": schedule_config(cfg.get("schedule")),
            "prediction": str(cfg.get("prediction", "epsilon")),
        }
    raise ValueError(f"unknown model kind {kind!r} (one of {KINDS})")


def build_models(kind: str, cfg: dict) -> dict[str, nn.Module]:
    """{'G': UNet1, 'D': PatchDiscriminator} for the cGAN, {'unet': ConditionalUNet} for the DDPM."""
    if kind == "cgan":
        g, d = build_cgan(cfg)
        return {"G": g, "D": d}
    if kind == "ddpm":
        return {"unet": build_ddpm_unet(cfg.get("unet"))}
    raise ValueError(f"unknown model kind {kind!r} (one of {KINDS})")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def diff_keys(a: dict, b: dict) -> list[str]:
    """'key: old -> new' for every flattened key whose value differs (or exists on one side)."""
    fa, fb = _flatten(a), _flatten(b)
    out = []
    for k in sorted(set(fa) | set(fb)):
        va, vb = fa.get(k, "<absent>"), fb.get(k, "<absent>")
        if va != vb:
            out.append(f"{k}: {va!r} -> {vb!r}")
    return out


def state_shape_diff(saved: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Parameter/buffer names missing, unexpected, or with a different shape."""
    cur = model.state_dict()
    out = [f"{k}: missing in model" for k in sorted(set(saved) - set(cur))]
    out += [f"{k}: not in checkpoint" for k in sorted(set(cur) - set(saved))]
    out += [
        f"{k}: shape {tuple(saved[k].shape)} -> {tuple(cur[k].shape)}"
        for k in sorted(set(saved) & set(cur))
        if hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(cur[k].shape)
    ]
    return out


def check_compatible(
    ckpt: dict, kind: str, cfg: dict, models: dict[str, nn.Module], path: str | Path = "checkpoint"
) -> None:
    """Raise IncompatibleCheckpointError (naming the differing keys) unless ``ckpt`` can be resumed
    by ``models`` built from (kind, cfg)."""
    if ckpt.get("format") != FORMAT:
        raise IncompatibleCheckpointError(
            f"{path}: unknown checkpoint format {ckpt.get('format')!r}"
        )
    if ckpt.get("kind") != kind:
        raise IncompatibleCheckpointError(
            f"{path}: holds a {ckpt.get('kind')!r} model, not {kind!r}"
        )
    saved_arch = dict(ckpt.get("arch", {}))
    if kind == "ddpm":
        saved_arch.setdefault("prediction", "epsilon")  # checkpoints older than the option
        want = arch_signature(kind, cfg)["prediction"]
        if saved_arch["prediction"] != want:
            raise IncompatibleCheckpointError(
                f"{path} holds a DDPM trained to predict {saved_arch['prediction']!r}, but the "
                f"config asks for ddpm.prediction: {want!r}; set ddpm.prediction: "
                f"{saved_arch['prediction']} to use it, or delete the training state directory "
                "to train afresh"
            )
    problems = diff_keys(saved_arch, arch_signature(kind, cfg))
    for name, m in models.items():
        if name not in ckpt["models"]:
            problems.append(f"models.{name}: not in checkpoint")
            continue
        problems += [f"models.{name}.{p}" for p in state_shape_diff(ckpt["models"][name], m)]
    if problems:
        raise IncompatibleCheckpointError(
            f"{path} was written with a different architecture; cannot resume. Differing keys:\n  "
            + "\n  ".join(problems)
            + "\nDelete the training state directory to start afresh, or restore the old config."
        )


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then os.replace: readers see
    either the previous file or the complete new one, never a partial write. A rocksr
    checkpoint dict gets its ``digest``."""
    from rocksr.outputs import check_file_target

    path = Path(path)
    check_file_target(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = {**obj, "digest": content_digest(obj)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    """Copy a file so that ``dst`` appears complete or not at all."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def publish_checkpoint(src: str | Path, dst: str | Path) -> dict:
    """Copy checkpoint ``src`` to ``dst`` atomically after verifying it (:func:`load_checkpoint`),
    and check the copy's bytes; returns the loaded checkpoint. A broken ``src`` raises
    :class:`CorruptCheckpointError` and ``dst`` is left as it was."""
    from rocksr.outputs import check_file_target

    ckpt = load_checkpoint(src)
    check_file_target(dst)
    copy_atomic(src, dst)
    from rocksr.io import sha256_file

    if sha256_file(src) != sha256_file(dst):
        Path(dst).unlink(missing_ok=True)
        raise CorruptCheckpointError(f"{dst}: copy of {src} differs from its source; removed")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict (weights_only: no arbitrary code is unpickled) and verify its
    digest; a truncated, unreadable or altered file raises :class:`CorruptCheckpointError`."""
    advice = (
        "delete it and re-run the stage that wrote it (a training run sets a broken "
        "state/<kind>/last.pt or best.pt aside by itself and resumes from the other one "
        "or starts over)"
    )
    if not Path(path).is_file():
        raise IncompatibleCheckpointError(f"{path}: checkpoint does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, MemoryError):
        raise  # the file system or the machine, not the file: never set a checkpoint aside for it
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise CorruptCheckpointError(
            f"{path}: unreadable or truncated checkpoint ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); {advice}"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise IncompatibleCheckpointError(f"{path}: not a rocksr checkpoint ({FORMAT})")
    digest = ckpt.pop("digest", None)
    if digest is not None and digest != content_digest(ckpt):
        raise CorruptCheckpointError(
            f"{path}: checkpoint content does not match its digest (corrupted); {advice}"
        )
    return ckpt


def load_for_inference(ckpt_path: str | Path, device: str = "cpu") -> tuple[str, nn.Module, dict]:
    """(kind, model in eval mode, config saved in the checkpoint).

    cGAN: the generator ``UNet1`` (call ``model(mct)``).  DDPM: the ``ConditionalUNet`` with EMA
    weights when the checkpoint has them (call via ``rocksr.diffusion.sample(model, mct,
    config['schedule'], ...)``).
    """
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    kind, cfg = ckpt["kind"], dict(ckpt["config"])
    models = build_models(kind, cfg)
    if kind == "cgan":
        model = models["G"]
        model.load_state_dict(ckpt["models"]["G"])
    else:
        model = models["unet"]
        ema = ckpt.get("ema")
        model.load_state_dict(ema["module"] if ema else ckpt["models"]["unet"])
        cfg["schedule"] = schedule_config(cfg.get("schedule"))
    return kind, model.to(device).eval(), cfg
