"""Stage `enhance`: apply a trained model to a whole micro-CT slice or 3-D stack.

The command for users (``rocksr enhance --checkpoint best.pt --input slice.tif --output
slice_sem.tif``) and the `enhance` rule share :func:`rocksr.enhance.run.enhance`.
"""

from __future__ import annotations

import argparse

from rocksr.config.choices import ENHANCE_NORMALIZE, FUSE_MODES, SAMPLERS, SLICE_NOISE, WINDOWS
from rocksr.config.enhance import Enhance
from rocksr.stages.args import positive_int, shard_arg

COMMAND = "enhance"
HELP = "enhance a whole micro-CT slice or TIFF/Zarr stack with a trained model (any kind)"


def add_arguments(s: argparse.ArgumentParser) -> None:
    d = Enhance()
    s.add_argument("--checkpoint", required=True, help="a trained best.pt (cgan, regress or ddpm)")
    s.add_argument("--input", required=True, help="TIFF/PNG slice, TIFF stack or Zarr array")
    s.add_argument(
        "--output", required=True, help=".tif/.tiff (slice or stack), .png, or .ome.zarr"
    )
    s.add_argument("--pages", default=None, help="page range of a stack, e.g. 100-199 (0-based)")
    s.add_argument(
        "--normalize",
        choices=ENHANCE_NORMALIZE,
        default="from-checkpoint",
        help="contrast normalization of the input: the training data's (recorded in the "
        "checkpoint), the default percentile stretch, or none (input already 8-bit normalized)",
    )
    s.add_argument(
        "--mct-scale",
        default="auto",
        help="up-sample the input by this integer factor first (as training's mct_scale did); "
        "auto: the checkpoint's recorded factor for a raw input (--normalize from-checkpoint "
        "or percentile), 1 with --normalize none",
    )
    s.add_argument(
        "--crop",
        type=positive_int,
        default=None,
        metavar="SIZE",
        help="enhance only the central SIZE x SIZE px of each slice (after --mct-scale; "
        "normalized as if the crop were the input)",
    )
    s.add_argument("--tile", type=positive_int, default=None, help="default: the training tile")
    s.add_argument("--overlap", type=int, default=d.overlap, help="px; default half a tile")
    s.add_argument(
        "--window", choices=WINDOWS, default=d.window, help="default: the model kind's own"
    )
    s.add_argument("--fuse", choices=FUSE_MODES, default=d.fuse, help="DDPM tile fusion")
    s.add_argument("--sampler", choices=SAMPLERS, default="ddim")
    s.add_argument("--steps", type=positive_int, default=None, help="DDPM sampler steps")
    s.add_argument(
        "--samples", type=positive_int, default=1, metavar="K", help="DDPM: also mean and std"
    )
    s.add_argument("--seed", type=int, default=d.seed)
    s.add_argument("--slice-noise", choices=SLICE_NOISE, default="shared")
    s.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    s.add_argument("--device", default="auto")
    s.add_argument("--report", default=None, help="also write the run's report as JSON")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output or report that rocksr enhance did not write (by "
        "default only files and stores enhance wrote are replaced)",
    )
    s.add_argument(
        "--shard",
        type=shard_arg,
        default=None,
        metavar="I/N",
        help="enhance only part I of N of a stack's pages (normalized and seeded as in one run) "
        "into a TIFF --output, with --report; `rocksr gather-enhance` assembles the N parts",
    )
    s.add_argument("--no-progress", action="store_true")


def run(a: argparse.Namespace) -> None:
    from rocksr.enhance.run import enhance, report_text

    report = enhance(
        a.checkpoint,
        a.input,
        a.output,
        pages=a.pages,
        normalize=a.normalize,
        mct_scale=a.mct_scale,
        crop=a.crop,
        tile=a.tile,
        overlap=a.overlap,
        window=a.window,
        fuse=a.fuse,
        sampler=a.sampler,
        steps=a.steps,
        samples=a.samples,
        seed=a.seed,
        slice_noise=a.slice_noise,
        batch_size=a.batch_size,
        device=a.device,
        progress=not a.no_progress,
        report=a.report,
        overwrite=a.overwrite,
        shard=a.shard,
    )
    print(report_text(report))
