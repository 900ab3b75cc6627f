"""Everything the config alone decides fails before any job runs; an empty split fails the
split rule with what to change, before an hour of training (issue: honest numbers)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml
from helpers_workflow import REPO, snakemake
from test_bad_input import _manifest

from rocksr.config.merge import ConfigError
from rocksr.config_feasibility import check_feasibility, feasibility_problems
from rocksr.stages.split import EmptySplitError, split_dataset

TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())


def _with(**changes) -> dict:
    cfg = copy.deepcopy(TINY)
    for path, value in changes.items():
        node = cfg
        *parents, key = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
    return cfg


def test_the_tiny_and_default_configs_are_feasible() -> None:
    assert feasibility_problems(TINY) == []
    assert feasibility_problems(yaml.safe_load((REPO / "config.yaml").read_text())) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tiling__size": 63}, "tiling.size 63 is not divisible by 4, the down-sampling factor"),
        ({"ddpm__crop": 48, "tiling__size": 32}, "ddpm.crop 48 must be at most tiling.size 32"),
        ({"tiling__size": 256}, "'tiny0': 320x320 is smaller than one rotation-safe footprint"),
        ({"split__blocks": {"rows": 1, "cols": 2}}, "split.blocks 1x2 gives 2 block(s) for 3"),
        (
            {"split__strategy": "holdout_sample", "split__holdout": {"test": ["nope"]}},
            "split.holdout.test names 'nope', which is not a sample",
        ),
        (
            {"split__strategy": "holdout_sample", "split__holdout": {"test": ["tiny0"]}},
            "holds out every sample, so nothing is left to train on",
        ),
    ],
)
def test_config_only_problems_are_named(changes: dict, message: str) -> None:
    problems = feasibility_problems(_with(**changes))
    assert any(message in p for p in problems), problems


def test_all_problems_are_listed_together() -> None:
    cfg = _with(tiling__size=63, split__blocks={"rows": 1, "cols": 1})
    with pytest.raises(ConfigError) as exc:
        check_feasibility(cfg)
    text = str(exc.value)
    assert "nothing was started" in text and "tiling.size 63" in text and "split.blocks" in text


def test_a_dry_run_refuses_an_infeasible_config_before_any_job(tmp_path) -> None:
    cfg = _with(split__blocks={"rows": 1, "cols": 2})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(tmp_path, "-n", check=False, timeout=300)
    assert r.returncode != 0
    assert "split.blocks 1x2 gives 2 block(s)" in r.stdout + r.stderr
    assert not (tmp_path / "results").exists()


def test_an_empty_split_fails_the_split_stage_with_its_counts(tmp_path) -> None:
    man = _manifest(tmp_path)
    outs = [tmp_path / "s.csv", tmp_path / "c.csv"]
    params = {"strategy": "holdout_sample", "holdout": {"test": ["a"]}}  # the only sample
    with pytest.raises(EmptySplitError) as exc:
        split_dataset(man, *outs, params)
    text = str(exc.value)
    assert "split strategy 'holdout_sample' leaves train empty (views: train 0, val 0" in text
    assert "leave at least one for training" in text
    assert not outs[0].exists() and not outs[1].exists()


def test_a_feasible_split_writes_its_tables(tmp_path) -> None:
    man = _manifest(tmp_path)
    outs = [tmp_path / "s.csv", tmp_path / "c.csv"]
    params = {"strategy": "random", "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}}
    split_dataset(man, *outs, params)
    counts = pd.read_csv(outs[1]).set_index("split")["views"]
    assert (counts[["train", "val", "test"]] > 0).all()


def test_file_samples_are_checked_from_their_headers(tmp_path) -> None:
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "m.tif", np.zeros((40, 50), np.uint8))
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((160, 200), np.uint8))
    base = {"name": "r", "mct": str(tmp_path / "m.tif"), "sem": str(tmp_path / "s.tif")}
    cfg = _with(samples=[base])
    (problem,) = [p for p in feasibility_problems(cfg) if "'r'" in p]
    assert "micro-CT 40x50 and SEM 160x200 differ; register them, or set mct_scale" in problem
    cfg = _with(samples=[{**base, "mct_scale": "auto"}])
    assert feasibility_problems(cfg) == []
    cfg = _with(samples=[{**base, "mct_scale": "auto", "crop": [0, 0, 80, 80]}])
    assert any(
        "80x80 is smaller than one rotation-safe footprint" in p
        for p in feasibility_problems(_with(samples=cfg["samples"], tiling__size=64))
    )
    cfg = _with(samples=[{**base, "mct": str(tmp_path / "gone.tif")}])
    assert any("gone.tif: file does not exist" in p for p in feasibility_problems(cfg))


def test_a_mask_image_is_checked_from_its_header(tmp_path) -> None:
    """A mask image must exist and have the SEM's shape (or the micro-CT's, with mct_scale)."""
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "m.tif", np.zeros((40, 50), np.uint8))
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((160, 200), np.uint8))
    tifffile.imwrite(tmp_path / "k.tif", np.zeros((160, 100), np.uint8))
    base = {
        "name": "r",
        "mct": str(tmp_path / "m.tif"),
        "sem": str(tmp_path / "s.tif"),
        "mct_scale": 4,
    }
    for ok in ("auto_fov", "none", str(tmp_path / "m.tif"), str(tmp_path / "s.tif")):
        assert feasibility_problems(_with(samples=[{**base, "mask": ok}])) == []
    (problem,) = feasibility_problems(_with(samples=[{**base, "mask": str(tmp_path / "k.tif")}]))
    assert (
        "k.tif: mask is 160x100, but it must have the SEM's shape 160x200, or the micro-CT's 40x50"
        in problem
    )
    (problem,) = feasibility_problems(_with(samples=[{**base, "mask": str(tmp_path / "no.png")}]))
    assert "sample 'r': mask:" in problem and "no.png: file does not exist" in problem


def test_a_misspelt_mask_mode_is_named_with_the_closest_mode(tmp_path) -> None:
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "s.tif", np.zeros((160, 200), np.uint8))
    base = {"name": "r", "mct": str(tmp_path / "s.tif"), "sem": str(tmp_path / "s.tif")}
    for typo in ("autofov", "AUTO_FOV", "auto-fov"):
        (problem,) = feasibility_problems(_with(samples=[{**base, "mask": typo}]))
        assert f"mask {typo!r} is neither none nor auto_fov nor a mask image" in problem
        assert "(did you mean 'auto_fov'?)" in problem
    synthetic = {"name": "syn", "synthetic": {"height": 256, "width": 256}}
    (problem,) = feasibility_problems(_with(samples=[{**synthetic, "mask": "auto_fov"}]))
    assert "a synthetic sample has no circular field of view" in problem
    tifffile.imwrite(tmp_path / "k.png", np.zeros((10, 10), np.uint8))
    (problem,) = feasibility_problems(
        _with(samples=[{**synthetic, "mask": str(tmp_path / "k.png")}])
    )
    assert "k.png: mask is 10x10, but it must have the SEM's shape 256x256" in problem
