"""Priors of predict-and-refine diffusion (``ddpm.prior``): a first guess of the SEM that the
DDPM refines by generating only the residual ``SEM - prior`` (ResDiff, AAAI 2024; DvSR, CVPR
2022; ResShift, NeurIPS 2023 for diffusing a residual).

* ``none``: no prior; the DDPM is the seed's, conditioned on [x_t, micro-CT].
* ``histmatch``: the train-split histogram-matching LUT of the ``histmatch`` baseline, applied
  to the micro-CT tile. The LUT is recorded in the DDPM's checkpoint, which stays self-contained.
* ``regress``: a trained regression U-Net (kind ``regress``), frozen, run on the micro-CT tile.
  The checkpoint records its path and SHA-256; inference finds it there (or beside the DDPM's
  checkpoint, as ``../regress/best.pt``) and refuses any other file.

With a prior the DDPM's network sees [x_t, micro-CT, prior] (3 channels); its clean signal is
the residual, and every sampler adds the prior back (thresholding keeps prior + residual in
[-1, 1]). A prior maps micro-CT tiles ``(B,1,H,W)`` in [-1, 1] to ``(B,1,H,W)`` in [-1, 1].
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rocksr.errors import RocksrError

PRIORS = ("none", "histmatch", "regress")


class PriorError(RocksrError, ValueError):
    """A DDPM's prior cannot be found or is not the one it was trained with (one line)."""


class Prior:
    """A prior: ``prior(mct) -> first guess``; ``record``: what the checkpoint keeps of it;
    ``pointwise``: each output pixel depends on its own input pixel only (a whole slice may
    then be mapped at once; otherwise it is tiled and blended like a deterministic model)."""

    pointwise = False

    def __init__(self, kind: str, record: dict) -> None:
        self.kind, self.record = kind, record

    def __call__(self, mct: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LUTPrior(Prior):
    """A grey-level lookup table on the micro-CT's 8-bit value (the mapping of
    :mod:`rocksr.data.values`)."""

    def __init__(self, lut: np.ndarray, record: dict) -> None:
        super().__init__("histmatch", record)
        lut = np.asarray(lut)
        if lut.shape != (256,):
            raise ValueError(f"histmatch prior: LUT must have 256 entries, got {lut.shape}")
        self.table = torch.from_numpy(lut.astype(np.float32) / np.float32(127.5) - 1.0)

    def __call__(self, mct: torch.Tensor) -> torch.Tensor:
        u8 = torch.round((mct.float() + 1.0) * 127.5).clamp(0, 255).long()
        return self.table.to(mct.device)[u8]


class NetworkPrior(Prior):
    """A frozen deterministic network (the regression U-Net), clamped to [-1, 1]."""

    def __init__(self, net: torch.nn.Module, record: dict) -> None:
        super().__init__("regress", record)
        self.net = net.eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, mct: torch.Tensor) -> torch.Tensor:
        net = self.net
        if next(net.parameters()).device != mct.device:
            net = self.net = net.to(mct.device)
        return net(mct.float()).float().clamp(-1.0, 1.0)


# the most bytes of prior tiles a CachedPrior keeps (the demo's ~1,100 train and val tiles of
# 128 px take 70 MB; beyond the cap, tiles are computed at every draw, one at a time as below)
PRIOR_CACHE_BYTES = 2 * 1024**3


class CachedPrior(Prior):
    """A network prior computed once per distinct micro-CT tile, one tile at a time (training).

    Training draws every train tile many times and the frozen prior's output for a tile never
    changes, so it is kept, keyed by the tile's bytes, up to ``max_bytes``: a DDPM refining the
    regression U-Net then pays the prior about once per tile instead of at every step (on the
    demo the prior cost more than the DDPM's own forward and backward pass). Each tile is
    computed alone (a batch of one), so its prior never depends on which tiles share its batch,
    on the number of processes or on a resumption: training stays exactly resumable, and a hit
    returns the very numbers a miss computes.
    """

    def __init__(self, inner: Prior, max_bytes: int = PRIOR_CACHE_BYTES) -> None:
        super().__init__(inner.kind, inner.record)
        self.inner, self.max_bytes = inner, int(max_bytes)
        self.tiles: dict[bytes, torch.Tensor] = {}
        self.nbytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def _key(tile: torch.Tensor) -> bytes:
        head = repr((tuple(tile.shape), str(tile.dtype))).encode()
        return hashlib.blake2b(head + tile.numpy().tobytes(), digest_size=20).digest()

    def __call__(self, mct: torch.Tensor) -> torch.Tensor:
        host = mct.detach().to("cpu").contiguous()
        out = []
        for i in range(mct.shape[0]):
            key = self._key(host[i])
            hit = self.tiles.get(key)
            if hit is None:
                self.misses += 1
                hit = self.inner(mct[i : i + 1])
                size = hit.numel() * hit.element_size()
                if self.nbytes + size <= self.max_bytes:
                    self.tiles[key] = hit
                    self.nbytes += size
            else:
                self.hits += 1
            out.append(hit)
        return torch.cat(out)


def check_prior(name: object) -> str:
    if name not in PRIORS:
        raise ValueError(f"ddpm.prior must be one of {', '.join(PRIORS)}; got {name!r}")
    return str(name)


def histmatch_prior(store: str | os.PathLike, splits: str | os.PathLike) -> LUTPrior:
    """The ``histmatch`` baseline's LUT, fitted on the train split of ``store``."""
    from rocksr.evaluation.baselines import fit_histmatch_lut

    lut, meta = fit_histmatch_lut(store, splits)
    return LUTPrior(lut, {"kind": "histmatch", "lut": [int(v) for v in lut], "fit": meta})


def _regress_network(path: Path, device: Any) -> torch.nn.Module:
    import rocksr.kinds.regress  # noqa: F401  (loaded by name below; imported here for code hashes)
    from rocksr.inference import load_for_inference

    kind, net, _ = load_for_inference(path, device=str(device))
    if kind != "regress":
        raise ValueError(f"{path}: the DDPM's prior must be a 'regress' checkpoint, not {kind!r}")
    return net


def regress_prior(checkpoint: str | os.PathLike, device: Any = "cpu") -> NetworkPrior:
    """The regression U-Net of ``checkpoint`` as a prior (at training time)."""
    from rocksr.files import sha256_file

    path = Path(checkpoint)
    if not path.is_file():
        raise ValueError(
            f"{path}: ddpm.prior is 'regress' but its checkpoint does not exist; train the "
            "regress model first (the workflow does) or set ddpm.prior_checkpoint"
        )
    record = {"kind": "regress", "checkpoint": str(path), "sha256": sha256_file(path)}
    return NetworkPrior(_regress_network(path, device), record)


def prior_candidates(record: dict, near: str | os.PathLike | None) -> list[Path]:
    """Where a DDPM checkpoint's regress prior may be: the recorded path, the same path taken
    relative to the DDPM checkpoint's folder, and ``../regress/best.pt`` beside it."""
    given = Path(record["checkpoint"])
    out = [given]
    if near is not None:
        here = Path(near).parent
        if not given.is_absolute():
            out.append(here / given)
        out.append(here.parent / "regress" / "best.pt")
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def load_prior(
    record: dict | None, near: str | os.PathLike | None = None, device: Any = "cpu"
) -> Prior | None:
    """The prior a DDPM checkpoint recorded (None for ``none``); ``near``: that checkpoint's
    path. A regress prior must be found with the recorded SHA-256, or a one-line ValueError says
    which file (and digest) is needed."""
    from rocksr.files import sha256_file

    if not record or record.get("kind", "none") == "none":
        return None
    kind = check_prior(record.get("kind"))
    if kind == "histmatch":
        return LUTPrior(np.asarray(record["lut"], dtype=np.uint8), record)
    want = record["sha256"]
    tried = []
    for path in prior_candidates(record, near):
        if path.is_file():
            if sha256_file(path) == want:
                return NetworkPrior(_regress_network(path, device), record)
            tried.append(f"{path} (a different file)")
        else:
            tried.append(f"{path} (missing)")
    where = f"{near}: " if near is not None else ""
    raise PriorError(
        f"{where}this DDPM refines a regress prior and needs the regress checkpoint "
        f"{record['checkpoint']} with SHA-256 {want[:16]}…; tried {', '.join(tried)}"
    )
