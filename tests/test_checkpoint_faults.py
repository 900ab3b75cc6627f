"""Broken checkpoints are never resumed from or published: every checkpoint carries a digest,
a truncated or altered `last`/`best` in the state folder is set aside (named in the log) and
training falls back to the other one or starts over."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers_train import (  # noqa: F401 (single_thread is an autouse fixture)
    cgan_params,
    ddpm_params,
    make_store,
    single_thread,
    train_paths,
)

from rocksr.checkpoints import CorruptCheckpointError, load_checkpoint, publish_checkpoint
from rocksr.cli import main
from rocksr.stages.train import train


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("tiles"))


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def params(kind: str) -> dict:
    return cgan_params() if kind == "cgan" else ddpm_params()


def run(kind, tiles, paths) -> None:
    store, splits = tiles
    train(kind, store, splits, **paths, params=params(kind), seed=0, device="cpu")


@pytest.mark.parametrize("kind", ["cgan", "ddpm"])
def test_truncated_state_checkpoints_are_set_aside(tmp_path, tiles, kind, caplog):
    paths = train_paths(tmp_path)
    state = paths["state_dir"]
    run(kind, tiles, paths)
    assert (
        load_checkpoint(state / "best.pt")["best_step"]
        == load_checkpoint(paths["best_ckpt"])["best_step"]
    )

    # a truncated best.pt: set aside, never published; the last state is published instead
    truncate(state / "best.pt")
    paths["best_ckpt"].unlink()  # what Snakemake does before re-running the job
    with caplog.at_level(logging.WARNING, logger="rocksr.training"):
        run(kind, tiles, paths)
    assert f"{state / 'best.pt'} is broken" in caplog.text
    assert f"set aside as {state / 'best.pt.broken-1'}" in caplog.text
    assert (state / "best.pt.broken-1").exists()
    published = load_checkpoint(paths["best_ckpt"])  # verified: complete and intact
    assert published["step"] == load_checkpoint(state / "last.pt")["step"] == 8

    # a truncated last.pt: set aside, training resumes from best.pt
    caplog.clear()
    truncate(state / "last.pt")
    with caplog.at_level(logging.WARNING, logger="rocksr.training"):
        run(kind, tiles, paths)
    assert "last.pt is broken (" in caplog.text and "truncated" in caplog.text
    assert f"resuming from {state / 'best.pt'}" in caplog.text
    assert (state / "last.pt.broken-1").exists()
    assert load_checkpoint(state / "last.pt")["step"] == 8
    load_checkpoint(paths["best_ckpt"])

    # both broken: both set aside, training starts over
    caplog.clear()
    truncate(state / "last.pt")
    truncate(state / "best.pt", 0.9)
    with caplog.at_level(logging.WARNING, logger="rocksr.training"):
        run(kind, tiles, paths)
    assert (state / "last.pt.broken-2").exists() and (state / "best.pt.broken-2").exists()
    assert "resumed from" not in caplog.text
    history = load_checkpoint(state / "last.pt")["history"]
    assert history[0]["step"] <= 2  # a fresh history: started over
    load_checkpoint(paths["best_ckpt"])


def test_altered_checkpoint_fails_its_digest(tmp_path, tiles):
    paths = train_paths(tmp_path)
    run("cgan", tiles, paths)
    raw = torch.load(paths["best_ckpt"], weights_only=True)
    assert len(raw["digest"]) == 64
    raw["models"]["G"][next(iter(raw["models"]["G"]))].add_(1.0)  # same size, other content
    torch.save(raw, paths["best_ckpt"])
    with pytest.raises(CorruptCheckpointError, match="does not match its digest"):
        load_checkpoint(paths["best_ckpt"])
    # publishing refuses a broken source and leaves the destination as it was
    dst = tmp_path / "published.pt"
    dst.write_bytes(b"previous")
    with pytest.raises(CorruptCheckpointError):
        publish_checkpoint(paths["best_ckpt"], dst)
    assert dst.read_bytes() == b"previous"


def test_truncated_published_model_says_what_to_do(tmp_path, tiles, capsys):
    paths = train_paths(tmp_path)
    run("cgan", tiles, paths)
    truncate(paths["best_ckpt"])
    capsys.readouterr()
    store, splits = tiles
    out = tmp_path / "pred.zarr"
    rc = main(
        [
            "predict",
            "--checkpoint",
            str(paths["best_ckpt"]),
            "--store",
            str(store),
            "--splits",
            str(splits),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and f"{paths['best_ckpt']}: unreadable or truncated checkpoint" in err
    assert "delete it and re-run the stage that wrote it" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
