"""Sharded prediction: the batches of each shard, and the gather of the shards into one store.

Shards (``rocksr predict --shard i/n``, ``evaluate.shards`` in the workflow): shard ``i`` of ``n``
predicts a contiguous run of *whole* batches (:func:`shard_batches`) with their global batch
indices, so every batch is seeded as in an unsharded run; its store is a prediction store of its
tiles with the extra attribute ``shard`` (``index``, ``count``, ``first_batch``, ``split_tiles``).
:func:`gather_predictions` checks that the ``n`` shards are all there, once each, and agree, and
writes their rows through the same writer, so the gathered store is byte for byte the store one
unsharded job writes.

The names here are re-exported by :mod:`rocksr.data.predstore` (the prediction store itself),
which imports this module: so this module imports that one only inside its functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def check_shard(index: int, count: int) -> None:
    """Refuse a shard ``index/count`` outside ``1 <= index <= count``."""
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: want 1 <= i <= n")


def shard_batches(n_tiles: int, batch_size: int, index: int, count: int) -> tuple[int, int]:
    """Batches ``[first, stop)`` of shard ``index`` (1-based) of ``count``: contiguous whole
    batches of ``batch_size`` tiles over ``n_tiles``, as even as possible (a shard may be empty
    when there are fewer batches than shards)."""
    check_shard(index, count)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_batches = -(-int(n_tiles) // int(batch_size))
    return (index - 1) * n_batches // count, index * n_batches // count


def shard_set_problems(indices: Sequence[int], count: int) -> list[str]:
    """What keeps the shards ``indices`` (1-based) from being each of ``count`` shards exactly
    once: ``shard i/n given twice``, ``missing`` or ``out of range`` (empty: nothing). Every
    gather (prediction stores, sampler study parts) checks its shards with it."""
    idx = list(indices)
    what = [f"shard {i}/{count} given twice" for i in sorted(set(idx)) if idx.count(i) > 1]
    what += [f"shard {i}/{count} missing" for i in range(1, count + 1) if i not in idx]
    what += [f"shard {i}/{count} out of range" for i in idx if not 1 <= i <= count]
    return what


SHARD_ATTR = "shard"
"""The attribute that marks a shard's store (see the module docstring)."""

# attributes the writer (and building_group) sets itself: not carried over by a gather
_WRITER_ATTRS = frozenset(
    {"tile_ids", "tile_size", "n_tiles", "n_samples", "arrays", "complete", SHARD_ATTR}
)


_Shard = tuple[int, Path, dict, dict]  # (index, path, attrs, attrs["shard"])


def _open_shards(shards: Sequence[str | os.PathLike]) -> list[_Shard]:
    """The finished shard stores ``shards`` in shard order, each of the ``n`` exactly once."""
    from rocksr.data.predstore import PredictionStoreError, open_predictions

    parts = []
    for path in shards:
        _, attrs = open_predictions(path)
        info = attrs.get(SHARD_ATTR)
        if not isinstance(info, dict):
            raise PredictionStoreError(f"{path}: not a shard (no {SHARD_ATTR!r} attribute)")
        parts.append((int(info["index"]), Path(path), attrs, info))
    if not parts:
        raise PredictionStoreError("no shards to gather")
    count = int(parts[0][3]["count"])
    if any(int(info["count"]) != count for *_, info in parts):
        raise PredictionStoreError("the shards are of different shard counts")
    what = shard_set_problems([i for i, *_ in parts], count)
    if what:
        raise PredictionStoreError(f"cannot gather {len(parts)} shards: {', '.join(what)}")
    return sorted(parts, key=lambda part: part[0])


def _check_shards(parts: list[_Shard]) -> dict:
    """The attributes the shards share (as the unsharded run records them); raise unless the
    shards agree and each holds the whole batches :func:`shard_batches` gives it."""
    from rocksr.data.predstore import PredictionStoreError
    from rocksr.outputs import STORE_MARK

    def common(attrs: dict) -> dict:
        return {k: v for k, v in attrs.items() if k not in _WRITER_ATTRS and k != STORE_MARK}

    base, first = common(parts[0][2]), parts[0][2]
    batch_size, split_tiles = int(base["batch_size"]), int(parts[0][3]["split_tiles"])
    count = len(parts)
    for i, path, attrs, info in parts:
        own = common(attrs)
        diff = [k for k in sorted(set(base) | set(own)) if own.get(k) != base.get(k)]
        diff += [k for k in ("tile_size", "n_samples", "arrays") if attrs.get(k) != first.get(k)]
        if int(info["split_tiles"]) != split_tiles:
            diff.append("shard.split_tiles")
        if diff:
            raise PredictionStoreError(
                f"{path}: shard {i}/{count} differs from shard 1 in {', '.join(diff)}"
            )
        b0, b1 = shard_batches(split_tiles, batch_size, i, count)
        rows = min(b1 * batch_size, split_tiles) - min(b0 * batch_size, split_tiles)
        if int(info["first_batch"]) != b0 or int(attrs["n_tiles"]) != rows:
            raise PredictionStoreError(
                f"{path}: shard {i}/{count} holds {attrs['n_tiles']} tiles from batch "
                f"{info['first_batch']}, expected {rows} from batch {b0}"
            )
    return base


def gather_predictions(shards: Sequence[str | os.PathLike], out_zarr: str | os.PathLike) -> None:
    """Assemble the shard stores ``shards`` (any order) into the prediction store ``out_zarr``,
    byte for byte the store an unsharded ``predict`` writes. A missing, duplicated, foreign or
    disagreeing shard is a :class:`~rocksr.data.predstore.PredictionStoreError`, raised before
    anything is written."""
    import zarr

    from rocksr.data.predstore import prediction_store
    from rocksr.outputs import check_store_target

    check_store_target(out_zarr)
    parts = _open_shards(shards)
    base = _check_shards(parts)
    first, batch_size = parts[0][2], int(base["batch_size"])
    ids = np.concatenate([np.asarray(a["tile_ids"], dtype=np.int64) for _, _, a, _ in parts])
    arrays = list(first["arrays"])
    with prediction_store(
        out_zarr,
        ids,
        int(first["tile_size"]),
        base,
        n_samples=int(first["n_samples"]),
        uncertainty="mean" in arrays,
    ) as writer:
        for _, path, attrs, _ in parts:
            group = zarr.open_group(str(path), mode="r")
            part_ids = np.asarray(attrs["tile_ids"], dtype=np.int64)
            for start in range(0, len(part_ids), batch_size):
                sel = part_ids[start : start + batch_size]
                for name in arrays:
                    data = np.asarray(group[name][start : start + len(sel)])
                    if name != "samples":
                        writer.write(name, sel, data)
                        continue
                    for k in range(data.shape[1]):
                        writer.write(name, sel, np.ascontiguousarray(data[:, k]), sample=k)
