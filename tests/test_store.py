import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr
from helpers_data import smooth_image

import rocksr.data.tilestore as tilestore_mod
from rocksr.data.tilestore import StoreError, open_tiles, read_manifest
from rocksr.data.tiling import extract_view
from rocksr.files import write_image
from rocksr.stages.build_dataset import build_dataset

TILING = {"size": 48, "stride": 24, "angles": [0, 30, 90], "edge_tiles": "unrotated"}


def _pair(tmp_path, name="s", h=200, w=180, seed=0):
    mct = smooth_image(h, w, seed=seed)
    sem = (255 - mct).astype(np.uint8)
    pm, ps = tmp_path / f"{name}_mct.tif", tmp_path / f"{name}_sem.png"
    write_image(pm, mct)
    write_image(ps, sem)
    return (name, str(pm), str(ps)), mct, sem


def test_round_trip_attributes_and_manifest(tmp_path):
    spec, mct, sem = _pair(tmp_path)
    spec2, mct2, sem2 = _pair(tmp_path, "t", 160, 170, seed=1)
    out = tmp_path / "tiles.zarr"
    manifest = build_dataset(
        [spec, spec2], out, tmp_path / "m.csv", TILING, {"shard_tiles": 8}, progress=False
    )
    g = open_tiles(out)
    assert g["mct"].shape == (len(manifest), 48, 48) and g["mct"].dtype == np.uint8
    assert g["mct"].chunks == (1, 48, 48)
    assert g.attrs["tile_size"] == 48 and g.attrs["angles"] == [0.0, 30.0, 90.0]
    assert g.attrs["sources"]["s"]["mct_sha256"] and g.attrs["rocksr_version"]
    assert g.attrs["complete"] is True
    images = {"s": (mct, sem), "t": (mct2, sem2)}
    for row in read_manifest(tmp_path / "m.csv").sample(25, random_state=0).itertuples():
        m, s = images[row.sample]
        np.testing.assert_array_equal(
            g["mct"][row.tile_id], extract_view(m, row.y0, row.x0, 48, row.angle)
        )
        np.testing.assert_array_equal(
            g["sem"][row.tile_id], extract_view(s, row.y0, row.x0, 48, row.angle)
        )
    assert set(manifest["view"]) == {"rotated", "edge_unrotated"}


def test_same_config_twice_gives_identical_arrays(tmp_path):
    spec, _, _ = _pair(tmp_path)
    a = build_dataset(
        [spec], tmp_path / "a.zarr", tmp_path / "a.csv", TILING, {"workers": 2}, progress=False
    )
    b = build_dataset(
        [spec], tmp_path / "b.zarr", tmp_path / "b.csv", TILING, {"workers": 1}, progress=False
    )
    assert a.equals(b)
    ga, gb = open_tiles(tmp_path / "a.zarr"), open_tiles(tmp_path / "b.zarr")
    for k in ("mct", "sem"):
        np.testing.assert_array_equal(ga[k][:], gb[k][:])


def test_failure_mid_build_leaves_no_store(tmp_path, monkeypatch):
    spec, _, _ = _pair(tmp_path)
    calls = {"n": 0}
    real = tilestore_mod._render_block

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(tilestore_mod, "_render_block", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        build_dataset(
            [spec],
            tmp_path / "x.zarr",
            tmp_path / "x.csv",
            TILING,
            {"shard_tiles": 4, "workers": 1},
            progress=False,
        )
    assert not (tmp_path / "x.zarr").exists()
    assert not (tmp_path / ".x.zarr.partial").exists()
    assert not (tmp_path / "x.csv").exists()


def test_killed_build_leaves_nothing_a_later_stage_accepts(tmp_path):
    spec, _, _ = _pair(tmp_path, h=900, w=900)
    out = tmp_path / "k.zarr"
    code = textwrap.dedent(
        f"""
        import time
        import rocksr.data.tilestore as tilestore_mod
        real = tilestore_mod._render_block
        def slow(*a, **k):
            time.sleep(0.2)
            return real(*a, **k)
        tilestore_mod._render_block = slow
        from rocksr.stages.build_dataset import build_dataset
        build_dataset([{spec!r}], {str(out)!r}, {str(tmp_path / "k.csv")!r},
                      {{"size": 48, "stride": 16, "angles": [0, 30]}}, {{"shard_tiles": 8, "workers": 1}},
                      progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    partial = tmp_path / ".k.zarr.partial"
    deadline = time.time() + 60
    while not (partial / "mct").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert partial.exists() and not out.exists() and not (tmp_path / "k.csv").exists()
    with pytest.raises(StoreError, match="incomplete"):
        open_tiles(partial)


def test_store_without_completion_mark_is_refused(tmp_path):
    g = zarr.open_group(str(tmp_path / "y.zarr"), mode="w")
    g.create_array("mct", shape=(1, 4, 4), dtype="uint8")
    g.create_array("sem", shape=(1, 4, 4), dtype="uint8")
    with pytest.raises(StoreError, match="incomplete"):
        open_tiles(tmp_path / "y.zarr")
    with pytest.raises(StoreError, match="does not exist"):
        open_tiles(tmp_path / "nope.zarr")
