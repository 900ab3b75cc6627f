"""``rocksr enhance``: :func:`enhance` applies a trained checkpoint (cGAN, regression U-Net or
DDPM) to a whole micro-CT slice or stack; the CLI command and the Snakemake rule share it.

Inputs, outputs, normalization, tiling, fusing and seeding are described in ``docs/enhance.md``.  The parts: :mod:`.inputs` (reading),
:mod:`.normalization` (contrast and scale), :mod:`.model` (device, checkpoint, tiling),
:mod:`.slices` (one slice through the model), :mod:`.outputs` (path checks and writers) and
:mod:`.report` (provenance and report); this module checks the request and runs the slices.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from rocksr.config.choices import FUSE_MODES, SLICE_NOISE
from rocksr.config.enhance import Enhance
from rocksr.enhance.blending import WINDOWS
from rocksr.enhance.errors import EnhanceError, check_choice
from rocksr.enhance.inputs import Source, crop_input, open_input, scale_input
from rocksr.enhance.model import check_samples, load_model, resolve_device, tiling
from rocksr.enhance.normalization import NORMALIZE_MODES, Normalizer, mct_scale_factor
from rocksr.enhance.outputs import (
    check_holds_stack,
    check_outputs,
    output_paths,
    output_writers,
)
from rocksr.enhance.report import (
    consistency,
    mean_abs_diff,
    provenance,
    report_text,
    run_report,
)
from rocksr.enhance.shards import PART, Part
from rocksr.enhance.slices import Sampling, SliceRunner, SliceSettings

__all__ = ["enhance", "report_text"]

log = logging.getLogger(__name__)


def check_request(
    normalize: str, window: str, fuse: str, slice_noise: str, samples: int, batch_size: int
) -> None:
    """Refuse an unknown mode or a count below 1 (:class:`EnhanceError`), before any work."""
    check_choice(normalize, NORMALIZE_MODES, "normalize")
    if window is not None:  # None: the model kind's own
        check_choice(window, WINDOWS, "window")
    check_choice(fuse, FUSE_MODES, "fuse")
    check_choice(slice_noise, SLICE_NOISE, "slice_noise")
    if int(samples) < 1:
        raise EnhanceError(f"samples must be >= 1, got {samples}")
    if int(batch_size) < 1:
        raise EnhanceError(f"batch_size must be >= 1, got {batch_size}")


def enhance(
    checkpoint: str | os.PathLike,
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    pages: str | None = None,
    normalize: str = "from-checkpoint",
    mct_scale: str | int = "auto",
    crop: int | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    window: str | None = None,
    fuse: str = "step",
    sampler: str = "ddim",
    steps: int | None = None,
    samples: int = 1,
    seed: int = 0,
    slice_noise: str = "shared",
    batch_size: int = Enhance().batch_size,
    device: str = "auto",
    progress: bool = True,
    report: str | os.PathLike | None = None,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Enhance a micro-CT slice or stack with a trained checkpoint; returns a report dict.

    The options are the command's (``docs/enhance.md``); ``tile`` overrides the checkpoint's
    tile size, ``crop`` enhances only the central ``crop`` x ``crop`` square of each slice
    (after up-sampling), ``overlap`` defaults to half a tile, ``report`` also writes the report as JSON.
    ``shard = (i, N)``: only part ``i`` of ``N`` of a stack (:class:`.shards.Part`; gathered by
    :func:`.shards.gather_enhance`).
    Every path written is checked first (:func:`check_outputs`); every user error is a
    :class:`rocksr.errors.RocksrError` naming the file, raised before any model work where it
    can be known then; no partial output is ever left behind.
    """
    from rocksr.files import write_text

    t_start = time.perf_counter()
    check_request(normalize, window, fuse, slice_noise, samples, batch_size)
    dev = resolve_device(device)
    out_path, ckpt_path, in_path = Path(output), Path(checkpoint), Path(input)
    targets = output_paths(out_path, int(samples) > 1)
    written = {**targets, **({"report": Path(report)} if report is not None else {})}
    fmts = check_outputs(written, {"input": in_path, "checkpoint": ckpt_path}, overwrite)
    src = open_input(in_path, pages)
    try:
        check_holds_stack(fmts["pred"], out_path, src.stack)
        part = None if shard is None else Part.plan(shard, src, fmts["pred"], out_path, report)
        kind, model, cfg = load_model(ckpt_path, dev)
        stochastic = check_samples(kind, samples, ckpt_path)  # a DDPM: K samples, fused steps
        factor = mct_scale_factor(mct_scale, normalize, cfg, ckpt_path)
        src = crop_input(scale_input(src, factor), crop)
        tile_size, tile_source, ov, window = tiling(
            kind, cfg, tile, overlap, window, ckpt_path, src
        )
        norm = Normalizer(normalize, cfg, ckpt_path, src)
        sampling = Sampling.resolve(cfg, sampler, steps) if stochastic else None
        log.info("%s: normalization: %s", in_path, norm.record["description"])
        settings = SliceSettings(
            tile=tile_size,
            overlap=ov,
            window=window,
            batch_size=int(batch_size),
            device=dev,
            sampling=sampling,
            fuse=fuse,
            samples=int(samples),
            seed=int(seed),
            slice_noise=slice_noise,
        )
        prov = provenance(
            kind, ckpt_path, src, norm, settings, mct_scale=factor, tile_source=tile_source
        )
        runner = SliceRunner(kind, model, cfg, settings)
        result = run_slices(src, norm, runner, targets, fmts, prov, part, progress, t_start)
    finally:
        src.close()
    if report is not None:
        write_text(report_text(result), report)
    return result


def run_slices(
    src: Source,
    norm: Normalizer,
    runner: SliceRunner,
    targets: dict[str, Path],
    fmts: dict[str, str],
    prov: dict,
    part: Part | None,
    progress: bool,
    t_start: float,
) -> dict:
    """Write the outputs of every slice of ``src`` (or of ``part``'s); returns the run's report
    (with the part's record for a part)."""
    prov, slices = (prov, None) if part is None else (part.provenance(prov), part.slices)
    before = None if part is None else part.input_diff_before(norm)  # before any output
    shape, d_out, d_in = write_outputs(src, norm, runner, targets, fmts, prov, progress, slices)
    n = src.n if slices is None else len(slices)
    stack = consistency(d_out, d_in) if src.stack else None
    tiles = runner.n_tiles(*shape[-2:])
    seconds = time.perf_counter() - t_start
    result = run_report(prov, targets, fmts["pred"], shape, tiles, n, seconds, stack)
    if part is not None:
        result[PART] = part.record(d_out, d_in, before)
    return result


def write_outputs(
    src: Source,
    norm: Normalizer,
    runner: SliceRunner,
    targets: dict[str, Path],
    fmts: dict[str, str],
    prov: dict,
    progress: bool,
    slices: range | None = None,
) -> tuple[tuple[int, ...], list[float], list[float]]:
    """Enhance the ``slices`` of ``src`` (default: all) and write every output (temporary names,
    renamed at the end; all removed on any error); returns (output shape, the mean absolute
    slice-to-slice differences of the output and of the normalized input)."""
    from rocksr.progress import progress as progress_bar

    slices = range(src.n) if slices is None else slices
    h, w = src.shape
    fused = f", fuse {runner.settings.fuse}" if runner.stochastic else ""
    bar = progress_bar(
        runner.tile_calls(h, w) * len(slices),
        f"enhance {src.path.name} ({runner.kind}{fused})",
        unit="tile",
        disable=not progress,
    )
    shape = (len(slices), h, w) if src.stack else (h, w)
    diffs_out: list[float] = []
    diffs_in: list[float] = []
    try:
        with output_writers(targets, fmts, shape, prov, runner.stochastic) as outs:
            prev_out = prev_in = None
            for j, i in enumerate(slices):
                img = norm.slice(i)
                results = runner(img, src.first + i, bar.update)
                for key, o in outs.items():
                    o.write(j, results[key])
                if prev_out is not None:
                    diffs_out.append(mean_abs_diff(results["pred"], prev_out))
                    diffs_in.append(mean_abs_diff(img, prev_in))
                prev_out, prev_in = results["pred"], img
    finally:
        bar.close()
    return shape, diffs_out, diffs_in
