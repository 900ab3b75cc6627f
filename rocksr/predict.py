"""Test-split prediction: run a checkpoint (cGAN or DDPM) on every test tile -> Zarr v3 store.

Prediction store layout (also written by :mod:`rocksr.baselines`):

* array ``pred``: uint8 ``(n_test, S, S)``, chunks ``(1, S, S)``, row ``i`` is tile
  ``attrs["tile_ids"][i]``; the test tiles are in ascending ``tile_id`` order, i.e. manifest order;
* array ``tile_ids``: int64 ``(n_test,)``, the same ids as the attribute;
* attrs: ``tile_ids, model, kind ("cgan" | "ddpm" | "baseline"), sampler, steps, seed,
  batch_size, checkpoint, checkpoint_sha256, dataset, tile_size, split, complete``.

The store is written under ``.<name>.partial`` next to the target and renamed into place after
``attrs["complete"] = True``; :func:`open_predictions` refuses a store without it, so an interrupted
run leaves nothing a later stage accepts.

Value mapping: uint8 ``u`` -> model input ``u / 127.5 - 1`` (same as :func:`rocksr.data.to_unit_range`);
model output ``y`` in [-1, 1] -> ``round((y + 1) * 127.5)`` clipped to 0..255.

Reproducibility: each batch ``b`` gets its own ``torch.Generator`` seeded with
``SeedSequence([seed, b])`` (:func:`batch_generator`), so a fixed ``(seed, batch_size)`` gives
bit-identical DDPM samples on the same device, and a run can be resumed or split by batch.  The
DDPM sampler draws one noise tensor for the whole batch, so samples *do* depend on ``batch_size``
(per-tile independence would need per-sample generators inside ``rocksr.diffusion.sample``).
cGAN predictions do not depend on the seed at all (the generator is deterministic in eval mode).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rocksr.errors import RocksrError

__all__ = [
    "PredictionStoreError",
    "split_tile_ids",
    "read_tiles",
    "iter_tiles",
    "to_model",
    "from_model",
    "batch_generator",
    "resolve_device",
    "write_prediction_store",
    "open_predictions",
    "make_predictor",
    "predict",
]


class PredictionStoreError(RocksrError, RuntimeError):
    """A prediction store is missing, incomplete, or does not match the test split."""


# ---------------------------------------------------------------- dataset / split access


def split_tile_ids(splits: str | os.PathLike | pd.DataFrame, split: str = "test") -> np.ndarray:
    """Ascending tile_ids of ``split`` from a splits CSV/DataFrame (columns tile_id, split)."""
    if not isinstance(splits, pd.DataFrame) and not os.path.isfile(splits):
        raise ValueError(f"{splits}: split table does not exist")
    df = pd.read_csv(splits) if not isinstance(splits, pd.DataFrame) else splits
    missing = {"tile_id", "split"} - set(df.columns)
    if missing:
        raise ValueError(f"splits table lacks columns {sorted(missing)}")
    ids = df.loc[df["split"] == split, "tile_id"].to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"splits table lists a tile_id twice in split {split!r}")
    if ids.size == 0:
        raise ValueError(f"splits table has no {split!r} tiles")
    return np.sort(ids)


def _open_dataset(store: str | os.PathLike):
    from rocksr.store import open_tiles

    return open_tiles(store)


def read_tiles(group: Any, array: str, ids: np.ndarray) -> np.ndarray:
    """uint8 (len(ids), S, S) from ``group[array]`` at rows ``ids`` (any order)."""
    ids = np.asarray(ids, dtype=np.int64)
    arr = group[array]
    if ids.size and (ids.min() < 0 or ids.max() >= arr.shape[0]):
        raise ValueError(f"tile ids outside 0..{arr.shape[0] - 1} for array {array!r}")
    if ids.size and np.all(np.diff(ids) == 1):  # contiguous: one slice read
        return np.asarray(arr[int(ids[0]) : int(ids[-1]) + 1])
    return np.asarray(arr.get_orthogonal_selection((ids, slice(None), slice(None))))


def iter_tiles(
    group: Any, array: str, ids: np.ndarray, batch_size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(batch_index, ids_of_batch, uint8 tiles)`` over ``ids`` in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for b, start in enumerate(range(0, len(ids), batch_size)):
        sel = ids[start : start + batch_size]
        yield b, sel, read_tiles(group, array, sel)


# ---------------------------------------------------------------- value mapping / seeding


def to_model(tiles: np.ndarray, device: Any = "cpu") -> Any:
    """uint8 (B,S,S) -> float32 tensor (B,1,S,S) in [-1, 1] on ``device``."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)).div_(127.5).sub_(1.0)
    return t[:, None].to(device)


def from_model(x: Any) -> np.ndarray:
    """Tensor (B,1,S,S) in [-1, 1] -> uint8 (B,S,S): round((x + 1) * 127.5), clipped."""
    a = x.detach().float().cpu().numpy()[:, 0]
    return np.clip(np.rint((a + 1.0) * 127.5), 0, 255).astype(np.uint8)


def batch_generator(seed: int, batch_index: int, device: Any = "cpu") -> Any:
    """A torch.Generator on ``device`` seeded from ``SeedSequence([seed, batch_index])``."""
    import torch

    state = np.random.SeedSequence([int(seed), int(batch_index)]).generate_state(2, np.uint32)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; anything else is returned unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- prediction stores


def write_prediction_store(
    out_zarr: str | os.PathLike,
    tile_ids: np.ndarray,
    tile_size: int,
    batches: Iterator[tuple[np.ndarray, np.ndarray]],
    attrs: dict,
) -> None:
    """Write ``(ids, uint8 (b,S,S))`` batches (in ``tile_ids`` order) to a new prediction store.

    Written at ``.<name>.partial`` and renamed into place once every row and the attributes,
    ``complete`` last, are written; on any error the partial store is removed.
    """
    from rocksr.store import building_group

    tile_ids = np.asarray(tile_ids, dtype=np.int64)
    n = len(tile_ids)
    with building_group(out_zarr) as group:
        pred = group.create_array(
            "pred", shape=(n, tile_size, tile_size), dtype="uint8",
            chunks=(1, tile_size, tile_size), fill_value=0, dimension_names=("tile", "y", "x"),
        )
        ids_arr = group.create_array("tile_ids", shape=(n,), dtype="int64", chunks=(max(n, 1),))
        ids_arr[:] = tile_ids
        pos = 0
        for ids, tiles in batches:
            ids = np.asarray(ids, dtype=np.int64)
            if not np.array_equal(ids, tile_ids[pos : pos + len(ids)]):
                raise PredictionStoreError("prediction batches arrive out of tile order")
            if tiles.dtype != np.uint8 or tiles.shape != (len(ids), tile_size, tile_size):
                raise PredictionStoreError(
                    f"prediction batch has dtype {tiles.dtype} shape {tiles.shape}; "
                    f"expected uint8 {(len(ids), tile_size, tile_size)}"
                )
            pred[pos : pos + len(ids)] = tiles
            pos += len(ids)
        if pos != n:
            raise PredictionStoreError(f"wrote {pos} of {n} predictions")
        group.attrs.update({**attrs, "tile_ids": [int(i) for i in tile_ids],
                            "tile_size": int(tile_size), "n_tiles": n})


def open_predictions(
    path: str | os.PathLike, expect_tile_ids: np.ndarray | None = None
) -> tuple[Any, dict]:
    """(``pred`` zarr array, attrs) of a finished prediction store; refuses partial stores and,
    when ``expect_tile_ids`` is given, stores whose tiles/order differ from it."""
    import zarr

    p = Path(path)
    if not p.exists():
        raise PredictionStoreError(f"{p}: prediction store does not exist")
    group = zarr.open_group(str(p), mode="r")
    attrs = dict(group.attrs)
    if not attrs.get("complete", False) or "pred" not in group:
        raise PredictionStoreError(f"{p}: incomplete prediction store (interrupted run?)")
    ids = np.asarray(attrs.get("tile_ids", []), dtype=np.int64)
    pred = group["pred"]
    if pred.shape[0] != len(ids):
        raise PredictionStoreError(f"{p}: {pred.shape[0]} predictions for {len(ids)} tile_ids")
    if expect_tile_ids is not None and not np.array_equal(ids, np.asarray(expect_tile_ids)):
        raise PredictionStoreError(
            f"{p}: predicted tiles differ from the test split ({len(ids)} vs "
            f"{len(expect_tile_ids)} tiles, or a different order); re-run prediction"
        )
    return pred, attrs


# ---------------------------------------------------------------- model prediction


def _file_sha256(path: str | os.PathLike) -> str:
    from rocksr.io import sha256_file

    return sha256_file(path)


def make_predictor(
    kind: str,
    model: Any,
    cfg: dict,
    sampler: str = "ddim",
    steps: int | None = None,
) -> Callable[[Any, Any], Any]:
    """``f(mct (B,1,S,S) in [-1,1], generator) -> (B,1,S,S) in [-1,1]`` for a loaded model."""
    import torch

    if kind == "cgan":

        @torch.no_grad()
        def run_cgan(mct: Any, generator: Any) -> Any:
            return model(mct).clamp(-1.0, 1.0)

        return run_cgan
    if kind == "ddpm":
        from rocksr.diffusion import sample

        schedule = cfg.get("schedule") or (cfg.get("ddpm") or {}).get("schedule") or {}

        def run_ddpm(mct: Any, generator: Any) -> Any:
            return sample(model, mct, schedule, sampler=sampler, steps=steps, generator=generator)

        return run_ddpm
    raise ValueError(f"unknown model kind {kind!r} (cgan | ddpm)")


def predict(
    ckpt: str | os.PathLike,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_zarr: str | os.PathLike,
    sampler: str = "ddim",
    steps: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
    *,
    split: str = "test",
    progress: bool = False,
) -> None:
    """Predict every ``split`` tile with the checkpoint; write a prediction store at ``out_zarr``.

    ``sampler``/``steps`` apply to a DDPM checkpoint (ancestral requires steps None or T) and
    are recorded but unused for a cGAN.  See the module docstring for seeding and layout.
    """
    import torch

    from rocksr.checkpoint import load_for_inference

    dev = resolve_device(device)
    kind, model, cfg = load_for_inference(ckpt, device=dev)
    group = _open_dataset(store)
    ids = split_tile_ids(splits, split)
    size = int(group["mct"].shape[-1])
    run = make_predictor(kind, model, cfg, sampler=sampler, steps=steps)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from tqdm import tqdm

        n_batches = (len(ids) + batch_size - 1) // batch_size
        it = iter_tiles(group, "mct", ids, batch_size)
        for b, sel, tiles in tqdm(it, total=n_batches, disable=not progress, desc="predict"):
            with torch.inference_mode():
                y = run(to_model(tiles, dev), batch_generator(seed, b, dev))
            yield sel, from_model(y)

    attrs = {
        "model": kind,
        "kind": kind,
        "sampler": sampler if kind == "ddpm" else None,
        "steps": (None if steps is None else int(steps)) if kind == "ddpm" else None,
        "seed": int(seed),
        "batch_size": int(batch_size),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": _file_sha256(ckpt),
        "dataset": str(store),
        "split": split,
        "device": dev,
    }
    write_prediction_store(out_zarr, ids, size, batches(), attrs)
