"""Test-split prediction: run a checkpoint (any model kind: cGAN, regression U-Net, DDPM) on every test tile -> Zarr v3 store.

Prediction store layout (also written by :mod:`rocksr.baselines`):

* array ``pred``: uint8 ``(n_test, S, S)``, chunks ``(1, S, S)``, row ``i`` is tile
  ``attrs["tile_ids"][i]``; the test tiles are in ascending ``tile_id`` order, i.e. manifest order.
  For a DDPM this is sample 0 (see "Several samples" below), so it means the same with any K;
* array ``tile_ids``: int64 ``(n_test,)``, the same ids as the attribute;
* DDPM stores only: ``mean`` uint8 ``(n_test, S, S)``, the per-pixel mean of the K samples,
  computed in float on [-1, 1] (the model's output, before quantization) and then mapped to uint8
  like every prediction; ``std`` float16 ``(n_test, S, S)``, the per-pixel *population* standard
  deviation (ddof 0) of the K samples **in SEM grey levels on the 0..255 scale** (float std on
  [-1, 1] times 127.5; 0 when K = 1 or when all samples agree); ``samples`` uint8
  ``(n_test, K, S, S)`` (chunks ``(1, 1, S, S)``), every sample, only when K > 1;
* attrs: ``tile_ids, model, kind ("cgan" | "ddpm" | "baseline"), sampler, steps, seed,
  batch_size, checkpoint, checkpoint_sha256, dataset, tile_size, split, n_samples, arrays,
  complete`` (DDPM: also ``std_units``, ``sample_seeding``; a cGAN asked for K > 1 records
  ``n_samples = 1`` and ``n_samples_requested``).

The store is written under ``.<name>.partial`` next to the target and renamed into place after
``attrs["complete"] = True`` and the digest manifest (:mod:`rocksr.digests`, written last);
:func:`open_predictions` refuses a store without them or whose files differ from the manifest, so
an interrupted run or a damaged store leaves nothing a later stage accepts. An existing target
is replaced only if rocksr wrote it (:mod:`rocksr.outputs`).  ``open_predictions(path, array="mean")`` reads the mean
(for a store with ``n_samples == 1`` and no ``mean`` array, e.g. a cGAN or a baseline, that is
``pred`` itself).

Value mapping: uint8 ``u`` -> model input ``u / 127.5 - 1`` (same as :func:`rocksr.data.to_unit_range`);
model output ``y`` in [-1, 1] -> ``round((y + 1) * 127.5)`` clipped to 0..255.

Reproducibility: each batch ``b`` gets its own ``torch.Generator`` seeded with
``SeedSequence([seed, b])`` (:func:`batch_generator`), so a fixed ``(seed, batch_size)`` gives
bit-identical DDPM samples on the same device, and a run can be resumed or split by batch.  The
DDPM sampler draws one noise tensor for the whole batch, so samples *do* depend on ``batch_size``
(per-tile independence would need per-sample generators inside ``rocksr.diffusion.sample``).
cGAN predictions do not depend on the seed at all (the generator is deterministic in eval mode).

Shards (``rocksr predict --shard i/n``): the whole batches of each shard and the gather of the
shard stores into one store, byte for byte an unsharded run's, are :mod:`rocksr.data.predshards`
(:func:`shard_batches`, :data:`SHARD_ATTR` and :func:`gather_predictions` are re-exported here).

Several samples (``n_samples = K``, DDPM only): sample ``k`` of batch ``b`` is drawn with
:func:`sample_generator` ``(seed, b, k)``, which is :func:`batch_generator` ``(seed, b)`` for
``k = 0`` (so ``pred`` and a K = 1 run are bit-identical to the single-sample prediction with the
same seed and batch size) and a generator seeded from ``SeedSequence([seed, b, k])`` for
``k >= 1``.  Memory: one batch of tiles is sampled K times in turn; only the current sample and
two float64 running moments (Welford) of that batch are held, never all samples of the split.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# sharding lives in rocksr.data.predshards; its public names are importable from here too
from rocksr.data.predshards import SHARD_ATTR as SHARD_ATTR
from rocksr.data.predshards import gather_predictions as gather_predictions
from rocksr.data.predshards import shard_batches as shard_batches
from rocksr.data.splits import split_tile_ids
from rocksr.errors import RocksrError, one_line


class PredictionStoreError(RocksrError, RuntimeError):
    """A prediction store is missing, incomplete, or does not match the test split."""


def read_tiles(group: Any, array: str, ids: np.ndarray) -> np.ndarray:
    """uint8 (len(ids), S, S) from ``group[array]`` at rows ``ids`` (any order)."""
    ids = np.asarray(ids, dtype=np.int64)
    arr = group[array]
    if ids.size and (ids.min() < 0 or ids.max() >= arr.shape[0]):
        raise ValueError(f"tile ids outside 0..{arr.shape[0] - 1} for array {array!r}")
    try:
        if ids.size and np.all(np.diff(ids) == 1):  # contiguous: one slice read
            return np.asarray(arr[int(ids[0]) : int(ids[-1]) + 1])
        return np.asarray(arr.get_orthogonal_selection((ids, slice(None), slice(None))))
    except Exception as exc:  # noqa: BLE001 (codecs raise many types for damaged data)
        where = getattr(getattr(group, "store", None), "root", "store")
        span = f"{ids.min()}-{ids.max()}" if ids.size else "-"
        raise PredictionStoreError(
            f"{where}: array {array!r}, tiles {span} cannot be read ({type(exc).__name__}: "
            f"{exc}); the store is damaged: run `rocksr verify {where}` and rebuild it"
        ) from exc


def iter_tiles(
    group: Any, array: str, ids: np.ndarray, batch_size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(batch_index, ids_of_batch, uint8 tiles)`` over ``ids`` in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for b, start in enumerate(range(0, len(ids), batch_size)):
        sel = ids[start : start + batch_size]
        yield b, sel, read_tiles(group, array, sel)


def grey_histogram(group: Any, array: str, ids: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """256-bin pixel counts (int64) of uint8 ``group[array]`` over the tiles ``ids`` (streamed)."""
    hist = np.zeros(256, dtype=np.int64)
    for _, _, tiles in iter_tiles(group, array, ids, batch_size):
        hist += np.bincount(tiles.ravel(), minlength=256)
    return hist


ARRAYS = ("pred", "mean", "std", "samples")


"""The arrays a prediction store may hold (see the module docstring)."""


_STD_UNITS = (
    "population std (ddof 0) of the K samples per pixel, in SEM grey levels on the "
    "0..255 scale (float16)"
)


_SEEDING = (
    "sample k of batch b: generator batch_generator(seed, b) for k = 0, "
    "SeedSequence([seed, b, k]) for k >= 1"
)


class PredictionStoreWriter:
    """Writes the arrays of one prediction store in tile order (use :func:`prediction_store`).

    ``write(name, ids, data, sample=None)`` appends rows ``ids`` (the next ones in ``tile_ids``
    order) of array ``name``; for ``samples`` give ``sample=k`` and ``(b, S, S)`` data.
    """

    def __init__(
        self,
        group: Any,
        out: Path,
        tile_ids: np.ndarray,
        tile_size: int,
        n_samples: int,
        uncertainty: bool,
    ) -> None:
        self.out = out
        self.tile_ids = tile_ids
        self.tile_size = int(tile_size)
        self.n_samples = int(n_samples)
        n, s = len(tile_ids), self.tile_size
        tile = {"chunks": (1, s, s), "dimension_names": ("tile", "y", "x")}
        self.arrays: dict[str, Any] = {
            "pred": group.create_array(
                "pred", shape=(n, s, s), dtype="uint8", fill_value=0, **tile
            ),
        }
        if uncertainty:
            self.arrays["mean"] = group.create_array(
                "mean", shape=(n, s, s), dtype="uint8", fill_value=0, **tile
            )
            self.arrays["std"] = group.create_array(
                "std", shape=(n, s, s), dtype="float16", fill_value=0.0, **tile
            )
        if self.n_samples > 1:
            self.arrays["samples"] = group.create_array(
                "samples",
                shape=(n, self.n_samples, s, s),
                dtype="uint8",
                fill_value=0,
                chunks=(1, 1, s, s),
                dimension_names=("tile", "sample", "y", "x"),
            )
        self.written: dict[tuple[str, int], int] = {}
        for name in self.arrays:
            for k in range(self.n_samples if name == "samples" else 1):
                self.written[(name, k)] = 0

    def write(
        self, name: str, ids: np.ndarray, data: np.ndarray, sample: int | None = None
    ) -> None:
        """Append rows ``ids`` of array ``name`` (of sample ``sample`` for ``samples``)."""
        key = (name, 0 if sample is None else int(sample))
        if key not in self.written:
            raise PredictionStoreError(
                f"{self.out}: no array {name!r} (sample {sample}) in this store"
            )
        ids = np.asarray(ids, dtype=np.int64)
        pos = self.written[key]
        if not np.array_equal(ids, self.tile_ids[pos : pos + len(ids)]):
            raise PredictionStoreError(f"{self.out}: prediction batches arrive out of tile order")
        want = np.float16 if name == "std" else np.uint8
        shape = (len(ids), self.tile_size, self.tile_size)
        if np.asarray(data).dtype != want or np.shape(data) != shape:
            raise PredictionStoreError(
                f"prediction batch has dtype {np.asarray(data).dtype} shape {np.shape(data)}; "
                f"expected {np.dtype(want)} {shape}"
            )
        if name == "samples":
            self.arrays[name][pos : pos + len(ids), key[1]] = data
        else:
            self.arrays[name][pos : pos + len(ids)] = data
        self.written[key] = pos + len(ids)

    def check_complete(self) -> None:
        """Raise unless every row of every array has been written."""
        n = len(self.tile_ids)
        for (name, k), pos in self.written.items():
            if pos != n:
                what = (
                    "predictions"
                    if name == "pred"
                    else f"rows of {name!r}" + (f" (sample {k})" if name == "samples" else "")
                )
                raise PredictionStoreError(f"wrote {pos} of {n} {what}")


@contextlib.contextmanager
def prediction_store(
    out_zarr: str | os.PathLike,
    tile_ids: np.ndarray,
    tile_size: int,
    attrs: dict,
    *,
    n_samples: int = 1,
    uncertainty: bool = False,
) -> Iterator[PredictionStoreWriter]:
    """A :class:`PredictionStoreWriter` for a new store at ``out_zarr``.

    ``uncertainty``: also create ``mean`` and ``std``; ``n_samples > 1``: also ``samples``.
    Written at ``.<name>.partial`` and renamed into place once every row of every array and the
    attributes, ``complete`` last, are written; on any error the partial store is removed.
    """
    from rocksr.data.tilestore import building_group

    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    tile_ids = np.asarray(tile_ids, dtype=np.int64)
    with building_group(out_zarr) as group:
        ids_arr = group.create_array(
            "tile_ids", shape=(len(tile_ids),), dtype="int64", chunks=(max(len(tile_ids), 1),)
        )
        ids_arr[:] = tile_ids
        writer = PredictionStoreWriter(
            group, Path(out_zarr), tile_ids, tile_size, n_samples, uncertainty
        )
        yield writer
        writer.check_complete()
        group.attrs.update(
            {
                **attrs,
                "tile_ids": [int(i) for i in tile_ids],
                "tile_size": int(tile_size),
                "n_tiles": len(tile_ids),
                "n_samples": int(n_samples),
                "arrays": list(writer.arrays),
            }
        )


def write_prediction_store(
    out_zarr: str | os.PathLike,
    tile_ids: np.ndarray,
    tile_size: int,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    attrs: dict,
) -> None:
    """Write ``(ids, uint8 (b,S,S))`` batches (in ``tile_ids`` order) to a new single-prediction
    store (array ``pred`` only, ``n_samples = 1``); see :func:`prediction_store`."""
    with prediction_store(out_zarr, tile_ids, tile_size, attrs) as writer:
        for ids, tiles in batches:
            writer.write("pred", ids, tiles)


def open_predictions(
    path: str | os.PathLike, expect_tile_ids: np.ndarray | None = None, *, array: str = "pred"
) -> tuple[Any, dict]:
    """(zarr array ``array``, attrs) of a finished prediction store.

    Refuses partial or unreadable stores and, when ``expect_tile_ids`` is given, stores whose
    tiles/order differ from it.  ``array``: ``pred`` (default), ``mean``, ``std`` or ``samples``;
    ``mean`` of a store with ``n_samples == 1`` and no ``mean`` array (cGAN, baselines, stores
    written before K existed) is ``pred``, the mean of its one deterministic prediction.
    """
    import zarr

    p = Path(path)
    if array not in ARRAYS:
        raise PredictionStoreError(f"{p}: unknown array {array!r} (one of {ARRAYS})")
    if not p.exists():
        raise PredictionStoreError(f"{p}: prediction store does not exist")
    try:
        group = zarr.open_group(str(p), mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:  # noqa: BLE001 (zarr raises many types for a broken store)
        raise PredictionStoreError(
            f"{p}: not a readable Zarr prediction store ({one_line(exc)})"
        ) from exc
    if not attrs.get("complete", False) or "pred" not in group:
        raise PredictionStoreError(f"{p}: incomplete prediction store (interrupted run?)")
    from rocksr.data.tilestore import StoreError, verify_store

    try:
        verify_store(p, what="prediction store")
    except StoreError as exc:
        raise PredictionStoreError(str(exc)) from exc
    ids = np.asarray(attrs.get("tile_ids", []), dtype=np.int64)
    pred = group["pred"]
    if pred.shape[0] != len(ids):
        raise PredictionStoreError(f"{p}: {pred.shape[0]} predictions for {len(ids)} tile_ids")
    if expect_tile_ids is not None and not np.array_equal(ids, np.asarray(expect_tile_ids)):
        raise PredictionStoreError(
            f"{p}: predicted tiles differ from the test split ({len(ids)} vs "
            f"{len(expect_tile_ids)} tiles, or a different order); re-run prediction"
        )
    if array == "pred":
        return pred, attrs
    k = int(attrs.get("n_samples", 1))
    if array not in group:
        if array == "mean" and k == 1:
            return pred, attrs
        raise PredictionStoreError(
            f"{p}: no {array!r} array (n_samples = {k}, kind {attrs.get('kind')!r}); "
            "re-run prediction with `rocksr predict --n-samples K` on a DDPM checkpoint"
        )
    arr = group[array]
    want = (pred.shape[0], k, *pred.shape[1:]) if array == "samples" else tuple(pred.shape)
    if tuple(arr.shape) != want:
        raise PredictionStoreError(
            f"{p}: array {array!r} has shape {tuple(arr.shape)}, expected {want}"
        )
    return arr, attrs


class RunningMoments:
    """Per-pixel running mean and sum of squared deviations (Welford), in ``dtype``.

    float64 by default (``predict``); ``rocksr enhance`` keeps float32 moments of whole slices.
    Equal inputs give a spread of exactly 0, and one input gives its own value as the mean.
    """

    def __init__(self, dtype: np.dtype | type = np.float64) -> None:
        self.dtype = np.dtype(dtype)
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        """Add one sample (any shape, the same every time)."""
        x = np.asarray(x, dtype=self.dtype)
        self.count += 1
        if self.mean is None or self.m2 is None:
            self.mean, self.m2 = x.copy(), np.zeros_like(x)
            return
        delta = x - self.mean
        self.mean += delta / self.count
        delta *= x - self.mean  # in place: one full-size temporary besides the moments
        self.m2 += delta

    def std(self) -> np.ndarray:
        """Population standard deviation (ddof 0)."""
        if self.m2 is None:
            raise ValueError("RunningMoments: no samples added")
        return np.sqrt(np.maximum(self.m2, 0.0) / self.count)


StoreSpec = str | os.PathLike | tuple[str | os.PathLike, str]


def store_spec(value: StoreSpec) -> tuple[str, str]:
    if isinstance(value, tuple):
        path, array = value
        return str(path), str(array)
    return str(value), "pred"


def expand_sample_means(pred_stores: Mapping[str, StoreSpec]) -> dict[str, tuple[str, str]]:
    """``{name: (path, array)}``: every store as given, each store with ``n_samples = K > 1``
    followed by ``"<name> (mean of K)": (path, "mean")``."""
    out: dict[str, tuple[str, str]] = {}
    for name, value in pred_stores.items():
        path, array = store_spec(value)
        out[name] = (path, array)
        if array != "pred":
            continue
        _, attrs = open_predictions(path)
        k = int(attrs.get("n_samples", 1))
        if k > 1:
            open_predictions(path, array="mean")  # a clear error now if it is missing
            mean_name = f"{name} (mean of {k})"
            if mean_name in pred_stores:
                raise ValueError(f"{path}: model name {mean_name!r} is given twice")
            out[mean_name] = (path, "mean")
    return out


def read_tiles_for_figure(
    pred_stores: Mapping[str, StoreSpec],
    store: str | os.PathLike,
    splits: str | os.PathLike,
    positions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(mct, sem, {model: array}) for test positions ``positions`` (used by the figures); a
    store given as ``(path, array)`` gives that array (e.g. ``mean``, or ``std`` as float16)."""
    from rocksr.data.tilestore import open_tiles

    group = open_tiles(store)
    ids = split_tile_ids(splits, "test")
    sel = ids[np.asarray(positions, dtype=np.int64)]
    mct, sem = read_tiles(group, "mct", sel), read_tiles(group, "sem", sel)
    preds = {}
    for name, value in pred_stores.items():
        path, array = store_spec(value)
        arr, _ = open_predictions(path, expect_tile_ids=ids, array=array)
        preds[name] = np.stack([np.asarray(arr[int(i)]) for i in positions])
    return mct, sem, preds
