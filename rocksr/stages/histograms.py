"""Stage `histograms`: grey-level histograms of a pair before and after normalization."""

from __future__ import annotations

import argparse

from rocksr.stages.normalize import add_pair_settings_argument

COMMAND = "histograms"
HELP = "histograms of a raw and a normalized pair"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--sample", default="sample")
    s.add_argument("--mct", required=True, help="raw micro-CT")
    s.add_argument("--sem", required=True, help="raw SEM")
    add_pair_settings_argument(s)
    s.add_argument("--normalized-mct", required=True)
    s.add_argument("--normalized-sem", required=True)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.data.images import read_image
    from rocksr.data.pairs import read_registered_pair
    from rocksr.figures.histograms import histogram_figure

    pair = read_registered_pair(a.mct, a.sem, a.pair_settings)  # as `normalize` saw it
    normalized = {"mct": read_image(a.normalized_mct), "sem": read_image(a.normalized_sem)}
    title = f"{a.sample}: contrast normalization"
    raw = {k: pair.valid_values(k) for k in ("mct", "sem")}
    if pair.valid is not None:
        if normalized["mct"].shape != pair.valid.shape:
            raise SystemExit(
                f"{a.normalized_mct}: {normalized['mct'].shape} is not the registered pair's "
                f"{pair.valid.shape}; re-run normalize"
            )
        normalized = {k: v[pair.valid] for k, v in normalized.items()}
        title += f" (inside the mask: {pair.valid.mean():.0%} of the pixels)"
    histogram_figure(raw, normalized, title, a.out)
