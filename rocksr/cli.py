"""Command-line interface: one thin sub-command per pipeline stage (Snakemake rules call these)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from rocksr import __version__

Handler = Callable[[argparse.Namespace], None]
_COMMANDS: dict[str, Handler] = {}


def _json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text[:80]!r}") from exc


def _named_paths(items: Sequence[str]) -> dict[str, str]:
    """``["name=path", ...]`` -> ``{name: path}``, refusing items without a name."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"expected NAME=PATH, got {item!r}")
        out[name] = path
    return out


def _command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return register


@_command("synthesize")
def _synthesize(a: argparse.Namespace) -> None:
    from rocksr.io import write_image
    from rocksr.synthetic import generate_pair

    spec = dict(a.spec)
    mct, sem = generate_pair(
        int(spec["height"]),
        int(spec["width"]),
        int(spec.get("seed", 0)),
        rock=spec.get("rock") or {},
        forward=spec.get("forward") or {},
    )
    write_image(a.out_sem, sem)
    write_image(a.out_mct, mct)


@_command("simulate-mct")
def _simulate_mct(a: argparse.Namespace) -> None:
    from rocksr.io import read_image, write_image
    from rocksr.normalize import normalize_image
    from rocksr.synthetic import simulate_mct

    sem = read_image(a.sem, a.page)
    if sem.dtype != "uint8":
        sem = normalize_image(sem, 0.0, 100.0)
    mct = simulate_mct(sem, a.seed, **a.forward)
    write_image(a.out, mct)
    if a.out_sem:
        write_image(a.out_sem, sem)


@_command("normalize")
def _normalize(a: argparse.Namespace) -> None:
    from rocksr.dataset import normalize_pair

    pages = a.pages or {}
    normalize_pair(
        a.mct,
        a.sem,
        a.out_mct,
        a.out_sem,
        a.histograms,
        a.report,
        a.params,
        sample=a.sample,
        mct_page=pages.get("mct_page"),
        sem_page=pages.get("sem_page"),
        mct_series=pages.get("mct_series"),
        sem_series=pages.get("sem_series"),
        min_size=a.min_size,
    )


@_command("build-dataset")
def _build_dataset(a: argparse.Namespace) -> None:
    from rocksr.dataset import build_dataset

    names = a.samples if isinstance(a.samples, list) else [a.samples]
    if not (len(names) == len(a.mct) == len(a.sem)):
        raise SystemExit(
            f"build-dataset: {len(names)} sample names but {len(a.mct)} mct and {len(a.sem)} sem files"
        )
    store = dict(a.store_params or {})
    if a.workers:
        store["workers"] = a.workers
    build_dataset(
        list(zip(names, a.mct, a.sem, strict=True)),
        a.out_store,
        a.out_manifest,
        a.tiling,
        store,
        provenance={
            "tiling": a.tiling,
            "store": {k: v for k, v in store.items() if k != "workers"},
            "samples": names,
        },
        progress=not a.no_progress,
    )


@_command("split")
def _split(a: argparse.Namespace) -> None:
    from rocksr.dataset import split_dataset

    split_dataset(a.manifest, a.out_splits, a.out_counts, a.out_map, a.params)


@_command("figure1")
def _figure1(a: argparse.Namespace) -> None:
    from rocksr.dataset import figure1_from_store

    figure1_from_store(a.store, a.manifest, a.out)


@_command("train")
def _train(a: argparse.Namespace) -> None:
    from rocksr.train import train

    train(
        a.kind,
        a.store,
        a.splits,
        a.best,
        a.history,
        a.curve,
        a.samples_dir,
        a.state_dir,
        a.params,
        a.seed,
        device=a.device,
    )


@_command("predict")
def _predict(a: argparse.Namespace) -> None:
    from rocksr.predict import predict

    predict(
        a.checkpoint,
        a.store,
        a.splits,
        a.out,
        sampler=a.sampler,
        steps=a.steps,
        batch_size=a.batch_size,
        seed=a.seed,
        device=a.device,
        progress=True,
        n_samples=a.n_samples,
    )


@_command("baseline")
def _baseline(a: argparse.Namespace) -> None:
    from rocksr.baselines import predict_baseline

    predict_baseline(a.name, a.store, a.splits, a.out, lut_path=a.lut)


@_command("evaluate")
def _evaluate(a: argparse.Namespace) -> None:
    from rocksr.evaluate import evaluate

    evaluate(
        _named_paths(a.predictions),
        a.store,
        a.splits,
        a.manifest,
        a.out_per_tile,
        a.out_table,
        a.out_markdown,
        porosity_threshold=a.porosity_threshold,
        sample_means=not a.no_sample_means,
    )


@_command("figures")
def _figures(a: argparse.Namespace) -> None:
    from rocksr.figures_eval import figure2, figure3, plot_training_curves

    preds = _named_paths(a.predictions)
    figure2(a.per_tile, a.out_figure2, n=a.n_figure2)
    figure3(
        preds, a.store, a.splits, a.out_figure3, n_tiles=a.n_figure3, seed=a.seed, models=a.models
    )
    plot_training_curves(_named_paths(a.histories), a.out_curves)


@_command("uncertainty")
def _uncertainty(a: argparse.Namespace) -> None:
    from rocksr.figures_eval import uncertainty_figure

    name, sep, path = a.predictions.partition("=")
    if not sep:
        name, path = "ddpm", a.predictions
    if not name or not path:
        raise ValueError(f"expected STORE or NAME=STORE, got {a.predictions!r}")
    uncertainty_figure(path, a.store, a.splits, a.out, n_tiles=a.n_tiles, seed=a.seed, name=name)


@_command("sampler-study")
def _sampler_study(a: argparse.Namespace) -> None:
    from rocksr.sampler_study import sampler_study

    sampler_study(
        a.checkpoint,
        a.store,
        a.splits,
        a.out_csv,
        a.out_png,
        configs=a.configs,
        n_tiles=a.n_tiles,
        seed=a.seed,
        batch_size=a.batch_size,
        device=a.device,
        out_md=a.out_md,
        tolerance_db=a.tolerance_db,
    )


@_command("verify")
def _verify(a: argparse.Namespace) -> None:
    from rocksr.store import certify_store, verify_store

    for path in a.stores:
        if a.write_manifest:
            n = certify_store(path)
            print(f"{path}: decoded in full; digest manifest recorded for {n} files")
        else:
            verify_store(path, full=True)
            print(f"{path}: OK (every file present, with its recorded size and SHA-256)")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _add_model_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("train", help="train the cGAN or the DDPM (resumes from state-dir/last.pt)")
    s.add_argument("--kind", choices=["cgan", "ddpm"], required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--best", required=True, help="best-validation checkpoint (output)")
    s.add_argument("--history", required=True)
    s.add_argument("--curve", required=True)
    s.add_argument("--samples-dir", required=True)
    s.add_argument("--state-dir", required=True, help="resumable state (last.pt); not an output")
    s.add_argument("--params", type=_json_arg, default={})
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")

    s = sub.add_parser("predict", help="predict every test tile with a checkpoint")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--sampler", default="ddim", choices=["ancestral", "ddim", "dpmsolver"])
    s.add_argument("--steps", type=_json_arg, default=None, help="int, or null for all T")
    s.add_argument("--batch-size", type=_positive_int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument(
        "--n-samples",
        type=_positive_int,
        default=1,
        metavar="K",
        help="DDPM samples per tile (pred = sample 0; adds mean, std and, for K > 1, samples); "
        "ignored (K = 1) for the deterministic cGAN",
    )

    s = sub.add_parser(
        "baseline", help="identity / train-fitted histogram-matching / train mean-grey predictions"
    )
    s.add_argument("--name", required=True, choices=["identity", "histmatch", "mean"])
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--lut", default=None, help="where to record the fitted LUT (histmatch)")

    s = sub.add_parser("evaluate", help="per-tile metrics and Table 1")
    s.add_argument("--predictions", nargs="+", required=True, metavar="NAME=STORE")
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--porosity-threshold", type=_json_arg, default=None)
    s.add_argument("--out-per-tile", required=True)
    s.add_argument("--out-table", required=True)
    s.add_argument("--out-markdown", required=True)
    s.add_argument(
        "--no-sample-means",
        action="store_true",
        help="do not add a 'NAME (mean of K)' row for stores with K > 1 samples per tile",
    )

    s = sub.add_parser("figures", help="Figures 2 and 3 and the training curves")
    s.add_argument("--predictions", nargs="+", required=True, metavar="NAME=STORE")
    s.add_argument("--models", nargs="+", default=None, help="models shown in Figure 3")
    s.add_argument("--histories", nargs="+", required=True, metavar="NAME=CSV")
    s.add_argument("--per-tile", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--n-figure2", type=int, default=60)
    s.add_argument("--n-figure3", type=_positive_int, default=3, help="tiles in Figure 3")
    s.add_argument("--out-figure2", required=True)
    s.add_argument("--out-figure3", required=True)
    s.add_argument("--out-curves", required=True)

    s = sub.add_parser("sampler-study", help="PSNR/SSIM/time vs. sampler steps (DDPM)")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--configs", type=_json_arg, default=None)
    s.add_argument("--n-tiles", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--device", default="auto")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-png", required=True)
    s.add_argument(
        "--out-md",
        default=None,
        help="Markdown table + cheapest sampler within --tolerance-db of ancestral",
    )
    s.add_argument("--tolerance-db", type=float, default=0.3)

    s = sub.add_parser(
        "uncertainty", help="DDPM uncertainty figure: mean, std and error of K samples per tile"
    )
    s.add_argument(
        "--predictions",
        required=True,
        metavar="[NAME=]STORE",
        help="prediction store with n_samples > 1",
    )
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--seed", type=int, default=0, help="tile choice (the Figure 3 seed)")
    s.add_argument("--n-tiles", type=_positive_int, default=3)
    s.add_argument("--out", required=True)


def build_parser() -> argparse.ArgumentParser:
    """The ``rocksr`` argument parser (sub-commands mirror the Snakemake rules)."""
    p = argparse.ArgumentParser(prog="rocksr", description=__doc__)
    p.add_argument("--version", action="version", version=f"rocksr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synthesize", help="generate the built-in synthetic paired sample")
    s.add_argument(
        "--spec", type=_json_arg, required=True, help="JSON: height, width, seed, rock, forward"
    )
    s.add_argument("--out-mct", required=True)
    s.add_argument("--out-sem", required=True)

    s = sub.add_parser("simulate-mct", help="simulate a micro-CT partner for an SEM image")
    s.add_argument("--sem", required=True, help="SEM image (TIFF/PNG)")
    s.add_argument("--page", type=int, default=None)
    s.add_argument("--out", required=True, help="simulated micro-CT (TIFF/PNG)")
    s.add_argument("--out-sem", default=None, help="also write the 8-bit SEM used")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--forward", type=_json_arg, default={}, help="JSON forward-model parameters")

    s = sub.add_parser("normalize", help="contrast-normalize a registered pair to 8 bits")
    s.add_argument("--sample", default="sample")
    s.add_argument("--mct", required=True)
    s.add_argument("--sem", required=True)
    s.add_argument("--params", type=_json_arg, default={})
    s.add_argument(
        "--pages",
        type=_json_arg,
        default={},
        help="JSON: mct_page, sem_page (a page of a stack), mct_series, sem_series",
    )
    s.add_argument(
        "--min-size",
        type=int,
        default=2,
        help="smallest allowed side (the rotation-safe footprint)",
    )
    s.add_argument("--out-mct", required=True)
    s.add_argument("--out-sem", required=True)
    s.add_argument("--histograms", required=True)
    s.add_argument("--report", required=True)

    s = sub.add_parser("build-dataset", help="tile + rotate normalized pairs into a Zarr store")
    s.add_argument("--samples", type=_json_arg, required=True, help="JSON list of sample names")
    s.add_argument("--mct", nargs="+", required=True)
    s.add_argument("--sem", nargs="+", required=True)
    s.add_argument("--tiling", type=_json_arg, required=True)
    s.add_argument("--store-params", type=_json_arg, default={})
    s.add_argument("--workers", type=int, default=0)
    s.add_argument("--out-store", required=True)
    s.add_argument("--out-manifest", required=True)
    s.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("split", help="assign tiles to train/val/test")
    s.add_argument("--manifest", required=True)
    s.add_argument("--params", type=_json_arg, default={})
    s.add_argument("--out-splits", required=True)
    s.add_argument("--out-counts", required=True)
    s.add_argument("--out-map", required=True)

    s = sub.add_parser("figure1", help="Figure 1: a base tile and rotated views")
    s.add_argument("--store", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--out", required=True)

    s = sub.add_parser(
        "verify", help="check every file of a tile or prediction store against its digests"
    )
    s.add_argument("stores", nargs="+", metavar="STORE")
    s.add_argument(
        "--write-manifest",
        action="store_true",
        help="for a store written by an older rocksr without digests: decode it in full, check "
        "that no data file is missing, and record its digest manifest",
    )

    for extra in _EXTRA_PARSERS:
        extra(sub)
    return p


_EXTRA_PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [_add_model_parsers]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rocksr`` console script (``argv`` None: ``sys.argv``, and the process
    dies with its parent, see :mod:`rocksr.lifecycle`)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from rocksr.errors import RocksrError
    from rocksr.lifecycle import die_with_parent, sigterm_as_exit

    try:
        if argv is None:  # the console script (not a call from Python)
            if os.environ.get("ROCKSR_DIE_WITH_PARENT") == "1":  # set by the Snakefile for jobs
                die_with_parent()  # a job killed by its shell takes rocksr with it
            sigterm_as_exit()  # so that SIGTERM removes partial outputs (training has its own)
        _COMMANDS[args.command](args)
    except (RocksrError, ValueError) as exc:
        print(f"rocksr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
