"""Never lose or silently corrupt data: output paths rocksr did not write are refused untouched,
damaged stores are named by array and tile range, and a builder dies with its job's shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_data import pid_alive, smooth_image
from test_predict import make_dataset, one_torch_thread  # noqa: F401 (autouse fixture)

import rocksr.data.predstore as predstore_mod
from rocksr.cli import main
from rocksr.data.tilestore import StoreError, open_tiles
from rocksr.files import write_image

TILING = {"size": 48, "stride": 24, "angles": [0, 30]}


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    mct = smooth_image(200, 180, seed=0)
    pm, ps = tmp_path / "m.tif", tmp_path / "s.tif"
    write_image(pm, mct)
    write_image(ps, (255 - mct).astype(np.uint8))
    return pm, ps


def build_cli(capsys, pair, out_store, out_manifest, shard_tiles=8) -> tuple[int, str]:
    pm, ps = pair
    return run_cli(
        capsys,
        "build-dataset",
        "--samples",
        '["s"]',
        "--mct",
        pm,
        "--sem",
        ps,
        "--tiling",
        json.dumps(TILING),
        "--store-params",
        json.dumps({"shard_tiles": shard_tiles}),
        "--out-store",
        out_store,
        "--out-manifest",
        out_manifest,
        "--no-progress",
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- case 1
def test_build_dataset_refuses_a_folder_of_user_files(tmp_path, capsys, pair):
    user = tmp_path / "mydata"
    (user / "sub").mkdir(parents=True)
    (user / "notes.txt").write_text("my notes")
    (user / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(user)
    rc, err = build_cli(capsys, pair, user, tmp_path / "m.csv")
    assert rc == 2
    assert f"{user}: is a folder that is not a Zarr store written by rocksr" in err
    assert "refusing to replace it" in err and len(err.strip().splitlines()) == 1
    assert snapshot(user) == before  # untouched
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / ".mydata.partial").exists()


def test_build_dataset_refuses_a_file_and_a_foreign_zarr(tmp_path, capsys, pair):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    rc, err = build_cli(capsys, pair, afile, tmp_path / "m.csv")
    assert rc == 2 and f"{afile}: is a file, not a rocksr Zarr store" in err
    assert "Traceback" not in err and afile.read_text() == "keep me"
    import zarr

    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("x", shape=(2,), dtype="uint8")[:] = 1
    before = snapshot(foreign)
    rc, err = build_cli(capsys, pair, foreign, tmp_path / "m.csv")
    assert rc == 2 and "not written by rocksr" in err and snapshot(foreign) == before


def test_rocksr_store_with_an_added_user_file_is_not_replaced(tmp_path, capsys, pair):
    out = tmp_path / "tiles.zarr"
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0  # its own store: replaced
    open_tiles(out)
    (out / "thesis.tex").write_text("\\documentclass{article}")
    rc, err = build_cli(capsys, pair, out, tmp_path / "m.csv")
    assert rc == 2 and "holds files rocksr did not write (thesis.tex)" in err
    assert (out / "thesis.tex").exists()


def test_snakemake_timestamp_in_a_store_is_neither_damage_nor_foreign(tmp_path, capsys, pair):
    """Snakemake touches .snakemake_timestamp in every directory() output after the job: the
    store still opens, verifies, and may be rebuilt in place."""
    store, manifest = tmp_path / "tiles.zarr", tmp_path / "manifest.csv"
    assert build_cli(capsys, pair, store, manifest)[0] == 0
    (store / ".snakemake_timestamp").touch()
    open_tiles(store)
    assert run_cli(capsys, "verify", store)[0] == 0
    # a manifest that lists the marker (recorded while it was there) does not miss it later
    doc = json.loads((store / "rocksr-digests.json").read_text())
    doc["files"][".snakemake_timestamp"] = {"size": 0, "sha256": "0" * 64}
    (store / "rocksr-digests.json").write_text(json.dumps(doc))
    (store / ".snakemake_timestamp").unlink()
    open_tiles(store)
    assert build_cli(capsys, pair, store, manifest)[0] == 0


def test_baseline_out_refuses_a_folder_with_a_thesis(tmp_path, capsys):
    store, _, splits = make_dataset(tmp_path)
    res = tmp_path / "myresults"
    res.mkdir()
    (res / "thesis.tex").write_text("chapter 1")
    rc, err = run_cli(
        capsys, "baseline", "--name", "identity", "--store", store, "--splits", splits, "--out", res
    )
    assert (
        rc == 2 and f"{res}: is a folder" in err and (res / "thesis.tex").read_text() == "chapter 1"
    )
    assert sorted(os.listdir(res)) == ["thesis.tex"]
    # and a file output that is a folder is refused too (the LUT record)
    lut_dir = tmp_path / "lut.json"
    lut_dir.mkdir()
    rc, err = run_cli(
        capsys,
        "baseline",
        "--name",
        "histmatch",
        "--store",
        store,
        "--splits",
        splits,
        "--out",
        tmp_path / "h.zarr",
        "--lut",
        lut_dir,
    )
    assert rc == 2 and f"{lut_dir}: is a folder" in err and not (tmp_path / "h.zarr").exists()


# --------------------------------------------------------------------------- case 2
def test_missing_and_truncated_shards_are_named(tmp_path, capsys, pair):
    out = tmp_path / "tiles.zarr"
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0
    rc, text = main(["verify", str(out)]), capsys.readouterr().out
    assert rc == 0 and "OK" in text
    shard = out / "mct" / "c" / "2" / "0" / "0"
    size = shard.stat().st_size
    with open(shard, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(
        StoreError,
        match=r"tiles\.zarr: damaged tile store: array 'mct', data "
        r"file c/2/0/0 \(tiles 16-23\) has \d+ bytes, \d+ were written",
    ):
        open_tiles(out)
    shard.unlink()
    with pytest.raises(
        StoreError,
        match=r"array 'mct', data file c/2/0/0 \(tiles 16-23\) is "
        "missing.*rebuild it",
    ):
        open_tiles(out)
    rc, err = run_cli(capsys, "verify", out)
    assert rc == 2 and "c/2/0/0 (tiles 16-23) is missing" in err


def test_same_size_corruption_is_found_by_verify(tmp_path, capsys, pair):
    out = tmp_path / "tiles.zarr"
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0
    shard = out / "sem" / "c" / "1" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF
    shard.write_bytes(bytes(data))
    open_tiles(out)  # the cheap check on open sees sizes only
    rc, err = run_cli(capsys, "verify", out)
    assert (
        rc == 2
        and "array 'sem', data file c/1/0/0 (tiles 8-15) does not match its recorded SHA-256" in err
    )


def test_store_without_manifest_says_how_to_proceed(tmp_path, capsys, pair):
    out = tmp_path / "tiles.zarr"
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0
    (out / "rocksr-digests.json").unlink()  # as written by an older rocksr
    with pytest.raises(StoreError, match="older rocksr.*rocksr verify --write-manifest"):
        open_tiles(out)
    rc, text = main(["verify", "--write-manifest", str(out)]), capsys.readouterr().out
    assert rc == 0 and "digest manifest recorded" in text
    open_tiles(out)
    # an old store with a missing shard cannot be vouched for
    (out / "rocksr-digests.json").unlink()
    (out / "sem" / "c" / "3" / "0" / "0").unlink()
    rc, err = run_cli(capsys, "verify", "--write-manifest", out)
    assert rc == 2 and "array 'sem', data file c/3/0/0 (tiles 24-31) is missing" in err
    assert not (out / "rocksr-digests.json").exists()


def test_prediction_store_damage_is_named(tmp_path, capsys):
    store, _, splits = make_dataset(tmp_path)
    out = tmp_path / "identity.zarr"
    assert (
        run_cli(
            capsys,
            "baseline",
            "--name",
            "identity",
            "--store",
            store,
            "--splits",
            splits,
            "--out",
            out,
        )[0]
        == 0
    )
    predstore_mod.open_predictions(out)
    victim = sorted((out / "pred" / "c").iterdir())[1] / "0" / "0"
    victim.unlink()
    with pytest.raises(
        predstore_mod.PredictionStoreError,
        match=r"identity\.zarr: damaged prediction store: "
        r"array 'pred', data file c/1/0/0 \(rows 1, tile_ids \d+-\d+\) is missing",
    ):
        predstore_mod.open_predictions(out)


# --------------------------------------------------------------------------- case 5
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG)")
def test_builder_dies_with_its_shell(tmp_path, pair):
    """Killing only the job's shell (as a scheduler or Snakemake may) must not leave an orphan
    builder that publishes a complete store after the job has failed."""
    pm, ps = pair
    out, pidfile = tmp_path / "tiles.zarr", tmp_path / "builder.pid"
    code = textwrap.dedent(f"""
        import os, sys, time
        import rocksr.data.tilestore as tilestore_mod
        real = tilestore_mod._render_block
        def slow(*a, **k):
            time.sleep(0.3)
            return real(*a, **k)
        tilestore_mod._render_block = slow
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        from rocksr.cli import main
        sys.argv = ["rocksr", "build-dataset", "--samples", '["s"]', "--mct", {str(pm)!r},
                    "--sem", {str(ps)!r}, "--tiling", '{json.dumps(TILING)}',
                    "--store-params", '{{"shard_tiles": 2}}', "--workers", "1",
                    "--out-store", {str(out)!r}, "--out-manifest", {str(tmp_path / "m.csv")!r},
                    "--no-progress"]
        sys.exit(main())
        """)
    script = tmp_path / "builder.py"
    script.write_text(code)
    # `; true` keeps bash from exec-ing python: the builder is the shell's child, as in a job
    # ROCKSR_DIE_WITH_PARENT=1 is what the Snakefile sets for every job
    shell = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} {script} 2>{tmp_path}/err; true"],
        env={**os.environ, "ROCKSR_DIE_WITH_PARENT": "1"},
    )
    deadline = time.time() + 60
    while not (tmp_path / ".tiles.zarr.partial" / "mct").exists() and time.time() < deadline:
        time.sleep(0.05)
    builder = int(pidfile.read_text())
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait(timeout=10)
    deadline = time.time() + 20
    while pid_alive(builder) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(builder), "the builder outlived its shell"
    time.sleep(1.0)
    assert not out.exists() and not (tmp_path / "m.csv").exists()
    assert not (tmp_path / ".tiles.zarr.partial").exists()  # SIGTERM cleaned up the partial


def test_a_stale_partial_folder_of_an_interrupted_build_is_cleared(tmp_path, capsys, pair):
    """An interrupted build may leave .<name>.partial without zarr.json or with a half-written
    manifest: the retry clears it (it is rocksr's own scratch folder) and builds."""
    store = tmp_path / "tiles.zarr"
    partial = tmp_path / ".tiles.zarr.partial"
    (partial / "mct" / "c").mkdir(parents=True)
    (partial / ".rocksr-digests.json.partial").write_text("{")
    assert build_cli(capsys, pair, store, tmp_path / "m.csv")[0] == 0
    open_tiles(store)
    assert not partial.exists()


def test_a_partial_store_is_removed_after_zarrs_writes_in_flight(tmp_path):
    """A SIGTERM that cuts the main thread's wait on a zarr call leaves the write running on
    zarr's event loop; the cleanup must wait for it, or the write recreates the removed folder."""
    import asyncio

    import zarr
    from zarr.core import sync as zarr_sync

    from rocksr.data.zarr_io import remove_store_tree

    partial = tmp_path / ".tiles.zarr.partial"
    zarr.open_group(str(partial), mode="w", zarr_format=3)  # starts zarr's loop

    async def late_write() -> None:
        await asyncio.sleep(0.5)
        (partial / "sem").mkdir(parents=True, exist_ok=True)
        (partial / "sem" / "zarr.json").write_text("{}")

    in_flight = asyncio.run_coroutine_threadsafe(late_write(), zarr_sync.loop[0])
    remove_store_tree(partial)
    assert in_flight.done()
    assert not partial.exists()
