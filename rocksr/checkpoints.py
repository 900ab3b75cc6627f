"""Checkpoint files: atomic saving with a content digest, verified loading and publishing, and
the errors a broken or incompatible checkpoint raises."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import torch

from rocksr.errors import RocksrError

FORMAT = "rocksr-ckpt/1"


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


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then os.replace: readers see
    either the previous file or the complete new one, never a partial write. A rocksr
    checkpoint dict gets its ``digest``."""
    from rocksr.files import atomic_file

    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = {**obj, "digest": content_digest(obj)}
    with atomic_file(path, fsync=True) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    """Copy a file so that ``dst`` appears complete or not at all."""
    from rocksr.files import atomic_file

    with atomic_file(dst, fsync=True) as tmp:
        shutil.copyfile(src, tmp)


def publish_checkpoint(src: str | Path, dst: str | Path) -> dict:
    """Copy checkpoint ``src`` to ``dst`` atomically after verifying it (:func:`load_checkpoint`),
    and check the copy's bytes; returns the loaded checkpoint. A broken ``src`` raises
    :class:`CorruptCheckpointError` and ``dst`` is left as it was."""
    from rocksr.outputs import check_file_target

    ckpt = load_checkpoint(src)
    check_file_target(dst)
    copy_atomic(src, dst)
    from rocksr.files import sha256_file

    if sha256_file(src) != sha256_file(dst):
        Path(dst).unlink(missing_ok=True)
        raise CorruptCheckpointError(f"{dst}: copy of {src} differs from its source; removed")
    return ckpt


def _foreign(path: str | Path) -> bool:
    """Whether a file torch could not load is no PyTorch file at all (a JSON, CSV, image...:
    neither a zip archive nor a pickle), rather than a truncated or damaged one."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return bool(head) and not (head.startswith(b"\x80") or b"PK\x03\x04".startswith(head))


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
        if _foreign(path):
            raise CorruptCheckpointError(
                f"{path}: not a rocksr checkpoint (not a PyTorch file at all); pass the "
                "best.pt or last.pt that rocksr training wrote"
            ) from exc
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
