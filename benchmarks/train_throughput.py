"""Training throughput of the cGAN and the conditional DDPM: images/s, peak memory, FLOPs/image.

    python benchmarks/train_throughput.py --device cpu --size 64 --batch 4 --steps 5
    python benchmarks/train_throughput.py --device cuda --size 512 --batch 24 --unet paper \
        --precision fp32 bf16 bf16-cl bf16-cl-compile --peak-tflops 989

One full optimizer step is timed (cGAN: D step + G step; DDPM: loss, backward, clip, AdamW, EMA),
exactly as ``rocksr train`` (:mod:`rocksr.training.trainer`) runs it, on random tiles (no data loading).  Each (model, precision)
runs in its own subprocess so that peak memory is its own: ``ru_maxrss`` on CPU,
``torch.cuda.max_memory_allocated`` on CUDA.  FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (see ``count_flops``) for the
network work of one training step per image (forward + backward) and for one inference forward
(cGAN: G; DDPM: one U-Net evaluation = one sampler step); MFU = train FLOPs/image x images/s /
peak, printed when ``--peak-tflops`` is given.

Precisions: fp32 | bf16 (autocast) | bf16-cl (+ channels_last) | bf16-cl-compile (+ torch.compile).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

PRECISIONS = {
    "fp32": {"precision": "fp32", "channels_last": False, "compile": False},
    "bf16": {"precision": "bf16", "channels_last": False, "compile": False},
    "bf16-cl": {"precision": "bf16", "channels_last": True, "compile": False},
    "bf16-cl-compile": {"precision": "bf16", "channels_last": True, "compile": True},
}
UNETS = {
    "tiny": {
        "block_out_channels": [16, 32, 32],
        "layers_per_block": 1,
        "attention_levels": [False, False, True],
        "norm_num_groups": 8,
    },
    "paper": {
        "block_out_channels": [64, 128, 256, 512],
        "layers_per_block": 2,
        "attention_levels": [False, False, True, True],
        "norm_num_groups": 32,
        "attention_head_dim": 32,
    },
}


def count_flops(model: str, cfg: dict, size: int) -> tuple[float, float]:
    """(training FLOPs per image, FLOPs of one inference network evaluation per image), counted
    on the meta device: real CPU runs hide attention, whose fused CPU kernel FlopCounterMode does
    not know; on meta, SDPA decomposes into counted matmuls.  Training = the step's network work:
    cGAN D(real), D(fake) + backward, D(fake) + backward through G; DDPM U-Net forward + backward.
    Optimizer, EMA and norm/activation element-wise work are not counted (as usual for MFU)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from rocksr.models.registry import build_models

    with torch.device("meta"):
        nets = build_models(model, cfg)
        mct, sem = torch.randn(1, 1, size, size), torch.randn(1, 1, size, size)
        t = torch.zeros(1, dtype=torch.long)
    with FlopCounterMode(display=False) as fc:
        if model == "cgan":
            g, d = nets["G"], nets["D"]
            fake = g(mct)
            (d(mct, sem).mean() + d(mct, fake.detach()).mean()).backward()
            d.requires_grad_(False)
            (-d(mct, fake).mean() + (fake - sem).abs().mean()).backward()
        else:
            nets["unet"](torch.cat([sem, mct], 1), t).mean().backward()
    train = fc.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        if model == "cgan":
            nets["G"](mct)
        else:
            nets["unet"](torch.cat([sem, mct], 1), t)
    return float(train), float(fc.get_total_flops())


def run_one(model: str, precision: str, args: argparse.Namespace) -> dict:
    import torch

    from rocksr.devices import resolve_device
    from rocksr.training.cgan_task import CGANTask
    from rocksr.training.ddpm_task import DDPMTask
    from rocksr.training.runtime import Runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(resolve_device(args.device))
    cfg = {**PRECISIONS[precision], "lr": 1e-4}
    if model == "ddpm":
        cfg.update(
            {
                "unet": UNETS[args.unet],
                "ema": {"enabled": True, "decay": 0.999},
                "schedule": {"timesteps": 1000},
                "grad_clip": 0.7,
            }
        )
    rt = Runtime(cfg, dev)
    torch.manual_seed(0)
    task = (CGANTask if model == "cgan" else DDPMTask)(cfg, rt, seed=0)
    g = torch.Generator(device=dev).manual_seed(0)
    mct = rt.batch(torch.rand(args.batch, 1, args.size, args.size) * 2 - 1)
    sem = rt.batch(torch.rand(args.batch, 1, args.size, args.size) * 2 - 1)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    train_flops, infer_flops = count_flops(model, cfg, args.size)

    for _ in range(args.warmup):
        task.train_step(mct, sem, g)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        task.train_step(mct, sem, g)
    sync()
    dt = time.perf_counter() - t0
    ips = args.steps * args.batch / dt
    if dev.type == "cuda":
        mem = torch.cuda.max_memory_allocated(dev) / 2**20
        mem_kind = "cuda max_allocated"
    else:
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        mem_kind = "peak RSS"
    out = {
        "model": model,
        "precision": precision,
        "device": str(dev),
        "size": args.size,
        "batch": args.batch,
        "unet": args.unet if model == "ddpm" else "-",
        "params_M": sum(p.numel() for m in task.models().values() for p in m.parameters()) / 1e6,
        "img_per_s": ips,
        "step_s": dt / args.steps,
        "peak_mem_MiB": mem,
        "mem_kind": mem_kind,
        "train_GFLOP_per_img": train_flops / 1e9,
        "infer_GFLOP_per_img": infer_flops / 1e9,
    }
    if args.peak_tflops:
        out["MFU"] = train_flops * ips / (args.peak_tflops * 1e12)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", choices=["cgan", "ddpm"], default=["cgan", "ddpm"])
    ap.add_argument("--precision", nargs="+", choices=list(PRECISIONS), default=["fp32"])
    ap.add_argument("--unet", choices=list(UNETS), default="tiny", help="DDPM U-Net size")
    ap.add_argument("--size", type=int, default=64, help="tile size (px)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=0.0,
        help="device peak (e.g. 989 for H100 SXM bf16 dense) to print MFU",
    )
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args)))
        return

    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}; python "
        f"{platform.python_version()}; args {vars(args)}"
    )
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    for model in args.model:
        for prec in args.precision:
            cmd = [sys.executable, __file__, *base, "--one", model, prec]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"{model:5s} {prec:16s} FAILED: {res.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            line = (
                f"{r['model']:5s} {r['precision']:16s} {r['device']:5s} {r['size']}px b{r['batch']}"
                f" unet={r['unet']:5s} params {r['params_M']:7.2f}M | {r['img_per_s']:8.2f} img/s"
                f" ({r['step_s'] * 1e3:8.1f} ms/step) | {r['mem_kind']} {r['peak_mem_MiB']:8.0f}"
                f" MiB | train {r['train_GFLOP_per_img']:8.3f} GFLOP/img, inference "
                f"{r['infer_GFLOP_per_img']:8.3f} GFLOP/img/eval"
            )
            if "MFU" in r:
                line += f" | MFU {100 * r['MFU']:.1f}%"
            print(line, flush=True)


if __name__ == "__main__":
    main()
