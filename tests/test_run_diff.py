"""`rocksr compare-runs`: two results folders compared by what they hold, timings left out."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import zarr

from rocksr.cli import main
from rocksr.run_diff import compare_runs, timing_file


def _results(root: Path, seconds: float = 1.0) -> Path:
    """A small results folder: a tile store, a checkpoint, Table 1, an image and timing files."""
    store = zarr.open_group(str(root / "dataset" / "tiles.zarr"), mode="w")
    store.create_array("mct", shape=(4, 8, 8), dtype="uint8")[...] = np.arange(256).reshape(4, 8, 8)
    (root / "models" / "cgan").mkdir(parents=True)
    torch.save(
        {"step": 10, "model": {"w": torch.arange(6.0)}, "timing": {"wall_s": seconds}},
        root / "models" / "cgan" / "best.pt",
    )
    (root / "evaluation").mkdir()
    pd.DataFrame({"model": ["cgan"], "psnr_mean": [21.5]}).to_csv(root / "evaluation" / "t.csv")
    pd.DataFrame({"step": [10], "wall_s": [seconds]}).to_csv(
        root / "models" / "cgan" / "history_timing.csv"
    )
    (root / "enhanced" / "s").mkdir(parents=True)
    tifffile.imwrite(root / "enhanced" / "s" / "cgan.tif", np.full((8, 8), 7, np.uint8))
    (root / "enhanced" / "s" / "cgan.json").write_text(f'{{"seconds": {seconds}}}')
    (root / "logs").mkdir()
    (root / "logs" / "x.csv").write_text(f"s\n{seconds}\n")
    return root


def _differing(found) -> set[str]:
    return {f.path for f in found if f.same is not True}


def test_two_runs_that_differ_only_in_timings_are_the_same(tmp_path: Path) -> None:
    a, b = _results(tmp_path / "a", 1.0), _results(tmp_path / "b", 2.5)
    found = compare_runs(a, b)
    # the checkpoint's timing is not a tensor; the timing files and logs are not compared
    assert {f.path for f in found} == {
        "dataset/tiles.zarr",
        "models/cgan/best.pt",
        "evaluation/t.csv",
        "enhanced/s/cgan.tif",
    }
    assert all(f.same for f in found), [f.line() for f in found]
    assert main(["compare-runs", str(a), str(b)]) == 0


def test_each_kind_of_result_that_differs_is_named(tmp_path: Path) -> None:
    a, b = _results(tmp_path / "a"), _results(tmp_path / "b")
    zarr.open_group(str(b / "dataset" / "tiles.zarr"), mode="r+")["mct"][0, 0, 0] = 99
    torch.save({"model": {"w": torch.arange(6.0) + 1e-7}}, b / "models" / "cgan" / "best.pt")
    pd.DataFrame({"model": ["cgan"], "psnr_mean": [21.6]}).to_csv(b / "evaluation" / "t.csv")
    tifffile.imwrite(b / "enhanced" / "s" / "cgan.tif", np.full((8, 8), 8, np.uint8))
    found = {f.path: f for f in compare_runs(a, b)}
    assert _differing(found.values()) == set(found)
    assert "mct" in found["dataset/tiles.zarr"].detail
    assert "/model/w" in found["models/cgan/best.pt"].detail
    assert "psnr_mean" in found["evaluation/t.csv"].detail
    with pytest.raises(SystemExit) as exit_:
        main(["compare-runs", str(a), str(b), "--only-differences"])
    assert exit_.value.code == 1


def test_a_moved_result_is_compared_under_its_alias_and_a_lone_one_is_said(
    tmp_path: Path,
) -> None:
    a, b = _results(tmp_path / "a"), _results(tmp_path / "b")
    (b / "evaluation" / "moved").mkdir()
    shutil.move(b / "evaluation" / "t.csv", b / "evaluation" / "moved" / "t.csv")
    lone = {f.path for f in compare_runs(a, b) if f.same is None}
    assert lone == {"evaluation/t.csv", "evaluation/moved/t.csv"}
    found = compare_runs(a, b, {"evaluation/t.csv": "evaluation/moved/t.csv"})
    assert all(f.same for f in found)
    assert any(
        f.line().startswith("evaluation/t.csv = evaluation/moved/t.csv: same") for f in found
    )


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys) -> None:
    a = _results(tmp_path / "a")
    assert main(["compare-runs", str(a), str(tmp_path / "absent")]) == 2
    assert "absent: not a results folder" in capsys.readouterr().err
    assert main(["compare-runs", str(a), str(a), "--alias", "x"]) == 2
    assert "FIRST=SECOND" in capsys.readouterr().err


def test_timing_files_are_the_documented_ones() -> None:
    for rel in (
        "logs/a.log",
        "benchmarks/x.tsv",
        "models/ddpm/history_timing.csv",
        "state/ddpm/timing.json",
        "enhanced/s/ddpm.json",
        "warnings.txt",
    ):
        assert timing_file(Path(rel)), rel
    for rel in ("models/ddpm/history.csv", "evaluation/table1.csv", "enhanced/s/ddpm.tif"):
        assert not timing_file(Path(rel)), rel
