"""Stage `histograms`: grey-level histograms of a pair before and after normalization."""

from __future__ import annotations

import argparse

from rocksr.stages.normalize import add_page_arguments

COMMAND = "histograms"
HELP = "histograms of a raw and a normalized pair"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--sample", default="sample")
    s.add_argument("--mct", required=True, help="raw micro-CT")
    s.add_argument("--sem", required=True, help="raw SEM")
    add_page_arguments(s)
    s.add_argument("--normalized-mct", required=True)
    s.add_argument("--normalized-sem", required=True)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.data.images import read_image
    from rocksr.figures.histograms import histogram_figure

    pages = a.pages or {}
    raw = {
        "mct": read_image(a.mct, pages.get("mct_page"), pages.get("mct_series")),
        "sem": read_image(a.sem, pages.get("sem_page"), pages.get("sem_series")),
    }
    normalized = {"mct": read_image(a.normalized_mct), "sem": read_image(a.normalized_sem)}
    histogram_figure(raw, normalized, f"{a.sample}: contrast normalization", a.out)
