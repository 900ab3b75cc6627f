"""The model side of ``rocksr enhance``, checked before any model work: the torch device, the
checkpoint loaded for inference, whether its kind samples, and its tile size and overlap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rocksr.enhance.errors import EnhanceError, one_line
from rocksr.enhance.inputs import Source

# the tile size assumed for checkpoints that do not record theirs (tiling.size of the default
# config, which every checkpoint trained before the record existed used)
DEFAULT_TILE = 128


def model_tile_size(cfg: dict, override: int | None = None) -> tuple[int, str]:
    """(tile size, where it came from): ``override``, else ``cfg["tile_size"]`` (the training
    tile size recorded in the checkpoint), else :data:`DEFAULT_TILE`."""
    if override is not None:
        return int(override), "option"
    if cfg.get("tile_size") is not None:
        return int(cfg["tile_size"]), "checkpoint"
    return DEFAULT_TILE, f"default ({DEFAULT_TILE}; the checkpoint records no tile_size)"


def resolve_device(spec: str) -> torch.device:
    """The torch device of ``--device`` (``auto``: CUDA when available, else the CPU), checked
    to exist on this machine before any work."""
    from rocksr.devices import resolve_device as device_name

    use = "use auto, cpu, cuda, cuda:N or mps"
    try:
        dev = torch.device(device_name(spec))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise EnhanceError(f"--device {spec}: not a device name; {use}") from exc
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            why = "built without CUDA" if torch.version.cuda is None else "sees no GPU"
            raise EnhanceError(
                f"--device {spec}: CUDA is not available (torch {torch.__version__} {why}); "
                "use --device cpu or auto"
            )
        if dev.index is not None and dev.index >= n:
            raise EnhanceError(f"--device {spec}: no such GPU ({n} visible: cuda:0..{n - 1})")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise EnhanceError(f"--device {spec}: MPS is not available; use --device cpu or auto")
    elif dev.type != "cpu":
        raise EnhanceError(f"--device {spec}: {dev.type} devices are not supported; {use}")
    return dev


def load_model(ckpt_path: Path, dev: torch.device) -> tuple[str, Any, dict]:
    """(kind, model, config) of the checkpoint (:func:`rocksr.inference.load_for_inference`);
    an unreadable file is an :class:`EnhanceError` naming it."""
    from rocksr.inference import load_for_inference

    try:
        return load_for_inference(ckpt_path, str(dev))
    except OSError as exc:
        # torch reports some truncated files (a few KiB left) as OSError EINVAL
        raise EnhanceError(
            f"{ckpt_path}: checkpoint cannot be read ({one_line(exc)}); it may be "
            "truncated or corrupt: copy or train it again"
        ) from exc


def check_samples(kind: str, samples: int, ckpt_path: Path) -> bool:
    """Whether the model samples (a DDPM); ``samples > 1`` of a deterministic model is an
    error (its K outputs would be one image K times, its std zero)."""
    from rocksr.models.registry import get_kind

    stochastic = get_kind(kind).stochastic
    if not stochastic and int(samples) > 1:
        raise EnhanceError(
            f"{ckpt_path}: is a {kind} model, which is deterministic, so --samples {samples} "
            "is refused (every sample would be the same image); use --samples 1"
        )
    return stochastic


def tiling(
    kind: str,
    cfg: dict,
    tile: int | None,
    overlap: int | None,
    window: str | None,
    ckpt_path: Path,
    src: Source,
) -> tuple[int, str, int, str]:
    """(tile size, where it came from, overlap, blending window), checked against the model and
    the input; ``overlap``/``window`` None: the model kind's own (its registry entry)."""
    from rocksr.models.registry import get_kind

    entry = get_kind(kind)
    tile_size, tile_source = model_tile_size(cfg, tile)
    ov = round(tile_size * entry.enhance_overlap) if overlap is None else int(overlap)
    if tile_size < 1 or not 0 <= ov < tile_size:
        raise EnhanceError(
            f"overlap must be in 0..{tile_size - 1} for a {tile_size} px tile; got {ov}"
        )
    f = entry.tile_multiple(cfg)
    if tile_size % f:
        raise EnhanceError(
            f"{ckpt_path}: tile size {tile_size} is not divisible by {f}, which this "
            f"{kind}'s U-Net needs"
        )
    h, w = src.shape
    if h < tile_size or w < tile_size:
        raise EnhanceError(
            f"{src.path}: image {h}x{w} is smaller than one {tile_size} px tile of the model "
            f"({tile_source}); use a larger image"
        )
    return tile_size, tile_source, ov, window or entry.enhance_window
