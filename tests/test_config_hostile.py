"""Hostile configs as the user meets them: every input Snakemake accepts (YAML, JSON, ``--config``,
``OrderedDict`` sections, numbers written as text) works, or the run stops before any job with
one line naming the key (issue: hostile testing of the config)."""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from helpers_data import smooth_image
from helpers_workflow import REPO, snakemake
from PIL import Image
from test_fail_early import TINY, _with

from rocksr.config.merge import ConfigError
from rocksr.config.provenance import resolved_text
from rocksr.config.startup import workflow_config
from rocksr.config_feasibility import feasibility_problems
from rocksr.data.images import ImageError, read_image

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def start(cfg: dict, base: Path = REPO) -> dict:
    """What the workflow's start-up makes of ``cfg`` (rocksr.config.startup.workflow_config)."""
    return workflow_config(cfg, SCHEMA, base)


def refused(cfg: dict, base: Path = REPO) -> str:
    """The start-up's one-line message for ``cfg``."""
    with pytest.raises(ConfigError) as exc:
        start(cfg, base)
    text = str(exc.value)
    assert len(text.splitlines()) == 1, text
    return text


def ordered(value):
    """``value`` with every mapping an OrderedDict, as Snakemake loads a JSON config."""
    if isinstance(value, dict):
        return OrderedDict((k, ordered(v)) for k, v in value.items())
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def write(path: Path, seed: int, shape: tuple[int, int] = (128, 128)) -> str:
    """A distinct smooth grey image at ``path`` (TIFF or PNG by suffix); its path as text."""
    img = smooth_image(*shape, seed)
    if path.suffix == ".png":
        Image.fromarray(img).save(path)
    else:
        tifffile.imwrite(path, img)
    return str(path)


def pair(tmp_path: Path, name: str, seed: int) -> dict:
    return {
        "name": name,
        "mct": write(tmp_path / f"{name}_mct.tif", seed),
        "sem": write(tmp_path / f"{name}_sem.tif", seed + 100),
    }


# --- 1. every form Snakemake accepts -----------------------------------------------------------


def test_ordereddict_sections_become_plain_dicts_and_the_resolved_config_is_written() -> None:
    cfg = start(ordered(copy.deepcopy(TINY)))
    seen = [cfg]
    while seen:
        v = seen.pop()
        assert type(v) in (dict, list, str, int, float, bool, type(None)), type(v)
        seen += list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else []
    assert "samples: [{name: tiny0, synthetic:" in resolved_text(cfg, {})


def test_numbers_written_as_text_are_read_where_the_schema_wants_numbers() -> None:
    """`--config 'ddpm={lr: 1e-3}'` gives text for every nested value; so does YAML for 1e-3."""
    cfg = _with(
        ddpm__lr="1e-3",
        ddpm__crop="null",
        ddpm__compile="false",
        tiling__size="64",
        tiling__angles=["0", "45", "90"],
        evaluate__steps="3",
        run=2024,
    )
    cfg = start(cfg)
    assert cfg["ddpm"]["lr"] == 1e-3 and cfg["ddpm"]["crop"] is None
    assert cfg["ddpm"]["compile"] is False and cfg["tiling"]["size"] == 64
    assert cfg["tiling"]["angles"] == [0, 45, 90] and cfg["evaluate"]["steps"] == 3
    assert cfg["run"] == "2024"
    message = refused(_with(tiling__size="big"))
    assert message == "config: tiling.size: 'big' is not of type 'integer'"


# --- 3. non-finite numbers and the noise schedule ---------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cgan__lr": float("inf")}, "config: cgan.lr = inf: NaN and infinity are never valid"),
        ({"ddpm__ema": {"decay": float("nan")}}, "config: ddpm.ema.decay = nan:"),
        ({"tiling__angles": [0, float("nan")]}, "config: tiling.angles[1] = nan:"),
        (
            {"split__fractions": {"train": float("nan"), "val": 0.5, "test": 0.5}},
            "config: split.fractions.train = nan:",
        ),
        ({"cgan__lr": "inf"}, "config: cgan.lr = inf:"),  # `--config 'cgan={lr: inf}'`
    ],
)
def test_non_finite_numbers_are_refused_by_key(changes: dict, message: str) -> None:
    assert message in refused(_with(**changes))


def test_an_enhance_crop_smaller_than_the_figure_crop_is_refused() -> None:
    message = refused(_with(enhance__crop=64, enhance__figure_crop=96))
    assert message.startswith("config: enhance.crop 64 is smaller than enhance.figure_crop 96")


def test_yaml_and_json_spellings_of_infinity_are_refused() -> None:
    text = yaml.safe_dump(TINY).replace("lr: 0.001", "lr: .inf")
    assert "config: ddpm.lr = inf:" in refused(yaml.safe_load(text))
    loaded = json.loads(json.dumps(TINY).replace('"decay": 0.9', '"decay": NaN'))
    assert "config: regress.ema.decay = nan, ddpm.ema.decay = nan:" in refused(loaded)


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ({"beta_start": 0.5, "beta_end": 1e-4}, False),
        ({"beta_start": 0.02, "beta_end": 0.02}, False),
        ({"beta_start": 1e-4, "beta_end": 0.02}, True),
    ],
)
def test_betas_must_grow_inside_0_1(schedule: dict, ok: bool) -> None:
    cfg = _with(ddpm__schedule={**TINY["ddpm"]["schedule"], **schedule})
    problems = feasibility_problems(cfg)
    assert (problems == []) == ok, problems
    if not ok:
        (problem,) = problems
        assert problem.startswith(
            f"ddpm.schedule: beta_start {schedule['beta_start']:g} and beta_end "
            f"{schedule['beta_end']:g} must satisfy 0 < beta_start < beta_end < 1"
        )


# --- 4. what used to fail after training, now before any job -----------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"evaluate__steps": 500},
            "evaluate.steps 500 is more than ddpm.schedule.timesteps 100",
        ),
        (
            {"ddpm__val_sampler_steps": 101},
            "ddpm.val_sampler_steps 101 is more than ddpm.schedule.timesteps 100",
        ),
        (
            {"evaluate__sampler": "ancestral"},  # with steps 3
            "evaluate.steps 3: the ancestral sampler runs all ddpm.schedule.timesteps (100) steps",
        ),
        (
            {
                "evaluate__sampler_study": {
                    "enabled": True,
                    "configs": [{"sampler": "ddim", "steps": [2, 400]}],
                }
            },
            "evaluate.sampler_study.configs[0].steps 400 is more than ddpm.schedule.timesteps",
        ),
        (
            {"split__fractions": {"train": 0.75, "val": 0.25, "test": 0}},
            "split.fractions.test is 0: the test split would be empty, so there is nothing to "
            "evaluate",
        ),
    ],
)
def test_late_failures_are_found_from_the_config(changes: dict, message: str) -> None:
    (problem,) = feasibility_problems(_with(**changes))
    assert problem.startswith(message), problem


def test_a_page_on_a_png_or_beyond_the_tiff_is_named_with_its_key(tmp_path: Path) -> None:
    sample = pair(tmp_path, "r", 1)
    sample["sem"] = write(tmp_path / "r_sem.png", 2)
    (problem,) = feasibility_problems(_with(samples=[{**sample, "sem_page": 1}]))
    assert problem == (
        f"sample 'r': {tmp_path / 'r_sem.png'}: `sem_page` is 1, but a PNG holds one image; "
        "unset it"
    )
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([smooth_image(128, 128, s) for s in (5, 6)]))
    (problem,) = feasibility_problems(_with(samples=[{**sample, "mct": str(stack), "mct_page": 2}]))
    assert f"{stack}: `mct_page` 2 is beyond the file's 2 page(s)" in problem
    assert feasibility_problems(_with(samples=[{**sample, "mct": str(stack), "mct_page": 1}])) == []


# --- 5. messages that misled -------------------------------------------------------------------


def test_a_long_run_name_is_refused_in_one_line() -> None:
    message = refused(_with(run="r" * 300))
    assert "is 300 characters long; use at most 100" in message and len(message) < 200


def test_a_misspelt_sample_key_names_the_sample_and_the_closest_key(tmp_path: Path) -> None:
    sample = pair(tmp_path, "r", 1)
    sample["sme"] = sample.pop("sem")
    message = refused(_with(samples=[sample]))
    assert message.startswith("config: sample 'r': unknown key 'sme' (did you mean 'sem'?)")


def test_a_misspelt_nested_key_is_one_line_with_the_closest_key() -> None:
    message = refused(_with(ddpm__schedule={"timestep": 100}))
    assert message.startswith(
        "config: ddpm.schedule: unknown key 'timestep' (did you mean 'timesteps'?)"
    )


def test_a_mask_stack_names_the_mask_setting(tmp_path: Path) -> None:
    sample = pair(tmp_path, "r", 1)
    mask = tmp_path / "mask.tif"
    tifffile.imwrite(mask, np.ones((3, 128, 128), np.uint8), photometric="minisblack")
    (problem,) = feasibility_problems(_with(samples=[{**sample, "mask": str(mask)}]))
    assert "is a stack of 3 pages" in problem and "`mask` takes a single 2-D image" in problem
    assert "mct_page" not in problem


def test_a_grey_stack_of_three_or_four_slices_is_not_called_only_a_colour_image(
    tmp_path: Path,
) -> None:
    slices = np.stack([smooth_image(64, 64, s) for s in range(3)])
    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, slices, photometric="minisblack")  # three pages
    with pytest.raises(ImageError, match=r"stack\.tif: is a stack of 3 pages") as exc:
        read_image(p)
    assert "colour" not in str(exc.value)
    # tifffile's default for a (3, H, W) array: one RGB page of separate planes
    tifffile.imwrite(p, slices, photometric="rgb", planarconfig="separate")
    with pytest.raises(ImageError) as exc:
        read_image(p)
    assert "which is also how tifffile writes a stack of 3 grey slices" in str(exc.value)
    tifffile.imwrite(p, np.dstack([smooth_image(64, 64, s) for s in range(3)]), photometric="rgb")
    with pytest.raises(ImageError, match=r"is a colour image") as exc:  # interleaved RGB
        read_image(p)
    assert "slices" not in str(exc.value)


# --- 2. the same pixels in two samples --------------------------------------------------------


def test_two_rows_with_the_same_files_are_refused(tmp_path: Path) -> None:
    """A sheet whose rows r1 and r2 name the same files: r1's train views would be r2's test."""
    pair(tmp_path, "a", 1)
    rows = ["name\tmct\tsem", "r1\ta_mct.tif\ta_sem.tif", "r2\ta_mct.tif\ta_sem.tif"]
    (tmp_path / "s.tsv").write_text("\n".join(rows) + "\n")
    message = refused(_with(samples=str(tmp_path / "s.tsv")), tmp_path)
    assert message.startswith(
        f"config: samples 'r1' (mct) and 'r2' (mct) use the same image ({tmp_path / 'a_mct.tif'}, "
        "the same file)"
    )


def test_a_copy_of_another_samples_image_is_refused(tmp_path: Path) -> None:
    one, two = pair(tmp_path, "r1", 1), pair(tmp_path, "r2", 2)
    copy_path = tmp_path / "copy.tif"
    copy_path.write_bytes(Path(one["sem"]).read_bytes())
    message = refused(_with(samples=[one, {**two, "sem": str(copy_path)}]))
    assert f"samples 'r1' (sem) and 'r2' (sem) use the same image ({copy_path}, identical to" in (
        message
    )


def test_a_row_whose_mct_is_its_sem_is_refused(tmp_path: Path) -> None:
    sample = pair(tmp_path, "r", 1)
    message = refused(_with(samples=[{**sample, "sem": sample["mct"]}]))
    assert message.startswith("config: sample 'r': its mct and sem are the same image")
    # two pages of one file are two images
    stack = tmp_path / "pair.tif"
    tifffile.imwrite(stack, np.stack([smooth_image(128, 128, s) for s in (1, 2)]))
    both = {"name": "r", "mct": str(stack), "sem": str(stack), "mct_page": 0, "sem_page": 1}
    assert start(_with(samples=[both]))["samples"][0]["sem_page"] == 1


def test_distinct_samples_and_synthetic_twins(tmp_path: Path) -> None:
    assert len(start(_with(samples=[pair(tmp_path, "r1", 1), pair(tmp_path, "r2", 2)]))["samples"])
    twin = {**copy.deepcopy(TINY["samples"][0]), "name": "twin"}
    message = refused(_with(samples=[TINY["samples"][0], twin]))
    assert "samples 'tiny0' and 'twin' have the same synthetic settings" in message


# --- end to end: the real `snakemake` ----------------------------------------------------------


def test_a_json_config_runs(tmp_path: Path) -> None:
    """`--configfile cfg.json` (OrderedDicts) through start-up and the onstart hook that writes
    config.resolved.yaml, on the first job only (the synthetic sample: seconds)."""
    (tmp_path / "config.yaml").write_text(json.dumps(TINY))  # JSON in a .yaml: read as JSON
    extra = tmp_path / "cfg.json"
    extra.write_text(json.dumps({"run": "json", "ddpm": {"lr": "2e-3"}}))
    snakemake(tmp_path, "results/json/raw/tiny0/mct.tif", "--configfile", str(extra), timeout=300)
    text = (tmp_path / "results" / "json" / "config.resolved.yaml").read_text()
    assert f"ddpm.lr: 0.002  # {extra}" in text and "tiling.size: 64  # config.yaml" in text


def test_ordereddict_sections_and_config_text_pass_a_dry_run(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(json.dumps(TINY, indent="\t"))  # tabs: not YAML
    r = snakemake(tmp_path, "-n", "--config", "tiling={size: 64, stride: 32}", timeout=300)
    assert "synthesize" in r.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["ddpm"].update(lr=float("inf")),
            "rocksr: config: ddpm.lr = inf: NaN and infinity are never valid settings",
        ),
        (
            lambda c: c["samples"].append({**c["samples"][0], "name": "twin"}),
            "rocksr: config: samples 'tiny0' and 'twin' have the same synthetic settings",
        ),
    ],
)
def test_snakemake_stops_with_one_line(tmp_path: Path, edit, message: str) -> None:
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    (tmp_path / "config.yaml").write_text(json.dumps(cfg))  # NaN/Infinity: JSON only
    r = snakemake(tmp_path, "-n", check=False, timeout=300)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if not line.startswith("Using workflow")]
    assert lines == [lines[0]] and lines[0].startswith(message), r.stderr
    assert "Traceback" not in r.stdout + r.stderr and not (tmp_path / "results").exists()
