"""Whole-slice / stack inference (``rocksr enhance``): speed, peak memory and seams.

    python benchmarks/enhance.py [--cgan PATH] [--ddpm PATH] [--size 4096] [--stack 32x1024]
                                 [--steps 10] [--sampler ddim] [--batch-size 16] [--threads N]

Inputs (synthetic, deterministic): a ``--size``^2 registered pair from
``rocksr.synthetic.generate_pair`` with the demo's rock/forward settings (the micro-CT is the
input, the SEM, percentile-normalized like training, is the ground truth for the seam ratio);
and a ``ZxN`` stack (``--stack``) whose slice ``z`` is rows ``z .. z + N - 1`` of one synthetic
micro-CT, so consecutive slices are similar as in a real volume.

Runs, each in its own process so that its peak RSS (``ru_maxrss``) is its own:

* slice: cGAN with the default half-tile overlap (Gaussian and cosine window) and with overlap 0
  (constant window); DDPM ``--fuse step`` (Gaussian, cosine), ``--fuse end`` (default overlap)
  and ``--fuse step`` with overlap 0;
* stack: each model with the default settings.

Printed per run: megapixels/s (whole call: checkpoint load, normalization, inference, writing),
peak RSS (and the RSS after importing torch and rocksr, before the call), the seam ratio
(``rocksr.enhance.blending.seam_ratio``: MAE against the truth in a 3 px band along the tile handover
lines / MAE in the tile interiors; 1.0 = no seams), the truth-free step ratio
(``rocksr.enhance.blending.step_ratio``: neighbour differences across handover lines / elsewhere) and,
for stacks, the slice-to-slice consistency.  Checkpoints
without a recorded normalization are run with ``--normalize percentile`` (the training
default).  Numbers depend on the machine and its load: report them with the device line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DEMO = Path("results/demo/models")
ROCK = {"grain_radius_px": 22}
FORWARD = {"partial_volume_factor": 4}


def _worker(spec: dict) -> None:
    """Run one enhance call (in a fresh process) and print its result as JSON."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    from rocksr.enhance.blending import seam_ratio, step_ratio
    from rocksr.enhance.run import enhance

    import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r = enhance(spec["checkpoint"], spec["input"], spec["output"], **spec["options"])
    out: dict = {
        "mpx_s": r["megapixels_per_s"],
        "seconds": r["seconds"],
        "tile": r["tile"],
        "overlap": r["overlap"],
        "normalize": r["normalization"]["mode"],
        "consistency": r["consistency"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "import_rss_mib": import_rss,
    }
    if spec.get("truth"):
        import tifffile

        pred = tifffile.imread(spec["output"])
        truth = tifffile.imread(spec["truth"])
        out["seam_ratio"] = seam_ratio(pred, truth, r["tile"], r["overlap"])
        out["step_ratio"] = step_ratio(pred, r["tile"], r["overlap"])
    print("RESULT " + json.dumps(out))


def _run(spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": " | ".join(tail)}


def _has_record(ckpt: Path) -> bool:
    import torch

    c = torch.load(ckpt, map_location="cpu", weights_only=True)
    return bool(c.get("normalization") or c.get("config", {}).get("normalization"))


def _inputs(work: Path, size: int, stack: tuple[int, int], seed: int) -> dict[str, Path]:
    import tifffile

    from rocksr.data.normalize import normalize_image
    from rocksr.data.synthetic import generate_pair

    mct, sem = generate_pair(size, size, seed, rock=ROCK, forward=FORWARD)
    paths = {"slice": work / "slice_mct.tif", "truth": work / "slice_sem.tif"}
    tifffile.imwrite(paths["slice"], mct)
    tifffile.imwrite(paths["truth"], normalize_image(sem))  # as training normalized the SEM
    del sem
    z, n = stack
    if z > 0:
        big, _ = generate_pair(n + z, n, seed + 1, rock=ROCK, forward=FORWARD)
        paths["stack"] = work / "stack_mct.tif"
        with tifffile.TiffWriter(paths["stack"]) as tw:
            for i in range(z):
                tw.write(np.ascontiguousarray(big[i : i + n]))
    return paths


def _fmt(r: dict) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    s = f"{r['mpx_s']:8.3f} Mpx/s  peak RSS {r['peak_rss_mib']:6.0f} MiB"
    s += f" (after imports {r['import_rss_mib']:4.0f})"
    s += f"  tile {r['tile']} overlap {r['overlap']:3d}"
    if r.get("seam_ratio") is not None:
        s += f"  seam ratio {r['seam_ratio']:.3f}  step ratio {r['step_ratio']:.3f}"
    c = r.get("consistency")
    if c:
        s += (
            f"  slice-to-slice |diff| out {c['output_mean_abs_diff']:.2f}"
            f" / in {c['input_mean_abs_diff']:.2f}"
        )
    return s


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cgan", type=Path, default=DEMO / "cgan" / "best.pt")
    ap.add_argument("--ddpm", type=Path, default=DEMO / "ddpm" / "best.pt")
    ap.add_argument("--size", type=int, default=4096, help="side of the synthetic slice")
    ap.add_argument("--stack", default="32x1024", help="ZxN: Z slices of NxN (0x0: none)")
    ap.add_argument("--sampler", default="ddim")
    ap.add_argument("--steps", type=int, default=10, help="DDPM sampler steps")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--models", default="cgan,ddpm")
    ap.add_argument(
        "--ddpm-modes",
        default="step,cosine,end,none",
        help="DDPM slice runs: step (Gaussian), cosine, end, none (overlap 0)",
    )
    ap.add_argument("--ddpm-stack", default=None, help="ZxN stack for the DDPM (default: --stack)")
    ap.add_argument("--keep", type=Path, default=None, help="keep inputs/outputs in this folder")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        _worker(json.loads(a.worker))
        return
    z, n = (int(v) for v in a.stack.lower().split("x"))
    import torch

    print(
        f"# rocksr enhance benchmark: {platform.node()} {platform.processor() or platform.machine()}"
        f", {os.cpu_count()} CPUs, torch {torch.__version__}, threads {a.threads or 'default'}"
        f", device {a.device}; slice {a.size}^2, stack {z}x{n}^2, DDPM {a.sampler} {a.steps} steps"
    )
    ctx = tempfile.TemporaryDirectory() if a.keep is None else None
    work = Path(ctx.name) if ctx else a.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        paths = _inputs(work, a.size, (z, n), a.seed)
        ddpm_stack = (z, n)
        if a.ddpm_stack:
            ddpm_stack = tuple(int(v) for v in a.ddpm_stack.lower().split("x"))
            (work / "ddpm").mkdir(exist_ok=True)
            extra = _inputs(work / "ddpm", 64, ddpm_stack, a.seed)
            paths["ddpm_stack"] = extra["stack"]
        for kind in [m.strip() for m in a.models.split(",") if m.strip()]:
            ckpt = getattr(a, kind)
            if not ckpt.is_file():
                print(f"{kind}: {ckpt} does not exist; skipped")
                continue
            base = {
                "normalize": "from-checkpoint" if _has_record(ckpt) else "percentile",
                "batch_size": a.batch_size,
                "device": a.device,
                "progress": False,
                "seed": a.seed,
            }
            if kind == "ddpm":
                base.update(sampler=a.sampler, steps=a.steps)
                modes = {
                    "step": ("fuse step", {"fuse": "step"}),
                    "cosine": ("fuse step, cosine", {"fuse": "step", "window": "cosine"}),
                    "end": ("fuse end", {"fuse": "end"}),
                    "none": (
                        "fuse step, overlap 0",
                        {"fuse": "step", "overlap": 0, "window": "constant"},
                    ),
                }
                runs = [modes[m.strip()] for m in a.ddpm_modes.split(",") if m.strip()]
            else:
                runs = [
                    ("overlap 1/2", {}),
                    ("overlap 1/2, cosine", {"window": "cosine"}),
                    ("overlap 0", {"overlap": 0, "window": "constant"}),
                ]
            for label, opts in runs:
                spec = {
                    "checkpoint": str(ckpt),
                    "input": str(paths["slice"]),
                    "output": str(work / f"{kind}_{re.sub(r'[^a-z0-9]+', '_', label)}.tif"),
                    "truth": str(paths["truth"]),
                    "options": {**base, **opts},
                    "threads": a.threads,
                }
                print(f"{kind:4s} slice {a.size}^2 {label:22s} {_fmt(_run(spec))}", flush=True)
            stack_key = "ddpm_stack" if kind == "ddpm" and "ddpm_stack" in paths else "stack"
            if stack_key in paths:
                zz, nn = (z, n) if stack_key == "stack" else ddpm_stack
                spec = {
                    "checkpoint": str(ckpt),
                    "input": str(paths[stack_key]),
                    "output": str(work / f"{kind}_stack.ome.zarr"),
                    "options": base,
                    "threads": a.threads,
                }
                label = f"stack {zz}x{nn}^2"
                print(f"{kind:4s} {label:16s} {'default':22s} {_fmt(_run(spec))}", flush=True)
    finally:
        if ctx:
            ctx.cleanup()


if __name__ == "__main__":
    main()
