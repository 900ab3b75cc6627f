"""Evaluation throughput: metrics (PSNR + SSIM) tiles/s and sampler images/s with a tiny DDPM.

    python benchmarks/eval_throughput.py [--device cpu] [--threads N] [--quick]

Metrics: float64 images in [0, 1], batches of 16 tiles, ``rocksr.evaluation.metrics.psnr`` + ``ssim`` with
the evaluation defaults, at 512x512 and 128x128 (scikit-image's per-image SSIM for comparison).
Samplers: a random-weight tiny ``ConditionalUNet`` (channels 16/32, one attention level), T=1000
linear schedule, ``--sample-size`` px tiles, batch ``--batch``; ancestral runs all T steps (timed
on a reduced T, see --ancestral-T, and extrapolated to T=1000 per step), DDIM and DPM-Solver at
``--steps``.  Numbers depend on the machine and its load; report them with the device line.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def _time(fn, min_s: float = 1.0, max_reps: int = 50) -> float:
    """Seconds per call (median-free: total / reps after one warm-up call)."""
    fn()
    reps, t0 = 0, time.perf_counter()
    while reps < max_reps:
        fn()
        reps += 1
        if time.perf_counter() - t0 > min_s:
            break
    return (time.perf_counter() - t0) / reps


def bench_metrics(sizes: list[int], batch: int, min_s: float) -> None:
    from skimage.metrics import structural_similarity

    from rocksr.evaluation import metrics as M

    rng = np.random.default_rng(0)
    for s in sizes:
        a = rng.random((batch, s, s))
        b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
        t_p = _time(lambda a=a, b=b: M.psnr(a, b), min_s)
        t_s = _time(lambda a=a, b=b: M.ssim(a, b), min_s)
        t_sk = _time(
            lambda a=a, b=b: [
                structural_similarity(
                    x,
                    y,
                    data_range=1.0,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                )
                for x, y in zip(a, b, strict=True)
            ],
            min_s,
        )
        print(
            f"metrics {s}x{s}: psnr {batch / t_p:8.1f} tiles/s | ssim {batch / t_s:7.1f} tiles/s"
            f" | psnr+ssim {batch / (t_p + t_s):7.1f} tiles/s | skimage ssim "
            f"{batch / t_sk:7.1f} tiles/s"
        )


def bench_samplers(
    device: str, size: int, batch: int, steps: list[int], ancestral_t: int, min_s: float
) -> None:
    import torch

    from rocksr.diffusion.sampling import sample
    from rocksr.inference import batch_generator
    from rocksr.models.unet import build_ddpm_unet

    torch.manual_seed(0)
    unet = {
        "block_out_channels": [16, 32],
        "layers_per_block": 1,
        "attention_levels": [False, True],
        "norm_num_groups": 8,
        "attention_head_dim": 8,
    }
    model = build_ddpm_unet(unet).to(device).eval()
    n_par = sum(p.numel() for p in model.parameters())
    mct = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    sched = {"timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
    print(
        f"sampler model: tiny ConditionalUNet {n_par / 1e3:.0f}k params, {size}x{size}, "
        f"batch {batch}, device {device}"
    )

    def run(sampler: str, n: int | None, sch: dict) -> float:
        """Seconds for one sampling call (one timed call: each already runs n network passes)."""
        t0 = time.perf_counter()
        sample(
            model,
            mct,
            sch,
            sampler=sampler,
            steps=n,
            generator=batch_generator(0, 0, device),
            prediction="epsilon",
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    run("ddim", 2, sched)  # warm-up

    t = run("ancestral", None, {**sched, "timesteps": ancestral_t})
    per_step = t / ancestral_t
    print(
        f"ancestral (T={ancestral_t} timed): {batch / t:8.2f} img/s; "
        f"{per_step / batch * 1e3:.2f} ms/img/step -> T=1000: "
        f"{batch / (per_step * 1000):.3f} img/s"
    )
    for sampler in ("ddim", "dpmsolver"):
        for n in steps:
            t = run(sampler, n, sched)
            print(
                f"{sampler:9s} {n:4d} steps: {batch / t:8.2f} img/s "
                f"({t / batch / n * 1e3:.2f} ms/img/step)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch default; 1 avoids spin-wait on a shared CPU)",
    )
    ap.add_argument("--batch", type=int, default=4, help="sampler batch size")
    ap.add_argument("--sample-size", type=int, default=32)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--ancestral-T", type=int, default=50)
    ap.add_argument("--metric-batch", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="shorter timing loops")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    min_s = 0.3 if args.quick else 1.0
    print(
        f"host: {platform.node()} {platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}"
    )
    bench_metrics([512, 128], args.metric_batch, min_s)
    bench_samplers(args.device, args.sample_size, args.batch, args.steps, args.ancestral_T, min_s)


if __name__ == "__main__":
    main()
