"""DDPM U-Net inference on CPU: ways to run the same network, timed in one run against one call.

    python benchmarks/unet_inference.py [--checkpoint results/demo/models/ddpm/best.pt]
        [--size 128] [--batch 16] [--steps 10] [--threads 2] [--repeats 3]

Each variant samples the same batch of ``--batch`` micro-CT tiles with DDIM (``--steps``) from
the same generator seed; the table gives images x steps per second (network evaluations of one
tile per second), the speed-up over ``one_call`` and the largest absolute difference of its
output from one_call's (model units, [-1, 1]; one grey level is 0.0078). Without
``--checkpoint`` the demo's DDPM U-Net (config.yaml's ``ddpm.unet``, prior channel included)
with random weights.

Variants: ``one_call`` (old: the whole batch in one call, ``torch.no_grad``, NCHW);
``rocksr`` (new: what rocksr runs, micro-batches of ``CPU_MICRO_BATCH_PIXELS`` through ONNX
Runtime on a CPU, exported during the warm-up; ``ROCKSR_CPU_INFERENCE=torch``: PyTorch);
``inference_mode``; ``channels_last`` (weights and inputs NHWC); ``jit_freeze``
(``torch.jit.trace`` + ``torch.jit.freeze`` + ``optimize_for_inference``); ``microbatch_N``
(the batch in calls of N tiles: a working set that stays in the caches);
``channels_last+microbatch_4``; ``onnxruntime_one_call`` and ``onnxruntime_microbatch_4`` (the
network exported to ONNX and run by ONNX Runtime, export time in the prepare column);
``compile`` (``torch.compile``, when a C++ compiler is present;
compile time in the prepare column); ``bf16`` (autocast, for information only: its outputs are
not within float tolerance, and it is fast only on CPUs with AMX/AVX512-BF16).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from collections.abc import Callable

import torch

from rocksr.diffusion.sampling import sample

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def demo_model() -> tuple[torch.nn.Module, dict]:
    """The demo's DDPM U-Net (config.yaml), random weights, and its ddpm section."""
    from pathlib import Path

    import yaml

    from rocksr.config.ddpm import DDPM
    from rocksr.config.merge import resolve
    from rocksr.models.unet import build_ddpm_models

    root = Path(__file__).resolve().parents[1]
    cfg = resolve(DDPM, yaml.safe_load((root / "config.yaml").read_text())["ddpm"], "ddpm")
    cfg["unet"]["zero_init"] = False  # a zero-initialised network outputs 0: nothing to compare
    torch.manual_seed(0)
    return build_ddpm_models(cfg)["unet"].eval(), cfg


def checkpoint_model(path: str) -> tuple[torch.nn.Module, dict]:
    from rocksr.inference import load_for_inference

    _, model, cfg = load_for_inference(path)
    return model, cfg


def variants(model: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """{name: (prepare() -> net, context factory)}: prepare is timed apart (tracing, compiling).
    The first, ``one_call``, is the reference; ``rocksr`` is what rocksr runs now."""
    import copy

    from rocksr.models.cpu_runtime import UNetCall

    whole = UNetCall(model.unet).eval()  # the whole batch in one call, as rocksr ran it before

    def same(net: Net) -> Callable[[], Net]:
        return lambda: net

    def channels_last() -> Net:
        m = copy.deepcopy(whole).to(memory_format=torch.channels_last)
        return lambda x, t: m(x.contiguous(memory_format=torch.channels_last), t).contiguous()

    def jit_freeze() -> Net:
        with torch.no_grad():
            traced = torch.jit.trace(whole, example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

    def microbatch(size: int, net: Callable[[], Net] | None = None) -> Callable[[], Net]:
        def prepare() -> Net:
            run = net() if net is not None else whole
            return lambda x, t: torch.cat(
                [run(xi, ti) for xi, ti in zip(x.split(size), t.split(size), strict=True)]
            )

        return prepare

    def compiled() -> Net:
        return torch.compile(whole)

    def onnxruntime(size: int | None) -> Callable[[], Net]:
        def prepare() -> Net:
            from rocksr.models.cpu_runtime import OrtUNet, export_onnx

            runner = OrtUNet(whole.unet, whole.unet.config.in_channels)
            threads = torch.get_num_threads()
            runner.session = runner._session(export_onnx(whole.unet, runner.in_channels), threads)
            if size is None:
                return runner
            return lambda x, t: torch.cat(
                [runner(xi, ti) for xi, ti in zip(x.split(size), t.split(size), strict=True)]
            )

        return prepare

    def bf16() -> Net:
        def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return whole(x, t).float()

        return run

    out = {
        "one_call": (same(whole), torch.no_grad),
        "rocksr": (same(model), torch.no_grad),
        "inference_mode": (same(whole), torch.inference_mode),
        "channels_last": (channels_last, torch.no_grad),
        "jit_freeze": (jit_freeze, torch.no_grad),
        "microbatch_1": (microbatch(1), torch.no_grad),
        "microbatch_2": (microbatch(2), torch.no_grad),
        "microbatch_4": (microbatch(4), torch.no_grad),
        "microbatch_8": (microbatch(8), torch.no_grad),
        "channels_last+microbatch_4": (microbatch(4, channels_last), torch.no_grad),
        "onnxruntime_one_call": (onnxruntime(None), torch.no_grad),
        "onnxruntime_microbatch_4": (onnxruntime(4), torch.no_grad),
        "bf16": (bf16, torch.no_grad),
    }
    if shutil.which("g++") or shutil.which("c++"):
        out["compile"] = (compiled, torch.no_grad)
    return out


def run_sampler(net: Net, ctx, mct, cfg, steps, seed, prior) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    with ctx():
        return sample(
            net,
            mct,
            cfg["schedule"],
            "ddim",
            steps,
            g,
            prediction=cfg.get("prediction", "sample"),
            threshold=cfg.get("threshold"),
            amp=False,
            prior=prior,
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="a DDPM best.pt (default: random weights)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed samplings per variant")
    ap.add_argument("--only", nargs="+", default=None, help="variants to run (one_call always)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, cfg = checkpoint_model(a.checkpoint) if a.checkpoint else demo_model()
    in_ch = model.unet.config.in_channels if hasattr(model, "unet") else 2
    g = torch.Generator().manual_seed(1)
    mct = torch.rand((a.batch, 1, a.size, a.size), generator=g) * 2 - 1
    prior = torch.tanh(mct * 1.5) if in_ch == 3 else None
    if getattr(model, "prior", None) is not None:
        prior = model.prior(mct)
    example = (
        torch.zeros((a.batch, in_ch, a.size, a.size)),
        torch.zeros(a.batch, dtype=torch.long),
    )
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{a.threads} threads; batch {a.batch} x {a.size} px, DDIM-{a.steps}, "
        f"{'checkpoint ' + a.checkpoint if a.checkpoint else 'demo U-Net, random weights'}"
    )
    print("| variant | prepare s | images x steps / s | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    ref, ref_rate = None, None
    for name, (prepare, ctx) in variants(model, example).items():
        if a.only and name != "one_call" and name not in a.only:
            continue
        t0 = time.perf_counter()
        try:
            net = prepare()
            out = run_sampler(net, ctx, mct, cfg, a.steps, 0, prior)  # warm-up (and compile)
        except Exception as e:  # noqa: BLE001  (a variant this torch cannot run)
            print(f"| {name} | failed: {type(e).__name__}: {str(e).splitlines()[0][:80]} | | | |")
            continue
        prep = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(a.repeats):
            out = run_sampler(net, ctx, mct, cfg, a.steps, 0, prior)
        rate = a.repeats * a.batch * a.steps / (time.perf_counter() - t0)
        if ref is None:
            ref, ref_rate = out, rate
        diff = float((out - ref).abs().max())
        print(
            f"| {name} | {prep:.1f} | {rate:.1f} | {rate / ref_rate:.2f}x | {diff:.2e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
