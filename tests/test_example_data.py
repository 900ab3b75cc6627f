"""The worked real-data example: a folder of pairs at two resolutions with a circular field of
view goes to Table 1 through configs/example_pairs.tsv, with no hand work (the real
`snakemake`, tiny budgets)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from helpers_workflow import REPO, snakemake
from PIL import Image

from rocksr.data.example_pairs import coarse_fov_mct

# the example's SEM side here (the command's default is 768): small, for a test's budget
SIZE = 256


def test_coarse_fov_mct_is_16_bit_coarse_with_a_zero_surround() -> None:
    mct = np.tile(np.arange(16, dtype=np.uint8), (16, 1))
    coarse, fov = coarse_fov_mct(mct, 4, 0.9)
    assert coarse.shape == (4, 4) and coarse.dtype == np.uint16
    assert coarse[0, 0] == 0 and coarse[1, 1] == round(1000 + 200 * 5.5)
    assert fov["centre_yx"] == [1.5, 1.5]
    with pytest.raises(ValueError, match="not divisible"):
        coarse_fov_mct(mct[:15], 4)


@pytest.mark.slow
def test_the_example_sheet_takes_two_folders_to_table_1(tmp_path) -> None:
    subprocess.run(
        ["rocksr", "example-data", "--out", "data/example", "--size", str(SIZE)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    mct = tifffile.imread(tmp_path / "data/example/mct/rock_a.tif")
    sem = np.array(Image.open(tmp_path / "data/example/sem/rock_a.png"))
    assert mct.shape == (SIZE // 4, SIZE // 4) and mct.dtype == np.uint16 and mct[0, 0] == 0
    assert sem.shape == (SIZE, SIZE) and sem.dtype == np.uint8
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "example_pairs.tsv", tmp_path / "configs")
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg.update(run="example", samples="configs/example_pairs.tsv")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(
        tmp_path,
        "results/example/evaluation/table1.md",
        "results/example/splits/split_map.png",
        "results/example/normalized/rock_a/histograms.png",
        timeout=900,
    )

    res = tmp_path / "results" / "example"
    for name in ("rock_a", "rock_b", "rock_c"):
        report = yaml.safe_load((res / "normalized" / name / "normalize.json").read_text())
        assert report["registration"]["mct_scale"] == 4 and report["shape"] == [SIZE, SIZE]
        assert report["mask"]["mode"] == "auto_fov"
        assert report["mct"]["stretch_black"] > 0  # not the zero surround
    manifest = pd.read_csv(res / "dataset" / "manifest.csv")
    for name, sub in manifest.groupby("sample"):
        mask = np.array(Image.open(res / "normalized" / name / "mask.png")) > 0
        for fy, fx, fs in sub[["footprint_y0", "footprint_x0", "footprint_size"]].itertuples(
            index=False
        ):
            assert mask[fy : fy + fs, fx : fx + fs].all()
    dropped = pd.read_csv(res / "dataset" / "dropped_tiles.csv")
    counts = pd.read_csv(res / "splits" / "split_counts.csv").set_index("split")
    assert counts.loc["dropped: outside_mask", "base_tiles"] == len(dropped) > 0
    table = (res / "evaluation" / "table1.md").read_text()
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    assert {"cgan", "ddpm", "identity", "histmatch", "mean"} <= rows
