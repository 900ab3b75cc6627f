"""``rocksr enhance``: apply a trained model (cGAN or DDPM) to a whole micro-CT slice or stack.

One library function, :func:`enhance`, shared by the CLI command and the Snakemake rule.

Input (checked before any model work): a 2-D image that :func:`rocksr.io.read_image` accepts
(8/16-bit/float TIFF, PNG), a multi-page TIFF stack (all pages, or ``pages="100-199"``, 0-based
and inclusive), or a Zarr array (2-D, or 3-D ``(z, y, x)`` with an optional page range; a Zarr
group written by ``enhance`` itself (OME-Zarr) is read through its first multiscale level).

Output, chosen by extension: ``.tif``/``.tiff`` (2-D or stack, one page per slice, zlib), ``.png``
(2-D only) or ``.ome.zarr`` (an OME-NGFF 0.5 Zarr v3 group with one uint8 array ``0`` of axes
``z, y, x`` (``y, x`` for a 2-D input) and ``multiscales`` metadata).  Always uint8, the input's
shape.  Every output is written under a hidden temporary name in the target's folder and renamed
into place at the end; on any error the temporary files are removed, so no partial output is
left.  Provenance (checkpoint SHA-256, normalization applied, tile, overlap, window, fuse,
sampler, steps, seed, samples, rocksr version) is stored as JSON in the TIFF ImageDescription of
the first page (key ``rocksr``), a PNG text chunk ``rocksr``, or the OME-Zarr group attributes
(``rocksr``).

Normalization (``normalize``):

* ``from-checkpoint``: the checkpoint's ``config["normalization"]`` record (see
  :func:`normalization_record`) is applied to the new input, i.e. the same percentile stretch
  (and CLAHE, if training used it) that made the training micro-CT 8-bit; for a 2-D image this is
  :func:`rocksr.normalize.normalize_image` with the recorded parameters, bit for bit what
  ``rocksr`` did to the training image.  For a stack the black/white points are computed once
  over all selected slices (exact for 8/16-bit input, from a regular subsample of at most
  ``2**24`` pixels otherwise), so every slice gets the same mapping (no slice-to-slice contrast
  flicker); CLAHE, if recorded, is applied per slice.  A checkpoint without the record is an
  error that says to pass ``percentile`` or ``none``.
* ``percentile``: the default stretch (0.5 / 99.5 percentiles, no CLAHE), as above.
* ``none``: the input must already be 8-bit (normalized as the training data were).

Tiling: tiles of the model's training tile size (:func:`model_tile_size`), ``overlap`` (default
half a tile), blended with ``window`` (:mod:`rocksr.blending`; flush grid, no padding).

* cGAN: deterministic tiles, blended row of tiles by row of tiles
  (:func:`rocksr.blending.blend_deterministic`): memory is the uint8 slice plus a few tile rows.
* DDPM ``fuse="step"`` (default, :func:`fused_sample`): one noise field for the whole slice; at
  every scheduler step all tiles of x_t go through the network (in batches), each output becomes
  the (thresholded) x0 estimate, the estimates are blended into one full-size x0 and one
  ``scheduler.step`` updates the whole slice (tiled sampling as in StableSR / DiffBIR /
  MultiDiffusion).  Holds full-size float32 x_t, x0, the micro-CT and the weight sum (4 x 64 MB
  for a 4096^2 slice).  For a one-tile image it is :func:`rocksr.diffusion.sample` exactly.
* DDPM ``fuse="end"``: every tile is sampled independently with :func:`rocksr.diffusion.sample`
  (tiles in batches, one generator for the slice, consumed in tile order, so the result depends
  on ``batch_size``) and the final tiles are blended.  Kept to measure the seams it makes.

Seeding (DDPM): sample ``k`` uses a CPU ``torch.Generator`` seeded with :func:`sample_seed`:
``seed`` itself for ``k = 0`` (so ``samples=1`` and ``samples=K`` share their first output, and
a one-tile image reproduces ``diffusion.sample`` with ``torch.Generator().manual_seed(seed)``),
``SeedSequence([seed, k])`` for ``k >= 1``.  Stacks: by default (``slice_noise="shared"``) every
slice starts from the same generator state, i.e. the same noise field (consecutive slices stay
consistent); ``"independent"`` seeds slice ``z`` from ``SeedSequence([seed, k, z])``.

Several samples (``samples=K > 1``, DDPM): the main output is sample 0; ``<stem>_mean`` (uint8:
the per-pixel mean of the K samples in model units, mapped like every output) and
``<stem>_std`` (**float32**, population standard deviation (ddof 0) of the K samples in grey
levels on the 0..255 scale; a ``.png`` output gets a ``_std.tif`` sibling since PNG has no
float) are written next to it, same format otherwise.  A cGAN is deterministic: it writes one
output and the report records the request.

Stacks are processed slice by slice and written slice by slice; the report gives the mean
absolute difference between consecutive output slices and between consecutive (normalized)
input slices (``consistency``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rocksr.enhance.blending import (
    WINDOWS,
    blend_deterministic,
    blend_float,
    tile_grid,
    unit_to_uint8,
)
from rocksr.enhance.errors import EnhanceError, _choice, _one_line
from rocksr.enhance.fused import fused_sample, resolve_steps, sample_seed
from rocksr.enhance.inputs import open_input, stack_limits, stretch_fixed
from rocksr.enhance.outputs import _check_target, _Output, _output_format, output_paths

log = logging.getLogger(__name__)

NORMALIZE_MODES = ("from-checkpoint", "percentile", "none")
FUSE_MODES = ("step", "end")
SLICE_NOISE = ("shared", "independent")
# the tile size assumed for checkpoints that do not record theirs (tiling.size of the default
# config, which every checkpoint trained before the record existed used)
DEFAULT_TILE = 128
NORMALIZATION_METHODS = ("percentile",)


# ------------------------------------------------------------------------------ paths / pages


# ------------------------------------------------------------------------------ checkpoint


def model_tile_size(cfg: dict, override: int | None = None) -> tuple[int, str]:
    """(tile size, where it came from): ``override``, else ``cfg["tile_size"]`` (the training
    tile size recorded in the checkpoint), else :data:`DEFAULT_TILE`."""
    if override is not None:
        return int(override), "option"
    if cfg.get("tile_size") is not None:
        return int(cfg["tile_size"]), "checkpoint"
    return DEFAULT_TILE, f"default ({DEFAULT_TILE}; the checkpoint records no tile_size)"


def normalization_record(cfg: dict, checkpoint: str | os.PathLike) -> dict:
    """The micro-CT normalization recorded in a checkpoint config, checked, with defaults.

    Expected: ``cfg["normalization"] = {"method": "percentile", "mct": {p_low, p_high, clahe,
    clahe_clip, clahe_kernel}, "sem": {...}, ...}`` (other keys are kept, unused).  Returns
    ``{"method", "params"}`` (``params`` = the ``mct`` parameters, defaults filled)."""
    from rocksr.data.normalize import NORMALIZE_DEFAULTS

    rec = cfg.get("normalization")
    if not rec:
        raise EnhanceError(
            f"{checkpoint}: the checkpoint does not record the contrast normalization of its "
            "training data (it was written before rocksr recorded it); pass --normalize "
            "percentile (0.5/99.5 percentile stretch, the default of training) or --normalize "
            "none (input already normalized to 8 bits)"
        )
    method = rec.get("method", "percentile") if isinstance(rec, dict) else None
    if method not in NORMALIZATION_METHODS or not isinstance(rec.get("mct"), dict):
        raise EnhanceError(
            f"{checkpoint}: unsupported normalization record {rec!r}; expected method "
            f"{'|'.join(NORMALIZATION_METHODS)} with an 'mct' section; pass --normalize "
            "percentile or none"
        )
    unknown = sorted(set(rec["mct"]) - set(NORMALIZE_DEFAULTS))
    if unknown:
        raise EnhanceError(
            f"{checkpoint}: normalization record has unknown mct keys {unknown}; pass "
            "--normalize percentile or none"
        )
    return {"method": method, "params": {**NORMALIZE_DEFAULTS, **rec["mct"]}}


# ------------------------------------------------------------------------------ normalization


# ------------------------------------------------------------------------------ input


# ------------------------------------------------------------------------------ output


# ------------------------------------------------------------------------------ sampling


# ------------------------------------------------------------------------------ enhance


def _describe_norm(mode: str, params: dict | None, lo: float | None, hi: float | None) -> str:
    if mode == "none":
        return "none: input used as 8-bit grey levels"
    assert params is not None
    src = "the checkpoint's recorded" if mode == "from-checkpoint" else "the default"
    clahe = ", then CLAHE" if params.get("clahe") else ""
    return (
        f"{src} percentile stretch {params['p_low']}..{params['p_high']} "
        f"(black {lo:g}, white {hi:g}){clahe}"
    )


def enhance(
    checkpoint: str | os.PathLike,
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    pages: str | None = None,
    normalize: str = "from-checkpoint",
    tile: int | None = None,
    overlap: int | None = None,
    window: str = "gaussian",
    fuse: str = "step",
    sampler: str = "ddim",
    steps: int | None = None,
    samples: int = 1,
    seed: int = 0,
    slice_noise: str = "shared",
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Enhance a micro-CT slice or stack with a trained checkpoint; returns a report dict.

    See the module docstring for inputs, outputs, normalization, tiling, fusing and seeding.
    ``tile`` overrides the checkpoint's tile size; ``overlap`` defaults to ``tile // 2``.
    Every user error is a :class:`rocksr.errors.RocksrError` naming the file, raised before
    any model work where it can be known then; no partial output is ever left behind.
    """
    from rocksr import __version__
    from rocksr.data.normalize import NORMALIZE_DEFAULTS, normalize_image, stretch_limits
    from rocksr.devices import resolve_device
    from rocksr.files import sha256_file
    from rocksr.inference import load_for_inference, make_predictor

    t_start = time.perf_counter()
    _choice(normalize, NORMALIZE_MODES, "normalize")
    _choice(window, WINDOWS, "window")
    _choice(fuse, FUSE_MODES, "fuse")
    _choice(slice_noise, SLICE_NOISE, "slice_noise")
    if int(samples) < 1:
        raise EnhanceError(f"samples must be >= 1, got {samples}")
    if int(batch_size) < 1:
        raise EnhanceError(f"batch_size must be >= 1, got {batch_size}")

    out_path = Path(output)
    fmt = _output_format(out_path)
    if not out_path.parent.is_dir():
        raise EnhanceError(f"{out_path}: output folder {out_path.parent} does not exist")
    ckpt_path = Path(checkpoint)
    in_path = Path(input)
    with contextlib.suppress(OSError):
        if in_path.exists() and out_path.resolve() == in_path.resolve():
            raise EnhanceError(f"{out_path}: is the input itself; choose another output path")

    src = open_input(in_path, pages)
    try:
        if src.stack and fmt == "png":
            raise EnhanceError(
                f"{out_path}: PNG holds one image; write a stack to .tif or .ome.zarr"
            )
        dev = torch.device(resolve_device(device))
        try:
            kind, model, cfg = load_for_inference(ckpt_path, str(dev))
        except OSError as exc:
            # torch reports some truncated files (a few KiB left) as OSError EINVAL, which
            # rocksr.checkpoint passes through as a file-system problem
            raise EnhanceError(
                f"{ckpt_path}: checkpoint cannot be read ({_one_line(exc)}); it may be "
                "truncated or corrupt: copy or train it again"
            ) from exc
        tile_size, tile_source = model_tile_size(cfg, tile)
        ov = tile_size // 2 if overlap is None else int(overlap)
        if tile_size < 1 or not 0 <= ov < tile_size:
            raise EnhanceError(
                f"overlap must be in 0..{tile_size - 1} for a {tile_size} px tile; got {ov}"
            )
        if kind == "ddpm":
            from rocksr.models.unet import unet_config

            f = 2 ** (len(unet_config(cfg.get("unet"))["block_out_channels"]) - 1)
            if tile_size % f:
                raise EnhanceError(
                    f"{ckpt_path}: tile size {tile_size} is not divisible by {f}, which this "
                    "DDPM's U-Net needs"
                )
        h, w = src.shape
        if h < tile_size or w < tile_size:
            raise EnhanceError(
                f"{in_path}: image {h}x{w} is smaller than one {tile_size} px tile of the model "
                f"({tile_source}); use a larger image"
            )

        # normalization: parameters now, and 'none' must be 8-bit already
        params: dict | None = None
        if normalize == "from-checkpoint":
            rec = normalization_record(cfg, ckpt_path)
            params = rec["params"]
        elif normalize == "percentile":
            params = dict(NORMALIZE_DEFAULTS)
        elif src.dtype != np.uint8:
            raise EnhanceError(
                f"{in_path}: is {src.dtype}, but --normalize none needs an 8-bit image already "
                "normalized like the training data; use --normalize from-checkpoint or percentile"
            )

        ddpm = kind == "ddpm"
        n_samples = int(samples) if ddpm else 1
        n_steps = None
        if ddpm:
            n_steps = resolve_steps(sampler, steps, int(cfg["schedule"]["timesteps"]))
        uncertainty = n_samples > 1
        targets = output_paths(out_path, uncertainty)
        for key, p in targets.items():
            _check_target(p, _output_format(p) if key != "pred" else fmt)

        lo = hi = None
        limits_over = None
        if params is not None:
            if src.stack:
                lo, hi, limits_over = stack_limits(
                    src.read, src.n, params["p_low"], params["p_high"]
                )
            else:
                lo, hi = stretch_limits(src.read(0), params["p_low"], params["p_high"])
                limits_over = "the image"
        norm_desc = _describe_norm(normalize, params, lo, hi)
        log.info("%s: normalization: %s", in_path, norm_desc)

        def normalized(i: int) -> np.ndarray:
            a = src.read(i)
            if params is None:
                return a
            if not src.stack:
                return normalize_image(a, **params)
            return stretch_fixed(a, lo, hi, **params)

        # model and per-tile predictors
        if ddpm:
            from rocksr.diffusion.sampling import sampling_options

            opts = sampling_options(cfg)
        else:
            opts = {}
        predictor = make_predictor(kind, model, cfg, sampler, n_steps)

        prov = {
            "tool": "rocksr enhance",
            "rocksr_version": __version__,
            "checkpoint": str(ckpt_path),
            "checkpoint_sha256": sha256_file(ckpt_path),
            "kind": kind,
            "input": str(in_path),
            "pages": [src.first, src.first + src.n - 1] if src.stack else None,
            "normalization": {
                "mode": normalize,
                "method": None if params is None else "percentile",
                "params": params,
                "black": lo,
                "white": hi,
                "limits_over": limits_over,
                "description": norm_desc,
            },
            "tile": tile_size,
            "tile_source": tile_source,
            "overlap": ov,
            "window": window,
            "fuse": fuse if ddpm else None,
            "sampler": sampler if ddpm else None,
            "steps": n_steps,
            "prediction": opts.get("prediction"),
            "threshold": opts.get("threshold"),
            "seed": int(seed) if ddpm else None,
            "samples": n_samples,
            "slice_noise": slice_noise if ddpm and src.stack else None,
            "sample_seeding": (
                "sample k: torch.Generator seeded with seed (k = 0) or 64 bits of "
                "SeedSequence([seed, k]) (k >= 1); independent slice noise: "
                "SeedSequence([seed, k, z])"
                if ddpm
                else None
            ),
            "batch_size": int(batch_size),
        }
        if not ddpm and int(samples) > 1:
            prov["samples_requested"] = int(samples)

        ys, xs = tile_grid(h, w, tile_size, ov)
        n_tiles = len(ys) * len(xs)
        per_slice = n_tiles * (n_samples * n_steps if ddpm else 1)
        from tqdm import tqdm

        bar = tqdm(
            total=per_slice * src.n,
            unit="tile",
            desc=f"enhance {in_path.name} ({kind}{', fuse ' + fuse if ddpm else ''})",
            file=sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
        )
        shape = (src.n, h, w) if src.stack else (h, w)
        outs: dict[str, _Output] = {}
        try:
            for key, p in targets.items():
                role = {"pred": "sample 0" if ddpm else "prediction", "mean": "mean"}
                role["std"] = "std (population, grey levels 0..255, float32)"
                outs[key] = _Output(
                    p,
                    fmt if key == "pred" else _output_format(p),
                    shape,
                    "float32" if key == "std" else "uint8",
                    {**prov, "array": role[key]},
                )
            diffs_out: list[float] = []
            diffs_in: list[float] = []
            prev_out = prev_in = None
            for i in range(src.n):
                img = normalized(i)
                if not ddpm:
                    pred = blend_deterministic(
                        img,
                        lambda b: predictor(b, None),
                        tile_size,
                        ov,
                        int(batch_size),
                        window,
                        device=dev,
                        on_batch=bar.update,
                    )
                    results = {"pred": pred}
                else:
                    results = _ddpm_slice(
                        img,
                        model,
                        predictor,
                        cfg,
                        opts,
                        sampler=sampler,
                        steps=n_steps,
                        fuse=fuse,
                        tile=tile_size,
                        overlap=ov,
                        window=window,
                        batch_size=int(batch_size),
                        seeds=[
                            sample_seed(seed, k, None if slice_noise == "shared" else src.first + i)
                            for k in range(n_samples)
                        ],
                        device=dev,
                        n_steps=n_steps,
                        on_batch=bar.update,
                    )
                for key, o in outs.items():
                    o.write(i, results[key])
                if prev_out is not None:
                    diffs_out.append(_mad(results["pred"], prev_out))
                    diffs_in.append(_mad(img, prev_in))
                prev_out, prev_in = results["pred"], img
            for o in outs.values():
                o.commit()
        except BaseException:
            for o in outs.values():
                o.abort()
            raise
        finally:
            bar.close()
    finally:
        src.close()

    seconds = time.perf_counter() - t_start
    consistency = None
    if src.stack and diffs_out:
        mo, mi = float(np.mean(diffs_out)), float(np.mean(diffs_in))
        consistency = {
            "output_mean_abs_diff": mo,
            "input_mean_abs_diff": mi,
            "ratio": mo / mi if mi > 0 else None,
            "note": "mean |slice[z+1] - slice[z]| in grey levels, output vs normalized input",
        }
    return {
        **prov,
        "outputs": {k: str(p) for k, p in targets.items()},
        "format": fmt,
        "shape": list(shape),
        "dtype": "uint8",
        "n_tiles_per_slice": n_tiles,
        "seconds": seconds,
        "megapixels_per_s": src.n * h * w / 1e6 / seconds if seconds > 0 else None,
        "consistency": consistency,
    }


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def _ddpm_slice(
    img: np.ndarray,
    model: Any,
    predictor: Callable,
    cfg: dict,
    opts: dict,
    *,
    sampler: str,
    steps: int,
    fuse: str,
    tile: int,
    overlap: int,
    window: str,
    batch_size: int,
    seeds: list[int],
    device: torch.device,
    n_steps: int,
    on_batch: Callable[[int], None],
) -> dict[str, np.ndarray]:
    """One slice, K samples: {"pred": uint8 sample 0, and for K > 1 "mean" uint8, "std" f32}."""
    from rocksr.enhance.blending import to_unit

    k_total = len(seeds)
    mean = m2 = None
    pred = None
    mct = None
    if fuse == "step":
        mct = torch.from_numpy(to_unit(img))[None, None].to(device)
    for k, s in enumerate(seeds):
        g = torch.Generator(device="cpu").manual_seed(s)
        if fuse == "step":
            x = fused_sample(
                model,
                mct,
                cfg["schedule"],
                sampler,
                steps,
                g,
                tile=tile,
                overlap=overlap,
                window=window,
                batch_size=batch_size,
                on_batch=on_batch,
                **opts,
            )
            xf = x[0, 0].float().cpu().numpy()
            del x
        else:
            xf = blend_float(
                img,
                lambda b, g=g: predictor(b, g),
                tile,
                overlap,
                batch_size,
                window,
                device=device,
                on_batch=lambda n: on_batch(n * n_steps),
            )
        if k == 0:
            pred = unit_to_uint8(xf)
        if k_total > 1:
            # Welford running moments of the K samples (model units), float32 to keep two
            # full-size buffers at 64 MB each for a 4096^2 slice
            if mean is None:
                mean = np.zeros(xf.shape, np.float32)
                m2 = np.zeros(xf.shape, np.float32)
            d = xf - mean
            mean += d / np.float32(k + 1)
            d *= xf - mean
            m2 += d
        del xf
    out = {"pred": pred}
    if k_total > 1:
        out["mean"] = unit_to_uint8(mean)
        out["std"] = (np.sqrt(m2 / k_total) * 127.5).astype(np.float32)
    return out
