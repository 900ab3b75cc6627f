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
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rocksr.checkpoints import (
    FORMAT,
    CorruptCheckpointError,
    IncompatibleCheckpointError,
    load_checkpoint,
)

log = logging.getLogger(__name__)


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
    ckpt: dict, kind: str, arch: dict, models: dict[str, nn.Module], path: str | Path = "checkpoint"
) -> None:
    """Raise IncompatibleCheckpointError (naming the differing keys) unless ``ckpt`` can be resumed
    by ``models`` of ``kind`` whose architecture signature is ``arch``."""
    if ckpt.get("format") != FORMAT:
        raise IncompatibleCheckpointError(
            f"{path}: unknown checkpoint format {ckpt.get('format')!r}"
        )
    if ckpt.get("kind") != kind:
        raise IncompatibleCheckpointError(
            f"{path}: holds a {ckpt.get('kind')!r} model, not {kind!r}"
        )
    saved_arch = dict(ckpt.get("arch", {}))
    if "prediction" in arch:  # a diffusion model
        saved_arch.setdefault("prediction", "epsilon")  # checkpoints older than the option
        want = arch["prediction"]
        if saved_arch["prediction"] != want:
            raise IncompatibleCheckpointError(
                f"{path} holds a DDPM trained to predict {saved_arch['prediction']!r}, but the "
                f"config asks for ddpm.prediction: {want!r}; set ddpm.prediction: "
                f"{saved_arch['prediction']} to use it, or delete the training state directory "
                "to train afresh"
            )
    problems = diff_keys(saved_arch, arch)
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


def checkpoint_payload(
    task,
    kind: str,
    cfg: dict,
    seed: int,
    progress: dict,
    gen: torch.Generator,
    history: list[dict],
    fingerprint: str = "",
    data: dict | None = None,
) -> dict:
    """The complete training state; ``data``: what inference needs to know about the training
    data (``tile_size``, ``normalization``), stored as top-level keys."""
    return {
        **(data or {}),
        "format": FORMAT,
        "kind": kind,
        "config": cfg,
        "seed": seed,
        "fingerprint": fingerprint,
        "arch": task.arch,
        **task.state(),
        **progress,
        "rng": rng_state(gen),
        "history": history,
    }


def set_aside(path: Path) -> Path:
    """Rename a broken checkpoint to ``<name>.broken-<n>`` next to it; returns the new path."""
    n = 1
    while (aside := path.with_name(f"{path.name}.broken-{n}")).exists():
        n += 1
    path.rename(aside)
    return aside


def load_state(path: Path) -> tuple[dict | None, bool]:
    """(checkpoint, broken): a state checkpoint verified by its digest; a truncated or corrupt
    one is set aside (named in the log) and gives ``(None, True)``; an absent one ``(None, False)``."""
    if not path.exists():
        return None, False
    try:
        return load_checkpoint(path, map_location="cpu"), False
    except CorruptCheckpointError as exc:
        aside = set_aside(path)
        log.warning("%s is broken (%s); set aside as %s", path, str(exc).split("; ")[0], aside)
        return None, True
