"""``rocksr enhance`` against hostile arguments, as a user meets it through the CLI: it never
replaces the input, the checkpoint, one of its own outputs or a user's file (unless
``--overwrite``), and every refusal is one line naming the file, before any model work, with
nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr
from PIL import Image
from test_enhance import (  # noqa: F401  (ckpts, one_torch_thread: fixtures)
    STEPS,
    ckpts,
    one_torch_thread,
    smooth_image,
)

from rocksr.cli import main


def cli(capsys, *args: object) -> tuple[int, str]:
    """(exit status, the error line or "") of ``rocksr enhance ARGS``, run in-process."""
    rc = main(["enhance", "--no-progress", "--device", "cpu", "--steps", str(STEPS),
               *map(str, args)])  # fmt: skip
    lines = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert len(lines) <= 1, lines
    return rc, lines[0] if lines else ""


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) and its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def work(tmp_path: Path, ckpts) -> Path:  # noqa: F811 (the imported fixture)
    """A folder with a tiny slice ``in.tif``, its PNG ``a_mean.png`` and both checkpoints."""
    img = smooth_image(32, 32)
    tifffile.imwrite(tmp_path / "in.tif", img)
    Image.fromarray(img).save(tmp_path / "a_mean.png")
    for kind in ("cgan", "ddpm"):
        (tmp_path / f"{kind}.pt").write_bytes(ckpts[kind].read_bytes())
    return tmp_path


def forbid_model(monkeypatch) -> None:
    """Make loading a model fail: a refusal must come before any model work."""
    import rocksr.inference

    def refuse(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(rocksr.inference, "load_for_inference", refuse)


@pytest.fixture
def no_model(monkeypatch) -> None:
    forbid_model(monkeypatch)


def refused(capsys, work: Path, args: list, name: str, words: str) -> str:
    """Run, expect a one-line refusal naming ``name`` with ``words``, and nothing changed."""
    before = snapshot(work)
    rc, msg = cli(capsys, *args)
    assert rc == 2, msg
    assert name in msg and words in msg, msg
    assert snapshot(work) == before
    return msg


def _zarr_chain(work: Path) -> Path:
    g = zarr.open_group(str(work / "chain.ome.zarr"), mode="w", zarr_format=3)
    a = g.create_array("0", shape=(32, 32), dtype="uint8", chunks=(32, 32))
    a[:] = smooth_image(32, 32)
    return work / "chain.ome.zarr"


def test_no_path_enhance_writes_may_be_its_input_checkpoint_or_another_output(
    work, capsys, no_model
) -> None:
    w, cg, dd = work, work / "cgan.pt", work / "ddpm.pt"
    _zarr_chain(w)
    cases = [
        # the DDPM's _mean output would have the input's name
        (["--checkpoint", dd, "--input", w / "a_mean.png", "--output", w / "a.png",
          "--samples", 2], "a_mean.png", "the _mean output would overwrite the input"),
        (["--checkpoint", cg, "--input", w / "in.tif", "--output", w / "o.tif",
          "--report", w / "in.tif"], "in.tif", "the report would overwrite the input"),
        (["--checkpoint", cg, "--input", w / "in.tif", "--output", w / "o.tif",
          "--report", w / "cgan.pt"], "cgan.pt", "the report would overwrite the checkpoint"),
        (["--checkpoint", cg, "--input", w / "in.tif", "--output", w / "x.tif",
          "--report", w / "x.tif"], "x.tif", "the report would overwrite the output"),
        # a Zarr array inside the group the output would replace (and a spelling that differs)
        (["--checkpoint", cg, "--input", w / "chain.ome.zarr" / "0",
          "--output", f"{w}/./chain.ome.zarr"], "chain.ome.zarr",
         "would replace a folder that holds the input"),
        (["--checkpoint", cg, "--input", w / "chain.ome.zarr", "--output", w / "o.tif",
          "--report", w / "chain.ome.zarr" / "r.json"], "r.json",
         "would be written inside the input"),
        (["--checkpoint", cg, "--input", w / "in.tif", "--output", w / "in.tif"], "in.tif",
         "the output would overwrite the input"),
    ]  # fmt: skip
    for args, name, words in cases:
        msg = refused(capsys, w, args, name, words)
        assert "choose another --" in msg


def test_a_users_file_is_refused_unless_overwrite(work, capsys, monkeypatch) -> None:
    w = work
    user = w / "user.tif"
    tifffile.imwrite(user, np.zeros((32, 32), np.uint8), description="my own data")
    notes = w / "notes.json"
    notes.write_text('{"mine": true}')
    zstore = w / "z.ome.zarr"
    zarr.open_group(str(zstore), mode="w", zarr_format=3).attrs["owner"] = "me"
    base = ["--checkpoint", w / "cgan.pt", "--input", w / "in.tif"]
    words = "that rocksr enhance did not write; refusing to replace it (pass --overwrite"
    (w / "rep").mkdir()
    with monkeypatch.context() as m:
        forbid_model(m)
        refused(capsys, w, [*base, "--output", user], "user.tif", words)
        refused(capsys, w, [*base, "--output", w / "o.tif", "--report", notes], "notes.json",
                words)  # fmt: skip
        refused(capsys, w, [*base, "--output", zstore], "z.ome.zarr", words)
        # a folder as the report is refused before any work, even with --overwrite
        refused(capsys, w, [*base, "--output", w / "o.tif", "--report", w / "rep",
                            "--overwrite"], "rep", "is a folder")  # fmt: skip
        refused(capsys, w, [*base, "--output", w / "o.tif", "--report", w / "no" / "r.json"],
                "r.json", "report folder")  # fmt: skip
    # --overwrite replaces them
    rc, msg = cli(capsys, *base, "--output", user, "--report", notes, "--overwrite")
    assert rc == 0, msg
    assert json.loads(tifffile.TiffFile(user).pages[0].description)["rocksr"]["kind"] == "cgan"
    assert json.loads(notes.read_text())["tool"] == "rocksr enhance"
    rc, msg = cli(capsys, *base, "--output", zstore, "--overwrite")
    assert rc == 0, msg
    assert zarr.open_group(str(zstore), mode="r").attrs["rocksr_store"] == "enhance"


@pytest.mark.parametrize(
    ("kind", "output", "extra"),
    [
        ("ddpm", "o.tif", ["--samples", 2]),
        ("cgan", "o.png", []),
        ("cgan", "o.ome.zarr", []),
    ],
)
def test_rerunning_a_command_replaces_what_it_wrote(work, capsys, kind, output, extra) -> None:
    args = ["--checkpoint", work / f"{kind}.pt", "--input", work / "in.tif",
            "--output", work / output, "--report", work / "r.json", *extra]  # fmt: skip
    for _ in range(2):
        rc, msg = cli(capsys, *args)
        assert rc == 0, msg
    report = json.loads((work / "r.json").read_text())
    assert set(report["outputs"]) == ({"pred", "mean", "std"} if extra else {"pred"})
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_bad_device_checkpoint_and_samples_are_one_line_errors(work, capsys, monkeypatch) -> None:
    w = work
    base = ["--input", w / "in.tif", "--output", w / "o.tif"]
    refused(capsys, w, ["--checkpoint", w / "cgan.pt", *base, "--device", "gpu0"],
            "--device gpu0", "not a device name")  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    refused(capsys, w, ["--checkpoint", w / "cgan.pt", *base, "--device", "cuda"],
            "--device cuda", "CUDA is not available")  # fmt: skip
    # a JSON or CSV as the checkpoint: not a rocksr checkpoint, and never "delete it"
    (w / "settings.json").write_text('{"lr": 0.001}')
    (w / "table.csv").write_text("a,b\n1,2\n")
    for name in ("settings.json", "table.csv"):
        msg = refused(capsys, w, ["--checkpoint", w / name, *base], name,
                      "not a rocksr checkpoint")  # fmt: skip
        assert "delete" not in msg
    # a deterministic model cannot give several samples
    refused(capsys, w, ["--checkpoint", w / "cgan.pt", *base, "--samples", 3], "cgan.pt",
            "deterministic")  # fmt: skip


def test_a_stack_to_png_is_refused_in_one_line_with_nothing_written(work, capsys) -> None:
    stack = np.stack([smooth_image(32, 32)] * 2)
    tifffile.imwrite(work / "stack.tif", stack)
    before = snapshot(work)
    rc, err = cli(capsys, "--checkpoint", work / "cgan.pt", "--input", work / "stack.tif",
                  "--output", work / "out.png")  # fmt: skip
    assert rc == 2
    assert f"{work / 'out.png'}: PNG holds one image; write a stack to .tif or .ome.zarr" in err
    assert snapshot(work) == before
