"""The workflow's sources and plans without a run: lint and format, a config typo refused at
parse time, and what the studies overlay plans (dry runs on the tiny config)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml
from helpers_workflow import REPO, TINY, planned_rules, snakemake, write_config


def test_lint_and_format():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "--configfile",
            str(REPO / "tests" / "data" / "tiny.yaml"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    snakefmt = shutil.which("snakefmt")
    assert snakefmt, "snakefmt is a test dependency"
    r = subprocess.run(
        [snakefmt, "--check", "Snakefile", "workflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_clean():
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "rocksr", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_config_typo_is_refused_at_parse_time(tmp_path):
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    cfg["cgan"]["lamda_l1"] = 10.0  # misspelt key
    write_config(tmp_path, cfg)
    r = snakemake(tmp_path, "-n", check=False, timeout=300)
    assert r.returncode != 0
    assert "lamda_l1" in r.stdout + r.stderr


def test_the_studies_overlay_adds_exactly_the_three_studies(tmp_path):
    """config.yaml leaves the studies off; `--configfile configs/studies.yaml` turns on the
    sampler, leak and seam studies over any config, and plans nothing else anew."""
    cfg = {
        **TINY,
        "evaluate": {**TINY["evaluate"], "sampler_study": {"enabled": False}},
        "leak_study": {"enabled": False},
        "enhance": {"seam_study": False},
    }
    write_config(tmp_path, cfg)
    plain = planned_rules(snakemake(tmp_path, "-n").stdout)
    overlay = REPO / "configs" / "studies.yaml"
    studies = planned_rules(snakemake(tmp_path, "-n", "--configfile", str(overlay)).stdout)
    # the leak study: its own split, training and predictions, then the comparison
    leak = {"leak_split", "leak_train_cgan", "leak_predict", "leak_study"}
    assert not {"sampler_study", "seam_study", *leak} & plain, plain
    assert studies - plain == {"sampler_study", "seam_study", *leak}, studies - plain
    assert plain <= studies
