"""`rocksr verify` as a hostile user meets it: a store without its digest manifest is certified
only if it decodes, and paths that are not the workflow's stores get a one-line message that says
what they are (never a traceback, never "written by an older rocksr" for the wrong reason)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import test_safe_outputs
import tifffile
from helpers_data import smooth_image
from test_enhance import make_checkpoint
from test_predict import make_dataset, one_torch_thread  # noqa: F401 (autouse fixture)
from test_safe_outputs import build_cli, run_cli

from rocksr.cli import main
from rocksr.data.tilestore import StoreError, open_tiles
from rocksr.files import write_image
from rocksr.outputs import DIGESTS_FILE

pair = test_safe_outputs.pair  # the fixture: a micro-CT / SEM image pair on disk


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def flip_index_bit(chunk: Path) -> None:
    """Flip a bit near the end of a data file: a shard's checksummed index, or the tail of a
    compressed chunk; either way the file no longer decodes."""
    data = bytearray(chunk.read_bytes())
    data[-5] ^= 0x10
    chunk.write_bytes(bytes(data))


def flip_header_bit(chunk: Path) -> None:
    """Flip a bit in the codec's frame header at the start of a data file."""
    data = bytearray(chunk.read_bytes())
    data[0] ^= 0x10
    chunk.write_bytes(bytes(data))


def refused_then_still_damaged(capsys, store: Path, where: str) -> None:
    """`verify --write-manifest` refuses (naming ``where``) and records nothing; `verify` then
    still names the damage and does not recommend --write-manifest."""
    rc, err = run_cli(capsys, "verify", "--write-manifest", store)
    line = one_line(err)
    assert rc == 2 and f"{where} cannot be decoded" in line, line
    assert "refusing to record a digest manifest" in line and "rebuild it" in line
    assert not (store / DIGESTS_FILE).exists()
    rc, err = run_cli(capsys, "verify", store)
    line = one_line(err)
    assert rc == 2 and "damaged" in line and f"{where} cannot be decoded" in line, line
    assert "--write-manifest" not in line and "rebuild it" in line
    assert not (store / DIGESTS_FILE).exists()


def test_write_manifest_refuses_a_tile_store_that_does_not_decode(tmp_path, capsys, pair):
    out = tmp_path / "tiles.zarr"
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0
    (out / DIGESTS_FILE).unlink()
    flip_index_bit(out / "sem" / "c" / "1" / "0" / "0")
    refused_then_still_damaged(capsys, out, "array 'sem', data file c/1/0/0 (tiles 8-15)")
    # a missing shard is named too, and nothing is recorded
    (out / "sem" / "c" / "1" / "0" / "0").unlink()
    rc, err = run_cli(capsys, "verify", "--write-manifest", out)
    assert rc == 2 and "array 'sem', data file c/1/0/0 (tiles 8-15) is missing" in one_line(err)
    assert not (out / DIGESTS_FILE).exists()


def test_write_manifest_refuses_a_prediction_store_that_does_not_decode(tmp_path, capsys):
    store, _, splits = make_dataset(tmp_path)
    out = tmp_path / "identity.zarr"
    argv = ["baseline", "--name", "identity", "--store", store, "--splits", splits, "--out", out]
    assert run_cli(capsys, *argv)[0] == 0
    (out / DIGESTS_FILE).unlink()
    flip_header_bit(out / "pred" / "c" / "2" / "0" / "0")
    refused_then_still_damaged(
        capsys, out, "array 'pred', data file c/2/0/0 (rows 2, tile_ids 11-11)"
    )


def test_a_missing_manifest_is_not_a_reason_to_vouch_for_the_store(tmp_path, capsys, pair):
    out = tmp_path / "tiles.zarr"
    assert build_cli(capsys, pair, out, tmp_path / "m.csv")[0] == 0
    (out / DIGESTS_FILE).unlink()
    # on open (no decoding): what is known, the safe path first, --write-manifest with its caveat
    with pytest.raises(StoreError) as info:
        open_tiles(out)
    msg = str(info.value)
    assert "has no digest manifest" in msg and "cannot be proven intact" in msg
    assert msg.index("rebuild it") < msg.index("Only if you know its data are good")
    assert (
        f"rocksr verify --write-manifest {out}" in msg and "checks that every chunk decodes" in msg
    )
    # `verify` decodes it first: intact as far as decoding can tell, still not proven
    rc, err = run_cli(capsys, "verify", out)
    line = one_line(err)
    assert rc == 2 and "every chunk decodes, but decoding does not catch every changed byte" in line
    assert "cannot be proven intact" in line and "rebuild it" in line
    # a user who knows the data are good may record one; it says what it vouches for
    assert main(["verify", "--write-manifest", str(out)]) == 0
    text = capsys.readouterr().out
    assert "every chunk decodes; digest manifest recorded" in text and "as they are now" in text
    assert run_cli(capsys, "verify", out)[0] == 0


@pytest.mark.parametrize("write_manifest", [False, True])
def test_paths_that_are_not_stores_say_what_they_are(tmp_path, capsys, write_manifest):
    flag = ["--write-manifest"] if write_manifest else []
    png = tmp_path / "slice.png"
    write_image(png, np.zeros((8, 8), np.uint8))
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = {
        tmp_path / "nothere.zarr": "no such store (the path does not exist)",
        png: "is a file, not a Zarr store; rocksr verify checks the workflow's Zarr stores",
        folder: "is a folder without zarr.json, not a Zarr store",
    }
    for path, want in cases.items():
        rc, err = run_cli(capsys, "verify", *flag, path)
        line = one_line(err)
        assert rc == 2 and f"{path}: {want}" in line, line
        assert "older rocksr" not in line and "rebuild" not in line
    assert not (folder / DIGESTS_FILE).exists() and not (tmp_path / "nothere.zarr").exists()


def test_an_enhance_ome_zarr_is_told_plainly(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "cgan.pt", "cgan")
    tifffile.imwrite(tmp_path / "in.tif", smooth_image(24, 24))
    out = tmp_path / "o.ome.zarr"
    argv = ["enhance", "--checkpoint", ckpt, "--input", tmp_path / "in.tif", "--output", out]
    assert run_cli(capsys, *argv, "--normalize", "none", "--device", "cpu", "--no-progress")[0] == 0
    for flag in ([], ["--write-manifest"]):
        rc, err = run_cli(capsys, "verify", *flag, out)
        line = one_line(err)
        assert rc == 2 and f"{out}: is an OME-Zarr image written by `rocksr enhance`" in line
        assert "(tiles.zarr, prediction stores), not enhance outputs" in line
        assert "older rocksr" not in line and "incomplete" not in line, line
        assert not (out / DIGESTS_FILE).exists()
