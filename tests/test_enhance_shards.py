"""`rocksr enhance --shard i/N` + `rocksr gather-enhance`: the gathered stack is byte for byte what
one job writes (TIFF and OME-Zarr, K samples with mean and std, a raw 16-bit stack normalized
over every selected page), and every wrong set of parts is refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from test_enhance import (  # noqa: F401 (one_torch_thread is an autouse fixture)
    make_checkpoint,
    one_torch_thread,
    run,
    smooth_image,
)

from rocksr.cli import main
from rocksr.enhance.errors import EnhanceError
from rocksr.enhance.shards import gather_enhance


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ckpt")
    return {kind: make_checkpoint(d / f"{kind}.pt", kind) for kind in ("cgan", "ddpm")}


def raw_stack(path: Path, n: int = 7) -> Path:
    """A 16-bit stack whose pages differ in contrast, so that limits over a part would differ."""
    pages = [smooth_image(24, 32, seed=s, dtype=np.uint16) // (1 + s % 3) for s in range(n)]
    tifffile.imwrite(path, np.stack(pages), photometric="minisblack")
    return path


def enhance_parts(ckpt: Path, stack: Path, folder: Path, count: int, **kw) -> tuple[list, list]:
    folder.mkdir(exist_ok=True)
    parts, reports = [], []
    for i in range(1, count + 1):
        parts.append(folder / f"{i}-of-{count}.tif")
        reports.append(folder / f"{i}-of-{count}.json")
        run(ckpt, stack, parts[-1], report=reports[-1], shard=(i, count), **kw)
    return parts, reports


def same_report(a: dict, b: dict) -> None:
    timing = {"seconds", "megapixels_per_s", "working_directory", "shards", "gather_seconds"}
    assert {k: v for k, v in a.items() if k not in timing} == {
        k: v for k, v in b.items() if k not in timing
    }


@pytest.mark.parametrize("count", [1, 3])
def test_three_parts_gather_to_the_bytes_of_one_ddpm_job_with_k_samples(
    tmp_path, ckpts, count
) -> None:
    stack = raw_stack(tmp_path / "stack.tif")
    kw = {"pages": "1-6", "samples": 2, "seed": 5, "slice_noise": "independent"}
    one = run(ckpts["ddpm"], stack, tmp_path / "one.tif", report=tmp_path / "one.json", **kw)
    parts, reports = enhance_parts(ckpts["ddpm"], stack, tmp_path / "parts", count, **kw)
    sizes = [json.loads(r.read_text())["part"]["slices"] for r in reports]
    assert sum(b - a for a, b in sizes) == 6 and max(b - a for a, b in sizes) <= 6 // count + 1
    # the parts in any order
    rc = main(["gather-enhance", "--parts", *map(str, parts[::-1]),
               "--part-reports", *map(str, reports[::-1]),
               "--output", str(tmp_path / "all.tif"), "--report", str(tmp_path / "all.json")])  # fmt: skip
    assert rc == 0
    for tag in ("", "_mean", "_std"):
        a, b = (tmp_path / f"{n}{tag}.tif" for n in ("one", "all"))
        assert a.read_bytes() == b.read_bytes(), f"{b} differs from one job's"
    gathered = json.loads((tmp_path / "all.json").read_text())
    same_report({**one, "outputs": None}, {**gathered, "outputs": None})
    assert gathered["consistency"] == one["consistency"] and one["consistency"] is not None
    assert gathered["shards"] == count
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_cgan_parts_gather_to_ome_zarr_like_one_job(tmp_path, ckpts) -> None:
    stack = raw_stack(tmp_path / "stack.tif", n=5)
    run(ckpts["cgan"], stack, tmp_path / "one.ome.zarr")
    parts, reports = enhance_parts(ckpts["cgan"], stack, tmp_path / "parts", 2)
    gather_enhance(parts, reports, tmp_path / "all.ome.zarr")
    a, b = (zarr.open_group(str(tmp_path / f"{n}.ome.zarr"), mode="r") for n in ("one", "all"))
    assert np.array_equal(a["0"][...], b["0"][...]) and a["0"].shape == (5, 24, 32)
    # every file of the store, its attributes (zarr.json) included, byte for byte
    one, all_ = (tmp_path / f"{n}.ome.zarr" for n in ("one", "all"))
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(all_) for p in all_.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "zarr.json" and rel.parent == Path("."):
            a_attrs, b_attrs = (json.loads((d / rel).read_text()) for d in (one, all_))
            # the OME name is the output's file name
            for attrs in (a_attrs, b_attrs):
                attrs["attributes"]["ome"]["multiscales"][0].pop("name")
            assert json.dumps(a_attrs) == json.dumps(b_attrs)
        else:
            assert (one / rel).read_bytes() == (all_ / rel).read_bytes(), rel


def test_wrong_parts_are_refused_and_nothing_is_written(tmp_path, ckpts) -> None:
    stack = raw_stack(tmp_path / "stack.tif", n=4)
    parts, reports = enhance_parts(ckpts["cgan"], stack, tmp_path / "p", 3)
    other, other_reports = enhance_parts(ckpts["cgan"], stack, tmp_path / "q", 3, seed=1, tile=16)
    out = tmp_path / "out.tif"
    damaged = []
    for i, change in enumerate(({"output_diffs": "x"}, {"shard": [1]}, {"input_diff_before": 1.0})):
        rec = json.loads(reports[0].read_text())
        rec["part"].update(change)
        damaged.append(tmp_path / f"damaged{i}.json")
        damaged[-1].write_text(json.dumps(rec))
    cases = [
        *[([parts[0]], [d], "part report is damaged") for d in damaged],
        (parts[:2], reports[:2], r"part 1 of 3, but 2 part\(s\) were given"),
        ([parts[0], parts[0], parts[2]], [reports[0], reports[0], reports[2]], "missing"),
        ([other[0], *parts[1:]], [other_reports[0], *reports[1:]], "another run"),
        (parts, [reports[1], reports[0], reports[2]], "provenance its report"),
        (parts, [*reports[:2], stack], "not the report"),
    ]
    for given, reps, message in cases:
        with pytest.raises(EnhanceError, match=message):
            gather_enhance(given, reps, out)
        assert not out.exists() and not list(tmp_path.glob(".out*"))
    shutil.copy(parts[0], parts[1])  # a part replaced by another
    with pytest.raises(EnhanceError, match="provenance its report"):
        gather_enhance(parts, reports, out)
    # a part whose pixel data is damaged after its description
    part = enhance_parts(ckpts["cgan"], stack, tmp_path / "r", 1)
    data = bytearray(part[0][0].read_bytes())
    data[-200:-100] = bytes(100)
    part[0][0].write_bytes(bytes(data))
    with pytest.raises(EnhanceError, match=r"1-of-1.tif: cannot read slice \d"):
        gather_enhance(*part, out)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_bad_shard_requests_are_refused_before_any_work(tmp_path, ckpts) -> None:
    stack = raw_stack(tmp_path / "stack.tif", n=2)
    tifffile.imwrite(tmp_path / "slice.tif", smooth_image(24, 32))
    out, rep = tmp_path / "o.tif", tmp_path / "o.json"
    cases = [
        (stack, out, rep, (3, 3), "fewer than the 3 shards"),
        (tmp_path / "slice.tif", out, rep, (1, 2), "this is one image"),
        (stack, tmp_path / "o.ome.zarr", rep, (1, 2), "written as TIFF"),
        (stack, out, None, (1, 2), "needs --report"),
    ]
    for inp, o, r, shard, message in cases:
        with pytest.raises(EnhanceError, match=message):
            run(ckpts["cgan"], inp, o, report=r, shard=shard)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slice.tif", "stack.tif"]
