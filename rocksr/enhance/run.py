"""``rocksr enhance``: apply a trained model (any model kind: cGAN, regression U-Net, DDPM) to a whole micro-CT slice or stack.

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

Scale (``mct_scale``): a model trained on pairs whose micro-CT was up-sampled onto the SEM grid
(the samples' ``mct_scale``) records that factor; ``auto`` (default) up-samples a raw input
(``normalize`` ``from-checkpoint`` or ``percentile``) by it before anything else, exactly as
training did (:func:`rocksr.data.registration.upsample`), so a slice at the micro-CT's own pixel
size comes out on the SEM's; with ``normalize`` ``none`` the input is taken as already on the
SEM grid. An integer forces the factor (1: none). Training pairs with different factors make
``auto`` an error that asks for the factor.

Normalization (``normalize``):

* ``from-checkpoint``: the checkpoint's ``config["normalization"]`` record (see
  :func:`normalization_record`) is applied to the new input, i.e. the same percentile stretch
  (and CLAHE, if training used it) that made the training micro-CT 8-bit; for a 2-D image this is
  :func:`rocksr.normalize.normalize_image` with the recorded parameters, bit for bit what
  ``rocksr`` did to the training image.  For a stack the black/white points are computed once
  over all selected slices (exact for 8/16-bit input, from a regular subsample of at most
  ``2**24`` pixels otherwise), so every slice gets the same mapping (no slice-to-slice contrast
  flicker); CLAHE, if recorded, is applied per slice.  When the record says the training
  percentiles were taken inside a circular field of view (``within: auto_fov``: every training
  sample had ``mask: auto_fov``), the input's own field of view is found on its first slice and
  the percentiles are taken inside it (every pixel is still stretched); an input without a
  constant surround uses every pixel, and the provenance says which.  A checkpoint without the
  record is an error that says to pass ``percentile`` or ``none``.
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
float) are written next to it, same format otherwise.  A deterministic model (cGAN, regression
U-Net) refuses ``samples > 1`` before any work.

What may be written (checked before any model work, :func:`rocksr.enhance.outputs.check_outputs`):
the output, ``_mean``, ``_std`` and the report must each be in an existing writable folder and
must not be, hold or lie inside the input (a Zarr array inside a group included), the
checkpoint or one another (resolved paths).  An existing target is replaced only if ``enhance``
wrote it (its provenance, above, or the report's ``tool``, is ``rocksr enhance``), so re-running
a command works; anything else is the user's and is refused unless ``overwrite`` (a folder that
is not a Zarr store, or a link, never is replaced).

Stacks are processed slice by slice and written slice by slice; the report gives the mean
absolute difference between consecutive output slices and between consecutive (normalized)
input slices (``consistency``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rocksr.data.normalize import stretch_fixed
from rocksr.enhance.blending import (
    WINDOWS,
    blend_deterministic,
    blend_float,
    tile_grid,
    unit_to_uint8,
)
from rocksr.enhance.errors import EnhanceError, _choice, _one_line
from rocksr.enhance.fused import fused_sample, resolve_steps, sample_seed
from rocksr.enhance.inputs import ScaledSource, open_input, stack_limits
from rocksr.enhance.outputs import ENHANCE_TOOL, _Output, check_outputs, output_paths

log = logging.getLogger(__name__)

NORMALIZE_MODES = ("from-checkpoint", "percentile", "none")
FUSE_MODES = ("step", "end")
SLICE_NOISE = ("shared", "independent")
# the tile size assumed for checkpoints that do not record theirs (tiling.size of the default
# config, which every checkpoint trained before the record existed used)
DEFAULT_TILE = 128
NORMALIZATION_METHODS = ("percentile",)
# where training took its percentiles: every pixel, each sample's circular FOV, mask images/mixed
WITHIN = ("image", "auto_fov", "masks")


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
    clahe_clip, clahe_kernel}, "sem": {...}, "within": "image" | "auto_fov" | "masks", ...}``
    (other keys are kept, unused).  Returns ``{"method", "params", "within"}`` (``params`` = the
    ``mct`` parameters, defaults filled; ``within`` where the percentiles were taken, ``image``
    for records that predate masks)."""
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
    within = rec.get("within", "image")
    if within not in WITHIN:
        raise EnhanceError(
            f"{checkpoint}: normalization record has within {within!r}, not one of "
            f"{', '.join(WITHIN)}; pass --normalize percentile or none"
        )
    return {"method": method, "params": {**NORMALIZE_DEFAULTS, **rec["mct"]}, "within": within}


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


def _check_request(
    normalize: str, window: str, fuse: str, slice_noise: str, samples: int, batch_size: int
) -> None:
    _choice(normalize, NORMALIZE_MODES, "normalize")
    _choice(window, WINDOWS, "window")
    _choice(fuse, FUSE_MODES, "fuse")
    _choice(slice_noise, SLICE_NOISE, "slice_noise")
    if int(samples) < 1:
        raise EnhanceError(f"samples must be >= 1, got {samples}")
    if int(batch_size) < 1:
        raise EnhanceError(f"batch_size must be >= 1, got {batch_size}")


def _device(spec: str) -> torch.device:
    """The torch device of ``--device`` (``auto``: CUDA when available, else the CPU), checked
    to exist on this machine before any work."""
    from rocksr.devices import resolve_device

    use = "use auto, cpu, cuda, cuda:N or mps"
    try:
        dev = torch.device(resolve_device(spec))
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


def _check_samples(kind: str, samples: int, ckpt_path: Path) -> bool:
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


def report_text(report: dict) -> str:
    """The report as the JSON that ``--report`` writes and the command prints."""
    return json.dumps(report, indent=2, sort_keys=True, default=str)


def _load_model(ckpt_path: Path, dev: torch.device) -> tuple[str, Any, dict]:
    from rocksr.inference import load_for_inference

    try:
        return load_for_inference(ckpt_path, str(dev))
    except OSError as exc:
        # torch reports some truncated files (a few KiB left) as OSError EINVAL
        raise EnhanceError(
            f"{ckpt_path}: checkpoint cannot be read ({_one_line(exc)}); it may be "
            "truncated or corrupt: copy or train it again"
        ) from exc


def _tiling(
    kind: str, cfg: dict, tile: int | None, overlap: int | None, ckpt_path: Path, src: Any
) -> tuple[int, str, int]:
    """(tile size, where it came from, overlap), checked against the model and the input."""
    tile_size, tile_source = model_tile_size(cfg, tile)
    ov = tile_size // 2 if overlap is None else int(overlap)
    if tile_size < 1 or not 0 <= ov < tile_size:
        raise EnhanceError(
            f"overlap must be in 0..{tile_size - 1} for a {tile_size} px tile; got {ov}"
        )
    from rocksr.models.registry import get_kind

    f = get_kind(kind).tile_multiple(cfg)
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
    return tile_size, tile_source, ov


def _mct_scale(spec: str | int, normalize: str, cfg: dict, checkpoint: Path) -> int:
    """The input's up-sampling factor: an integer as given, or ``auto``: the checkpoint's
    recorded ``mct_scale`` for a raw input (normalize from-checkpoint / percentile), else 1."""
    if str(spec) != "auto":
        try:
            factor = int(spec)
        except ValueError:
            factor = 0
        if factor < 1 or str(factor) != str(spec).strip():
            raise EnhanceError(f"--mct-scale must be a positive integer or auto, got {spec!r}")
        return factor
    if normalize == "none":
        return 1
    rec = cfg.get("normalization") or {}
    if "mct_scales" in rec and rec.get("mct_scale") is None:
        raise EnhanceError(
            f"{checkpoint}: the training pairs had different micro-CT up-sampling factors "
            f"({', '.join(map(str, rec['mct_scales']))}); pass --mct-scale with this input's "
            "factor (SEM pixels per micro-CT pixel)"
        )
    return int(rec.get("mct_scale") or 1)


class _Normalizer:
    """The contrast mapping applied to every input slice, decided before any model work.

    With ``from-checkpoint`` and training pairs whose percentiles were taken inside a circular
    field of view (every sample ``mask: auto_fov``), the input's field of view is found on its
    first slice (:func:`rocksr.data.masks.auto_fov`) and the black/white points are taken inside
    it; an input with no constant surround (already cropped inside its field of view) uses every
    pixel, and the record says which."""

    def __init__(self, mode: str, cfg: dict, ckpt_path: Path, src: Any) -> None:
        from rocksr.data.normalize import NORMALIZE_DEFAULTS, stretch_limits

        self.src, self.params, self.mask = src, None, None
        within = "the whole image"
        if mode == "from-checkpoint":
            record = normalization_record(cfg, ckpt_path)
            self.params = record["params"]
            if record["within"] == "auto_fov":
                self.mask, within = _input_fov(src)
            elif record["within"] == "masks":
                within = (
                    "the whole image (training took its percentiles inside mask images, which "
                    "do not carry over to a new slice: crop it to its valid area first)"
                )
                log.warning("%s: percentiles within %s", src.path, within)
        elif mode == "percentile":
            self.params = dict(NORMALIZE_DEFAULTS)
        elif src.dtype != np.uint8:
            raise EnhanceError(
                f"{src.path}: is {src.dtype}, but --normalize none needs an 8-bit image already "
                "normalized like the training data; use --normalize from-checkpoint or percentile"
            )
        self.lo = self.hi = self.limits_over = None
        if self.params is not None:
            pl, ph = self.params["p_low"], self.params["p_high"]
            if src.stack:
                self.lo, self.hi, self.limits_over = stack_limits(
                    src.read, src.n, pl, ph, self.mask
                )
            else:
                first = src.read(0)
                self.lo, self.hi = stretch_limits(
                    first if self.mask is None else first[self.mask], pl, ph
                )
                self.limits_over = "the image"
            self.limits_over += f"; percentiles within {within}"
        self.record = {
            "mode": mode,
            "method": None if self.params is None else "percentile",
            "params": self.params,
            "black": self.lo,
            "white": self.hi,
            "limits_over": self.limits_over,
            "description": _describe_norm(mode, self.params, self.lo, self.hi),
        }

    def slice(self, i: int) -> np.ndarray:
        from rocksr.data.normalize import normalize_image

        a = self.src.read(i)
        if self.params is None:
            return a
        if not self.src.stack:
            return normalize_image(a, **self.params, mask=self.mask)
        return stretch_fixed(a, self.lo, self.hi, **self.params)


def _input_fov(src: Any) -> tuple[np.ndarray | None, str]:
    """(mask, said) of the input's circular field of view, found on its first slice on the
    input's own grid and, for an up-sampled input, redrawn on the model's grid exactly as
    training did (:func:`rocksr.data.masks.sample_mask`)."""
    from rocksr.data.images import ImageError
    from rocksr.data.masks import sample_mask

    scaled = isinstance(src, ScaledSource)
    raw = src.inner.read(0) if scaled else src.read(0)
    factor = src.factor if scaled else 1
    try:
        mask, fov = sample_mask("auto_fov", raw, src.shape, factor, None, str(src.path))
    except ImageError:
        return None, "the whole image (no circular field of view found in the input)"
    cy, cx = fov["centre_yx"]
    said = f"its field of view (disc at y {cy:g}, x {cx:g}, radius {fov['radius_px']:g} px)"
    return mask, said


def _provenance(kind: str, ckpt_path: Path, src: Any, norm: _Normalizer, **settings: Any) -> dict:
    from rocksr import __version__
    from rocksr.files import sha256_file
    from rocksr.models.registry import get_kind

    ddpm = get_kind(kind).stochastic
    prov = {
        "tool": ENHANCE_TOOL,
        "rocksr_version": __version__,
        "checkpoint": str(ckpt_path),
        "checkpoint_sha256": sha256_file(ckpt_path),
        "kind": kind,
        "input": str(src.path),
        "pages": [src.first, src.first + src.n - 1] if src.stack else None,
        "normalization": norm.record,
        **settings,
        "sample_seeding": (
            "sample k: torch.Generator seeded with seed (k = 0) or 64 bits of "
            "SeedSequence([seed, k]) (k >= 1); independent slice noise: "
            "SeedSequence([seed, k, z])"
            if ddpm
            else None
        ),
    }
    for key in ("fuse", "sampler", "seed"):
        if not ddpm:
            prov[key] = None
    if not (ddpm and src.stack):
        prov["slice_noise"] = None
    return prov


def _consistency(diffs_out: list[float], diffs_in: list[float]) -> dict | None:
    if not diffs_out:
        return None
    mo, mi = float(np.mean(diffs_out)), float(np.mean(diffs_in))
    return {
        "output_mean_abs_diff": mo,
        "input_mean_abs_diff": mi,
        "ratio": mo / mi if mi > 0 else None,
        "note": "mean |slice[z+1] - slice[z]| in grey levels, output vs normalized input",
    }


def enhance(
    checkpoint: str | os.PathLike,
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    pages: str | None = None,
    normalize: str = "from-checkpoint",
    mct_scale: str | int = "auto",
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
    report: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict:
    """Enhance a micro-CT slice or stack with a trained checkpoint; returns a report dict.

    See the module docstring for inputs, outputs, normalization, tiling, fusing and seeding.
    ``tile`` overrides the checkpoint's tile size; ``overlap`` defaults to ``tile // 2``.
    ``report``: also write the returned report there as JSON (:func:`report_text`).
    Every path written (output, ``_mean``, ``_std``, report) is checked first
    (:func:`rocksr.enhance.outputs.check_outputs`): none may be, hold or lie inside the input,
    the checkpoint or another one, and an existing one is replaced only if ``enhance`` wrote it
    (its provenance says so) or ``overwrite`` is set.  Every user error is a
    :class:`rocksr.errors.RocksrError` naming the file, raised before any model work where it
    can be known then; no partial output is ever left behind.
    """
    from rocksr.files import write_text
    from rocksr.inference import make_predictor

    t_start = time.perf_counter()
    _check_request(normalize, window, fuse, slice_noise, samples, batch_size)
    dev = _device(device)
    out_path, ckpt_path, in_path = Path(output), Path(checkpoint), Path(input)
    targets = output_paths(out_path, int(samples) > 1)
    written = {**targets, **({"report": Path(report)} if report is not None else {})}
    fmts = check_outputs(written, {"input": in_path, "checkpoint": ckpt_path}, overwrite)
    fmt = fmts["pred"]
    src = open_input(in_path, pages)
    try:
        if src.stack and fmt == "png":
            raise EnhanceError(
                f"{out_path}: PNG holds one image; write a stack to .tif or .ome.zarr"
            )
        kind, model, cfg = _load_model(ckpt_path, dev)
        ddpm = _check_samples(kind, samples, ckpt_path)  # a sampler: K samples, fused steps
        factor = _mct_scale(mct_scale, normalize, cfg, ckpt_path)
        if factor > 1:
            src = ScaledSource(src, factor)
            log.info(
                "%s: up-sampled x%d onto the model's grid (%dx%d; the training pairs' mct_scale; "
                "--mct-scale 1 if the input is already on the SEM grid)",
                in_path,
                factor,
                *src.shape,
            )
        tile_size, tile_source, ov = _tiling(kind, cfg, tile, overlap, ckpt_path, src)
        norm = _Normalizer(normalize, cfg, ckpt_path, src)
        n_samples = int(samples)
        n_steps = resolve_steps(sampler, steps, int(cfg["schedule"]["timesteps"])) if ddpm else None
        log.info("%s: normalization: %s", in_path, norm.record["description"])
        if ddpm:
            from rocksr.diffusion.sampling import sampling_options

            opts = sampling_options(cfg)
        else:
            opts = {}
        prov = _provenance(
            kind,
            ckpt_path,
            src,
            norm,
            mct_scale=factor,
            tile=tile_size,
            tile_source=tile_source,
            overlap=ov,
            window=window,
            fuse=fuse,
            sampler=sampler,
            steps=n_steps,
            prediction=opts.get("prediction"),
            threshold=opts.get("threshold"),
            seed=int(seed),
            samples=n_samples,
            slice_noise=slice_noise,
            batch_size=int(batch_size),
        )
        run = _SliceRunner(
            kind,
            model,
            make_predictor(kind, model, cfg, sampler, n_steps),
            cfg,
            opts,
            sampler=sampler,
            steps=n_steps,
            fuse=fuse,
            tile=tile_size,
            overlap=ov,
            window=window,
            batch_size=int(batch_size),
            device=dev,
            seeds=lambda z: [
                sample_seed(seed, k, None if slice_noise == "shared" else z)
                for k in range(n_samples)
            ],
        )
        shape, consistency = _write_all(src, norm, run, targets, fmts, prov, progress)
    finally:
        src.close()
    seconds = time.perf_counter() - t_start
    h, w = shape[-2:]
    result = {
        **prov,
        "outputs": {k: str(p) for k, p in targets.items()},
        "format": fmt,
        "shape": list(shape),
        "dtype": "uint8",
        "n_tiles_per_slice": run.n_tiles(h, w),
        "seconds": seconds,
        "megapixels_per_s": src.n * h * w / 1e6 / seconds if seconds > 0 else None,
        "consistency": consistency,
    }
    if report is not None:
        write_text(report_text(result), report)
    return result


class _SliceRunner:
    """One normalized slice in, ``{"pred", ["mean", "std"]}`` out, for either model."""

    def __init__(self, kind, model, predictor, cfg, opts, *, seeds, **settings) -> None:
        from rocksr.models.registry import get_kind

        self.kind, self.model, self.predictor = kind, model, predictor
        self.stochastic = get_kind(kind).stochastic
        self.cfg, self.opts, self.seeds, self.s = cfg, opts, seeds, settings

    def n_tiles(self, h: int, w: int) -> int:
        ys, xs = tile_grid(h, w, self.s["tile"], self.s["overlap"])
        return len(ys) * len(xs)

    def tile_calls(self, h: int, w: int) -> int:
        """Tile forward passes per slice (the progress bar's unit)."""
        per = len(self.seeds(0)) * self.s["steps"] if self.stochastic else 1
        return self.n_tiles(h, w) * per

    def __call__(self, img: np.ndarray, z: int, on_batch: Callable[[int], Any]) -> dict:
        s = self.s
        if not self.stochastic:
            pred = blend_deterministic(
                img,
                lambda b: self.predictor(b, None),
                s["tile"],
                s["overlap"],
                s["batch_size"],
                s["window"],
                device=s["device"],
                on_batch=on_batch,
            )
            return {"pred": pred}
        return _ddpm_slice(
            img,
            self.model,
            self.predictor,
            self.cfg,
            self.opts,
            seeds=self.seeds(z),
            n_steps=s["steps"],
            on_batch=on_batch,
            **s,
        )


def _write_all(
    src: Any,
    norm: _Normalizer,
    run: _SliceRunner,
    targets: dict,
    fmts: dict[str, str],
    prov: dict,
    progress: bool,
) -> tuple[tuple[int, ...], dict | None]:
    """Enhance every slice and write every output (temporary names, renamed at the end)."""
    from rocksr.progress import progress as progress_bar

    h, w = src.shape
    ddpm = run.stochastic
    bar = progress_bar(
        run.tile_calls(h, w) * src.n,
        f"enhance {src.path.name} ({run.kind}{', fuse ' + run.s['fuse'] if ddpm else ''})",
        unit="tile",
        disable=not progress,
    )
    shape = (src.n, h, w) if src.stack else (h, w)
    role = {
        "pred": "sample 0" if ddpm else "prediction",
        "mean": "mean",
        "std": "std (population, grey levels 0..255, float32)",
    }
    outs: dict[str, _Output] = {}
    diffs_out: list[float] = []
    diffs_in: list[float] = []
    try:
        for key, p in targets.items():
            dtype = "float32" if key == "std" else "uint8"
            outs[key] = _Output(p, fmts[key], shape, dtype, {**prov, "array": role[key]})
        prev_out = prev_in = None
        for i in range(src.n):
            img = norm.slice(i)
            results = run(img, src.first + i, bar.update)
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
    return shape, _consistency(diffs_out, diffs_in) if src.stack else None


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def _prior_slice(
    prior: Any,
    mct: torch.Tensor,
    img: np.ndarray,
    tile: int,
    overlap: int,
    batch_size: int,
    window: str,
    device: torch.device,
) -> torch.Tensor | None:
    """The whole slice's prior of a predict-and-refine DDPM (None without one): a pointwise
    prior on the whole slice at once, a network prior tiled and blended like a deterministic
    model (one tile: the prior that `predict` uses)."""
    if prior is None:
        return None
    if prior.pointwise:
        return prior(mct)
    p = blend_float(img, lambda b: prior(b), tile, overlap, batch_size, window, device=device)
    return torch.from_numpy(p)[None, None].to(device)


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
    from rocksr.data.values import uint8_to_unit

    k_total = len(seeds)
    mean = m2 = None
    pred = None
    mct = prior_slice = None
    if fuse == "step":
        mct = torch.from_numpy(uint8_to_unit(img))[None, None].to(device)
        prior_slice = _prior_slice(
            getattr(model, "prior", None), mct, img, tile, overlap, batch_size, window, device
        )
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
                prior=prior_slice,
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
